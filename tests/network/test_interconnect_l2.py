"""Same region, different AZs: one VLAN segment stretched over the lab vCenter (a DVS
portgroup) and a lab KVM host (its Open vSwitch), with real packets.

The vCenter side is realised on vcsim, which moves no packets: its data plane is stood in
for by a switch (`fabric`, an OVS instance) that puts the vSphere "guest" namespace on an
access port of the VLAN its portgroup has on vcsim, read back after each change, and
trunks every VLAN to the KVM host's uplink: the physical network the segment rides on.
The KVM host's switch is a second OVS instance, its bridge made by Tessera's realiser
through the database's manager port (a free loopback port, set as the pool's `ovsdb`
network setting); the router sits on the same host, as the network node (the settings
point there), in a `qrouter-` namespace its tasks build.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pyVmomi import vim

from tessera.config import Settings
from tessera.lab.kvm import RunningKvmHost, free_port
from tessera.lab.vcsim import RunningVcsim
from tessera.network.dataplane.ovs import OvsInstance
from tessera.network.dataplane.router import NetworkNode, namespace_of
from tessera.network.realise.libvirt import bridge_for
from tests.fixtures.netns import Namespace, NetLab
from tests.network.helpers import ok, subnet
from tests.tasks.helpers import register, wait_task

WEB_VLAN, DB_VLAN = 301, 302
TRUNK = "trunk"


@pytest.fixture
def lab(netlab: NetLab, tmp_path: Path, vcsim_fresh: RunningVcsim) -> Lab:
    return Lab(netlab, tmp_path, vcsim_fresh)


@pytest.fixture
def settings(tmp_path: Path, lab: Lab) -> Settings:
    """The network node is the KVM host: its switch, in its namespace."""
    return Settings(
        data_dir=tmp_path / "state",
        watch_enabled=False,
        task_retry_attempts=1,
        network_node_ovsdb=f"unix:{lab.kvm.db_socket}",
        network_node_netns=lab.kvm_ns.name,
    )


def _portgroup_vlans(lab: RunningVcsim) -> dict[str, int]:
    """Every DVS portgroup of the lab vCenter with its VLAN id, read behind Tessera's back."""
    with lab.operator_session() as si:
        view = si.content.viewManager.CreateContainerView(
            si.content.rootFolder, [vim.dvs.DistributedVirtualPortgroup], True
        )
        return {pg.name: pg.config.defaultPortConfig.vlan.vlanId for pg in view.view}


class Lab:
    """The physical network (fabric), the KVM host (its OVS in namespace `kvm`) and the
    guests on either side."""

    def __init__(self, netlab: NetLab, home: Path, vcenter: RunningVcsim) -> None:
        self.netlab, self.vcenter = netlab, vcenter
        self.fabric_ns = netlab.namespace("fab")
        self.fabric = self._switch(home / "fabric", self.fabric_ns)
        self.fabric.ovs.ensure_bridge(TRUNK)
        self.kvm_ns = netlab.namespace("kvm")
        self.kvm = self._switch(home / "kvm", self.kvm_ns, manager_port=free_port())
        self.node = NetworkNode(self.kvm.ovs, switch_netns=self.kvm_ns.name)
        self.esx_guests: dict[str, str] = {}  # fabric port -> portgroup

    def _switch(self, home: Path, ns: Namespace, manager_port: int | None = None) -> OvsInstance:
        switch = OvsInstance(home, netns=ns.name, manager_port=manager_port)
        self.netlab.defer(switch.stop)
        switch.start()
        return switch

    def uplink(self) -> None:
        """Cable the KVM host's bridge (made by the realiser) to the fabric as a trunk."""
        self.netlab.veth(self.kvm_ns, "uplink", self.fabric_ns, "to-kvm")
        self.kvm.ovs.add_port(bridge_for(None), "uplink")
        self.fabric.ovs.add_port(TRUNK, "to-kvm")

    def kvm_guest(self, hint: str, vlan: int, cidr: str, gateway: str) -> Namespace:
        """A guest on the KVM host: its NIC tagged on the bridge, as libvirt does it from
        the realiser's interface XML."""
        guest = self._guest(hint, self.kvm_ns, f"vnet-{hint}", cidr, gateway)
        self.kvm.ovs.add_port(bridge_for(None), f"vnet-{hint}", tag=vlan)
        return guest

    def esx_guest(self, hint: str, portgroup: str, cidr: str, gateway: str) -> Namespace:
        guest = self._guest(hint, self.fabric_ns, f"esx-{hint}", cidr, gateway)
        self.esx_guests[f"esx-{hint}"] = portgroup
        self.sync_esx()
        return guest

    def _guest(self, hint: str, switch: Namespace, port: str, cidr: str, gw: str) -> Namespace:
        guest = self.netlab.namespace(hint)
        self.netlab.veth(guest, "eth0", switch, port)
        guest.addr("eth0", cidr)
        guest.route("default", "via", gw)
        return guest

    def sync_esx(self) -> None:
        """The ESX hosts' side: each vSphere guest sits on its portgroup's VLAN as vcsim
        has it now; a portgroup that is gone takes the guest's port with it."""
        vlans = _portgroup_vlans(self.vcenter)
        for port, portgroup in self.esx_guests.items():
            if portgroup in vlans:
                self.fabric.ovs.add_port(TRUNK, port, tag=vlans[portgroup])
            else:
                self.fabric.ovs.delete_port(port)


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
    task = wait_task(api, made["task"]["id"], timeout_s=120)
    assert task["state"] == "succeeded", task
    return dict(ok(api.get(f"/v1/segments/{made['segment']['id']}")))


