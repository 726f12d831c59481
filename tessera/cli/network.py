"""`tessera segment|subnet|port|router|floating-ip|security-group` and `tessera network
overlaps|range`: Tessera's own networks, via the API. Objects are named by id or, where
unique among those the caller sees, by name."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import quote

import typer

from tessera.cli.client import ApiClient, find_provider_id
from tessera.cli.errors import EXIT_CONFLICT, EXIT_NOT_FOUND, CliError, reports_errors
from tessera.cli.output import Output, OutputFormat, console, emit
from tessera.cli.tasks import Follow, finish, follows_task
from tessera.config import Settings

segment_app = typer.Typer(help="Tessera's L2 networks (flat, VLAN, VXLAN).", no_args_is_help=True)
subnet_app = typer.Typer(help="Subnets of segments: CIDR, gateway, pools.", no_args_is_help=True)
port_app = typer.Typer(help="Ports: MAC and fixed IPs on a segment.", no_args_is_help=True)
router_app = typer.Typer(help="Routers: interfaces, external gateway, SNAT.", no_args_is_help=True)
fip_app = typer.Typer(help="Floating IPs: 1:1 NAT to a port.", no_args_is_help=True)
sg_app = typer.Typer(help="Security groups and their rules.", no_args_is_help=True)

SEGMENT_COLUMNS = ("name", "network_type", "segmentation_id", "status", "pools", "id")
SUBNET_COLUMNS = ("name", "cidr", "gateway_ip", "used", "segment_id", "id")
PORT_COLUMNS = ("name", "mac", "ips", "device_owner", "device_id", "id")
ROUTER_COLUMNS = ("name", "external_segment_id", "enable_snat", "gateway_ips", "interfaces", "id")
FIP_COLUMNS = ("address", "port_id", "fixed_ip", "router_id", "id")
SG_COLUMNS = ("name", "rules", "description", "id")
RANGE_COLUMNS = ("name", "kind", "cidr", "region_id", "id")


class NetworkTypeOption(StrEnum):
    FLAT = "flat"
    VLAN = "vlan"
    VXLAN = "vxlan"


class RangeKindOption(StrEnum):
    REGION = "region"
    VPN_PEER = "vpn-peer"
    ANNOUNCEMENT = "announcement"
    MIGRATION_TARGET = "migration-target"


def register(app: typer.Typer) -> None:
    """Add the network commands to the `tessera` command. The address-space commands join
    the `network` group the inventory's `network list` is in (made here if it is not)."""
    app.add_typer(segment_app, name="segment")
    app.add_typer(subnet_app, name="subnet")
    app.add_typer(port_app, name="port")
    app.add_typer(router_app, name="router")
    app.add_typer(fip_app, name="floating-ip")
    app.add_typer(sg_app, name="security-group")
    found = [g.typer_instance for g in app.registered_groups if g.name == "network"]
    network = found[0] if found and found[0] is not None else None
    if network is None:
        network = typer.Typer(help="Networks and the address space.", no_args_is_help=True)
        app.add_typer(network, name="network")
    for name, command in (
        ("overlaps", network_overlaps),
        ("ranges", network_ranges),
        ("range-add", network_range_add),
        ("range-delete", network_range_delete),
    ):
        network.command(name)(command)


def _client() -> ApiClient:
    return ApiClient(Settings())


def _find(client: ApiClient, path: str, what: str, name_or_id: str) -> str:
    """An object's id from its id or its unique name among those listed at `path`."""
    items = client.get(path)
    found = [str(i["id"]) for i in items if name_or_id in (i["id"], i.get("name"))]
    if not found:
        raise CliError(f"{what} {name_or_id!r} not found", EXIT_NOT_FOUND)
    if len(found) > 1:
        raise CliError(f"{len(found)} {what}s are named {name_or_id!r}; give the id", EXIT_CONFLICT)
    return found[0]


def _delete(collection: str, what: str, name_or_id: str) -> None:
    """Delete the object at `/v1/<collection>` given by id or unique name, and say so."""
    client = _client()
    client.delete(f"/v1/{collection}/{_q(_find(client, f'/v1/{collection}', what, name_or_id))}")
    console.print(f"deleted {what} {name_or_id}")


def _segment_id(client: ApiClient, segment: str) -> str:
    return _find(client, "/v1/segments", "segment", segment)


def _q(value: str) -> str:
    return quote(value, safe="")


