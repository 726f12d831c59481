"""Write what a provider reported into the database: full reconciles and single changes.

A full reconcile runs in the caller's transaction, so an interrupted sync leaves the
previous consistent view. Rows whose fingerprint is unchanged are not touched, which keeps
a re-sync of a large, quiet pool cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from tessera.db.rows import Base, VMDiskRow, VMNicRow, new_id, utcnow
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


def _bulk_insert(session: Session, row: type[Any], rows: list[dict[str, Any]]) -> None:
    """INSERT many rows; give every column's value (Python-side defaults are not applied).

    On SQLite the statement is compiled once and sent through the driver's executemany,
    each value through the column type's own bind processor as SQLAlchemy would do:
    skipping its per-row parameter bookkeeping is a third of a full sync's database time at
    10,000 VMs. PostgreSQL drivers adapt types themselves (JSON among them), so there the
    regular Core executemany (batched as insertmanyvalues) is used.
    """
    if not rows:
        return
    table = _table(row)
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name != "sqlite":
        connection.execute(insert(table), rows)
        return
    keys = list(rows[0])
    compiled = insert(table).values({key: bindparam(key) for key in keys}).compile(dialect=dialect)
    order = compiled.positiontup
    if order is None or len(order) < 2:
        raise TypeError("expected a positional INSERT of several columns")
    processors = [
        (index, _reusing_last(processor))
        for index, key in enumerate(order)
        if (processor := table.c[key].type.dialect_impl(dialect).bind_processor(dialect))
    ]
    params: list[Any] = list(map(itemgetter(*order), rows))
    if processors:
        params = [_processed(values, processors) for values in params]
    connection.exec_driver_sql(str(compiled), params)


def _processed(
    values: tuple[Any, ...], processors: list[tuple[int, Callable[[Any], Any]]]
) -> tuple[Any, ...]:
    out = list(values)
    for index, process in processors:
        out[index] = process(out[index])
    return tuple(out)


def _reusing_last(processor: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """The processor, skipping the work when a column repeats the previous row's value
    (the sync's one timestamp, most booleans)."""
    last: list[Any] = [object(), None]

    def process(value: Any) -> Any:
        if value is not last[0]:
            last[0], last[1] = value, processor(value)
        return last[1]

    return process


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
            _bulk_insert(session, child, rows)


def reconcile(
    session: Session,
    provider_id: str,
    inventory: InventorySnapshot | Iterable[InventorySnapshot],
) -> ReconcileCounts:
    """Make the provider's rows equal to `inventory`: insert new, update changed, drop
    vanished. `inventory` may be a stream of chunks (Provider.stream_inventory): each is
    written as it arrives, and what was not seen in any chunk is dropped at the end."""
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
    seen: dict[ObjectKind, set[str]] = {kind: set() for kind in KIND_ORDER}
    now = utcnow()
    counts = ReconcileCounts()
    for name in (counts.added, counts.changed, counts.removed, counts.unchanged):
        name.update(dict.fromkeys((kind.value for kind in KIND_ORDER), 0))
    for chunk in chunks:
        for kind in KIND_ORDER:
            objects = _objects(chunk, kind)
            if objects:
                _write_kind(session, provider_id, kind, objects, existing[kind], maps, counts, now)
                seen[kind].update(obj.native_id for obj in objects)
    for kind in reversed(KIND_ORDER):
        row = ROW_CLASS[kind]
        vanished = [
            rid for native_id, (rid, _) in existing[kind].items() if native_id not in seen[kind]
        ]
        for part in _chunks(vanished):
            session.execute(delete(row).where(row.id.in_(part)))
        counts.removed[kind.value] = len(vanished)
    return counts


def _write_kind(
    session: Session,
    provider_id: str,
    kind: ObjectKind,
    objects: Sequence[InventoryObject],
    existing: dict[str, tuple[str, str]],
    maps: IdMaps,
    counts: ReconcileCounts,
    now: datetime,
) -> None:
    """Insert the new and update the changed objects of one kind from one chunk."""
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
    if inserts:
        _bulk_insert(session, row, inserts)
    if updates:
        session.execute(update(row), updates)
    if kind is ObjectKind.VM:
        _replace_vm_children(session, new_vms, maps, had_rows=False)
        _replace_vm_children(session, changed_vms, maps, had_rows=True)
    counts.added[kind.value] += len(inserts)
    counts.changed[kind.value] += len(updates)
    counts.unchanged[kind.value] += len(objects) - len(inserts) - len(updates)


def apply_changes(session: Session, provider_id: str, changes: Sequence[InventoryChange]) -> int:
    """Apply a watch batch; returns how many changes touched a row.

    A partially updated row gets an empty fingerprint so the next full reconcile rewrites
    it from a complete read instead of trusting a digest of an older state.
    """
    if not changes:
        return 0
    maps = load_id_maps(session, provider_id)
    touched = 0
    for change in changes:
        match change:
            case ObjectUpserted(kind=kind, obj=obj):
                touched += _upsert_one(session, provider_id, kind, obj, maps)
            case ObjectUpdated(kind=kind, native_id=native_id, fields=fields):
                touched += _update_one(session, kind, native_id, fields, maps)
            case ObjectRemoved(kind=kind, native_id=native_id):
                row_id = maps.by_kind[kind].pop(native_id, None)
                if row_id is not None:
                    row = ROW_CLASS[kind]
                    session.execute(delete(row).where(row.id == row_id))
                    touched += 1
    return touched


def _upsert_one(
    session: Session, provider_id: str, kind: ObjectKind, obj: InventoryObject, maps: IdMaps
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
        session.execute(
            insert(_table(row)),
            [{**values, "id": row_id, "provider_id": provider_id, "fingerprint": fp}],
        )
    else:
        row_id = known
        current = session.execute(select(row.fingerprint).where(row.id == row_id)).scalar()
        if current == fp:
            return 0
        session.execute(update(row), [{**values, "id": row_id, "fingerprint": fp}])
    if isinstance(obj, VMInfo):
        _replace_vm_children(session, [(row_id, obj)], maps, had_rows=known is not None)
    return 1


def _update_one(
    session: Session, kind: ObjectKind, native_id: str, fields: dict[str, Any], maps: IdMaps
) -> int:
    row_id = maps.by_kind[kind].get(native_id)
    if row_id is None:
        return 0
    row = ROW_CLASS[kind]
    values = partial_row_values(fields, maps)
    values.update(id=row_id, fingerprint="")
    if kind is ObjectKind.VM:
        values["updated_at"] = utcnow()
    session.execute(update(row), [values])
    if kind is ObjectKind.VM:
        _replace_vm_child_fields(session, row_id, fields, maps)
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
                _bulk_insert(session, child, rows)