def _applied(api: TestClient, response: Any, status: int = 200) -> None:
    """Wait for the network node's task the answer links; it must succeed."""
    assert response.status_code == status, response.text
    link = re.fullmatch(r'</v1/tasks/([^>]+)>; rel="monitor"', response.headers["Link"])
    assert link is not None
    task = wait_task(api, link.group(1), timeout_s=60)
    assert task["state"] == "succeeded", task


def test_a_vlan_stretched_over_vcenter_and_kvm_carries_traffic_until_deleted(
    api: TestClient,
    vcsim_fresh: RunningVcsim,
    kvm_test_host: RunningKvmHost,
    netlab: NetLab,
    lab: Lab,
) -> None:
    vcenter = register(api, "vsphere", vcsim_fresh, "lab-vc")
    kvm = register(api, "libvirt", kvm_test_host, "lab-kvm")
    ovsdb = {"ovsdb": f"tcp:127.0.0.1:{lab.kvm.manager_port}"}
    ok(api.put(f"/v1/providers/{kvm}/network", json=ovsdb))
    web = _segment(api, "web", WEB_VLAN, [vcenter, kvm])
    db = _segment(api, "db", DB_VLAN, [vcenter, kvm])
    places = {r["provider_id"]: r for r in web["realisations"]}
    assert places[vcenter]["location"] == "DVS0"
    assert places[kvm]["location"] == "br-default"
    assert lab.kvm.ovs.bridges() == ["br-default"]
    web_pg = places[vcenter]["native_name"]
    db_pg = {r["provider_id"]: r for r in db["realisations"]}[vcenter]["native_name"]
    assert _portgroup_vlans(vcsim_fresh)[web_pg] == WEB_VLAN
    web_net = subnet(api, web["id"], "10.30.1.0/24")
    db_net = subnet(api, db["id"], "10.30.2.0/24")

    lab.uplink()
    esx_web = lab.esx_guest("ew", web_pg, "10.30.1.11/24", "10.30.1.1")
    lab.esx_guest("ed", db_pg, "10.30.2.11/24", "10.30.2.1")
    kvm_web = lab.kvm_guest("kw", WEB_VLAN, "10.30.1.12/24", "10.30.1.1")
    kvm_db = lab.kvm_guest("kd", DB_VLAN, "10.30.2.12/24", "10.30.2.1")
    answer = api.post("/v1/routers", json={"name": "r1"})
    router = ok(answer, 201)
    netlab.adopt_namespace(namespace_of(router["id"]))
    netlab.defer(lambda: lab.node.remove(router["id"]))
    _applied(api, answer, 201)
    for made in (web_net, db_net):
        _applied(api, api.put(f"/v1/routers/{router['id']}/interfaces/{made['id']}"))

    # same subnet, across the trunk: VMware guest to KVM guest
    assert esx_web.ping("10.30.1.12")
    kvm_web.serve_tcp(7000)
    assert esx_web.tcp_echo("10.30.1.12", 7000) == "hello from 10.30.1.11"
    # different subnets, through the router
    assert esx_web.ping("10.30.2.12")
    kvm_db.serve_tcp(7001)
    assert esx_web.tcp_echo("10.30.2.12", 7001) == "hello from 10.30.1.11"

    for made in (web_net, db_net):
        _applied(api, api.delete(f"/v1/routers/{router['id']}/interfaces/{made['id']}"), 204)
    _applied(api, api.delete(f"/v1/routers/{router['id']}"), 204)
    for segment in (web, db):
        gone = ok(api.delete(f"/v1/segments/{segment['id']}"), 202)
        assert wait_task(api, gone["task"]["id"])["state"] == "succeeded"
    lab.sync_esx()
    assert web_pg not in _portgroup_vlans(vcsim_fresh)
    assert lab.kvm.ovs.vsctl("list-ports", "br-default").split() == ["uplink"]
    assert not esx_web.ping("10.30.1.12", count=1, wait_s=1)
    assert esx_web.tcp_echo("10.30.1.12", 7000) is None
    assert not esx_web.ping("10.30.2.12", count=1, wait_s=1)