def _emit_list(
    items: list[dict[str, Any]],
    output: Output,
    row: Callable[[dict[str, Any]], dict[str, Any]],
    columns: Sequence[str],
) -> None:
    """Tables show each item through `row` (flattened for reading); JSON and YAML get the
    API's items as they are."""
    emit([row(i) for i in items] if output is OutputFormat.TABLE else items, output, columns)


# -- segments ----------------------------------------------------------------------


def _segment_row(item: dict[str, Any]) -> dict[str, Any]:
    pools = ", ".join(f"{r['native_name']} ({r['state']})" for r in item["realisations"])
    return {**item, "pools": pools}


def _after_segment(client: ApiClient, accepted: dict[str, Any], follow: Follow) -> None:
    """Follow the task realising the change, if any; else show the segment."""
    if accepted["task"] is None:
        emit(_segment_row(accepted["segment"]), follow.output, SEGMENT_COLUMNS)
        return
    finish(client, accepted["task"], follow)


@segment_app.command("create")
@reports_errors
@follows_task
def segment_create(
    name: str,
    *,
    follow: Follow,
    network_type: Annotated[
        NetworkTypeOption, typer.Option("--type", help="flat, vlan or vxlan.")
    ] = NetworkTypeOption.VLAN,
    segmentation_id: Annotated[
        int | None, typer.Option("--vlan", "--vni", help="VLAN id (1-4094) or VXLAN VNI.")
    ] = None,
    physical_network: Annotated[
        str | None, typer.Option(help="The DVS or vSwitch that carries it (default: default).")
    ] = None,
    provider: Annotated[
        list[str] | None, typer.Option(help="A pool to realise it on; repeatable.")
    ] = None,
    shared: Annotated[bool, typer.Option(help="Every project may use it (admins).")] = False,
    external: Annotated[bool, typer.Option(help="For floating IPs and gateways (admins).")] = False,
    region: Annotated[str | None, typer.Option(help="Region name or id.")] = None,
    description: str = "",
) -> None:
    """Make a segment and realise it on the pools given (a portgroup with its VLAN on each
    vCenter); waits for the task unless --no-wait."""
    client = _client()
    body = {
        "name": name,
        "network_type": network_type.value,
        "segmentation_id": segmentation_id,
        "physical_network": physical_network,
        "provider_ids": [find_provider_id(client, p) for p in provider or []],
        "shared": shared,
        "external": external,
        "region": region,
        "description": description,
    }
    _after_segment(client, client.post("/v1/segments", body), follow)


@segment_app.command("list")
@reports_errors
def segment_list(output: Output = OutputFormat.TABLE) -> None:
    """Your segments, and the shared and external ones."""
    _emit_list(_client().get("/v1/segments"), output, _segment_row, SEGMENT_COLUMNS)


@segment_app.command("show")
@reports_errors
def segment_show(segment: str, output: Output = OutputFormat.TABLE) -> None:
    client = _client()
    emit(client.get(f"/v1/segments/{_q(_segment_id(client, segment))}"), output)


