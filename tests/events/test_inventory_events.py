"""Inventory changes become events in the same transaction, on SQLite and PostgreSQL:
full syncs (actor "sync"), watch batches ("watch") and a task's refresh (its requester)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from tessera.config import Settings
from tessera.db.rows import EventRow, HostRow, NetworkRow, VMRow
from tessera.domain.inventory import (
    DiskInfo,
    HostInfo,
    InventorySnapshot,
    NetworkInfo,
    NetworkKind,
    NicInfo,
    ObjectKind,
    ObjectRemoved,
    ObjectUpdated,
    ObjectUpserted,
    PowerState,
    VMInfo,
)
from tessera.inventory import pools
from tessera.inventory.reconcile import KIND_ORDER, apply_changes, reconcile
from tessera.runtime import Runtime

GIB = 1 << 30


@pytest.fixture
def db(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = Runtime.open(Settings(data_dir=tmp_path / "s", database_url=database_url))
    yield rt
    rt.close()


@pytest.fixture
def pid(db: Runtime) -> str:
    spec = pools.ProviderSpec(name="p1", kind="libvirt", url="qemu+tcp://127.0.0.1:1/system")
    return pools.add_provider(db, spec, test_connection=False).id


def _vm(i: int, **changes: Any) -> VMInfo:
    vm = VMInfo(
        native_id=f"vm-{i}",
        name=f"web-{i}",
        power_state=PowerState.RUNNING,
        cpu_count=2,
        memory_mib=2048,
        host_native_id="host-1",
        disks=(DiskInfo(key="2000", size_bytes=10 * GIB, path=f"[ds] web-{i}.vmdk"),),
        nics=(NicInfo(key="4000", mac=f"00:50:56:00:00:{i:02x}", order=0, network_native_id="n1"),),
    )
    return dataclasses.replace(vm, **changes)


def _snapshot(vms: list[VMInfo]) -> InventorySnapshot:
    return InventorySnapshot(
        hosts=[
            HostInfo(native_id="host-1", name="esx-1", cpu_cores=16, memory_mib=65536),
            HostInfo(native_id="host-2", name="esx-2", cpu_cores=16, memory_mib=65536),
        ],
        networks=[NetworkInfo(native_id="n1", name="VM Network", kind=NetworkKind.BRIDGE)],
        vms=vms,
    )


def _sync(rt: Runtime, provider_id: str, vms: list[VMInfo]) -> None:
    with rt.sessions.begin() as s:
        reconcile(s, provider_id, _snapshot(vms))


def _events(rt: Runtime, after_id: int = 0) -> list[EventRow]:
    with rt.sessions() as s:
        return list(s.scalars(select(EventRow).where(EventRow.id > after_id).order_by(EventRow.id)))


def _last_id(rt: Runtime) -> int:
    events = _events(rt)
    return events[-1].id if events else 0


def _ids(rt: Runtime, row: type, provider_id: str) -> dict[str, str]:
    with rt.sessions() as s:
        stmt = select(row.native_id, row.id).where(row.provider_id == provider_id)
        return dict(s.execute(stmt).all())


def test_first_sync_is_one_summary_event(db: Runtime, pid: str) -> None:
    _sync(db, pid, [_vm(i) for i in range(25)])
    (only,) = _events(db)
    assert only.kind == "provider.discovered"
    assert (only.actor, only.object_kind, only.object_id) == ("sync", "provider", pid)
    assert (only.object_name, only.provider_id, only.task_id) == ("p1", pid, None)
    assert only.after == {"host": 2, "network": 1, "vm": 25}
    assert only.before is None


def test_changed_vm_gives_exactly_its_changed_fields(db: Runtime, pid: str) -> None:
    _sync(db, pid, [_vm(1), _vm(2), _vm(3)])
    mark = _last_id(db)
    hosts = _ids(db, HostRow, pid)
    moved = _vm(2, power_state=PowerState.STOPPED, host_native_id="host-2", disks=())
    _sync(db, pid, [_vm(1), moved, _vm(3)])

    (changed,) = _events(db, mark)
    vm_id = _ids(db, VMRow, pid)["vm-2"]
    assert (changed.kind, changed.actor, changed.object_kind) == ("vm.changed", "sync", "vm")
    assert (changed.object_id, changed.object_name, changed.provider_id) == (vm_id, "web-2", pid)
    assert changed.task_id is None
    assert changed.before == {
        "power_state": "running",
        "host_id": hosts["host-1"],
        "disks": [{"key": "2000", "size_bytes": 10 * GIB, "datastore_id": None}],
    }
    assert changed.after == {"power_state": "stopped", "host_id": hosts["host-2"], "disks": []}


def test_unchanged_resync_writes_no_event_and_costs_no_query(db: Runtime, pid: str) -> None:
    vms = [_vm(i) for i in range(50)]
    _sync(db, pid, vms)
    _sync(db, pid, [_vm(1, cpu_count=4), *vms[2:]])  # a change and a removal
    mark = _last_id(db)
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        _sync(db, pid, [_vm(1, cpu_count=4), *vms[2:]])
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert _events(db, mark) == []
    # reading what exists (one SELECT per kind) is all an unchanged pool costs
    queries = [s for s in statements if not s.lstrip().upper().startswith(("BEGIN", "COMMIT"))]
    assert len(queries) == len(KIND_ORDER), queries


def test_removed_vm_keeps_its_last_state(db: Runtime, pid: str) -> None:
    _sync(db, pid, [_vm(1), _vm(2)])
    vm_id = _ids(db, VMRow, pid)["vm-2"]
    host_id = _ids(db, HostRow, pid)["host-1"]
    mark = _last_id(db)
    _sync(db, pid, [_vm(1), _vm(3)])
    events = {e.kind: e for e in _events(db, mark)}
    assert set(events) == {"vm.added", "vm.removed"}
    removed = events["vm.removed"]
    assert (removed.object_id, removed.object_name, removed.after) == (vm_id, "web-2", None)
    assert removed.before is not None
    assert removed.before["power_state"] == "running"
    assert removed.before["host_id"] == host_id
    assert removed.before["nics"] == [
        {"key": "4000", "mac": "00:50:56:00:00:02", "network_id": _ids(db, NetworkRow, pid)["n1"]}
    ]
    added = events["vm.added"]
    assert added.object_name == "web-3" and added.before is None
    assert added.after is not None and added.after["cpu_count"] == 2


def test_a_failed_sync_leaves_no_event(db: Runtime, pid: str) -> None:
    _sync(db, pid, [_vm(1), _vm(2)])
    mark = _last_id(db)
    broken = _snapshot([_vm(1, name="changed"), _vm(3), _vm(3)])  # duplicate: refused
    with pytest.raises(Exception), db.sessions.begin() as s:  # noqa: B017, PT011
        reconcile(s, pid, broken)
    assert _events(db, mark) == []


def test_watch_batch_events(db: Runtime, pid: str) -> None:
    _sync(db, pid, [_vm(1), _vm(2)])
    ids = _ids(db, VMRow, pid)
    mark = _last_id(db)
    with db.sessions.begin() as s:
        touched = apply_changes(
            s,
            pid,
            [
                ObjectUpdated(ObjectKind.VM, "vm-1", {"power_state": PowerState.STOPPED}),
                ObjectUpdated(ObjectKind.VM, "vm-1", {"name": "web-1"}),  # same name: nothing
                ObjectUpserted(ObjectKind.VM, _vm(2)),  # same fingerprint: nothing
                ObjectRemoved(ObjectKind.VM, "vm-2"),
            ],
        )
    assert touched == 3
    changed, removed = _events(db, mark)
    assert (changed.kind, changed.actor, changed.object_id) == ("vm.changed", "watch", ids["vm-1"])
    assert (changed.before, changed.after) == (
        {"power_state": "running"},
        {"power_state": "stopped"},
    )
    assert changed.object_name == "web-1"
    assert (removed.kind, removed.actor, removed.object_id) == ("vm.removed", "watch", ids["vm-2"])


def test_a_tasks_refresh_names_the_task_and_its_requester(db: Runtime, pid: str) -> None:
    _sync(db, pid, [_vm(1)])
    mark = _last_id(db)
    grown = _vm(1, disks=(DiskInfo(key="2000", size_bytes=20 * GIB),))
    with db.sessions.begin() as s:
        apply_changes(s, pid, [ObjectUpserted(ObjectKind.VM, grown)], actor="alice", task_id="t-1")
    (changed,) = _events(db, mark)
    assert (changed.actor, changed.task_id, changed.kind) == ("alice", "t-1", "vm.changed")
    assert changed.before == {
        "disks": [{"key": "2000", "size_bytes": 10 * GIB, "datastore_id": None}]
    }
    assert changed.after == {
        "disks": [{"key": "2000", "size_bytes": 20 * GIB, "datastore_id": None}]
    }
