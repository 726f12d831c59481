"""Record events in the caller's transaction, so an event exists exactly when the change
it tells of was committed (a rolled-back sync or task step leaves none behind)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy.orm import Session

from tessera.db.bulk import bulk_insert
from tessera.db.rows import EventRow, TaskRow, utcnow
from tessera.domain.events import EventDraft, TaskEvent


def record_many(session: Session, drafts: Iterable[EventDraft]) -> int:
    """Insert the events in one executemany, in the order given (their ids follow it);
    how many. One timestamp for the batch: they happened together."""
    at = utcnow()
    rows: list[dict[str, Any]] = [
        {
            "at": at,
            "kind": draft.kind,
            "actor": draft.actor,
            "object_kind": draft.object_kind,
            "object_id": draft.object_id,
            "object_name": draft.object_name,
            "provider_id": draft.provider_id,
            "task_id": draft.task_id,
            "project_id": draft.project_id,
            "message": draft.message,
            "before": draft.before,
            "after": draft.after,
        }
        for draft in drafts
    ]
    bulk_insert(session, EventRow, rows)
    return len(rows)


def record(session: Session, draft: EventDraft) -> None:
    record_many(session, [draft])


def record_task(
    session: Session, row: TaskRow, kind: TaskEvent, *, before: dict[str, Any] | None = None
) -> None:
    """A transition of the task `row` (as it is now), by its requester, in its project.

    `after` carries the task's state and context, `vm_id` among it; the events of a VM
    also list the events of the tasks on it through that task's `vm_id` (see
    tessera.events.queries), so task events stay about the task (object_kind "task").
    """
    after: dict[str, Any] = {
        "state": row.state,
        "task_kind": row.kind,
        "attempt": row.attempt,
        "vm_id": row.vm_id,
    }
    if row.cancel_requested:
        after["cancel_requested"] = True
    message = ""
    if row.error_code:
        after |= {"error_code": row.error_code, "error_message": row.error_message}
        message = f"{row.error_code}: {row.error_message or ''}"
    record(
        session,
        EventDraft(
            kind=kind.value,
            actor=row.requester,
            object_kind="task",
            object_id=row.id,
            object_name=row.kind,
            provider_id=row.provider_id,
            task_id=row.id,
            project_id=row.project_id,
            message=message,
            before=before,
            after=after,
        ),
    )
