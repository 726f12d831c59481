"""Reading events: newest first, filtered, keyset-paged by id (tessera.db.paging).

On PostgreSQL two transactions may commit their events in the other order of their ids:
a list is a faithful history, but a reader following new events should re-read a short
overlap rather than trust "everything above the last id I saw".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from tessera.db.paging import as_utc, newest_first, time_window
from tessera.db.rows import EventRow, TaskRow
from tessera.domain.events import EVENT_KINDS, Event, kinds_matching
from tessera.errors import InvalidInputError
from tessera.identity.scope import PLATFORM, Scope


@dataclass(frozen=True)
class EventFilter:
    """Every given field narrows the list.

    `kind` is one kind or a prefix ending in "." (`vm.`, `task.`). `vm_id` selects the
    events of one VM: those about it (added, changed, removed) and those of the tasks run
    on it (tasks.vm_id), even after the VM itself is gone. `since` is inclusive, `until`
    exclusive; a time without a zone is UTC.
    """

    kind: str | None = None
    object_id: str | None = None
    vm_id: str | None = None
    provider_id: str | None = None
    task_id: str | None = None
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class EventPage:
    items: list[Event]
    next_cursor: str | None


def _conditions(flt: EventFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if flt.kind is not None:
        kinds = kinds_matching(flt.kind)
        if kinds is None:
            raise InvalidInputError(
                f"unknown event kind {flt.kind!r}: give one of {', '.join(sorted(EVENT_KINDS))}"
                ", or a prefix such as 'vm.' or 'task.'"
            )
        conditions.append(EventRow.kind.in_(sorted(kinds)))
    if flt.object_id is not None:
        conditions.append(EventRow.object_id == flt.object_id)
    if flt.vm_id is not None:
        tasks_on_vm = select(TaskRow.id).where(TaskRow.vm_id == flt.vm_id)
        conditions.append(or_(EventRow.object_id == flt.vm_id, EventRow.task_id.in_(tasks_on_vm)))
    if flt.provider_id is not None:
        conditions.append(EventRow.provider_id == flt.provider_id)
    if flt.task_id is not None:
        conditions.append(EventRow.task_id == flt.task_id)
    if flt.actor is not None:
        conditions.append(EventRow.actor == flt.actor)
    return conditions + time_window(EventRow.at, flt.since, flt.until)


def to_event(row: EventRow) -> Event:
    return Event(
        id=row.id,
        at=as_utc(row.at),
        kind=row.kind,
        actor=row.actor,
        object_kind=row.object_kind,
        object_id=row.object_id,
        object_name=row.object_name,
        provider_id=row.provider_id,
        task_id=row.task_id,
        project_id=row.project_id,
        message=row.message,
        before=row.before,
        after=row.after,
    )


def list_events(
    session: Session,
    flt: EventFilter,
    *,
    cursor: str | None = None,
    limit: int = 50,
    scope: Scope = PLATFORM,
) -> EventPage:
    """Newest first; `next_cursor` is None on the last page. Only the events of the
    scope's project (a platform event, such as a sync's, belongs to none)."""
    stmt = select(EventRow).where(*_conditions(flt), *scope.owned(EventRow.project_id))
    rows, next_cursor = newest_first(session, stmt, EventRow.id, cursor=cursor, limit=limit)
    return EventPage([to_event(row) for row in rows], next_cursor)


def has_events_of(session: Session, object_id: str, scope: Scope = PLATFORM) -> bool:
    """Whether anything in reach was ever recorded about `object_id` (a VM gone since,
    say)."""
    stmt = (
        select(EventRow.id)
        .where(EventRow.object_id == object_id, *scope.owned(EventRow.project_id))
        .limit(1)
    )
    return session.scalar(stmt) is not None