@segment_app.command("set")
@reports_errors
@follows_task
def segment_set(
    segment: str,
    *,
    follow: Follow,
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    segmentation_id: Annotated[
        int | None, typer.Option("--vlan", "--vni", help="A new VLAN id or VNI.")
    ] = None,
    description: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Rename, or re-tag on every pool (a task; the old VLAN comes back if a pool fails)."""
    client = _client()
    body = {"name": name, "segmentation_id": segmentation_id, "description": description}
    path = f"/v1/segments/{_q(_segment_id(client, segment))}"
    _after_segment(client, client.request("PATCH", path, json=body), follow)


@segment_app.command("delete")
@reports_errors
@follows_task
def segment_delete(segment: str, *, follow: Follow) -> None:
    """Take it off its pools and forget it (refused while ports or routers use it)."""
    client = _client()
    accepted = client.delete(f"/v1/segments/{_q(_segment_id(client, segment))}")
    if accepted["task"] is None:
        console.print(f"deleted segment {segment}")
        return
    finish(client, accepted["task"], follow)


# -- subnets -----------------------------------------------------------------------


def _subnet_row(item: dict[str, Any]) -> dict[str, Any]:
    return {**item, "used": f"{item['addresses_used']}/{item['addresses_total']}"}


@subnet_app.command("create")
@reports_errors
def subnet_create(
    segment: str,
    cidr: str,
    name: Annotated[str, typer.Option(help="A label.")] = "",
    gateway: Annotated[str | None, typer.Option(help="Default: the first host address.")] = None,
    no_gateway: Annotated[bool, typer.Option("--no-gateway", help="No gateway at all.")] = False,
    pool: Annotated[
        list[str] | None, typer.Option(help="An allocation pool START-END; repeatable.")
    ] = None,
    dns: Annotated[list[str] | None, typer.Option(help="A nameserver; repeatable.")] = None,
    dhcp: Annotated[bool, typer.Option(help="DHCP on the subnet.")] = True,
    output: Output = OutputFormat.TABLE,
) -> None:
    """A subnet of SEGMENT; refused when CIDR overlaps any range Tessera knows."""
    client = _client()
    pools = []
    for text in pool or []:
        start, sep, end = text.partition("-")
        if not sep:
            raise CliError(f"--pool {text!r}: give START-END", 2)
        pools.append({"start": start, "end": end})
    body = {
        "segment_id": _segment_id(client, segment),
        "cidr": cidr,
        "name": name,
        "gateway_ip": gateway,
        "no_gateway": no_gateway,
        "allocation_pools": pools,
        "dns_nameservers": dns or [],
        "enable_dhcp": dhcp,
    }
    emit(client.post("/v1/subnets", body), output)


@subnet_app.command("list")
@reports_errors
def subnet_list(
    segment: Annotated[str | None, typer.Option(help="Of this segment only.")] = None,
    output: Output = OutputFormat.TABLE,
) -> None:
    client = _client()
    segment_id = _segment_id(client, segment) if segment else None
    items = client.get("/v1/subnets", segment_id=segment_id)
    _emit_list(items, output, _subnet_row, SUBNET_COLUMNS)


@subnet_app.command("delete")
@reports_errors
def subnet_delete(subnet: str) -> None:
    _delete("subnets", "subnet", subnet)


# -- ports -------------------------------------------------------------------------


def _port_row(item: dict[str, Any]) -> dict[str, Any]:
    return {**item, "ips": ", ".join(f["ip_address"] for f in item["fixed_ips"])}


@port_app.command("create")
@reports_errors
def port_create(
    segment: str,
    name: Annotated[str, typer.Option(help="A label.")] = "",
    mac: Annotated[str | None, typer.Option(help="Default: a new unique one.")] = None,
    ip: Annotated[
        list[str] | None,
        typer.Option(help="SUBNET or SUBNET=ADDRESS (subnet id or name); repeatable."),
    ] = None,
    security_group: Annotated[
        list[str] | None, typer.Option(help="A security group; repeatable.")
    ] = None,
    output: Output = OutputFormat.TABLE,
) -> None:
    """A port on SEGMENT with addresses from its subnets (by default one per IP version)."""
    client = _client()
    fixed = None
    if ip:
        fixed = []
        for text in ip:
            subnet, _, address = text.partition("=")
            sid = _find(client, "/v1/subnets", "subnet", subnet)
            fixed.append({"subnet_id": sid, "ip_address": address or None})
    body = {
        "segment_id": _segment_id(client, segment),
        "name": name,
        "mac": mac,
        "fixed_ips": fixed,
        "security_group_ids": [
            _find(client, "/v1/security-groups", "security group", g) for g in security_group or []
        ],
    }
    emit(client.post("/v1/ports", body), output)


@port_app.command("list")
@reports_errors
def port_list(output: Output = OutputFormat.TABLE) -> None:
    _emit_list(_client().get("/v1/ports"), output, _port_row, PORT_COLUMNS)


@port_app.command("delete")
@reports_errors
def port_delete(port: str) -> None:
    _delete("ports", "port", port)


# -- routers -----------------------------------------------------------------------


def _router_id(client: ApiClient, router: str) -> str:
    return _find(client, "/v1/routers", "router", router)


def _router_row(item: dict[str, Any]) -> dict[str, Any]:
    interfaces = ", ".join(f"{i['ip_address']} ({i['subnet_id']})" for i in item["interfaces"])
    return {**item, "interfaces": interfaces, "gateway_ips": ", ".join(item["gateway_ips"])}


@router_app.command("create")
@reports_errors
def router_create(
    name: str,
    external: Annotated[str | None, typer.Option(help="External segment for its gateway.")] = None,
    snat: Annotated[bool, typer.Option(help="SNAT out of the gateway.")] = True,
    output: Output = OutputFormat.TABLE,
) -> None:
    client = _client()
    body = {
        "name": name,
        "external_segment_id": _segment_id(client, external) if external else None,
        "enable_snat": snat,
    }
    emit(client.post("/v1/routers", body), output)


@router_app.command("list")
@reports_errors
def router_list(output: Output = OutputFormat.TABLE) -> None:
    _emit_list(_client().get("/v1/routers"), output, _router_row, ROUTER_COLUMNS)


@router_app.command("gateway")
@reports_errors
def router_gateway(
    router: str,
    segment: Annotated[str | None, typer.Argument(help="External segment; none: clear it.")] = None,
    snat: Annotated[bool, typer.Option(help="SNAT out of the gateway.")] = True,
    output: Output = OutputFormat.TABLE,
) -> None:
    """Set the router's gateway on an external segment, or clear it."""
    client = _client()
    path = f"/v1/routers/{_q(_router_id(client, router))}/gateway"
    if segment is None:
        client.delete(path)
        console.print(f"cleared the gateway of router {router}")
        return
    emit(
        client.put(path, {"segment_id": _segment_id(client, segment), "enable_snat": snat}), output
    )


@router_app.command("add-interface")
@reports_errors
def router_add_interface(router: str, subnet: str, output: Output = OutputFormat.TABLE) -> None:
    """An interface on SUBNET, holding its gateway address."""
    client = _client()
    sid = _find(client, "/v1/subnets", "subnet", subnet)
    emit(client.put(f"/v1/routers/{_q(_router_id(client, router))}/interfaces/{_q(sid)}"), output)


@router_app.command("remove-interface")
@reports_errors
def router_remove_interface(router: str, subnet: str) -> None:
    client = _client()
    sid = _find(client, "/v1/subnets", "subnet", subnet)
    client.delete(f"/v1/routers/{_q(_router_id(client, router))}/interfaces/{_q(sid)}")
    console.print(f"removed the interface of router {router} on subnet {subnet}")


@router_app.command("delete")
@reports_errors
def router_delete(router: str) -> None:
    _delete("routers", "router", router)


# -- floating IPs ------------------------------------------------------------------


def _fip_id(client: ApiClient, fip: str) -> str:
    for item in client.get("/v1/floating-ips"):
        if fip in (item["id"], item["address"]):
            return str(item["id"])
    raise CliError(f"floating IP {fip!r} not found", EXIT_NOT_FOUND)


@fip_app.command("create")
@reports_errors
def fip_create(
    segment: Annotated[str, typer.Argument(help="The external segment.")],
    port: Annotated[str | None, typer.Option(help="Associate with this port.")] = None,
    output: Output = OutputFormat.TABLE,
) -> None:
    """An address of an external segment (within the floating_ips quota)."""
    client = _client()
    body = {
        "segment_id": _segment_id(client, segment),
        "port_id": _find(client, "/v1/ports", "port", port) if port else None,
    }
    emit(client.post("/v1/floating-ips", body), output)


@fip_app.command("list")
@reports_errors
def fip_list(output: Output = OutputFormat.TABLE) -> None:
    emit(_client().get("/v1/floating-ips"), output, FIP_COLUMNS)


@fip_app.command("associate")
@reports_errors
def fip_associate(
    fip: Annotated[str, typer.Argument(help="Its id or address.")],
    port: Annotated[str | None, typer.Argument(help="The port; none: dissociate.")] = None,
    output: Output = OutputFormat.TABLE,
) -> None:
    client = _client()
    port_id = _find(client, "/v1/ports", "port", port) if port else None
    emit(client.put(f"/v1/floating-ips/{_q(_fip_id(client, fip))}", {"port_id": port_id}), output)


@fip_app.command("delete")
@reports_errors
def fip_delete(fip: Annotated[str, typer.Argument(help="Its id or address.")]) -> None:
    client = _client()
    client.delete(f"/v1/floating-ips/{_q(_fip_id(client, fip))}")
    console.print(f"released floating IP {fip}")


# -- security groups ---------------------------------------------------------------


def _sg_id(client: ApiClient, group: str) -> str:
    return _find(client, "/v1/security-groups", "security group", group)


def _sg_row(item: dict[str, Any]) -> dict[str, Any]:
    return {**item, "rules": len(item["rules"])}


@sg_app.command("create")
@reports_errors
def sg_create(name: str, description: str = "", output: Output = OutputFormat.TABLE) -> None:
    emit(_client().post("/v1/security-groups", {"name": name, "description": description}), output)


@sg_app.command("list")
@reports_errors
def sg_list(output: Output = OutputFormat.TABLE) -> None:
    _emit_list(_client().get("/v1/security-groups"), output, _sg_row, SG_COLUMNS)


@sg_app.command("show")
@reports_errors
def sg_show(group: str, output: Output = OutputFormat.TABLE) -> None:
    client = _client()
    found = client.get(f"/v1/security-groups/{_q(_sg_id(client, group))}")
    if output is not OutputFormat.TABLE:
        emit(found, output)
        return
    console.print(f"[bold]{found['name']}[/] {found['description']}")
    emit(found["rules"], output)


@sg_app.command("add-rule")
@reports_errors
def sg_add_rule(
    group: str,
    direction: Annotated[str, typer.Option(help="ingress or egress.")] = "ingress",
    ethertype: Annotated[str, typer.Option(help="IPv4 or IPv6.")] = "IPv4",
    protocol: Annotated[str | None, typer.Option(help="tcp, udp, icmp, icmpv6; none: any.")] = None,
    port: Annotated[str | None, typer.Option(help="A port or MIN-MAX (tcp, udp).")] = None,
    remote_ip: Annotated[str | None, typer.Option(help="A remote prefix (CIDR).")] = None,
    remote_group: Annotated[str | None, typer.Option(help="A remote security group.")] = None,
    output: Output = OutputFormat.TABLE,
) -> None:
    client = _client()
    low, high = None, None
    if port:
        first, _, last = port.partition("-")
        if not first.isdigit() or (last and not last.isdigit()):
            raise CliError(f"--port {port!r}: give a number or MIN-MAX", 2)
        low, high = int(first), int(last or first)
    body = {
        "direction": direction,
        "ethertype": ethertype,
        "protocol": protocol,
        "port_range_min": low,
        "port_range_max": high,
        "remote_ip_prefix": remote_ip,
        "remote_group_id": _sg_id(client, remote_group) if remote_group else None,
    }
    emit(client.post(f"/v1/security-groups/{_q(_sg_id(client, group))}/rules", body), output)


@sg_app.command("delete-rule")
@reports_errors
def sg_delete_rule(group: str, rule_id: str) -> None:
    client = _client()
    client.delete(f"/v1/security-groups/{_q(_sg_id(client, group))}/rules/{_q(rule_id)}")
    console.print(f"deleted rule {rule_id}")


@sg_app.command("delete")
@reports_errors
def sg_delete(group: str) -> None:
    _delete("security-groups", "security group", group)


# -- the address space -------------------------------------------------------------


@reports_errors
def network_overlaps(output: Output = OutputFormat.TABLE) -> None:
    """Every pair of colliding address ranges (admins); exit 4 when there is any."""
    found = _client().get("/v1/address-overlaps")
    if output is not OutputFormat.TABLE:
        emit(found, output)
    else:
        rows = [
            {
                "range": o["first"]["cidr"],
                "owner": o["first"]["owner"],
                "overlaps": o["second"]["cidr"],
                "of": o["second"]["owner"],
            }
            for o in found
        ]
        emit(rows, output, ("range", "owner", "overlaps", "of"))
    if found:
        raise typer.Exit(EXIT_CONFLICT)


@reports_errors
def network_range_add(
    name: str,
    kind: Annotated[RangeKindOption, typer.Option(help="region, vpn-peer, announcement, ...")],
    cidr: Annotated[str, typer.Option(help="The range.")],
    region: Annotated[str | None, typer.Option(help="Its region (name or id).")] = None,
    output: Output = OutputFormat.TABLE,
) -> None:
    """Record a range Tessera must not collide with (admins)."""
    body = {"name": name, "kind": kind.value, "cidr": cidr, "region": region}
    emit(_client().post("/v1/address-ranges", body), output)


@reports_errors
def network_ranges(output: Output = OutputFormat.TABLE) -> None:
    """The recorded ranges: regions, VPN peers, announcements, migration targets."""
    emit(_client().get("/v1/address-ranges"), output, RANGE_COLUMNS)


@reports_errors
def network_range_delete(range_id: str) -> None:
    """Forget a recorded range."""
    _client().delete(f"/v1/address-ranges/{_q(range_id)}")
    console.print(f"deleted address range {range_id}")
