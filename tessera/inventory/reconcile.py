"""Write what a provider reported into the database: full reconciles and single changes.

A full reconcile runs in the caller's transaction, so an interrupted sync leaves the
previous consistent view. Rows whose fingerprint is unchanged are not touched, which keeps
a re-sync of a large, quiet pool cheap.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.orm import Session

from tessera.db.bulk import bulk_insert
from tessera.db.rows import Base, ProviderRow, VMDiskRow, VMNicRow, new_id, utcnow
from tessera.domain.events import PROVIDER_DISCOVERED, SYNC_ACTOR, WATCH_ACTOR, EventDraft
from tessera.domain.inventory import (
    InventoryChange,
    InventoryObject,
    InventorySnapshot,
    ObjectKind,
    ObjectRemoved,
    ObjectUpdated,
    ObjectUpserted,
    VMInfo,
)
from tessera.events.recorder import record
from tessera.inventory.changes import (
    CHILD_NAMES,
    TRACKED,
    ChangeLog,
    children_of,
    current_children,
    current_state,
    current_values,
)
from tessera.inventory.mapping import (
    KIND_OF,
    ROW_CLASS,
    IdMaps,
    disk_rows,
    fingerprint,
    nic_rows,
    partial_row_values,
    row_values,
)

# Referenced kinds first, so references resolve within one pass.
KIND_ORDER = (
    ObjectKind.CLUSTER,
    ObjectKind.HOST,
    ObjectKind.DATASTORE,
    ObjectKind.NETWORK,
    ObjectKind.VM,
)
_CHUNK = 500


@dataclass
class ReconcileCounts:
    added: dict[str, int] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)
    removed: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)


def _objects(snapshot: InventorySnapshot, kind: ObjectKind) -> Sequence[InventoryObject]:
    objects: dict[ObjectKind, Sequence[InventoryObject]] = {
        ObjectKind.CLUSTER: snapshot.clusters,
        ObjectKind.HOST: snapshot.hosts,
        ObjectKind.DATASTORE: snapshot.datastores,
        ObjectKind.NETWORK: snapshot.networks,
        ObjectKind.VM: snapshot.vms,
    }
    return objects[kind]


def _table(row: type[Any]) -> Table:
    return Base.metadata.tables[row.__tablename__]


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def load_id_maps(session: Session, provider_id: str) -> IdMaps:
    maps = IdMaps()
    for kind in KIND_ORDER:
        row = ROW_CLASS[kind]
        result = session.execute(
            select(row.native_id, row.id).where(row.provider_id == provider_id)
        )
        maps.by_kind[kind] = dict(result.all())
    return maps


def _replace_vm_children(
    session: Session, vms: Sequence[tuple[str, VMInfo]], maps: IdMaps, *, had_rows: bool
) -> None:
    """Write the disks and NICs of `vms` ((row id, info) pairs), replacing any. Tags are
    Tessera's own labels, set through the API: a sync never touches them."""
    if had_rows:
        ids = [vm_id for vm_id, _ in vms]
        for chunk in _chunks(ids):
            for child in (VMDiskRow, VMNicRow):
                session.execute(delete(child).where(child.vm_id.in_(chunk)))
    disks: list[dict[str, Any]] = []
    nics: list[dict[str, Any]] = []
    for vm_id, info in vms:
        disks += disk_rows(vm_id, info.disks, maps)
        nics += nic_rows(vm_id, info.nics, maps)
    for child, rows in ((VMDiskRow, disks), (VMNicRow, nics)):
        if rows:
            bulk_insert(session, child, rows)


def reconcile(
    session: Session,
    provider_id: str,
    inventory: InventorySnapshot | Iterable[InventorySnapshot],
    *,
    task_id: str | None = None,
) -> ReconcileCounts:
    """Make the provider's rows equal to `inventory`: insert new, update changed, drop
    vanished. `inventory` may be a stream of chunks (Provider.stream_inventory): each is
    written as it arrives, and what was not seen in any chunk is dropped at the end.

    Each object added, changed or removed is an event by the "sync" actor (with
    `task_id` when a task asked for the sync). The first sync of a pool, which has no
    rows yet, is instead one provider.discovered event counting what it found: a
    10,000-VM pool is read in at the speed it was before events existed.
    """
    chunks = [inventory] if isinstance(inventory, InventorySnapshot) else inventory
    existing: dict[ObjectKind, dict[str, tuple[str, str]]] = {}
    maps = IdMaps()
    for kind in KIND_ORDER:
        row = ROW_CLASS[kind]
        result = session.execute(
            select(row.native_id, row.id, row.fingerprint).where(row.provider_id == provider_id)
        )
        existing[kind] = {native_id: (row_id, fp) for native_id, row_id, fp in result}
        maps.by_kind[kind] = {native_id: ids[0] for native_id, ids in existing[kind].items()}
    log = ChangeLog(provider_id, SYNC_ACTOR, task_id) if any(existing.values()) else None
    seen: dict[ObjectKind, set[str]] = {kind: set() for kind in KIND_ORDER}
    now = utcnow()
    counts = ReconcileCounts()
    for name in (counts.added, counts.changed, counts.removed, counts.unchanged):
        name.update(dict.fromkeys((kind.value for kind in KIND_ORDER), 0))
    for chunk in chunks:
        for kind in KIND_ORDER:
            objects = _objects(chunk, kind)
            if objects:
                _write_kind(
                    session, provider_id, kind, objects, existing[kind], maps, counts, now, log
                )
                seen[kind].update(obj.native_id for obj in objects)
    for kind in reversed(KIND_ORDER):
        row = ROW_CLASS[kind]
        vanished = [
            rid for native_id, (rid, _) in existing[kind].items() if native_id not in seen[kind]
        ]
        if log is not None:
            for rid, old in current_state(session, kind, vanished).items():
                log.removed(kind, rid, old)
        for part in _chunks(vanished):
            if kind is ObjectKind.VM:
                _release_ports(session, part, provider_id, SYNC_ACTOR, task_id)
            session.execute(delete(row).where(row.id.in_(part)))
        counts.removed[kind.value] = len(vanished)
    if log is not None:
        log.flush(session)
    elif any(counts.added.values()):
        _discovered(session, provider_id, counts, task_id)
    return counts


