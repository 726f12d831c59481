"""The network node's routers, as Neutron's L3 agent builds them: one namespace per router
(`qrouter-<id>`), a `qr-` interface on each of its subnets and a `qg-` interface on the
external segment, both veths whose other end is an access port of the segment's VLAN on
the node's Open vSwitch; forwarding on, the default route via the external gateway, and
one generated `nat` table loaded with `iptables-restore` (whole, so applying twice gives
the same table): a floating IP is 1:1 DNAT in, SNAT out; everything else leaving through
the gateway is SNATed to the router's gateway address when SNAT is on. A floating IP taken
away also has its tracked connections deleted (`conntrack -D`), or they would stay NATed.

Interfaces are named after the router's port ids, as Neutron names them, so `apply`
knows which ones are already there and removes the ones that are no longer wanted.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass, field

from tessera.network.dataplane import iproute
from tessera.network.dataplane.ovs import Ovs

PREFIX = "qrouter-"


@dataclass(frozen=True, slots=True)
class Attachment:
    """A router port: its id, its address with prefix length (`10.0.1.1/24`), where it
    plugs in (an OVS bridge and the segment's VLAN tag, 0 for flat) and its MAC, which the
    router's device keeps across rebuilds so hosts' ARP caches stay right."""

    port_id: str
    cidr: str
    bridge: str
    vlan_id: int
    mac: str


@dataclass(frozen=True, slots=True)
class FloatingNat:
    floating_ip: str
    fixed_ip: str


@dataclass(frozen=True, slots=True)
class RouterSpec:
    router_id: str
    interfaces: tuple[Attachment, ...] = ()
    gateway: Attachment | None = None
    gateway_ip: str | None = None  # the external segment's next hop
    snat: bool = True
    floating_ips: tuple[FloatingNat, ...] = field(default=())

    @property
    def namespace(self) -> str:
        return namespace_of(self.router_id)


def namespace_of(router_id: str) -> str:
    return f"{PREFIX}{router_id}"


def inner_name(kind: str, port_id: str) -> str:
    """`qr-`/`qg-` + the port id's start, 14 characters as in Neutron."""
    return f"{kind}-{port_id[:11]}"


def outer_name(router_id: str, inner: str) -> str:
    """The veth end on the node's switch, found again from the inner end's name."""
    return "tq" + hashlib.sha256(f"{router_id}/{inner}".encode()).hexdigest()[:12]


def nat_table(spec: RouterSpec) -> str:
    """The router's whole `nat` table, in iptables-restore's format."""
    lines = ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    lines.append(":POSTROUTING ACCEPT [0:0]")
    if spec.gateway is not None:
        out = inner_name("qg", spec.gateway.port_id)
        for nat in sorted(spec.floating_ips, key=lambda n: n.floating_ip):
            dnat = f"-d {nat.floating_ip}/32 -j DNAT --to-destination {nat.fixed_ip}"
            lines += [f"-A PREROUTING {dnat}", f"-A OUTPUT {dnat}"]
            snat = f"-o {out} -j SNAT --to-source {nat.floating_ip}"
            lines.append(f"-A POSTROUTING -s {nat.fixed_ip}/32 {snat}")
        if spec.snat:
            address = spec.gateway.cidr.split("/")[0]
            for inside in sorted(_networks(spec.interfaces)):
                lines.append(f"-A POSTROUTING -s {inside} -o {out} -j SNAT --to-source {address}")
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def _networks(interfaces: tuple[Attachment, ...]) -> set[str]:
    return {str(ipaddress.ip_interface(a.cidr).network) for a in interfaces}


class NetworkNode:
    """Routers on one node: its switch (`ovs`) runs in `switch_netns` (None: the node's
    own namespace), where the outer veth ends go."""

    def __init__(self, ovs: Ovs, *, switch_netns: str | None = None) -> None:
        self.ovs = ovs
        self.switch_netns = switch_netns

    def check(self) -> None:
        """Fail before touching anything when the node's switch does not answer."""
        try:
            self.ovs.vsctl("list-br")
        except iproute.DataplaneError as exc:
            raise iproute.DataplaneError(
                f"the network node's switch ({self.ovs.remote}) does not answer: {exc.message}"
            ) from None

    def routers(self) -> set[str]:
        return {n[len(PREFIX) :] for n in iproute.namespaces() if n.startswith(PREFIX)}

    def apply(self, spec: RouterSpec) -> None:
        """Make the router's namespace match `spec`; safe to repeat."""
        ns = spec.namespace
        iproute.add_namespace(ns)
        iproute.sysctl("net.ipv4.ip_forward", "1", ns)
        wanted: dict[str, Attachment] = {inner_name("qr", a.port_id): a for a in spec.interfaces}
        if spec.gateway is not None:
            wanted[inner_name("qg", spec.gateway.port_id)] = spec.gateway
        present = {n for n in iproute.links(ns) if n.startswith(("qr-", "qg-"))}
        for name in present - wanted.keys():
            self._unplug(name, spec.router_id)
        dropped: set[str] = set()
        for name, attachment in wanted.items():
            self._plug(name, attachment, spec.router_id)
            addresses = {attachment.cidr}
            if name.startswith("qg-"):
                addresses |= {f"{n.floating_ip}/32" for n in spec.floating_ips}
                dropped = {a for a in iproute.addresses(name, ns) if a.endswith("/32")}
                dropped -= addresses
            iproute.set_addresses(name, addresses, ns)
        gateway = spec.gateway_ip if spec.gateway is not None else None
        iproute.replace_default_route(gateway, ns)
        iproute.run(["iptables-restore"], netns=ns, stdin=nat_table(spec))
        for cidr in dropped:  # its NAT lives on in tracked flows until they are forgotten
            address = cidr.split("/")[0]
            for match in ("--orig-dst", "--reply-dst"):
                iproute.run(["conntrack", "-D", match, address], netns=ns, check=False)

    def remove(self, router_id: str) -> None:
        """Unplug the router and delete its namespace; a router that is gone is fine."""
        ns = namespace_of(router_id)
        if ns not in iproute.namespaces():
            return
        for name in iproute.links(ns):
            if name.startswith(("qr-", "qg-")):
                self._unplug(name, router_id)
        iproute.delete_namespace(ns)

    def _plug(self, name: str, attachment: Attachment, router_id: str) -> None:
        ns, outer = namespace_of(router_id), outer_name(router_id, name)
        if not iproute.link_exists(name, ns):
            # A port left from a namespace that vanished (a node reboot) still holds the
            # old device in the userspace datapath; it must be added again, not re-set.
            self.ovs.delete_port(outer)
            iproute.add_veth(name, outer, a_netns=ns, b_netns=self.switch_netns)
            iproute.no_tx_checksum(name, ns)
            iproute.ip("link", "set", name, "address", attachment.mac, netns=ns)
        self.ovs.add_port(
            attachment.bridge,
            outer,
            tag=attachment.vlan_id or None,
            external_ids={"iface-id": attachment.port_id},
        )

    def _unplug(self, name: str, router_id: str) -> None:
        self.ovs.delete_port(outer_name(router_id, name))
        iproute.delete_link(name, namespace_of(router_id))
