"""Read side of the inventory: filtered, sorted, keyset-paginated lists.

Keyset (cursor) pages stay as fast on page 1,000 as on page 1; the cursor is the last
row's sort value and id, opaque to clients.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnClause

from tessera.db.paging import MAX_LIMIT
from tessera.db.rows import VMDiskRow, VMNicRow, VMRow, VMTagRow
from tessera.errors import InvalidInputError, NotFoundError
from tessera.identity.scope import PLATFORM, Scope


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


def encode_cursor(sort_value: Any, row_id: str) -> str:
    if isinstance(sort_value, datetime):
        sort_value = sort_value.isoformat()
    return base64.urlsafe_b64encode(orjson.dumps([sort_value, row_id])).decode().rstrip("=")


def decode_cursor(cursor: str, column: Any) -> tuple[Any, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value, row_id = orjson.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, binascii.Error, orjson.JSONDecodeError, TypeError) as exc:
        raise InvalidInputError("cursor is not one this API issued") from exc
    if not isinstance(row_id, str):
        raise InvalidInputError("cursor is not one this API issued")
    python_type = column.type.python_type
    if python_type is datetime and isinstance(value, str):
        value = datetime.fromisoformat(value)
    elif value is not None and not isinstance(value, python_type):
        raise InvalidInputError("cursor does not match the sort order")
    return value, row_id


def parse_sort(sort: str, allowed: Sequence[str]) -> tuple[str, bool]:
    """'name' or '-name' → (column name, descending)."""
    descending = sort.startswith("-")
    name = sort.removeprefix("-")
    if name not in allowed:
        raise InvalidInputError(f"cannot sort by {name!r}; allowed: {', '.join(allowed)}")
    return name, descending


def paginate(
    stmt: Select[Any],
    table: Any,
    *,
    sort: str,
    allowed_sorts: Sequence[str],
    cursor: str | None,
    limit: int,
) -> tuple[Select[Any], str, bool]:
    """Add keyset ordering and the cursor condition to `stmt` (which must select id and the
    sort column); returns the statement, sort column name and direction."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInputError(f"limit must be between 1 and {MAX_LIMIT}")
    name, descending = parse_sort(sort, allowed_sorts)
    column = getattr(table, name)
    id_column = table.id
    if cursor:
        value, last_id = decode_cursor(cursor, column)
        after: ColumnElement[bool]
        if descending:
            after = or_(column < value, and_(column == value, id_column < last_id))
        else:
            after = or_(column > value, and_(column == value, id_column > last_id))
        stmt = stmt.where(after)
    order = (column.desc(), id_column.desc()) if descending else (column.asc(), id_column.asc())
    return stmt.order_by(*order).limit(limit + 1), name, descending


def run_page(session: Session, stmt: Select[Any], sort_name: str, limit: int) -> Page:
    rows = [dict(row) for row in session.execute(stmt).mappings()]
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor(last[sort_name], last["id"])
    return Page(rows, next_cursor)


VM_LIST_FIELDS: tuple[str, ...] = (
    "id",
    "name",
    "power_state",
    "cpu_count",
    "memory_mib",
    "guest_os",
    "provider_id",
    "host_id",
    "is_template",
    "instance_uuid",
    "annotation",
    "tags",
    "project_id",
    "created_at",
    "updated_at",
)
VM_EXTRA_FIELDS: tuple[str, ...] = ("disks", "nics")
VM_SORTS: tuple[str, ...] = (
    "name",
    "power_state",
    "cpu_count",
    "memory_mib",
    "created_at",
    "updated_at",
)
DEFAULT_VM_FIELDS: tuple[str, ...] = VM_LIST_FIELDS


@dataclass(frozen=True)
class VMFilter:
    provider_id: str | None = None
    power_state: str | None = None
    name_contains: str | None = None
    host_id: str | None = None
    tag: str | None = None


def name_matches(session: Session, column: Any, text: str) -> ColumnElement[bool]:
    """Case-insensitive substring match, with LIKE's wildcards taken literally.

    SQLite's own LIKE already ignores ASCII case and runs in C; ILIKE would wrap both
    sides in lower() for every row scanned (three times slower on a 50,000-VM scan).
    PostgreSQL's LIKE is case-sensitive, so there ILIKE it is.
    """
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    if session.get_bind().dialect.name == "sqlite":
        return column.like(pattern, escape="\\")  # type: ignore[no-any-return]
    return column.ilike(pattern, escape="\\")  # type: ignore[no-any-return]


