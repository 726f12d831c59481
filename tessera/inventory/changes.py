"""Inventory writes as events: what was added, what was removed, which fields changed.

Only rows being written take part, so an object whose fingerprint is unchanged costs
nothing here. The old values are read just before the write that replaces them, in the
same transaction: an event's `before` is what the API showed until then. Events compare
what the API shows of an object (references as Tessera ids; native ids, fingerprints and
timestamps left out) and, for a VM, a summary of its disks and NICs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tessera.db.rows import VMDiskRow, VMNicRow
from tessera.domain.events import ChangeKind, EventDraft, inventory_kind
from tessera.domain.inventory import DiskInfo, NicInfo, ObjectKind
from tessera.events.recorder import record_many
from tessera.inventory.mapping import ROW_CLASS, IdMaps, disk_rows, nic_rows

_UNTRACKED = frozenset(
    {"id", "provider_id", "native_id", "fingerprint", "created_at", "updated_at", "tags"}
)
# The columns an event compares, per kind. Tags are Tessera's own labels, not the pool's.
TRACKED: dict[ObjectKind, tuple[str, ...]] = {
    kind: tuple(c.name for c in row.__table__.columns if c.name not in _UNTRACKED)
    for kind, row in ROW_CLASS.items()
}
# A VM's disks and NICs, summarised: enough to see one added, removed, resized or moved.
_CHILDREN: dict[str, tuple[type[Any], tuple[str, ...]]] = {
    "disks": (VMDiskRow, ("key", "size_bytes", "datastore_id")),
    "nics": (VMNicRow, ("key", "mac", "network_id")),
}
CHILD_NAMES: tuple[str, ...] = tuple(_CHILDREN)
_CHUNK = 500


def _summary(rows: Iterable[Mapping[str, Any]], fields: Sequence[str]) -> list[dict[str, Any]]:
    return [
        {name: row[name] for name in fields} for row in sorted(rows, key=lambda r: r["position"])
    ]


def children_of(
    vm_id: str,
    maps: IdMaps,
    *,
    disks: Iterable[DiskInfo] | None = None,
    nics: Iterable[NicInfo] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """The summaries of the disks and NICs a VM is about to have (those given)."""
    out: dict[str, list[dict[str, Any]]] = {}
    if disks is not None:
        out["disks"] = _summary(disk_rows(vm_id, disks, maps), _CHILDREN["disks"][1])
    if nics is not None:
        out["nics"] = _summary(nic_rows(vm_id, nics, maps), _CHILDREN["nics"][1])
    return out


def current_values(
    session: Session, kind: ObjectKind, ids: Sequence[str], columns: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Row id → the named columns of those rows, as stored now."""
    row = ROW_CLASS[kind]
    selected = [getattr(row, name) for name in columns]
    out: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), _CHUNK):
        part = ids[start : start + _CHUNK]
        for item in session.execute(select(row.id, *selected).where(row.id.in_(part))).mappings():
            values = dict(item)
            out[values.pop("id")] = values
    return out


def current_children(
    session: Session, vm_ids: Sequence[str], names: Sequence[str] = CHILD_NAMES
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """VM id → the summaries of its disks and NICs (those named) as stored now."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {
        vm_id: {name: [] for name in names} for vm_id in vm_ids
    }
    for name in names:
        child, fields = _CHILDREN[name]
        columns = [child.vm_id, *(getattr(child, f) for f in fields)]
        for start in range(0, len(vm_ids), _CHUNK):
            part = vm_ids[start : start + _CHUNK]
            stmt = select(*columns).where(child.vm_id.in_(part)).order_by(child.position)
            for item in session.execute(stmt).mappings():
                values = dict(item)
                out[values.pop("vm_id")][name].append(values)
    return out


def current_state(
    session: Session, kind: ObjectKind, ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Everything an event compares of those rows (for a VM with its disks and NICs)."""
    out = current_values(session, kind, ids, TRACKED[kind])
    if kind is ObjectKind.VM:
        for vm_id, children in current_children(session, list(out)).items():
            out[vm_id].update(children)
    return out


def _plain(value: Any) -> Any:
    """A JSON-ready value: enums as their values, tuples as lists."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value


def _shown(kind: ObjectKind, values: Mapping[str, Any]) -> dict[str, Any]:
    names = (*TRACKED[kind], *CHILD_NAMES)
    return {name: _plain(values[name]) for name in names if name in values}


@dataclass
class ChangeLog:
    """The events of one batch of writes to one pool's rows, recorded by `flush`. A VM's
    event belongs to the VM's project, read with its old values (`project_id` is one of a
    VM's tracked columns, so that costs no query more); other objects' to the platform."""

    provider_id: str
    actor: str
    task_id: str | None = None
    drafts: list[EventDraft] = field(default_factory=list)

    def _add(
        self,
        kind: ObjectKind,
        change: ChangeKind,
        row_id: str,
        name: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        project_id: str | None,
    ) -> None:
        self.drafts.append(
            EventDraft(
                kind=inventory_kind(kind, change),
                actor=self.actor,
                object_kind=kind.value,
                object_id=row_id,
                object_name=name,
                provider_id=self.provider_id,
                task_id=self.task_id,
                project_id=project_id,
                before=before,
                after=after,
            )
        )

    def added(self, kind: ObjectKind, row_id: str, values: Mapping[str, Any]) -> None:
        after = _shown(kind, values)
        self._add(
            kind, ChangeKind.ADDED, row_id, values["name"], None, after, values.get("project_id")
        )

    def changed(
        self, kind: ObjectKind, row_id: str, old: Mapping[str, Any], new: Mapping[str, Any]
    ) -> None:
        """An event holding the fields of `new` whose value differs from `old`; none when
        nothing shown changed (a fingerprint also covers what no column stores)."""
        before: dict[str, Any] = {}
        after: dict[str, Any] = {}
        for name, value in _shown(kind, new).items():
            if name in old and _plain(old[name]) != value:
                before[name], after[name] = _plain(old[name]), value
        if before:
            name = new.get("name") or old.get("name") or ""
            project_id = old.get("project_id")
            self._add(kind, ChangeKind.CHANGED, row_id, name, before, after, project_id)

    def removed(self, kind: ObjectKind, row_id: str, old: Mapping[str, Any]) -> None:
        before = _shown(kind, old)
        name = old.get("name", "")
        self._add(kind, ChangeKind.REMOVED, row_id, name, before, None, old.get("project_id"))

    def flush(self, session: Session) -> None:
        record_many(session, self.drafts)
        self.drafts.clear()
