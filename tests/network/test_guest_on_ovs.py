"""A real guest on a Tessera VLAN segment of a KVM host sends real packets.

The segment and its subnet are made through the API and realised on the host's Open
vSwitch (userspace datapath); the VM gets a port (MAC and address from IPAM) and libvirt
plugs its tap into that switch with the segment's tag, from the interface XML Tessera
wrote. The lab guest boots with the allocated address on its kernel command line and
pings two peers standing for other guests: one on the segment's tag answers, one in the
same subnet on another tag is not reached.

libvirt makes guest taps in the machine's network namespace, and OVS's userspace
datapath opens ports with AF_PACKET in its own, so this host's switch runs in the root
namespace (private database, run folder and bridge name; no addresses on any root
device) and the host's libvirtd runs `ovs-vsctl` against it (KvmHostSpec.ovs_rundir).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import libvirt
import pytest
from fastapi.testclient import TestClient
from lxml import etree

from tessera.lab.guest import DONE, MARKER, PING_FAIL, PING_OK, guest_with_network
from tessera.lab.kvm import KvmHostSpec, RunningKvmHost, free_port, start_kvm_host
from tessera.network.dataplane import iproute
from tessera.network.dataplane.ovs import OvsInstance
from tests.fixtures.netns import Namespace, NetLab
from tests.network.helpers import ok, subnet
from tests.tasks.helpers import register, wait_task

VLAN = 351
OTHER_VLAN = 352
# The userspace datapath's own tap; one switch in a namespace has it.
DATAPATH_TAP = "ovs-netdev"
SERIAL_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class RootSwitchHost:
    """A KVM host whose libvirt plugs guests into `switch`, a root-namespace OVS with
    one bridge for the physical network `physnet`."""

    host: RunningKvmHost
    switch: OvsInstance
    physnet: str

    @property
    def bridge(self) -> str:
        return f"br-{self.physnet}"


@pytest.fixture
def root_switch_host(
    netlab: NetLab, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RootSwitchHost]:
    """The switch, then the host; torn down host first (its guests), then the switch and
    its taps, then (netlab) the peers' veths and namespaces, even when the test failed."""
    if iproute.link_exists(DATAPATH_TAP):
        pytest.fail(
            f"{DATAPATH_TAP} exists in the root namespace: another userspace Open vSwitch"
            " runs there (or a crashed run left it; `ip link del` it)"
        )
    home = tmp_path_factory.mktemp("guestovs")
    switch = OvsInstance(home / "ovs", manager_port=free_port())
    physnet = netlab.prefix
    # The switch's taps outlive ovs-vswitchd: remove them after it (newest runs first).
    for tap in (DATAPATH_TAP, f"br-{physnet}"):
        netlab.defer(partial(iproute.delete_link, tap))
    netlab.defer(switch.stop)
    switch.start()
    spec = KvmHostSpec(name="kvm-ovs", demo_vms=0, ovs_rundir=switch.home)
    host = start_kvm_host(spec, home)
    try:
        yield RootSwitchHost(host, switch, physnet)
    finally:
        host.stop()


def _peer(
    netlab: NetLab, lab: RootSwitchHost, hint: str, port: dict[str, Any], tag: int
) -> Namespace:
    """A namespace standing for another guest: the Tessera port's MAC and address on a
    veth whose root end is an access port of VLAN `tag` on the segment's bridge."""
    ns = netlab.namespace(hint)
    root_end = netlab.name(hint)
    netlab.veth(ns, "eth0", None, root_end)
    ns.ip("link", "set", "eth0", "address", port["mac"])
    ns.addr("eth0", f"{port['fixed_ips'][0]['ip_address']}/24")
    lab.switch.ovs.add_port(lab.bridge, root_end, tag=tag)
    return ns


def _install_guest(
    host: RunningKvmHost, vm_name: str, address: str, peers: list[str], work: Path
) -> None:
    """Write the lab guest, told its address and peers, into the VM's first disk (behind
    Tessera's back, as an image import would)."""
    image = guest_with_network(work / "guest.raw", address, peers)
    conn = libvirt.open(host.uri)
    try:
        dom = etree.fromstring(conn.lookupByName(vm_name).XMLDesc(0))
        source = dom.find("devices/disk/source")
        assert source is not None
        volume = conn.storagePoolLookupByName(source.get("pool")).storageVolLookupByName(
            source.get("volume")
        )
        subprocess.run(
            ["qemu-img", "convert", "-n", "-f", "raw", "-O", "qcow2", str(image), volume.path()],
            check=True,
            capture_output=True,
        )
    finally:
        conn.close()


