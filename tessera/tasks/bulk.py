"""Bulk tasks: power, delete or tag every VM a filter matches, as one parent task.

The VMs are fixed when the request is accepted (one task item each, in name order), so
what runs is what the caller saw in the list. Power and delete give each VM a child task
of its own (its own lock, steps and retries, in its pool's queue partition); tags are
Tessera's, so the parent writes them itself. The parent ends succeeded when every item
did, failed when any failed (its items say which and why), cancelled when asked to stop.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Select, func, insert, select, update
from sqlalchemy.orm import Session

from tessera.db.rows import TaskItemRow, TaskRow, VMRow, utcnow
from tessera.domain.events import TaskEvent
from tessera.domain.tasks import ItemState, PowerAction, TaskKind, TaskState
from tessera.errors import ConflictError, InvalidInputError, NotFoundError, TesseraError
from tessera.events.recorder import record_task
from tessera.identity.scope import PLATFORM, Scope
from tessera.inventory import queries
from tessera.inventory.tags import change_tags
from tessera.runtime import Runtime
from tessera.tasks import service
from tessera.tasks.engine import QueuedTask

MAX_VMS = 10_000
PREVIEW_LIMIT = 1_000
# Items written or updated per transaction.
_CHUNK = 500
_T = TypeVar("_T")
_CHILDREN = uuid.UUID("0b7c1d52-8f0e-4a55-9d3c-2f57c4c1a0e1")


@dataclass(frozen=True)
class BulkRequest:
    """What to do to which VMs: `vm_ids` when given, else every VM `flt` matches, of
    the VMs in `scope` only (another project's listed VM is not found). The task belongs
    to the scope's project. `expected_count`, when given, must equal the number matched
    (a guard for deletes: the caller confirms the count it previewed)."""

    kind: TaskKind
    flt: queries.VMFilter = field(default_factory=queries.VMFilter)
    vm_ids: Sequence[str] = ()
    power_action: PowerAction | None = None
    graceful_timeout_s: float = 0.0
    add_tags: Sequence[str] = ()
    remove_tags: Sequence[str] = ()
    expected_count: int | None = None
    requester: str = "admin"
    scope: Scope = PLATFORM


@dataclass(frozen=True)
class Matched:
    count: int
    vms: list[tuple[str, str]]  # (id, name), at most PREVIEW_LIMIT


@dataclass(frozen=True)
class Tally:
    """Where a bulk task's items stand."""

    total: int
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    cancel_requested: bool = False

    @property
    def remaining(self) -> int:
        return self.total - self.succeeded - self.failed - self.cancelled

    def as_result(self) -> dict[str, int]:
        return {
            "total": self.total,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "cancelled": self.cancelled,
        }


def _matching(session: Session, req: BulkRequest, limit: int) -> list[tuple[str, str, str]]:
    """(id, name, provider id) of the VMs the request is about, by name then id."""
    stmt = (
        select(VMRow.id, VMRow.name, VMRow.provider_id)
        .where(*req.scope.owned(VMRow.project_id))
        .order_by(VMRow.name, VMRow.id)
    )
    if req.vm_ids:
        wanted = list(dict.fromkeys(req.vm_ids))
        rows = [tuple(r) for r in session.execute(stmt.where(VMRow.id.in_(wanted)))]
        missing = sorted(set(wanted) - {r[0] for r in rows})
        if missing:
            raise NotFoundError(f"VM(s) not found: {', '.join(missing[:10])}")
        return rows  # type: ignore[return-value]
    found = session.execute(stmt.where(*_conditions(session, req)).limit(limit))
    return [tuple(r) for r in found]  # type: ignore[misc]


def preview(rt: Runtime, req: BulkRequest) -> Matched:
    """How many VMs (and the first of them) a bulk request would act on now."""
    with rt.sessions() as session:
        if req.vm_ids:
            rows = _matching(session, req, MAX_VMS + 1)
            count = len(rows)
        else:
            count = (
                session.scalar(
                    select(func.count())
                    .select_from(VMRow)
                    .where(*_conditions(session, req), *req.scope.owned(VMRow.project_id))
                )
                or 0
            )
            rows = _matching(session, req, PREVIEW_LIMIT)
    return Matched(count, [(vm_id, name) for vm_id, name, _ in rows[:PREVIEW_LIMIT]])


def _conditions(session: Session, req: BulkRequest) -> list[Any]:
    conditions = queries.vm_conditions(session, req.flt)
    if not conditions:
        raise InvalidInputError("give vm_ids or at least one filter; a bulk task never means all")
    return conditions


def _params(req: BulkRequest) -> dict[str, Any]:
    if req.kind is TaskKind.VM_BULK_POWER:
        if req.power_action is None:
            raise InvalidInputError("a bulk power task needs an action")
        return {"action": req.power_action.value, "graceful_timeout_s": req.graceful_timeout_s}
    if req.kind is TaskKind.VM_BULK_TAG:
        if not req.add_tags and not req.remove_tags:
            raise InvalidInputError("give tags to add, to remove, or both")
        clash = sorted(set(req.add_tags) & set(req.remove_tags))
        if clash:
            raise InvalidInputError(f"tag(s) both added and removed: {', '.join(clash)}")
        return {"add": sorted(set(req.add_tags)), "remove": sorted(set(req.remove_tags))}
    if req.kind is TaskKind.VM_BULK_DELETE:
        return {}
    raise InvalidInputError(f"{req.kind} is not a bulk task")


def submit(rt: Runtime, req: BulkRequest) -> TaskRow:
    """Fix the VMs, save the parent with one item per VM (one transaction) and queue it."""
    params = _params(req)
    with rt.sessions() as session:
        rows = _matching(session, req, MAX_VMS + 1)
    if not rows:
        raise InvalidInputError("the filter matches no VM")
    if len(rows) > MAX_VMS:
        raise InvalidInputError(f"the filter matches more than {MAX_VMS} VMs; narrow it")
    if req.expected_count is not None and req.expected_count != len(rows):
        raise ConflictError(
            f"the filter now matches {len(rows)} VMs, not the {req.expected_count} expected"
        )
    params["filter"] = {
        "vm_ids": list(req.vm_ids),
        "provider_id": req.flt.provider_id,
        "power_state": req.flt.power_state,
        "name": req.flt.name_contains,
        "host_id": req.flt.host_id,
        "tag": req.flt.tag,
    }
    row = service.new_task(
        req.kind, params, req.requester, provider_id=None, project_id=req.scope.project_id
    )
    row.result = dict(Tally(len(rows)).as_result())
    now, task_id = row.created_at, row.id
    with rt.sessions.begin() as session:
        session.add(row)
        session.flush()
        record_task(session, row, TaskEvent.QUEUED)
        items = [
            {
                "task_id": task_id,
                "vm_id": vm_id,
                "position": position,
                "vm_name": name,
                "state": ItemState.PENDING.value,
                "updated_at": now,
            }
            for position, (vm_id, name, _) in enumerate(rows)
        ]
        for start in range(0, len(items), _CHUNK):
            session.execute(insert(TaskItemRow), items[start : start + _CHUNK])
    service.enqueue(row)
    return row


def list_items(
    session: Session,
    task_id: str,
    *,
    state: ItemState | None,
    offset: int,
    limit: int,
    scope: Scope = PLATFORM,
) -> tuple[list[TaskItemRow], int]:
    """A page of a bulk task's items in their order, and how many match in all; the
    task must be in `scope`."""
    service.get_task(session, task_id, scope)
    stmt = select(TaskItemRow).where(TaskItemRow.task_id == task_id)
    count = select(func.count()).select_from(TaskItemRow).where(TaskItemRow.task_id == task_id)
    if state is not None:
        stmt = stmt.where(TaskItemRow.state == state.value)
        count = count.where(TaskItemRow.state == state.value)
    page = session.scalars(stmt.order_by(TaskItemRow.position).offset(offset).limit(limit))
    return list(page), session.scalar(count) or 0


# --- the parent's steps (run by tessera.tasks.workflows) -------------------------------


def child_id(parent: TaskRow, vm_id: str) -> str:
    """The child task of `vm_id` in this attempt of the parent: the same on every re-run."""
    return str(uuid.uuid5(_CHILDREN, f"{parent.id}:{parent.attempt}:{vm_id}"))


def fan_out(rt: Runtime, task_id: str) -> list[QueuedTask]:
    """Give every pending item its child task; an item whose VM cannot take one (gone,
    locked by another task, capability missing) fails on its own. Stops handing out
    children as soon as the parent is asked to cancel. The children to queue: all of
    this attempt's, also those a crashed earlier run of this step made."""
    with rt.sessions() as session:
        parent = service.get_task(session, task_id)
        session.expunge(parent)
        pending = list(
            session.scalars(
                select(TaskItemRow.vm_id)
                .where(
                    TaskItemRow.task_id == task_id,
                    TaskItemRow.state == ItemState.PENDING.value,
                    TaskItemRow.child_task_id.is_(None),
                )
                .order_by(TaskItemRow.position)
            )
        )
    kind = TaskKind(parent.kind)
    for vm_id in pending:
        if _cancel_requested(rt, task_id):
            break
        child = service.ChildOf(
            parent_id=task_id, task_id=child_id(parent, vm_id), project_id=parent.project_id
        )
        with rt.sessions() as session:
            made = session.get(TaskRow, child.task_id) is not None
        error: TesseraError | None = None
        if not made:
            try:
                _submit_child(rt, kind, parent, vm_id, child)
            except TesseraError as exc:
                error = exc
        with rt.sessions.begin() as session:
            item = session.get(TaskItemRow, (task_id, vm_id))
            if item is None:
                continue
            if error is None:
                item.child_task_id, item.state = child.task_id, ItemState.RUNNING.value
            else:
                item.state = ItemState.FAILED.value
                item.error_code, item.error_message = error.code, error.message
            item.updated_at = utcnow()
    with rt.sessions() as session:
        children = session.scalars(
            select(TaskRow)
            .join(TaskItemRow, TaskItemRow.child_task_id == TaskRow.id)
            .where(
                TaskItemRow.task_id == task_id,
                TaskItemRow.state == ItemState.RUNNING.value,
            )
            .order_by(TaskItemRow.position)
        )
        return [QueuedTask.of(child) for child in children]


def _submit_child(
    rt: Runtime, kind: TaskKind, parent: TaskRow, vm_id: str, child: service.ChildOf
) -> None:
    if kind is TaskKind.VM_BULK_DELETE:
        service.submit_delete(rt, vm_id, requester=parent.requester, child=child)
        return
    params: dict[str, Any] = dict(parent.params)
    service.submit_power(
        rt,
        vm_id,
        PowerAction(params["action"]),
        graceful_timeout_s=float(params.get("graceful_timeout_s") or 0.0),
        requester=parent.requester,
        child=child,
    )


def _cancel_requested(rt: Runtime, task_id: str) -> bool:
    with rt.sessions() as session:
        return bool(session.scalar(select(TaskRow.cancel_requested).where(TaskRow.id == task_id)))


def poll(rt: Runtime, task_id: str) -> Tally:
    """Copy the children's outcomes onto the items, pass a cancel on to the children
    (and cancel the items that never got one), and record the tally and progress."""
    with rt.sessions.begin() as session:
        parent = service.get_task(session, task_id)
        running = session.execute(
            select(TaskItemRow, TaskRow.state, TaskRow.error_code, TaskRow.error_message)
            .join(TaskRow, TaskRow.id == TaskItemRow.child_task_id)
            .where(
                TaskItemRow.task_id == task_id,
                TaskItemRow.state == ItemState.RUNNING.value,
            )
        ).all()
        now = utcnow()
        for item, state, code, message in running:
            if TaskState(state).finished:
                item.state = ItemState(state).value
                item.error_code, item.error_message = code, message
                item.updated_at = now
            elif parent.cancel_requested:
                child = session.get(TaskRow, item.child_task_id)
                if child is not None and not child.cancel_requested:
                    child.cancel_requested, child.updated_at = True, now
                    record_task(session, child, TaskEvent.CANCEL_REQUESTED)
        if parent.cancel_requested:
            session.execute(
                update(TaskItemRow)
                .where(
                    TaskItemRow.task_id == task_id,
                    TaskItemRow.state == ItemState.PENDING.value,
                )
                .values(state=ItemState.CANCELLED.value, updated_at=now)
            )
        tally = _tally(session, task_id)
        record_tally(parent, tally, now)
    return tally


def next_pending(stmt: Select[_T], task_id: str, limit: int) -> Select[_T]:
    """`stmt` narrowed to a task's next `limit` pending items, in order: the chunk a step
    works on in one transaction (a re-run after a crash starts after the committed ones)."""
    return (
        stmt.where(
            TaskItemRow.task_id == task_id,
            TaskItemRow.state == ItemState.PENDING.value,
        )
        .order_by(TaskItemRow.position)
        .limit(limit)
    )


def count_items(session: Session, task_id: str, cancel_requested: bool) -> Tally:
    """Where a task's items stand, counted in the database: one tally for every task
    with items (bulk actions, adoption)."""
    counts = dict(
        session.execute(
            select(TaskItemRow.state, func.count())
            .where(TaskItemRow.task_id == task_id)
            .group_by(TaskItemRow.state)
        ).all()
    )
    return Tally(
        total=sum(counts.values()),
        succeeded=counts.get(ItemState.SUCCEEDED.value, 0),
        failed=counts.get(ItemState.FAILED.value, 0),
        cancelled=counts.get(ItemState.CANCELLED.value, 0),
        cancel_requested=cancel_requested,
    )


def record_tally(task: TaskRow, tally: Tally, now: Any) -> None:
    """Keep the tally in the task's result and its share done as progress, so a task's
    readers see how far its items are without counting them."""
    task.result = {**(task.result or {}), **tally.as_result()}
    task.progress = (tally.total - tally.remaining) * 100 // max(tally.total, 1)
    task.updated_at = now


def _tally(session: Session, task_id: str) -> Tally:
    cancel = session.scalar(select(TaskRow.cancel_requested).where(TaskRow.id == task_id))
    return count_items(session, task_id, bool(cancel))


def apply_tags(rt: Runtime, task_id: str) -> Tally:
    """Tag the pending items' VMs, a chunk per transaction (a re-run finds the done ones
    done: adding a tag twice changes nothing); a VM gone since fails its item."""
    while True:
        with rt.sessions.begin() as session:
            parent = service.get_task(session, task_id)
            items = list(session.scalars(next_pending(select(TaskItemRow), task_id, _CHUNK)))
            if not items:
                break
            now = utcnow()
            if parent.cancel_requested:
                for item in items:
                    item.state, item.updated_at = ItemState.CANCELLED.value, now
                continue
            vms = {
                vm.id: vm
                for vm in session.scalars(
                    select(VMRow).where(VMRow.id.in_([item.vm_id for item in items]))
                )
            }
            params: dict[str, Any] = dict(parent.params)
            add, remove = list(params["add"]), list(params["remove"])
            for item in items:
                vm = vms.get(item.vm_id)
                if vm is None:
                    item.state = ItemState.FAILED.value
                    item.error_code = NotFoundError.code
                    item.error_message = f"VM {item.vm_id} is no longer in the inventory"
                else:
                    change_tags(
                        session,
                        vm,
                        add=add,
                        remove=remove,
                        actor=parent.requester,
                        task_id=task_id,
                    )
                    item.state = ItemState.SUCCEEDED.value
                item.updated_at = now
    with rt.sessions.begin() as session:
        tally = _tally(session, task_id)
        parent = service.get_task(session, task_id)
        parent.result = {**(parent.result or {}), **tally.as_result()}
    return tally
