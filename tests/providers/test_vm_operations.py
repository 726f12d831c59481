"""The VM operations of the provider contract, against each driver's real lab backend.

Every assertion is what an operator would check: the inventory as list_inventory reads
it. Tests share one private lab per module and driver; each works on VMs of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tessera.domain.inventory import InventorySnapshot, NetworkKind, PowerState, VMInfo
from tessera.domain.operations import DiskSpec, NicSpec, Placement, VMCreateSpec
from tessera.providers import DRIVERS, driver_class
from tessera.providers.base import OPERATION_CAPABILITIES, Capabilities, Provider
from tessera.providers.faults import ProviderConflict, ProviderUnsupported
from tests.providers.test_contract import endpoint_of

MIB = 1 << 20


@dataclass(frozen=True)
class Lab:
    """A connected provider and the targets its tests place VMs on."""

    kind: str
    provider: Provider
    placement: Placement
    networks: tuple[str, str]
    other_datastore: str
    mac: str
    other_host: str | None

    def vm(self, vm_id: str) -> VMInfo:
        matches = [vm for vm in self.provider.list_inventory().vms if vm.native_id == vm_id]
        assert len(matches) == 1, f"{vm_id} listed {len(matches)} times"
        return matches[0]

    def spec(self, name: str, **changes: Any) -> VMCreateSpec:
        fields: dict[str, Any] = {
            "name": name,
            "cpu_count": 2,
            "memory_mib": 96,
            "disks": (DiskSpec(64 * MIB), DiskSpec(32 * MIB, self.other_datastore)),
            "nics": (NicSpec(self.networks[0], self.mac), NicSpec(self.networks[1])),
            "placement": self.placement,
        }
        return VMCreateSpec(**(fields | changes))


def _lab_of(kind: str, member: Any) -> Iterator[Lab]:
    provider = driver_class(kind)(endpoint_of(kind, member))
    provider.connect()
    snap = provider.list_inventory()
    try:
        yield _targets(kind, provider, snap)
    finally:
        provider.close()


def _targets(kind: str, provider: Provider, snap: InventorySnapshot) -> Lab:
    if kind == "vsphere":
        cluster = snap.clusters[0].native_id
        hosts = [h.native_id for h in snap.hosts if h.cluster_native_id == cluster]
        dvs = next(n for n in snap.networks if n.kind is NetworkKind.DVS_PORTGROUP)
        std = next(n for n in snap.networks if n.kind is NetworkKind.STANDARD_PORTGROUP)
        return Lab(
            kind=kind,
            provider=provider,
            placement=Placement(
                host_native_id=hosts[0], datastore_native_id=snap.datastores[0].native_id
            ),
            networks=(dvs.native_id, std.native_id),
            other_datastore=snap.datastores[1].native_id,
            mac="00:50:56:00:12:34",
            other_host=hosts[1],
        )
    # The lab's tagged network is OVS-backed and cannot start guests: use the plain one.
    net = next(n for n in snap.networks if n.vlan_id is None)
    pool = snap.datastores[0].native_id
    return Lab(
        kind=kind,
        provider=provider,
        placement=Placement(host_native_id=snap.hosts[0].native_id, datastore_native_id=pool),
        networks=(net.native_id, net.native_id),
        other_datastore=pool,
        mac="52:54:00:12:34:56",
        other_host=None,
    )


@pytest.fixture(scope="module", params=sorted(DRIVERS))
def lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    kind = str(request.param)
    member = request.getfixturevalue("vcsim_module" if kind == "vsphere" else "kvm_host_module")
    yield from _lab_of(kind, member)


def _names(lab: Lab) -> list[str]:
    return [vm.name for vm in lab.provider.list_inventory().vms]


def test_create_makes_the_requested_vm_once(lab: Lab) -> None:
    spec = lab.spec("ops-create")
    created = lab.provider.create_vm(spec, op_key="create-1")
    again = lab.provider.create_vm(spec, op_key="create-1")
    assert again.native_id == created.native_id
    assert _names(lab).count("ops-create") == 1
    vm = lab.vm(created.native_id)
    assert (vm.cpu_count, vm.memory_mib, vm.power_state) == (2, 96, PowerState.STOPPED)
    assert [d.size_bytes for d in vm.disks] == [64 * MIB, 32 * MIB]
    assert [d.datastore_native_id for d in vm.disks] == [
        lab.placement.datastore_native_id,
        lab.other_datastore,
    ]
    assert [(n.order, n.network_native_id) for n in vm.nics] == [
        (0, lab.networks[0]),
        (1, lab.networks[1]),
    ]
    assert vm.nics[0].mac == lab.mac
    assert vm.nics[1].mac and vm.nics[1].mac != lab.mac
    if lab.placement.host_native_id:
        assert vm.host_native_id == lab.placement.host_native_id


def test_power_transitions_and_repeats(lab: Lab) -> None:
    vm_id = lab.provider.create_vm(lab.spec("ops-power"), op_key="power-create").native_id
    p = lab.provider
    for step, expected in (
        (lambda: p.start_vm(vm_id, op_key="on"), PowerState.RUNNING),
        (lambda: p.start_vm(vm_id, op_key="on"), PowerState.RUNNING),
        (lambda: p.reboot_vm(vm_id, op_key="reboot"), PowerState.RUNNING),
        (lambda: p.suspend_vm(vm_id, op_key="suspend"), PowerState.SUSPENDED),
        (lambda: p.suspend_vm(vm_id, op_key="suspend"), PowerState.SUSPENDED),
        (lambda: p.start_vm(vm_id, op_key="resume"), PowerState.RUNNING),
        # Lab guests have no OS and ignore ACPI: the graceful try must give way to force.
        (lambda: p.stop_vm(vm_id, op_key="off", graceful_timeout_s=0.5), PowerState.STOPPED),
        (lambda: p.stop_vm(vm_id, op_key="off"), PowerState.STOPPED),
    ):
        assert step().power_state is expected
        assert lab.vm(vm_id).power_state is expected
    with pytest.raises(ProviderConflict):
        p.reboot_vm(vm_id, op_key="reboot-off")


def test_rename_and_resize(lab: Lab) -> None:
    p = lab.provider
    vm_id = p.create_vm(lab.spec("ops-rename"), op_key="rename-create").native_id
    for _ in range(2):
        p.rename_vm(vm_id, "ops-renamed", op_key="rename")
        p.resize_vm(vm_id, op_key="resize", cpu_count=1, memory_mib=160)
    vm = lab.vm(vm_id)
    assert (vm.name, vm.cpu_count, vm.memory_mib) == ("ops-renamed", 1, 160)
    p.start_vm(vm_id, op_key="on")
    try:
        p.rename_vm(vm_id, "ops-renamed-running", op_key="rename-running")
    except ProviderConflict:  # libvirt renames stopped VMs only, unless asked to stop it
        p.rename_vm(vm_id, "ops-renamed-running", op_key="rename-running", stop_if_running=True)
    assert lab.vm(vm_id).name == "ops-renamed-running"
    assert "ops-renamed" not in _names(lab)


def test_nic_add_and_remove(lab: Lab) -> None:
    p = lab.provider
    vm_id = p.create_vm(lab.spec("ops-nic"), op_key="nic-create").native_id
    added = p.add_nic(vm_id, NicSpec(lab.networks[1]), op_key="nic-add")
    assert p.add_nic(vm_id, NicSpec(lab.networks[1]), op_key="nic-add") == added
    nics = lab.vm(vm_id).nics
    assert len(nics) == 3 and nics[2].mac == added.mac
    assert nics[2].network_native_id == lab.networks[1] and added.order == 2
    for _ in range(2):
        p.remove_nic(vm_id, nics[0].key, op_key="nic-remove")
    assert [n.mac for n in lab.vm(vm_id).nics] == [nics[1].mac, added.mac]


def test_disk_add_grow_and_remove(lab: Lab) -> None:
    p = lab.provider
    vm_id = p.create_vm(lab.spec("ops-disk"), op_key="disk-create").native_id
    added = p.add_disk(vm_id, DiskSpec(16 * MIB), op_key="disk-add")
    assert p.add_disk(vm_id, DiskSpec(16 * MIB), op_key="disk-add") == added
    assert [d.size_bytes for d in lab.vm(vm_id).disks] == [64 * MIB, 32 * MIB, 16 * MIB]
    for _ in range(2):
        grown = p.grow_disk(vm_id, added.key, 48 * MIB, op_key="disk-grow")
    assert grown.size_bytes == 48 * MIB
    first = lab.vm(vm_id).disks[0].key
    for _ in range(2):
        p.remove_disk(vm_id, first, op_key="disk-remove")
    assert [d.size_bytes for d in lab.vm(vm_id).disks] == [32 * MIB, 48 * MIB]


def test_hot_add_on_a_running_vm(lab: Lab) -> None:
    p = lab.provider
    vm_id = p.create_vm(lab.spec("ops-hot", nics=()), op_key="hot-create").native_id
    p.start_vm(vm_id, op_key="on")
    nic = p.add_nic(vm_id, NicSpec(lab.networks[0]), op_key="hot-nic")
    disk = p.add_disk(vm_id, DiskSpec(8 * MIB), op_key="hot-disk")
    vm = lab.vm(vm_id)
    assert vm.power_state is PowerState.RUNNING
    assert [n.mac for n in vm.nics] == [nic.mac]
    assert disk.key in {d.key for d in vm.disks}


def test_snapshot_round_trip(lab: Lab) -> None:
    p = lab.provider
    vm_id = p.create_vm(lab.spec("ops-snap"), op_key="snap-create").native_id
    snap = p.create_snapshot(vm_id, "before-resize", op_key="snap", description="96 MiB")
    assert p.create_snapshot(vm_id, "before-resize", op_key="snap") == snap
    p.resize_vm(vm_id, op_key="snap-resize", memory_mib=192)
    assert lab.vm(vm_id).memory_mib == 192
    listed = p.list_snapshots(vm_id)
    assert [(s.native_id, s.name, s.is_current) for s in listed] == [
        (snap.native_id, "before-resize", True)
    ]
    assert listed[0].description == "96 MiB"
    p.revert_snapshot(vm_id, snap.native_id, op_key="revert")
    assert lab.vm(vm_id).memory_mib == 96
    for _ in range(2):
        p.delete_snapshot(vm_id, snap.native_id, op_key="snap-delete")
    assert p.list_snapshots(vm_id) == []


def test_clone_copies_hardware_with_new_macs(lab: Lab) -> None:
    p = lab.provider
    source = p.create_vm(lab.spec("ops-source"), op_key="clone-source")
    clone = p.clone_vm(source.native_id, "ops-clone", op_key="clone")
    assert p.clone_vm(source.native_id, "ops-clone", op_key="clone").native_id == clone.native_id
    assert _names(lab).count("ops-clone") == 1
    vm = lab.vm(clone.native_id)
    assert (vm.cpu_count, vm.memory_mib) == (source.cpu_count, source.memory_mib)
    assert [d.size_bytes for d in vm.disks] == [d.size_bytes for d in source.disks]
    assert [d.path for d in vm.disks] != [d.path for d in source.disks]
    assert [n.network_native_id for n in vm.nics] == [n.network_native_id for n in source.nics]
    assert not {n.mac for n in vm.nics} & {n.mac for n in source.nics}


def test_templates(lab: Lab) -> None:
    p = lab.provider
    vm_id = p.create_vm(lab.spec("ops-template"), op_key="tmpl-create").native_id
    if not p.capabilities.supports_templates:
        before = lab.provider.list_inventory()
        with pytest.raises(ProviderUnsupported) as info:
            p.convert_to_template(vm_id, op_key="tmpl")
        assert info.value.capability == "supports_templates"
        with pytest.raises(ProviderUnsupported):
            p.create_vm(lab.spec("ops-from-tmpl", from_template_native_id=vm_id), op_key="ft")
        assert lab.provider.list_inventory().vms == before.vms
        return
    for _ in range(2):
        assert p.convert_to_template(vm_id, op_key="tmpl").is_template
    assert lab.vm(vm_id).is_template
    spec = VMCreateSpec(
        name="ops-from-tmpl",
        cpu_count=0,
        memory_mib=0,
        nics=(NicSpec(lab.networks[1]),),
        placement=lab.placement,
        from_template_native_id=vm_id,
    )
    made = p.create_vm(spec, op_key="from-tmpl")
    assert p.create_vm(spec, op_key="from-tmpl").native_id == made.native_id
    vm = lab.vm(made.native_id)
    assert not vm.is_template and vm.memory_mib == 96
    assert [n.network_native_id for n in vm.nics] == [*lab.networks, lab.networks[1]]
    assert not p.convert_to_vm(vm_id, op_key="untmpl").is_template
    assert not lab.vm(vm_id).is_template


def test_migrate_between_hosts(lab: Lab) -> None:
    p = lab.provider
    vm_id = p.create_vm(lab.spec("ops-migrate"), op_key="mig-create").native_id
    if lab.other_host is None:
        before = lab.provider.list_inventory()
        with pytest.raises(ProviderUnsupported) as info:
            p.migrate_vm(vm_id, "elsewhere", op_key="mig")
        assert info.value.capability == "supports_cold_migration"
        assert lab.provider.list_inventory().vms == before.vms
        return
    for _ in range(2):
        p.migrate_vm(vm_id, lab.other_host, op_key="mig-cold")
    assert lab.vm(vm_id).host_native_id == lab.other_host
    p.start_vm(vm_id, op_key="on")
    p.migrate_vm(vm_id, str(lab.placement.host_native_id), op_key="mig-live")
    vm = lab.vm(vm_id)
    assert (vm.host_native_id, vm.power_state) == (lab.placement.host_native_id, PowerState.RUNNING)


def test_console(lab: Lab) -> None:
    p = lab.provider
    if not p.capabilities.supports_console:
        with pytest.raises(ProviderUnsupported, match="supports_console"):
            p.console("any")
        return
    vm_id = p.create_vm(lab.spec("ops-console"), op_key="console-create").native_id
    with pytest.raises(ProviderConflict):
        p.console(vm_id)
    p.start_vm(vm_id, op_key="on")
    info = p.console(vm_id)
    assert info.protocol and info.url and vm_id in info.url


def test_delete_removes_vm_and_repeats(lab: Lab) -> None:
    p = lab.provider
    vm_id = p.create_vm(lab.spec("ops-delete"), op_key="delete-create").native_id
    p.start_vm(vm_id, op_key="on")
    for _ in range(2):
        p.delete_vm(vm_id, op_key="delete")
    assert "ops-delete" not in _names(lab)
    assert vm_id not in {vm.native_id for vm in p.list_inventory().vms}


# Each operation with arguments that would work; a provider without its flag must refuse.
_CALLS: dict[str, Callable[[Provider, Lab, str], object]] = {
    "create_vm": lambda p, lab, vm: p.create_vm(lab.spec("ops-refused"), op_key="x"),
    "delete_vm": lambda p, lab, vm: p.delete_vm(vm, op_key="x"),
    "start_vm": lambda p, lab, vm: p.start_vm(vm, op_key="x"),
    "stop_vm": lambda p, lab, vm: p.stop_vm(vm, op_key="x"),
    "reboot_vm": lambda p, lab, vm: p.reboot_vm(vm, op_key="x"),
    "suspend_vm": lambda p, lab, vm: p.suspend_vm(vm, op_key="x"),
    "rename_vm": lambda p, lab, vm: p.rename_vm(vm, "ops-refused", op_key="x"),
    "resize_vm": lambda p, lab, vm: p.resize_vm(vm, op_key="x", cpu_count=3),
    "add_nic": lambda p, lab, vm: p.add_nic(vm, NicSpec(lab.networks[0]), op_key="x"),
    "remove_nic": lambda p, lab, vm: p.remove_nic(vm, "any", op_key="x"),
    "add_disk": lambda p, lab, vm: p.add_disk(vm, DiskSpec(MIB), op_key="x"),
    "grow_disk": lambda p, lab, vm: p.grow_disk(vm, "any", 1 << 40, op_key="x"),
    "remove_disk": lambda p, lab, vm: p.remove_disk(vm, "any", op_key="x"),
    "create_snapshot": lambda p, lab, vm: p.create_snapshot(vm, "s", op_key="x"),
    "list_snapshots": lambda p, lab, vm: p.list_snapshots(vm),
    "revert_snapshot": lambda p, lab, vm: p.revert_snapshot(vm, "s", op_key="x"),
    "delete_snapshot": lambda p, lab, vm: p.delete_snapshot(vm, "s", op_key="x"),
    "clone_vm": lambda p, lab, vm: p.clone_vm(vm, "ops-refused", op_key="x"),
    "convert_to_template": lambda p, lab, vm: p.convert_to_template(vm, op_key="x"),
    "convert_to_vm": lambda p, lab, vm: p.convert_to_vm(vm, op_key="x"),
    "migrate_vm": lambda p, lab, vm: p.migrate_vm(vm, "any", op_key="x"),
    "console": lambda p, lab, vm: p.console(vm),
}


def test_every_operation_is_covered_by_the_refusal_test() -> None:
    assert set(_CALLS) == set(OPERATION_CAPABILITIES)


def _bare(provider: Provider) -> Provider:
    """The same driver declaring no capability: what it refuses, the flag alone refused."""
    cls = type(provider)
    bare_cls = type(f"Bare{cls.__name__}", (cls,), {"capabilities": Capabilities()})
    return bare_cls(provider.endpoint)


def test_operations_without_their_flag_are_refused_before_anything_changes(lab: Lab) -> None:
    vm_id = lab.provider.create_vm(lab.spec("ops-guarded"), op_key="guard-create").native_id
    bare = _bare(lab.provider)
    bare.connect()
    try:
        before = lab.provider.list_inventory()
        for operation, call in _CALLS.items():
            with pytest.raises(ProviderUnsupported) as info:
                call(bare, lab, vm_id)
            assert info.value.capability == OPERATION_CAPABILITIES[operation], operation
            assert info.value.capability in str(info.value)
        assert lab.provider.list_inventory().vms == before.vms
    finally:
        bare.close()


def test_require_names_the_flag(lab: Lab) -> None:
    lab.provider.require("supports_snapshots")
    with pytest.raises(ValueError, match="unknown capability"):
        lab.provider.require("supports_teleport")
    bare = _bare(lab.provider)
    with pytest.raises(ProviderUnsupported) as info:
        bare.require("supports_snapshots", "snapshot")
    assert info.value.capability == "supports_snapshots"
    assert "supports_snapshots" in info.value.message
