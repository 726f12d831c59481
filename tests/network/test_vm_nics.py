"""VM NICs on Tessera segments: a create or NIC add that names a segment gets a port made
for it, bound to the VM (MAC and address from IPAM), on the segment's object on the VM's
pool: the portgroup on a vCenter (read back through pyvmomi), the tagged Open vSwitch
bridge on a KVM host (read back from libvirt's domain XML). A port given is bound and
keeps its MAC. Removing the NIC or the VM releases the port: deleted when it was made
for the NIC, unbound when given. Another project's segment or port is not found; a bound
port or a segment not on the VM's pool conflicts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import libvirt
from fastapi.testclient import TestClient
from lxml import etree
from pyVmomi import vim
from typer.testing import CliRunner

from tessera.cli.main import app
from tessera.lab.kvm import RunningKvmHost, free_port
from tessera.lab.vcsim import RunningVcsim
from tessera.network.dataplane.ovs import OvsInstance
from tests.fixtures.netns import NetLab
from tests.network.helpers import member, ok, subnet
from tests.tasks.helpers import register, wait_task


def _segment(api: TestClient, name: str, vlan: int, pools: list[str]) -> dict[str, Any]:
    made = ok(
        api.post(
            "/v1/segments",
            json={
                "name": name,
                "network_type": "vlan",
                "segmentation_id": vlan,
                "provider_ids": pools,
            },
        ),
        202,
    )
    if made["task"] is not None:
        assert wait_task(api, made["task"]["id"], timeout_s=120)["state"] == "succeeded"
    return dict(ok(api.get(f"/v1/segments/{made['segment']['id']}")))


def _vm_body(api: TestClient, pool: str, name: str, nics: list[dict[str, str]]) -> dict[str, Any]:
    hosts = ok(api.get("/v1/hosts", params={"provider_id": pool}))["items"]
    return {
        "provider_id": pool,
        "host_id": hosts[0]["id"],
        "name": name,
        "cpus": 1,
        "memory_mib": 64,
        "nics": nics,
    }


def _done(api: TestClient, response: Any) -> dict[str, Any]:
    task = wait_task(api, ok(response, 202)["id"])
    assert task["state"] == "succeeded", task
    return task


def _ports_of(api: TestClient, device_id: str) -> list[dict[str, Any]]:
    return [p for p in ok(api.get("/v1/ports")) if p["device_id"] == device_id]


def test_a_vm_on_a_segment_of_the_vcenter_gets_its_port_on_the_portgroup(
    api: TestClient, vcsim_fresh: RunningVcsim
) -> None:
    pool = register(api, "vsphere", vcsim_fresh, "lab-vc")
    web = _segment(api, "web", 331, [pool])
    lan = subnet(api, web["id"], "10.40.1.0/24")
    portgroup = web["realisations"][0]["native_name"]

    task = _done(
        api, api.post("/v1/vms", json=_vm_body(api, pool, "on-seg", [{"network_id": web["id"]}]))
    )
    vm_id = task["result"]["vm_id"]
    [port] = _ports_of(api, vm_id)
    assert port["device_owner"] == "compute" and port["segment_id"] == web["id"]
    [address] = port["fixed_ips"]
    assert address["subnet_id"] == lan["id"] and address["ip_address"].startswith("10.40.1.")
    assert [n["mac"] for n in ok(api.get(f"/v1/vms/{vm_id}"))["nics"]] == [port["mac"]]

    with vcsim_fresh.operator_session() as si:  # behind Tessera's back
        view = si.content.viewManager.CreateContainerView(
            si.content.rootFolder, [vim.VirtualMachine], True
        )
        vm = next(v for v in view.view if v.name == "on-seg")
        [card] = [
            d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard)
        ]
        groups = si.content.viewManager.CreateContainerView(
            si.content.rootFolder, [vim.dvs.DistributedVirtualPortgroup], True
        )
        key = next(g.key for g in groups.view if g.name == portgroup)
        assert card.backing.port.portgroupKey == key
        assert card.macAddress.lower() == port["mac"]

    _done(api, api.delete(f"/v1/vms/{vm_id}"))
    assert api.get(f"/v1/ports/{port['id']}").status_code == 404  # made for the NIC: gone
    assert ok(api.get(f"/v1/subnets/{lan['id']}"))["addresses_used"] == 0


def _interfaces(host: RunningKvmHost, name: str) -> list[etree._Element]:
    conn = libvirt.open(host.uri)
    try:
        xml = conn.lookupByName(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    finally:
        conn.close()
    return list(etree.fromstring(xml).iterfind("devices/interface"))


def _described(iface: etree._Element) -> tuple[str | None, ...]:
    """(type, MAC, bridge, virtualport type, iface-id, VLAN tag) of an <interface>."""

    def attr(path: str, name: str) -> str | None:
        found = iface.find(path)
        return None if found is None else found.get(name)

    return (
        iface.get("type"),
        attr("mac", "address"),
        attr("source", "bridge"),
        attr("virtualport", "type"),
        attr("virtualport/parameters", "interfaceid"),
        attr("vlan/tag", "id"),
    )


def test_a_kvm_vm_on_a_segment_sits_on_the_tagged_ovs_bridge_with_its_port(
    api: TestClient, kvm_host_fresh: RunningKvmHost, netlab: NetLab, tmp_path: Path
) -> None:
    ns = netlab.namespace("kvm")
    switch = OvsInstance(tmp_path / "ovs", netns=ns.name, manager_port=free_port())
    netlab.defer(switch.stop)
    switch.start()
    pool = register(api, "libvirt", kvm_host_fresh, "lab-kvm")
    ok(
        api.put(
            f"/v1/providers/{pool}/network", json={"ovsdb": f"tcp:127.0.0.1:{switch.manager_port}"}
        )
    )
    web = _segment(api, "web", 332, [pool])
    subnet(api, web["id"], "10.40.2.0/24")

    task = _done(
        api, api.post("/v1/vms", json=_vm_body(api, pool, "kvm-seg", [{"network_id": web["id"]}]))
    )
    vm_id = task["result"]["vm_id"]
    [made] = _ports_of(api, vm_id)
    [iface] = _interfaces(kvm_host_fresh, "kvm-seg")
    assert _described(iface) == (
        "bridge",
        made["mac"],
        "br-default",
        "openvswitch",
        made["id"],
        "332",
    )

    given = ok(api.post("/v1/ports", json={"segment_id": web["id"], "name": "mine"}), 201)
    _done(api, api.post(f"/v1/vms/{vm_id}/nics", json={"port_id": given["id"]}))
    bound = ok(api.get(f"/v1/ports/{given['id']}"))
    assert (bound["device_owner"], bound["device_id"]) == ("compute", vm_id)
    assert _described(_interfaces(kvm_host_fresh, "kvm-seg")[1]) == (
        "bridge",
        given["mac"],
        "br-default",
        "openvswitch",
        given["id"],
        "332",
    )
    again = api.post(f"/v1/vms/{vm_id}/nics", json={"port_id": given["id"]})
    assert again.status_code == 409 and "is bound already" in again.json()["message"]

    nics = ok(api.get(f"/v1/vms/{vm_id}"))["nics"]
    nic_id = next(n["id"] for n in nics if n["mac"] == given["mac"])
    _done(api, api.delete(f"/v1/vms/{vm_id}/nics/{nic_id}"))
    unbound = ok(api.get(f"/v1/ports/{given['id']}"))  # given, so only unbound
    assert (unbound["device_owner"], unbound["device_id"]) == ("", None)
    assert [i.find("mac").get("address") for i in _interfaces(kvm_host_fresh, "kvm-seg")] == [
        made["mac"]
    ]

    _done(api, api.delete(f"/v1/vms/{vm_id}"))
    assert api.get(f"/v1/ports/{made['id']}").status_code == 404
    assert ok(api.get(f"/v1/ports/{given['id']}"))["device_id"] is None

    # libvirt cannot plug a guest into this host's OVS (its switch is the lab's, not the
    # system's): starting fails, the create rolls back and its ports are released
    body = _vm_body(api, pool, "no-start", [{"network_id": web["id"]}, {"port_id": given["id"]}])
    failed = wait_task(api, ok(api.post("/v1/vms", json={**body, "power_on": True}), 202)["id"])
    assert failed["state"] == "failed" and "was deleted" in failed["error"]["message"], failed
    assert ok(api.get("/v1/ports", params={"segment_id": web["id"]})) == [
        {**ok(api.get(f"/v1/ports/{given['id']}")), "device_owner": "", "device_id": None}
    ]
    retry = api.post(f"/v1/tasks/{failed['id']}/retry")  # its ports are gone: no NICs without
    assert retry.status_code == 409 and "ports were released" in retry.json()["message"]
    # and so does plugging a NIC into a running guest: the port made for it goes again
    body = {**_vm_body(api, pool, "runs", []), "power_on": True}
    running = _done(api, api.post("/v1/vms", json=body))["result"]["vm_id"]
    added = api.post(f"/v1/vms/{running}/nics", json={"network_id": web["id"]})
    failed = wait_task(api, ok(added, 202)["id"])
    assert failed["state"] == "failed", failed
    assert failed["error"]["message"].endswith("; the port it had bound was released"), failed
    assert _ports_of(api, running) == []
    _done(api, api.delete(f"/v1/vms/{running}"))


def test_another_projects_segment_or_port_is_not_found_an_unrealised_one_conflicts(
    api: TestClient, vcsim: RunningVcsim
) -> None:
    pool = register(api, "vsphere", vcsim, "lab-vc")
    blue_id, blue = member(api, "blue", "bob")
    red_id, red = member(api, "red", "rita")
    for project in (blue_id, red_id):
        ok(api.put(f"/v1/projects/{project}/grants/provider/{pool}"), 204)
    red_net = _segment(red, "red-net", 341, [])
    red_port = ok(red.post("/v1/ports", json={"segment_id": red_net["id"]}), 201)
    blue_net = _segment(blue, "blue-net", 342, [])
    tasks_before = len(ok(blue.get("/v1/tasks"))["items"])

    def create(nic: dict[str, str]) -> Any:
        return blue.post("/v1/vms", json=_vm_body(blue, pool, "blue-vm", [nic]))

    for nic, status, message in (
        ({"network_id": red_net["id"]}, 404, f"segment {red_net['id']} not found"),
        ({"port_id": red_port["id"]}, 404, f"port {red_port['id']} not found"),
        ({"network_id": blue_net["id"]}, 409, "is not realised on pool 'lab-vc'"),
        ({"network_id": blue_net["id"], "port_id": red_port["id"]}, 422, "one of them"),
    ):
        answer = create(nic)
        assert answer.status_code == status, answer.text
        assert message in answer.text, answer.text
    # nothing was made or bound on the way
    assert ok(blue.get("/v1/ports")) == []
    assert ok(red.get(f"/v1/ports/{red_port['id']}"))["device_id"] is None
    assert len(ok(blue.get("/v1/tasks"))["items"]) == tasks_before


def test_the_cli_puts_a_vms_nics_on_a_segment_and_a_port(
    cli_env: dict[str, str], vcsim_fresh: RunningVcsim
) -> None:
    headers = {"Authorization": f"Bearer {cli_env['TESSERA_API_TOKEN']}"}
    with httpx.Client(base_url=cli_env["TESSERA_API_URL"], headers=headers, timeout=120) as api:
        pool = register(api, "vsphere", vcsim_fresh, "lab-vc")  # type: ignore[arg-type]
        host = api.get("/v1/hosts", params={"provider_id": pool}).json()["items"][0]["name"]

    def tessera(*args: str) -> Any:
        result = CliRunner().invoke(app, list(args))
        assert result.exit_code == 0, (args, result.output)
        return result

    tessera("segment", "create", "web", "--vlan", "130", "--provider", "lab-vc")
    port = json.loads(tessera("port", "create", "web", "--name", "mine", "-o", "json").output)
    tessera(
        "vm", "create", "cli-vm", "--provider", "lab-vc", "--host", host, "--memory-mib", "64",
        "--nic-network", "web", "--nic-port", "mine",
    )  # fmt: skip
    vm = json.loads(tessera("vm", "show", "cli-vm", "-o", "json").output)
    macs = [n["mac"] for n in vm["nics"]]
    assert len(macs) == 2 and macs[1] == port["mac"]
    tessera("vm", "delete", "cli-vm")
    listed = json.loads(tessera("port", "list", "-o", "json").output)
    assert [(p["name"], p["device_id"]) for p in listed] == [("mine", None)]  # given: unbound
