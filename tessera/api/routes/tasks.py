"""Durable tasks: list, show, cancel, retry."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from tessera.api.deps import RuntimeDep, ScopeDep, SessionDep
from tessera.api.schemas import (
    ErrorBody,
    QuotaExceededBody,
    TaskError,
    TaskPage,
    TaskPublic,
    TaskStep,
)
from tessera.db.rows import TaskRow
from tessera.domain.tasks import TaskKind, TaskState
from tessera.inventory import queries
from tessera.tasks import service

router = APIRouter(prefix="/v1/tasks", tags=["tasks"])

_ERRORS: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorBody, "description": "No such task."},
}


def to_public(row: TaskRow) -> TaskPublic:
    """The API's view of a task row; `params` (native ids) stays inside."""
    error = None
    if row.error_code:
        error = TaskError(code=row.error_code, message=row.error_message or "")
    return TaskPublic(
        id=row.id,
        kind=TaskKind(row.kind),
        state=TaskState(row.state),
        progress=row.progress,
        steps=[TaskStep.model_validate(step) for step in row.steps],
        error=error,
        result=row.result,
        requester=row.requester,
        provider_id=row.provider_id,
        vm_id=row.vm_id,
        cancel_requested=row.cancel_requested,
        attempt=row.attempt,
        executor_id=row.executor_id,
        parent_id=row.parent_id,
        project_id=row.project_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


@router.get(
    "",
    response_model=TaskPage,
    responses={422: {"model": ErrorBody, "description": "Invalid filter or cursor."}},
)
def list_tasks(
    session: SessionDep,
    scope: ScopeDep,
    state: TaskState | None = None,
    kind: TaskKind | None = None,
    parent_id: Annotated[
        str | None, Query(min_length=1, max_length=64, description="Children of a bulk task.")
    ] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=queries.MAX_LIMIT)] = 50,
) -> TaskPage:
    """Newest first; a project's users see their project's tasks only."""
    rows, next_cursor = service.list_tasks(
        session,
        state=state,
        kind=kind,
        parent_id=parent_id,
        cursor=cursor,
        limit=limit,
        scope=scope,
    )
    return TaskPage(items=[to_public(row) for row in rows], next_cursor=next_cursor)


@router.get("/{task_id}", response_model=TaskPublic, responses=_ERRORS)
def show_task(task_id: str, session: SessionDep, scope: ScopeDep) -> TaskPublic:
    return to_public(service.get_task(session, task_id, scope))


@router.post(
    "/{task_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TaskPublic,
    responses={**_ERRORS, 409: {"model": ErrorBody, "description": "Already finished."}},
)
def cancel_task(task_id: str, rt: RuntimeDep, scope: ScopeDep) -> TaskPublic:
    """Ask the task to stop before its next step; a create removes the VM it made."""
    return to_public(service.cancel_task(rt, task_id, scope=scope))


@router.post(
    "/{task_id}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TaskPublic,
    responses={
        **_ERRORS,
        403: {
            "model": QuotaExceededBody,
            "description": "Role refused, or the retry would take the project past a quota "
            "(`quota_exceeded`): a retried create, resize, disk or snapshot reserves again.",
        },
        409: {"model": ErrorBody, "description": "Not failed/cancelled, or the VM is locked."},
    },
)
def retry_task(task_id: str, rt: RuntimeDep, scope: ScopeDep) -> TaskPublic:
    """Run a failed or cancelled task again; finished steps are found, not redone."""
    return to_public(service.retry_task(rt, task_id, scope=scope))
