"""Many VMs at once: bulk power, delete and tag as one parent task with an item per VM;
and the tags of one VM."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from tessera.api.deps import PrincipalDep, RuntimeDep, ScopeDep, SessionDep
from tessera.api.routes.tasks import to_public
from tessera.api.schemas import (
    BulkPowerAction,
    BulkPreview,
    BulkPreviewBody,
    BulkRequestBody,
    BulkTagAction,
    ErrorBody,
    TagChange,
    TaskError,
    TaskItem,
    TaskItemPage,
    TaskPublic,
    VMRef,
    VMSelector,
    VMTags,
)
from tessera.db.rows import TaskItemRow
from tessera.domain.tasks import ItemState, TaskKind
from tessera.identity.scope import Scope
from tessera.inventory import queries, tags
from tessera.tasks import bulk

router = APIRouter(prefix="/v1", tags=["bulk"])


def _request(
    select: VMSelector, kind: TaskKind, requester: str, scope: Scope, **extra: object
) -> bulk.BulkRequest:
    """The service's request: the selection only ever matches the caller's VMs."""
    return bulk.BulkRequest(
        kind=kind,
        vm_ids=select.vm_ids,
        flt=queries.VMFilter(
            provider_id=select.provider_id,
            power_state=select.power_state.value if select.power_state else None,
            name_contains=select.name,
            host_id=select.host_id,
            tag=select.tag,
        ),
        requester=requester,
        scope=scope,
        **extra,  # type: ignore[arg-type]
    )


@router.post(
    "/vms/bulk/preview",
    response_model=BulkPreview,
    responses={
        404: {"model": ErrorBody, "description": "A listed VM does not exist."},
    },
)
def preview_bulk(
    body: BulkPreviewBody, rt: RuntimeDep, principal: PrincipalDep, scope: ScopeDep
) -> BulkPreview:
    """The VMs a bulk request with this selection would act on now; nothing is changed."""
    request = _request(body.select, TaskKind.VM_BULK_POWER, principal.user_name, scope)
    matched = bulk.preview(rt, request)
    return BulkPreview(
        count=matched.count, vms=[VMRef(id=vm_id, name=name) for vm_id, name in matched.vms]
    )


@router.post(
    "/vms/bulk",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TaskPublic,
    responses={
        404: {"model": ErrorBody, "description": "A listed VM does not exist."},
        409: {"model": ErrorBody, "description": "The match count is not `expected_count`."},
    },
)
def submit_bulk(
    body: BulkRequestBody, rt: RuntimeDep, principal: PrincipalDep, scope: ScopeDep
) -> TaskPublic:
    """Power, delete or tag every selected VM (at most 10,000). The VMs are fixed now; each
    gets an item with its own outcome (`GET /v1/tasks/{id}/items`)."""
    action = body.action
    if isinstance(action, BulkPowerAction):
        request = _request(
            body.select,
            TaskKind.VM_BULK_POWER,
            principal.user_name,
            scope,
            power_action=action.action,
            graceful_timeout_s=action.graceful_timeout_s,
            expected_count=body.expected_count,
        )
    elif isinstance(action, BulkTagAction):
        request = _request(
            body.select,
            TaskKind.VM_BULK_TAG,
            principal.user_name,
            scope,
            add_tags=action.add,
            remove_tags=action.remove,
            expected_count=body.expected_count,
        )
    else:
        request = _request(
            body.select,
            TaskKind.VM_BULK_DELETE,
            principal.user_name,
            scope,
            expected_count=body.expected_count,
        )
    return to_public(bulk.submit(rt, request))


def _item(row: TaskItemRow) -> TaskItem:
    error = None
    if row.error_code:
        error = TaskError(code=row.error_code, message=row.error_message or "")
    return TaskItem(
        vm_id=row.vm_id,
        vm_name=row.vm_name,
        position=row.position,
        state=ItemState(row.state).value,
        child_task_id=row.child_task_id,
        error=error,
        updated_at=row.updated_at,
    )


@router.get(
    "/tasks/{task_id}/items",
    response_model=TaskItemPage,
    responses={404: {"model": ErrorBody, "description": "No such task."}},
)
def list_task_items(
    task_id: str,
    session: SessionDep,
    scope: ScopeDep,
    state: ItemState | None = None,
    offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=queries.MAX_LIMIT)] = 100,
) -> TaskItemPage:
    """A bulk task's VMs in order, each with its outcome and child task."""
    rows, total = bulk.list_items(
        session, task_id, state=state, offset=offset, limit=limit, scope=scope
    )
    return TaskItemPage(items=[_item(row) for row in rows], total=total)


@router.patch(
    "/vms/{vm_id}/tags",
    response_model=VMTags,
    responses={404: {"model": ErrorBody, "description": "No such VM."}},
)
def change_vm_tags(
    vm_id: str, body: TagChange, rt: RuntimeDep, principal: PrincipalDep, scope: ScopeDep
) -> VMTags:
    """Add and remove tags of one VM. Tags are Tessera's labels (never written to the pool),
    so this changes nothing on a hypervisor and answers at once."""
    return VMTags(
        vm_id=vm_id,
        tags=tags.update_vm_tags(
            rt, vm_id, add=body.add, remove=body.remove, actor=principal.user_name, scope=scope
        ),
    )
