"""A router on the network node, with real packets: namespaces stand in for an external
host and for guests on a tenant VLAN behind the router; the node's Open vSwitch carries
the external (flat) and tenant (VLAN) segments."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tessera.network.dataplane import iproute
from tessera.network.dataplane.ovs import OvsInstance
from tessera.network.dataplane.router import (
    Attachment,
    FloatingNat,
    NetworkNode,
    RouterSpec,
    namespace_of,
    nat_table,
)
from tests.fixtures.netns import Namespace, NetLab

FIP, GUEST, OTHER_GUEST = "203.0.113.20", "10.0.1.10", "10.0.1.11"


class Site:
    """The node (its OVS in namespace `node`), the external host, two tenant guests."""

    def __init__(self, netlab: NetLab, home: Path) -> None:
        self.node_ns = netlab.namespace("node")
        switch = OvsInstance(home, netns=self.node_ns.name)
        netlab.defer(switch.stop)
        switch.start()
        self.ovs = switch.ovs
        self.ovs.ensure_bridge("br-ext")
        self.ovs.ensure_bridge("br-phys")
        self.node = NetworkNode(self.ovs, switch_netns=self.node_ns.name)
        self.external = self._host(netlab, "ext", "br-ext", 0, "203.0.113.1/24", None)
        self.guest = self._host(netlab, "vm1", "br-phys", 100, f"{GUEST}/24", "10.0.1.1")
        self.other = self._host(netlab, "vm2", "br-phys", 100, f"{OTHER_GUEST}/24", "10.0.1.1")
        self.router_id = uuid.uuid4().hex
        netlab.adopt_namespace(namespace_of(self.router_id))
        netlab.defer(lambda: self.node.remove(self.router_id))

    def _host(
        self, netlab: NetLab, hint: str, bridge: str, vlan: int, cidr: str, gateway: str | None
    ) -> Namespace:
        ns = netlab.namespace(hint)
        outer = f"v{hint}"
        netlab.veth(ns, "eth0", self.node_ns, outer)
        self.ovs.add_port(bridge, outer, tag=vlan or None)
        ns.addr("eth0", cidr)
        if gateway:
            ns.route("default", "via", gateway)
        return ns

    def spec(self, *, floating: bool, snat: bool = True) -> RouterSpec:
        return RouterSpec(
            router_id=self.router_id,
            interfaces=(
                Attachment("port-inside-1", "10.0.1.1/24", "br-phys", 100, "fa:16:3e:00:00:01"),
            ),
            gateway=Attachment(
                "port-gateway-1", "203.0.113.10/24", "br-ext", 0, "fa:16:3e:00:00:02"
            ),
            gateway_ip="203.0.113.1",
            snat=snat,
            floating_ips=(FloatingNat(FIP, GUEST),) if floating else (),
        )


@pytest.fixture
def site(netlab: NetLab, tmp_path: Path) -> Site:
    return Site(netlab, tmp_path / "ovs-node")


def test_a_floating_ip_reaches_the_guest_until_it_is_removed(site: Site) -> None:
    site.node.apply(site.spec(floating=True))
    assert site.external.ping(FIP)
    # in: DNAT to the guest, the caller's own address kept
    site.guest.serve_tcp(8080)
    assert site.external.tcp_echo(FIP, 8080) == "hello from 203.0.113.1"
    # out: the guest leaves as its floating IP, the other guest as the router's gateway
    site.external.serve_tcp(9090)
    assert site.guest.tcp_echo("203.0.113.1", 9090) == f"hello from {FIP}"
    assert site.other.tcp_echo("203.0.113.1", 9090) == "hello from 203.0.113.10"

    site.node.apply(site.spec(floating=False))
    assert not site.external.ping(FIP, count=1, wait_s=1)
    assert site.external.tcp_echo(FIP, 8080) is None
    assert site.guest.tcp_echo("203.0.113.1", 9090) == "hello from 203.0.113.10"


def test_without_snat_only_floating_ips_leave_and_applying_twice_changes_nothing(
    site: Site,
) -> None:
    spec = site.spec(floating=True, snat=False)
    site.node.apply(spec)
    ns = spec.namespace
    first = iproute.run(["iptables-save", "-t", "nat"], netns=ns).stdout
    site.node.apply(spec)
    again = iproute.run(["iptables-save", "-t", "nat"], netns=ns).stdout
    rules = [line for line in first.splitlines() if line.startswith("-A")]
    assert rules == [line for line in again.splitlines() if line.startswith("-A")]
    assert len(rules) == 3 and "SNAT --to-source 203.0.113.10" not in nat_table(spec)
    site.external.serve_tcp(9090)
    assert site.guest.tcp_echo("203.0.113.1", 9090) == f"hello from {FIP}"
    # the other guest's packets leave unNATed and the external host has no route back
    assert site.other.tcp_echo("203.0.113.1", 9090) is None


def test_removing_the_router_takes_its_namespace_and_switch_ports(site: Site) -> None:
    site.node.apply(site.spec(floating=True))
    assert site.router_id in site.node.routers()
    assert len(site.ovs.vsctl("list-ports", "br-phys").split()) == 3  # two guests, qr-
    site.node.remove(site.router_id)
    assert site.router_id not in site.node.routers()
    assert site.ovs.vsctl("list-ports", "br-phys").split() == ["vvm1", "vvm2"]
    assert not site.external.ping(FIP, count=1, wait_s=1)
    site.node.remove(site.router_id)  # a router that is gone is fine