def _serial_after_start(host: RunningKvmHost, vm_name: str) -> str:
    """The guest's serial output from its start until it says DONE (or powers off).
    libvirt's console drops what is printed while no one listens, so this attaches as
    soon as the domain runs; the guest needs seconds to boot before it prints."""
    conn = libvirt.open(host.uri)
    try:
        dom = conn.lookupByName(vm_name)
        deadline = time.monotonic() + SERIAL_TIMEOUT_S
        stream = conn.newStream(libvirt.VIR_STREAM_NONBLOCK)
        while True:  # until the domain runs and has its console
            try:
                dom.openConsole(None, stream, 0)
                break
            except libvirt.libvirtError:
                assert time.monotonic() < deadline, f"{vm_name} has no console"
                time.sleep(0.05)
        seen = b""
        while DONE.encode() not in seen and time.monotonic() < deadline:
            chunk = stream.recv(4096)
            if chunk == -2:  # nothing yet
                time.sleep(0.1)
            elif not chunk:  # the guest powered off
                break
            else:
                seen += chunk
        stream.abort()
        return seen.decode(errors="replace")
    finally:
        conn.close()


def _neighbour_mac(ns: Namespace, address: str) -> str | None:
    found = json.loads(ns.run("ip", "-json", "neigh", "show", address).stdout or "[]")
    return str(found[0].get("lladdr")) if found else None


def test_a_guest_on_a_vlan_segment_reaches_its_vlan_and_nothing_else(
    api: TestClient, netlab: NetLab, root_switch_host: RootSwitchHost, tmp_path: Path
) -> None:
    lab = root_switch_host
    pool = register(api, "libvirt", lab.host, "lab-kvm")
    ovsdb = f"tcp:127.0.0.1:{lab.switch.manager_port}"
    ok(api.put(f"/v1/providers/{pool}/network", json={"ovsdb": ovsdb}))
    made = ok(
        api.post(
            "/v1/segments",
            json={
                "name": "app",
                "network_type": "vlan",
                "segmentation_id": VLAN,
                "physical_network": lab.physnet,
                "provider_ids": [pool],
            },
        ),
        202,
    )
    assert wait_task(api, made["task"]["id"])["state"] == "succeeded"
    segment_id = made["segment"]["id"]
    subnet(api, segment_id, "10.41.7.0/24")
    near = ok(api.post("/v1/ports", json={"segment_id": segment_id, "name": "near"}), 201)
    far = ok(api.post("/v1/ports", json={"segment_id": segment_id, "name": "far"}), 201)
    near_ns = _peer(netlab, lab, "near", near, VLAN)
    far_ns = _peer(netlab, lab, "far", far, OTHER_VLAN)  # same subnet, another VLAN

    host_id = ok(api.get("/v1/hosts", params={"provider_id": pool}))["items"][0]["id"]
    body = {
        "provider_id": pool,
        "host_id": host_id,
        "name": "pinger",
        "cpus": 1,
        "memory_mib": 128,
        "disks": [{"size_gib": 1}],
        "nics": [{"network_id": segment_id}],
    }
    created = wait_task(api, ok(api.post("/v1/vms", json=body), 202)["id"])
    assert created["state"] == "succeeded", created
    vm_id = created["result"]["vm_id"]
    [port] = [p for p in ok(api.get("/v1/ports")) if p["device_id"] == vm_id]
    address = port["fixed_ips"][0]["ip_address"]
    near_ip, far_ip = (p["fixed_ips"][0]["ip_address"] for p in (near, far))
    _install_guest(lab.host, "pinger", f"{address}/24", [near_ip, far_ip], tmp_path)

    power = ok(api.post(f"/v1/vms/{vm_id}/power", json={"action": "start"}), 202)
    serial = _serial_after_start(lab.host, "pinger")
    assert wait_task(api, power["id"])["state"] == "succeeded"

    assert MARKER in serial, serial
    assert f"{PING_OK} {near_ip}" in serial, serial
    assert f"{PING_FAIL} {far_ip}" in serial, serial
    # The guest spoke with its port's MAC and address; the other VLAN never heard it.
    assert _neighbour_mac(near_ns, address) == port["mac"]
    assert _neighbour_mac(far_ns, address) is None

    deleted = wait_task(api, ok(api.delete(f"/v1/vms/{vm_id}"), 202)["id"])
    assert deleted["state"] == "succeeded", deleted
    left = set(lab.switch.ovs.vsctl("list-ports", lab.bridge).split())
    assert left == {netlab.name("near"), netlab.name("far")}  # the guest's tap is unplugged
