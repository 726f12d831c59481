"""The libvirt provider against real libvirt daemons (the lab's simulated KVM hosts)."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator

import libvirt
import pytest
from lxml import etree

from tessera.domain.inventory import (
    InventoryChange,
    NetworkKind,
    ObjectKind,
    ObjectRemoved,
    ObjectUpserted,
    PowerState,
    VMInfo,
)
from tessera.lab.kvm import KvmHostSpec, RunningKvmHost, free_port, start_kvm_host
from tessera.providers import open_provider
from tessera.providers.base import Endpoint
from tessera.providers.faults import (
    ProviderConflict,
    ProviderError,
    ProviderInvalidRequest,
    ProviderNotFound,
    ProviderUnreachable,
)
from tessera.providers.libvirt import LibvirtProvider
from tessera.providers.libvirt.domxml import parse_domain, parse_network
from tessera.providers.libvirt.faults import translate

EVENT_LATENCY_S = 1.0


@pytest.fixture
def provider(kvm_host: RunningKvmHost) -> Iterator[LibvirtProvider]:
    prov = LibvirtProvider(Endpoint(kvm_host.uri))
    prov.connect()
    yield prov
    prov.close()


@pytest.fixture
def direct(kvm_host: RunningKvmHost) -> Iterator[libvirt.virConnect]:
    conn = libvirt.open(kvm_host.uri)
    yield conn
    conn.close()


def test_registered_under_libvirt(kvm_host: RunningKvmHost) -> None:
    prov = open_provider("libvirt", Endpoint(kvm_host.uri))
    assert isinstance(prov, LibvirtProvider)
    assert prov.capabilities.supports_push_events
    assert not prov.capabilities.supports_templates


def test_connect_reports_host_identity(
    provider: LibvirtProvider, direct: libvirt.virConnect
) -> None:
    about = provider.connect()
    host_uuid = etree.fromstring(direct.getCapabilities().encode()).findtext("host/uuid")
    assert about.product == "libvirt/QEMU"
    assert about.version == "9.0.0"
    assert about.instance_uuid == host_uuid
    provider.close()
    provider.close()  # twice is fine


def test_inventory_matches_libvirt(provider: LibvirtProvider, direct: libvirt.virConnect) -> None:
    inv = provider.list_inventory()
    (host,) = inv.hosts
    _model, memory_mib, cpus, mhz, *_ = direct.getInfo()
    assert (host.cpu_cores, host.cpu_mhz, host.memory_mib) == (cpus, mhz, memory_mib)

    (pool,) = direct.listAllStoragePools()
    (store,) = inv.datastores
    assert (store.native_id, store.name, store.kind) == (pool.UUIDString(), pool.name(), "dir")
    assert (store.capacity_bytes, store.free_bytes) == (pool.info()[1], pool.info()[3])

    nets = {n.name: n for n in inv.networks}
    assert set(nets) == {n.name() for n in direct.listAllNetworks()}
    assert nets["kvmshared-vlan42"].vlan_id == 42
    assert nets["kvmshared-net"].vlan_id is None
    assert nets["kvmshared-net"].kind is NetworkKind.LIBVIRT_NETWORK

    vms = {vm.name: vm for vm in inv.vms}
    assert set(vms) == {d.name() for d in direct.listAllDomains()}
    for dom in direct.listAllDomains():
        vm = vms[dom.name()]
        root = etree.fromstring(dom.XMLDesc(0).encode())
        assert vm.native_id == vm.instance_uuid == dom.UUIDString()
        assert vm.host_native_id == host.native_id
        assert vm.memory_mib == dom.maxMemory() // 1024
        assert vm.cpu_count == 1
        assert vm.annotation == root.findtext("description")
        macs = [m.get("address") for m in root.iterfind("devices/interface/mac")]
        assert [n.mac for n in vm.nics] == macs
        assert [n.order for n in vm.nics] == list(range(len(macs)))
        assert {n.network_native_id for n in vm.nics} == {nets["kvmshared-net"].native_id}
        (disk,) = vm.disks
        vol = pool.storageVolLookupByName(f"{dom.name()}.qcow2")
        assert (disk.key, disk.format, disk.path) == ("vda", "qcow2", vol.path())
        assert disk.size_bytes == vol.info()[1] > 0
        assert disk.datastore_native_id == store.native_id


def test_power_states(provider: LibvirtProvider) -> None:
    states = {vm.name: vm.power_state for vm in provider.list_inventory().vms}
    assert states == {
        "kvmshared-vm-1": PowerState.RUNNING,
        "kvmshared-vm-2": PowerState.STOPPED,
        "kvmshared-vm-3": PowerState.STOPPED,
    }


def test_faults_are_mapped(direct: libvirt.virConnect) -> None:
    cases: list[tuple[Callable[[], object], type[ProviderError]]] = [
        (lambda: direct.lookupByName("no-such-vm"), ProviderNotFound),
        (lambda: direct.networkLookupByName("no-such-net"), ProviderNotFound),
        (lambda: direct.defineXML("<domain"), ProviderInvalidRequest),
        (lambda: direct.lookupByName("kvmshared-vm-1").create(), ProviderConflict),
    ]
    for call, expected in cases:
        with pytest.raises(libvirt.libvirtError) as info:
            call()
        assert type(translate(info.value, "test")) is expected


def test_closed_port_is_unreachable() -> None:
    prov = LibvirtProvider(Endpoint(f"qemu+tcp://127.0.0.1:{free_port()}/system"))
    with pytest.raises(ProviderUnreachable):
        prov.connect()


class _Watch:
    """Runs provider.watch in a thread; batches and the final error land in a queue."""

    def __init__(self, prov: LibvirtProvider) -> None:
        self.stop = threading.Event()
        self.items: queue.Queue[list[InventoryChange] | BaseException] = queue.Queue()
        self.thread = threading.Thread(target=self._run, args=(prov,), daemon=True)
        self.thread.start()
        first = self.items.get(timeout=10)
        assert first == []

    def _run(self, prov: LibvirtProvider) -> None:
        try:
            for batch in prov.watch(self.stop):
                self.items.put(batch)
        except BaseException as exc:
            self.items.put(exc)

    def wait_for(
        self, match: Callable[[InventoryChange], bool], timeout: float
    ) -> tuple[InventoryChange, float]:
        start = time.monotonic()
        deadline = start + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                item = self.items.get(timeout=left)
            except queue.Empty:
                break
            assert not isinstance(item, BaseException), item
            for change in item:
                if match(change):
                    return change, time.monotonic() - start
        raise AssertionError("expected change was not reported")

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()


def _vm_change(name: str, state: PowerState | None = None) -> Callable[[InventoryChange], bool]:
    def match(change: InventoryChange) -> bool:
        if not isinstance(change, ObjectUpserted) or not isinstance(change.obj, VMInfo):
            return False
        return change.obj.name == name and (state is None or change.obj.power_state is state)

    return match


def test_watch_reports_lifecycle(kvm_host_fresh: RunningKvmHost) -> None:
    prov = LibvirtProvider(Endpoint(kvm_host_fresh.uri))
    prov.connect()
    conn = libvirt.open(kvm_host_fresh.uri)
    watch = _Watch(prov)
    try:
        name = f"{kvm_host_fresh.name}-vm-2"
        dom = conn.lookupByName(name)
        latencies = []

        dom.create()
        _, latency = watch.wait_for(_vm_change(name, PowerState.RUNNING), EVENT_LATENCY_S)
        latencies.append(latency)

        dom.destroy()
        _, latency = watch.wait_for(_vm_change(name, PowerState.STOPPED), EVENT_LATENCY_S)
        latencies.append(latency)

        dom.rename(f"{name}-renamed")
        change, latency = watch.wait_for(_vm_change(f"{name}-renamed"), EVENT_LATENCY_S)
        assert isinstance(change, ObjectUpserted)
        assert change.obj.native_id == dom.UUIDString()
        latencies.append(latency)

        renamed = conn.lookupByName(f"{name}-renamed")
        xml = renamed.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        renamed.undefine()
        change, latency = watch.wait_for(
            lambda c: isinstance(c, ObjectRemoved) and c.native_id == dom.UUIDString(),
            EVENT_LATENCY_S,
        )
        assert change.kind is ObjectKind.VM
        latencies.append(latency)

        conn.defineXML(xml)
        _, latency = watch.wait_for(
            _vm_change(f"{name}-renamed", PowerState.STOPPED), EVENT_LATENCY_S
        )
        latencies.append(latency)
        assert max(latencies) < EVENT_LATENCY_S
    finally:
        watch.close()
        conn.close()
        prov.close()


def test_daemon_down_makes_listing_unreachable(kvm_host_fresh: RunningKvmHost) -> None:
    prov = LibvirtProvider(Endpoint(kvm_host_fresh.uri))
    prov.connect()
    assert prov.list_inventory().vms
    kvm_host_fresh.stop()
    start = time.monotonic()
    with pytest.raises(ProviderUnreachable):
        prov.list_inventory()
    assert time.monotonic() - start < 5
    prov.close()


def test_daemon_down_ends_watch_with_unreachable(kvm_host_fresh: RunningKvmHost) -> None:
    prov = LibvirtProvider(Endpoint(kvm_host_fresh.uri))
    prov.connect()
    watch = _Watch(prov)
    kvm_host_fresh.stop()
    start = time.monotonic()
    item = watch.items.get(timeout=10)
    while isinstance(item, list):
        item = watch.items.get(timeout=10)
    assert isinstance(item, ProviderUnreachable)
    assert time.monotonic() - start < 3
    watch.close()
    prov.close()


def test_test_driver_host_lists_domains(kvm_test_host: RunningKvmHost) -> None:
    prov = LibvirtProvider(Endpoint(kvm_test_host.uri))
    about = prov.connect()
    try:
        assert about.product == "libvirt/TEST"
        assert about.instance_uuid
        inv = prov.list_inventory()
        assert len(inv.vms) == 50
        assert {vm.power_state for vm in inv.vms} == {
            PowerState.RUNNING,
            PowerState.STOPPED,
            PowerState.PAUSED,
            PowerState.SUSPENDED,
        }
        vm = next(v for v in inv.vms if v.name == "kvmtest-vm-7")
        assert vm.cpu_count == 4
        assert vm.memory_mib == 2048
        assert [n.mac for n in vm.nics] == ["52:54:01:00:00:0e", "52:54:01:00:00:0f"]
        (disk,) = vm.disks
        assert disk.size_bytes == 8 * 1024**3
        assert disk.datastore_native_id == inv.datastores[0].native_id
        # The watch works on a test-driver connection too (the first batch is empty).
        _Watch(prov).close()
    finally:
        prov.close()


@pytest.mark.slow
def test_lists_five_thousand_domains_quickly(tmp_path_factory: pytest.TempPathFactory) -> None:
    host = start_kvm_host(
        KvmHostSpec(name="kvm5k", driver="test", test_domains=5000),
        tmp_path_factory.mktemp("kvm5k"),
    )
    try:
        prov = LibvirtProvider(Endpoint(host.uri))
        prov.connect()
        start = time.monotonic()
        inv = prov.list_inventory()
        elapsed = time.monotonic() - start
        prov.close()
    finally:
        host.stop()
    assert len(inv.vms) == 5000
    assert all(vm.disks and vm.nics for vm in inv.vms)
    assert elapsed < 10


def test_domain_xml_parsing() -> None:
    doc = parse_domain(
        """<domain type='kvm'><name>x</name><uuid>u</uuid>
        <description>hello</description>
        <metadata><libosinfo:libosinfo xmlns:libosinfo='http://libosinfo.org/xmlns/libvirt/domain/1.0'>
          <libosinfo:os id='http://debian.org/debian/12'/></libosinfo:libosinfo></metadata>
        <memory unit='GiB'>2</memory><vcpu current='2'>4</vcpu>
        <os><type>hvm</type></os>
        <devices>
          <disk type='file' device='cdrom'><source file='/x.iso'/><target dev='sda'/></disk>
          <disk type='block' device='disk'><driver type='raw'/><source dev='/dev/vg/x'/>
            <target dev='vdb' bus='virtio'/></disk>
          <interface type='bridge'><mac address='52:54:00:AA:00:01'/><source bridge='br0'/>
            <model type='e1000'/></interface>
        </devices></domain>"""
    )
    assert (doc.memory_mib, doc.cpu_count, doc.annotation) == (2048, 2, "hello")
    assert doc.guest_os == "http://debian.org/debian/12"
    (disk,) = doc.disks
    assert (disk.target, disk.path, disk.fmt) == ("vdb", "/dev/vg/x", "raw")
    (nic,) = doc.nics
    assert (nic.mac, nic.source_kind, nic.source, nic.model) == (
        "52:54:00:aa:00:01",
        "bridge",
        "br0",
        "e1000",
    )
    net = parse_network("<network><name>n</name><vlan><tag id='7'/></vlan></network>")
    assert net.vlan_id == 7


def test_watch_polls_when_the_driver_has_no_events(
    kvm_host_fresh: RunningKvmHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tessera.providers.libvirt import driver

    monkeypatch.setattr(driver, "_register_events", lambda _conn, _pending: None)
    prov = LibvirtProvider(Endpoint(kvm_host_fresh.uri))
    prov.connect()
    conn = libvirt.open(kvm_host_fresh.uri)
    watch = _Watch(prov)
    try:
        name = f"{kvm_host_fresh.name}-vm-3"
        conn.lookupByName(name).create()
        watch.wait_for(_vm_change(name, PowerState.RUNNING), 2 * driver._POLL_INTERVAL_S + 1)
        uuid = conn.lookupByName(name).UUIDString()
        conn.lookupByName(name).destroy()
        conn.lookupByName(name).undefine()
        watch.wait_for(
            lambda c: isinstance(c, ObjectRemoved) and c.native_id == uuid,
            2 * driver._POLL_INTERVAL_S + 1,
        )
    finally:
        watch.close()
        conn.close()
        prov.close()