def _release_ports(
    session: Session, vm_ids: Sequence[str], provider_id: str, actor: str, task_id: str | None
) -> None:
    """VMs gone from their pool free the Tessera ports their NICs held, as a delete
    through Tessera does (tessera.network.ports)."""
    from tessera.network import ports  # the network builds on the inventory: imported late

    ports.release_vanished_vms(
        session, vm_ids, provider_id=provider_id, actor=actor, task_id=task_id
    )


def _discovered(
    session: Session, provider_id: str, counts: ReconcileCounts, task_id: str | None
) -> None:
    found = {kind: n for kind, n in counts.added.items() if n}
    name = session.scalar(select(ProviderRow.name).where(ProviderRow.id == provider_id))
    record(
        session,
        EventDraft(
            kind=PROVIDER_DISCOVERED,
            actor=SYNC_ACTOR,
            object_kind="provider",
            object_id=provider_id,
            object_name=name or "",
            provider_id=provider_id,
            task_id=task_id,
            message="first sync: " + ", ".join(f"{n} {kind}" for kind, n in found.items()),
            after=found,
        ),
    )


def _write_kind(
    session: Session,
    provider_id: str,
    kind: ObjectKind,
    objects: Sequence[InventoryObject],
    existing: dict[str, tuple[str, str]],
    maps: IdMaps,
    counts: ReconcileCounts,
    now: datetime,
    log: ChangeLog | None,
) -> None:
    """Insert the new and update the changed objects of one kind from one chunk; with a
    `log`, their events too."""
    row = ROW_CLASS[kind]
    ids = maps.by_kind[kind]
    for obj in objects:
        if obj.native_id not in ids:
            ids[obj.native_id] = new_id()
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    new_vms: list[tuple[str, VMInfo]] = []
    changed_vms: list[tuple[str, VMInfo]] = []
    for obj in objects:
        fp = fingerprint(obj)
        known = existing.get(obj.native_id)
        if known is not None and known[1] == fp:
            continue
        row_id = ids[obj.native_id]
        values = row_values(obj, maps, now)
        values.update(id=row_id, fingerprint=fp)
        if known is None:
            values.update(provider_id=provider_id)
            if kind is ObjectKind.VM:
                values.update(created_at=values["updated_at"], tags=[])
            inserts.append(values)
            if isinstance(obj, VMInfo):
                new_vms.append((row_id, obj))
        else:
            updates.append(values)
            if isinstance(obj, VMInfo):
                changed_vms.append((row_id, obj))
    if log is not None:
        _log_writes(session, log, kind, inserts, updates, dict(new_vms + changed_vms), maps)
    if inserts:
        bulk_insert(session, row, inserts)
    if updates:
        session.execute(update(row), updates)
    if kind is ObjectKind.VM:
        _replace_vm_children(session, new_vms, maps, had_rows=False)
        _replace_vm_children(session, changed_vms, maps, had_rows=True)
    counts.added[kind.value] += len(inserts)
    counts.changed[kind.value] += len(updates)
    counts.unchanged[kind.value] += len(objects) - len(inserts) - len(updates)


def _log_writes(
    session: Session,
    log: ChangeLog,
    kind: ObjectKind,
    inserts: list[dict[str, Any]],
    updates: list[dict[str, Any]],
    vms: dict[str, VMInfo],
    maps: IdMaps,
) -> None:
    """The events of one chunk's writes; runs before them, to read what they replace."""

    def new(values: dict[str, Any]) -> dict[str, Any]:
        info = vms.get(values["id"])
        if info is None:
            return values
        return {**values, **children_of(values["id"], maps, disks=info.disks, nics=info.nics)}

    old = current_state(session, kind, [values["id"] for values in updates]) if updates else {}
    for values in inserts:
        log.added(kind, values["id"], new(values))
    for values in updates:
        log.changed(kind, values["id"], old.get(values["id"], {}), new(values))
    log.flush(session)