def vm_conditions(session: Session, flt: VMFilter) -> list[ColumnElement[bool]]:
    """The WHERE clauses of a VM filter; lists and bulk tasks select VMs the same way."""
    conditions: list[ColumnElement[bool]] = []
    if flt.provider_id:
        conditions.append(VMRow.provider_id == flt.provider_id)
    if flt.power_state:
        conditions.append(VMRow.power_state == flt.power_state)
    if flt.host_id:
        conditions.append(VMRow.host_id == flt.host_id)
    if flt.name_contains:
        conditions.append(name_matches(session, VMRow.name, flt.name_contains))
    if flt.tag:
        # EXISTS probes the (vm_id, tag) key while walking the sort index in order, so a
        # page stops after `limit` matches instead of sorting every tagged VM.
        conditions.append(
            select(VMTagRow.vm_id)
            .where(VMTagRow.vm_id == VMRow.id, VMTagRow.tag == flt.tag)
            .exists()
        )
    return conditions


def list_vms(
    session: Session,
    flt: VMFilter,
    *,
    sort: str = "name",
    cursor: str | None = None,
    limit: int = 50,
    fields: Sequence[str] = DEFAULT_VM_FIELDS,
    scope: Scope = PLATFORM,
) -> Page:
    """A page of the VMs in `scope`. A project's page is one more equality on the
    (project_id, name, id) index: no join on the hot path."""
    unknown = set(fields) - set(VM_LIST_FIELDS) - set(VM_EXTRA_FIELDS)
    if unknown:
        raise InvalidInputError(
            f"unknown field(s): {', '.join(sorted(unknown))}; "
            f"allowed: {', '.join(VM_LIST_FIELDS + VM_EXTRA_FIELDS)}"
        )
    sort_name = sort.removeprefix("-")
    wanted = [name for name in VM_LIST_FIELDS if name in fields or name in {"id", sort_name}]
    columns: list[ColumnClause[Any]] = [getattr(VMRow, name) for name in wanted]
    stmt = select(*columns).where(*vm_conditions(session, flt), *scope.owned(VMRow.project_id))
    stmt, sort_name, _ = paginate(
        stmt, VMRow, sort=sort, allowed_sorts=VM_SORTS, cursor=cursor, limit=limit
    )
    page = run_page(session, stmt, sort_name, limit)
    ids = [item["id"] for item in page.items]
    if "disks" in fields:
        _attach(page.items, "disks", vm_children(session, VMDiskRow, ids))
    if "nics" in fields:
        _attach(page.items, "nics", vm_children(session, VMNicRow, ids))
    keep = set(fields) | {"id"}
    for item in page.items:
        for name in list(item):
            if name not in keep:
                del item[name]
    return page


def _attach(items: list[dict[str, Any]], name: str, by_vm: dict[str, list[Any]]) -> None:
    for item in items:
        item[name] = by_vm.get(item["id"], [])


def vm_children(
    session: Session, child: type[VMDiskRow] | type[VMNicRow], vm_ids: Sequence[str]
) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    if vm_ids:
        columns = [c for c in child.__table__.columns if c.name != "vm_id"]
        stmt = (
            select(child.vm_id, *columns)
            .where(child.vm_id.in_(vm_ids))
            .order_by(child.vm_id, child.position)
        )
        for row in session.execute(stmt).mappings():
            item = dict(row)
            out.setdefault(item.pop("vm_id"), []).append(item)
    return out


def get_vm(session: Session, vm_id: str, scope: Scope = PLATFORM) -> dict[str, Any]:
    """One VM with its disks and NICs; another project's is not found, as a missing one."""
    stmt = select(*[getattr(VMRow, name) for name in VM_LIST_FIELDS]).where(
        VMRow.id == vm_id, *scope.owned(VMRow.project_id)
    )
    row = session.execute(stmt).mappings().first()
    if row is None:
        raise NotFoundError(f"VM {vm_id} not found")
    item = dict(row)
    item["disks"] = vm_children(session, VMDiskRow, [vm_id]).get(vm_id, [])
    item["nics"] = vm_children(session, VMNicRow, [vm_id]).get(vm_id, [])
    return item
