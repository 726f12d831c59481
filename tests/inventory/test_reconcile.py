"""Reconcile: what a provider reports becomes rows, on SQLite and on PostgreSQL."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tessera.config import Settings
from tessera.db.rows import HostRow, VMDiskRow, VMNicRow, VMRow, VMTagRow
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
from tessera.inventory import pools, queries
from tessera.inventory.reconcile import apply_changes, reconcile
from tessera.inventory.tags import change_tags
from tessera.runtime import Runtime


@pytest.fixture
def db(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = Runtime.open(Settings(data_dir=tmp_path / "s", database_url=database_url))
    yield rt
    rt.close()


def _provider(rt: Runtime, name: str = "p1") -> str:
    spec = pools.ProviderSpec(name=name, kind="libvirt", url="qemu+tcp://127.0.0.1:1/system")
    return pools.add_provider(rt, spec, test_connection=False).id


def _vm(i: int, **changes: object) -> VMInfo:
    vm = VMInfo(
        native_id=f"vm-{i}",
        name=f"web-{i:03d}",
        power_state=PowerState.RUNNING,
        cpu_count=2,
        memory_mib=2048,
        host_native_id="host-1",
        disks=(DiskInfo(key="2000", size_bytes=10 << 30, path=f"[ds1] web-{i}/web-{i}.vmdk"),),
        nics=(
            NicInfo(key="4000", mac=f"00:50:56:00:00:{i:02x}", order=0, network_native_id="net-1"),
        ),
    )
    return dataclasses.replace(vm, **changes)  # type: ignore[arg-type]


def _snapshot(vms: list[VMInfo]) -> InventorySnapshot:
    return InventorySnapshot(
        hosts=[HostInfo(native_id="host-1", name="esx-1", cpu_cores=16, memory_mib=65536)],
        networks=[
            NetworkInfo(
                native_id="net-1", name="VM Network", kind=NetworkKind.DVS_PORTGROUP, vlan_id=100
            )
        ],
        vms=vms,
    )


def _count(rt: Runtime, row: type) -> int:
    with rt.sessions() as s:
        return s.scalar(select(func.count()).select_from(row)) or 0


def test_new_changed_vanished_objects(db: Runtime) -> None:
    pid = _provider(db)
    with db.sessions.begin() as s:
        counts = reconcile(s, pid, _snapshot([_vm(1), _vm(2), _vm(3)]))
    assert counts.added["vm"] == 3
    assert _count(db, VMDiskRow) == 3 and _count(db, VMNicRow) == 3
    with db.sessions.begin() as s:
        for vm in s.scalars(select(VMRow)):
            change_tags(s, vm, add=["prod"], actor="test")

    second = _snapshot([_vm(1), _vm(2, name="renamed", power_state=PowerState.STOPPED), _vm(4)])
    with db.sessions.begin() as s:
        counts = reconcile(s, pid, second)
    assert (counts.added["vm"], counts.changed["vm"], counts.removed["vm"]) == (1, 1, 1)
    assert counts.unchanged["vm"] == 1
    with db.sessions() as s:
        names = dict(s.execute(select(VMRow.native_id, VMRow.name)).all())
        states = dict(s.execute(select(VMRow.native_id, VMRow.power_state)).all())
    assert names == {"vm-1": "web-001", "vm-2": "renamed", "vm-4": "web-004"}
    assert states["vm-2"] == "stopped"
    # children follow their VM: the vanished VM's disk/NIC/tag rows are gone; tags are
    # Tessera's, so the renamed VM keeps its own and the new one has none
    assert _count(db, VMDiskRow) == 3 and _count(db, VMNicRow) == 3 and _count(db, VMTagRow) == 2
    with db.sessions() as s:
        tags = dict(s.execute(select(VMRow.native_id, VMRow.tags)).all())
    assert tags == {"vm-1": ["prod"], "vm-2": ["prod"], "vm-4": []}


def test_resync_of_an_unchanged_pool_writes_nothing_and_keeps_ids(db: Runtime) -> None:
    pid = _provider(db)
    snap = _snapshot([_vm(i) for i in range(20)])
    with db.sessions.begin() as s:
        reconcile(s, pid, snap)
    with db.sessions() as s:
        before = dict(s.execute(select(VMRow.native_id, VMRow.id)).all())
    with db.sessions.begin() as s:
        counts = reconcile(s, pid, snap)
    assert counts.changed["vm"] == counts.added["vm"] == counts.removed["vm"] == 0
    with db.sessions() as s:
        assert dict(s.execute(select(VMRow.native_id, VMRow.id)).all()) == before


def test_references_resolve_to_tessera_ids(db: Runtime) -> None:
    pid = _provider(db)
    with db.sessions.begin() as s:
        reconcile(s, pid, _snapshot([_vm(1)]))
    with db.sessions() as s:
        host_id = s.scalar(select(HostRow.id))
        vm = queries.get_vm(s, s.scalar(select(VMRow.id)) or "")
    assert vm["host_id"] == host_id
    assert vm["nics"][0]["mac"] == "00:50:56:00:00:01"
    assert vm["nics"][0]["network_id"] is not None
    assert vm["disks"][0]["size_bytes"] == 10 << 30


def test_failed_reconcile_leaves_previous_view(db: Runtime) -> None:
    pid = _provider(db)
    with db.sessions.begin() as s:
        reconcile(s, pid, _snapshot([_vm(1), _vm(2)]))
    broken = _snapshot([_vm(1, name="changed"), _vm(3)])
    broken.vms.append(_vm(3))  # duplicate native id: the DB refuses it mid-write
    with pytest.raises(Exception), db.sessions.begin() as s:  # noqa: B017, PT011
        reconcile(s, pid, broken)
    with db.sessions() as s:
        names = sorted(s.scalars(select(VMRow.name)))
    assert names == ["web-001", "web-002"]


def test_two_providers_do_not_touch_each_other(db: Runtime) -> None:
    a, b = _provider(db, "a"), _provider(db, "b")
    with db.sessions.begin() as s:
        reconcile(s, a, _snapshot([_vm(1), _vm(2)]))
        reconcile(s, b, _snapshot([_vm(1)]))  # same native ids on another pool
    with db.sessions.begin() as s:
        reconcile(s, b, _snapshot([]))
    with db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(VMRow).where(VMRow.provider_id == a)) == 2
        assert s.scalar(select(func.count()).select_from(VMRow).where(VMRow.provider_id == b)) == 0


def test_watch_changes_apply_and_mark_row_for_full_reread(db: Runtime) -> None:
    pid = _provider(db)
    with db.sessions.begin() as s:
        reconcile(s, pid, _snapshot([_vm(1), _vm(2)]))
    changes = [
        ObjectUpdated(ObjectKind.VM, "vm-1", {"power_state": PowerState.STOPPED, "name": "db-1"}),
        ObjectUpserted(ObjectKind.VM, _vm(9)),
        ObjectRemoved(ObjectKind.VM, "vm-2"),
        ObjectUpdated(
            ObjectKind.VM,
            "vm-1",
            {"nics": (NicInfo(key="4001", mac="00:50:56:aa:bb:cc", order=0),)},
        ),
    ]
    with db.sessions.begin() as s:
        assert apply_changes(s, pid, changes) == 4
    with db.sessions() as s:
        rows = {r.native_id: r for r in s.scalars(select(VMRow))}
        macs = list(s.scalars(select(VMNicRow.mac).where(VMNicRow.vm_id == rows["vm-1"].id)))
    assert set(rows) == {"vm-1", "vm-9"}
    assert (rows["vm-1"].name, rows["vm-1"].power_state) == ("db-1", "stopped")
    assert macs == ["00:50:56:aa:bb:cc"]
    # a full reconcile with the original object must rewrite the partially updated row
    with db.sessions.begin() as s:
        counts = reconcile(s, pid, _snapshot([_vm(1), _vm(9)]))
    assert counts.changed["vm"] == 1
    with db.sessions() as s:
        assert s.scalar(select(VMRow.name).where(VMRow.native_id == "vm-1")) == "web-001"