def apply_changes(
    session: Session,
    provider_id: str,
    changes: Sequence[InventoryChange],
    *,
    actor: str = WATCH_ACTOR,
    task_id: str | None = None,
    project_id: str | None = None,
) -> int:
    """Apply a watch batch; returns how many changes touched a row.

    A partially updated row gets an empty fingerprint so the next full reconcile rewrites
    it from a complete read instead of trusting a digest of an older state. Each change
    that alters what the API shows is an event by `actor`: the watch feed, or the
    requester of the task (`task_id`) that re-read the object after changing it. A VM
    the batch adds belongs to `project_id` (that of the task that made it); the feeds'
    new VMs belong to no project until an admin assigns them.
    """
    if not changes:
        return 0
    maps = load_id_maps(session, provider_id)
    log = ChangeLog(provider_id, actor, task_id)
    touched = 0
    for change in changes:
        match change:
            case ObjectUpserted(kind=kind, obj=obj):
                touched += _upsert_one(session, provider_id, kind, obj, maps, log, project_id)
            case ObjectUpdated(kind=kind, native_id=native_id, fields=fields):
                touched += _update_one(session, kind, native_id, fields, maps, log)
            case ObjectRemoved(kind=kind, native_id=native_id):
                row_id = maps.by_kind[kind].pop(native_id, None)
                if row_id is not None:
                    for old in current_state(session, kind, [row_id]).values():
                        log.removed(kind, row_id, old)
                    if kind is ObjectKind.VM:
                        _release_ports(session, [row_id], provider_id, actor, task_id)
                    row = ROW_CLASS[kind]
                    session.execute(delete(row).where(row.id == row_id))
                    touched += 1
    log.flush(session)
    return touched


def _upsert_one(
    session: Session,
    provider_id: str,
    kind: ObjectKind,
    obj: InventoryObject,
    maps: IdMaps,
    log: ChangeLog,
    project_id: str | None = None,
) -> int:
    if KIND_OF[type(obj)] is not kind:
        raise ValueError(f"change says {kind} but carries a {type(obj).__name__}")
    row = ROW_CLASS[kind]
    known = maps.by_kind[kind].get(obj.native_id)
    fp = fingerprint(obj)
    values = row_values(obj, maps, utcnow())
    if known is None:
        row_id = new_id()
        maps.by_kind[kind][obj.native_id] = row_id
        if kind is ObjectKind.VM:
            values["project_id"] = project_id
        session.execute(
            insert(_table(row)),
            [{**values, "id": row_id, "provider_id": provider_id, "fingerprint": fp}],
        )
    else:
        row_id = known
        # The fingerprint and the shown columns in one read: an unchanged object costs
        # no more than before.
        columns = ("fingerprint", *TRACKED[kind])
        old = current_values(session, kind, [row_id], columns).get(row_id, {})
        if old.get("fingerprint") == fp:
            return 0
        if isinstance(obj, VMInfo):
            old.update(current_children(session, [row_id]).get(row_id, {}))
        session.execute(update(row), [{**values, "id": row_id, "fingerprint": fp}])
    shown = values
    if isinstance(obj, VMInfo):
        _replace_vm_children(session, [(row_id, obj)], maps, had_rows=known is not None)
        shown = {**values, **children_of(row_id, maps, disks=obj.disks, nics=obj.nics)}
    if known is None:
        log.added(kind, row_id, shown)
    else:
        log.changed(kind, row_id, old, shown)
    return 1


def _update_one(
    session: Session,
    kind: ObjectKind,
    native_id: str,
    fields: dict[str, Any],
    maps: IdMaps,
    log: ChangeLog,
) -> int:
    row_id = maps.by_kind[kind].get(native_id)
    if row_id is None:
        return 0
    row = ROW_CLASS[kind]
    values = partial_row_values(fields, maps)
    columns = {"name", *(name for name in values if name in TRACKED[kind])}
    if kind is ObjectKind.VM:
        columns.add("project_id")  # the project its event belongs to
    old = current_values(session, kind, [row_id], sorted(columns)).get(row_id, {})
    shown = dict(values)
    if kind is ObjectKind.VM:
        children = [name for name in CHILD_NAMES if name in fields]
        if children:
            old.update(current_children(session, [row_id], children).get(row_id, {}))
            shown.update(
                children_of(row_id, maps, disks=fields.get("disks"), nics=fields.get("nics"))
            )
    values.update(id=row_id, fingerprint="")
    if kind is ObjectKind.VM:
        values["updated_at"] = utcnow()
    session.execute(update(row), [values])
    if kind is ObjectKind.VM:
        _replace_vm_child_fields(session, row_id, fields, maps)
    log.changed(kind, row_id, old, shown)
    return 1


def _replace_vm_child_fields(
    session: Session, vm_id: str, fields: dict[str, Any], maps: IdMaps
) -> None:
    writers = (
        ("disks", VMDiskRow, disk_rows),
        ("nics", VMNicRow, nic_rows),
    )
    for name, child, make_rows in writers:
        if name in fields:
            session.execute(delete(child).where(child.vm_id == vm_id))
            rows = make_rows(vm_id, fields[name], maps)
            if rows:
                bulk_insert(session, child, rows)
