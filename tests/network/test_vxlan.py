"""VXLAN segments on KVM pools: a Linux bridge and a VXLAN device per host, with real
packets between guests on two "hosts" (namespaces joined by an underlay link), and the
segment task through the API on a lab pool."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tessera.lab.kvm import RunningKvmHost
from tessera.network.dataplane import iproute
from tessera.network.dataplane.vxlan import bridge_name, device_name
from tessera.network.model import NetworkType, Segmentation
from tessera.network.poolsettings import PoolNetworkSettings
from tessera.network.realise import SegmentSpec
from tessera.network.realise.libvirt import LibvirtRealiser
from tessera.providers import open_provider
from tessera.providers.base import Endpoint
from tests.fixtures.netns import Namespace, NetLab
from tests.network.helpers import ok
from tests.tasks.helpers import register, wait_task

VNI, GROUP = 5001, "239.1.1.1"


def _realiser(host: Namespace, local_ip: str) -> LibvirtRealiser:
    """The realiser of a pool whose host is `host` (no libvirt call is made for VXLAN)."""
    provider = open_provider("libvirt", Endpoint("qemu+tcp://127.0.0.1/system"))
    settings = PoolNetworkSettings(netns=host.name, vxlan_local_ip=local_ip, vxlan_group=GROUP)
    return LibvirtRealiser(provider, settings)


def _guest(netlab: NetLab, hint: str, host: Namespace, bridge: str, cidr: str) -> Namespace:
    """A guest whose NIC's host end is on `bridge`, as libvirt puts a tap there."""
    guest = netlab.namespace(hint)
    netlab.veth(guest, "eth0", host, f"tap-{hint}")
    netlab.enslave(f"tap-{hint}", bridge, host)
    guest.addr("eth0", cidr)
    return guest


def test_guests_on_two_hosts_talk_over_a_vxlan_segment_until_it_is_removed(
    netlab: NetLab,
) -> None:
    h1, h2 = netlab.namespace("h1"), netlab.namespace("h2")
    netlab.veth(h1, "underlay", h2, "underlay")
    h1.addr("underlay", "192.0.2.1/24")
    h2.addr("underlay", "192.0.2.2/24")
    spec = SegmentSpec("seg-1", "web", Segmentation(NetworkType.VXLAN, VNI, None))
    one, two = _realiser(h1, "192.0.2.1"), _realiser(h2, "192.0.2.2")
    made = one.ensure(spec)
    assert one.ensure(spec) == made  # safe to repeat
    assert made.location == bridge_name(VNI)
    two.ensure(spec)
    g1 = _guest(netlab, "g1", h1, made.location, "10.50.0.1/24")
    g2 = _guest(netlab, "g2", h2, made.location, "10.50.0.2/24")

    assert g1.ping("10.50.0.2")
    g2.serve_tcp(7100)
    assert g1.tcp_echo("10.50.0.2", 7100) == "hello from 10.50.0.1"
    # it is really tunnelled: the other host's VXLAN device counted the frames
    stats = iproute.ip_json("-s", "link", "show", device_name(VNI), netns=h2.name)
    assert stats[0]["stats64"]["rx"]["packets"] > 0

    two.remove(made, spec)
    assert not iproute.link_exists(made.location, h2.name)
    assert not g1.ping("10.50.0.2", count=1, wait_s=1)
    two.remove(made, spec)  # gone already: fine
    one.remove(made, spec)


def test_a_vxlan_segment_on_a_kvm_pool_is_realised_by_its_task(
    api: TestClient, kvm_test_host: RunningKvmHost, netlab: NetLab
) -> None:
    host = netlab.namespace("kvm")
    netlab.veth(host, "underlay", None, netlab.name("ul"))
    host.addr("underlay", "192.0.2.11/24")
    pool = register(api, "libvirt", kvm_test_host, "lab-kvm")
    body = {"name": "tenant", "network_type": "vxlan", "segmentation_id": VNI}

    # without VXLAN settings the pool cannot carry it: the task says what to set
    made = ok(api.post("/v1/segments", json={**body, "provider_ids": [pool]}), 202)
    task = wait_task(api, made["task"]["id"], timeout_s=60)
    assert task["state"] == "failed" and "vxlan_group" in task["error"]["message"], task
    dropped = ok(api.delete(f"/v1/segments/{made['segment']['id']}"), 202)
    assert wait_task(api, dropped["task"]["id"], timeout_s=60)["state"] == "succeeded"

    settings = {"netns": host.name, "vxlan_local_ip": "192.0.2.11", "vxlan_group": GROUP}
    shown = ok(api.put(f"/v1/providers/{pool}/network", json=settings))
    assert shown["network_settings"] == {**settings, "ovsdb": None}
    made = ok(api.post("/v1/segments", json={**body, "provider_ids": [pool]}), 202)
    assert wait_task(api, made["task"]["id"], timeout_s=60)["state"] == "succeeded"
    segment = ok(api.get(f"/v1/segments/{made['segment']['id']}"))
    assert segment["realisations"][0]["location"] == bridge_name(VNI)
    vxlan = iproute.ip_json("-d", "link", "show", device_name(VNI), netns=host.name)[0]
    assert vxlan["master"] == bridge_name(VNI)
    assert vxlan["linkinfo"]["info_data"]["id"] == VNI
    gone = ok(api.delete(f"/v1/segments/{segment['id']}"), 202)
    assert wait_task(api, gone["task"]["id"], timeout_s=60)["state"] == "succeeded"
    assert not iproute.link_exists(bridge_name(VNI), host.name)


def test_network_settings_are_checked(api: TestClient, kvm_test_host: RunningKvmHost) -> None:
    pool = register(api, "libvirt", kvm_test_host, "lab-kvm")
    for bad in (
        {"ovsdb": "ssl:127.0.0.1:6640"},
        {"ovsdb": "tcp:127.0.0.1:99999"},
        {"ovsdb": "unix:relative/db.sock"},
        {"ovsdb": "ptcp:6640"},
        {"vxlan_group": "192.0.2.1"},
        {"vxlan_local_ip": "239.1.1.1"},
        {"netns": "../x"},
        {"colour": "red"},
    ):
        answer = api.put(f"/v1/providers/{pool}/network", json=bad)
        assert answer.status_code == 422, (bad, answer.text)
    good = {"ovsdb": "unix:/run/openvswitch/db.sock"}
    assert (
        ok(api.put(f"/v1/providers/{pool}/network", json=good))["network_settings"]["ovsdb"]
        == good["ovsdb"]
    )
