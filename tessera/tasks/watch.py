"""Following tasks: which of the tasks a scope reaches changed since the last look.

Polled rather than pushed, so any API process follows the tasks every worker runs, with
nothing but the database between them. A look reads a few columns through indexes: the
unfinished tasks (by state), the tasks created lately (by creation time, re-reading a
margin for commits that land late) and those unfinished at the previous look (by id),
so a task that ended between two looks is seen ending. Whole rows are read only for the
tasks whose state, progress, attempt, cancel request or update time moved; a task that
passed through several states between two looks shows its latest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from tessera.db.rows import TaskRow, utcnow
from tessera.domain.tasks import TaskState
from tessera.identity.scope import Scope

UNFINISHED = (TaskState.QUEUED.value, TaskState.RUNNING.value)
# Tasks created this long before the previous look are read again: their rows may have
# been committed after it (a slow transaction, another machine's clock).
CREATED_MARGIN = timedelta(seconds=10)

_MARK_COLUMNS = (
    TaskRow.id,
    TaskRow.state,
    TaskRow.progress,
    TaskRow.attempt,
    TaskRow.cancel_requested,
    TaskRow.updated_at,
)
Mark = tuple[Any, ...]


@dataclass(frozen=True)
class TaskWatch:
    """Which tasks to follow: those of `scope`, narrowed to one task or a bulk task's
    children."""

    scope: Scope
    task_id: str | None = None
    parent_id: str | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        found = self.scope.owned(TaskRow.project_id)
        if self.task_id is not None:
            found.append(TaskRow.id == self.task_id)
        if self.parent_id is not None:
            found.append(TaskRow.parent_id == self.parent_id)
        return found


@dataclass
class TaskFeed:
    """One follower's memory of what the watched tasks looked like at its last look."""

    watch: TaskWatch
    _marks: dict[str, Mark] = field(default_factory=dict)
    _unfinished: set[str] = field(default_factory=set)
    _last_look: datetime | None = None

    def start(self, session: Session, limit: int) -> list[TaskRow]:
        """The current state of the newest `limit` matching tasks, oldest first; what
        every other one looks like now is noted, so only changes follow."""
        stmt = (
            select(TaskRow)
            .where(*self.watch.conditions())
            .order_by(TaskRow.created_at.desc(), TaskRow.id.desc())
            .limit(limit)
        )
        rows = list(session.scalars(stmt))
        self._look(session)
        self._marks.update((row.id, _mark_of(row)) for row in rows)
        return rows[::-1]

    def changes(self, session: Session) -> list[TaskRow]:
        """The tasks that changed since the previous look, in the order they changed."""
        before = self._marks
        changed = [tid for tid, mark in self._look(session).items() if before.get(tid) != mark]
        if not changed:
            return []
        rows = session.scalars(select(TaskRow).where(TaskRow.id.in_(changed)))
        return sorted(rows, key=lambda row: (row.updated_at, row.created_at, row.id))

    def _look(self, session: Session) -> dict[str, Mark]:
        now, conditions = utcnow(), self.watch.conditions()
        marks = select(*_MARK_COLUMNS).where(*conditions)
        if self.watch.task_id is not None:
            looks = [marks]
        else:
            since = (self._last_look or now) - CREATED_MARGIN
            looks = [
                marks.where(TaskRow.state.in_(UNFINISHED)),
                marks.where(TaskRow.created_at >= since),
            ]
            if self._unfinished:
                looks.append(marks.where(TaskRow.id.in_(sorted(self._unfinished))))
        found: dict[str, Mark] = {}
        for stmt in looks:
            found.update((row[0], tuple(row)) for row in session.execute(stmt))
        self._last_look, self._marks = now, found
        self._unfinished = {tid for tid, mark in found.items() if mark[1] in UNFINISHED}
        return found


def _mark_of(row: TaskRow) -> Mark:
    return tuple(getattr(row, column.key) for column in _MARK_COLUMNS)
