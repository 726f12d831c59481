"""Changed block tracking (CBT) and the snapshots a warm migration reads through.

A warm migration turns CBT on, takes a snapshot per round (each of its disks gets a
change id), asks QueryChangedDiskAreas what changed since the previous round's change
id ("*": every allocated area), and removes the snapshot. At the end CBT goes back to
what it was. Snapshots are named by the caller, so an interrupted round's leftover is
found and removed by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyVmomi import vim as _vim

from tessera.providers.vsphere.driver import VSphereProvider

vim: Any = _vim


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A snapshot we took, and the change id each disk (by device key) got in it."""

    native_id: str
    change_ids: dict[str, str]


def cbt_enabled(provider: VSphereProvider, vm_id: str) -> bool:
    vm = provider._vm_ref(vm_id)
    found = provider._props(vm, "config.changeTrackingEnabled")
    return bool(found.get("config.changeTrackingEnabled"))


def set_cbt(provider: VSphereProvider, vm_id: str, enabled: bool) -> None:
    """Turn CBT on or off; nothing is done when it already is."""
    if cbt_enabled(provider, vm_id) != enabled:
        vm = provider._vm_ref(vm_id)
        state = "on" if enabled else "off"
        provider._reconfigure(vm, f"turn CBT {state} on VM {vm_id}", changeTrackingEnabled=enabled)


def _tree(provider: VSphereProvider, vm_id: str) -> list[Any]:
    vm = provider._vm_ref(vm_id)
    snapshot = provider._props(vm, "snapshot").get("snapshot")
    stack, found = list(getattr(snapshot, "rootSnapshotList", None) or []), []
    while stack:
        node = stack.pop()
        found.append(node)
        stack.extend(node.childSnapshotList or [])
    return found


def snapshots_named(provider: VSphereProvider, vm_id: str, name: str) -> list[str]:
    return [str(node.snapshot._moId) for node in _tree(provider, vm_id) if node.name == name]


def create_snapshot(provider: VSphereProvider, vm_id: str, name: str) -> Snapshot:
    """A snapshot without memory or quiescing, and its disks' change ids."""
    vm = provider._vm_ref(vm_id)
    ref = provider._run(
        f"snapshot VM {vm_id}",
        lambda: vm.CreateSnapshot_Task(
            name=name, description="Tessera warm migration", memory=False, quiesce=False
        ),
    )
    snap = vim.vm.Snapshot(str(ref._moId), provider._si._stub)
    devices = provider._props(snap, "config.hardware.device").get("config.hardware.device")
    change_ids = {
        str(d.key): str(getattr(d.backing, "changeId", "") or "")
        for d in devices or []
        if isinstance(d, vim.vm.device.VirtualDisk)
    }
    return Snapshot(str(ref._moId), change_ids)


def remove_snapshot(provider: VSphereProvider, snapshot_id: str) -> None:
    snap = vim.vm.Snapshot(snapshot_id, provider._si._stub)
    provider._run(
        f"remove snapshot {snapshot_id}",
        lambda: snap.RemoveSnapshot_Task(removeChildren=False, consolidate=True),
    )


def changed_areas(
    provider: VSphereProvider,
    vm_id: str,
    snapshot_id: str,
    device_key: str,
    change_id: str,
    capacity: int,
) -> list[tuple[int, int]]:
    """(offset, length) of each area of the disk changed since `change_id` ("*": every
    allocated area), in the snapshot's view; vCenter may answer in pieces."""
    vm = provider._vm_ref(vm_id)
    snap = vim.vm.Snapshot(snapshot_id, provider._si._stub)
    areas: list[tuple[int, int]] = []
    offset = 0
    while offset < capacity:
        info = provider._call(
            vm.QueryChangedDiskAreas,
            snapshot=snap,
            deviceKey=int(device_key),
            startOffset=offset,
            changeId=change_id,
        )
        areas.extend((int(a.start), int(a.length)) for a in info.changedArea or [])
        if int(info.length) <= 0:
            break
        offset = int(info.startOffset) + int(info.length)
    return areas
