"""VM changes: each answers 202 with the durable task that carries it out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response, status

from tessera.api.deps import PrincipalDep, RuntimeDep, ScopeDep, SessionDep
from tessera.api.routes.placement import decision_response
from tessera.api.routes.tasks import to_public
from tessera.api.schemas import (
    DiskCreate,
    DiskGrowRequest,
    ErrorBody,
    NicCreate,
    PlacementDecision,
    QuotaExceededBody,
    SnapshotCreate,
    SnapshotPublic,
    TaskPublic,
    VMCloneRequest,
    VMCreate,
    VMMigrateRequest,
    VMPowerRequest,
    VMRenameRequest,
    VMResizeRequest,
)
from tessera.domain.tasks import TaskKind
from tessera.scheduler.model import Strategy
from tessera.tasks import service

router = APIRouter(prefix="/v1/vms", tags=["vm actions"])


# NIC and disk ids are INTEGER columns: past 2**31 - 1, PostgreSQL fails the query
# (and past 2**63 - 1, SQLite), where a client deserves a 422.
DeviceId = Annotated[int, Path(ge=1, le=2**31 - 1)]

_ERRORS: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorBody, "description": "No such VM, provider or inventory object."},
    409: {
        "model": ErrorBody,
        "description": "The VM is locked by another task (named); a NIC's segment is not"
        " realised on the VM's pool, or its port is bound already.",
    },
    422: {
        "model": ErrorBody,
        "description": "Invalid input, or the provider lacks the capability.",
    },
}
_QUOTA: dict[int | str, dict[str, object]] = {
    403: {
        "model": QuotaExceededBody,
        "description": "The caller's role does not allow it, or it would take the project "
        "past a quota (`quota_exceeded`, naming the `quota`, its `limit`, what is `in_use` "
        "with what unfinished tasks reserve, and what was `requested`).",
    },
}


def _create_request(body: VMCreate, requester: str) -> service.VMCreateRequest:
    """The service's request; which project owns the VM is settled there (_owner)."""
    return service.VMCreateRequest(
        provider_id=body.provider_id,
        name=body.name,
        cpus=body.cpus,
        memory_mib=body.memory_mib,
        disks=[service.DiskRequest(d.size_gib, d.datastore_id) for d in body.disks],
        nics=[service.NicRequest(n.network_id, n.mac, n.port_id) for n in body.nics],
        host_id=body.host_id,
        cluster_id=body.cluster_id,
        datastore_id=body.datastore_id,
        power_on=body.power_on,
        zone=body.zone,
        group=body.group,
        strategy=Strategy(body.strategy),
        requester=requester,
        project_id=body.project_id,
    )


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TaskPublic,
    responses={
        **_ERRORS,
        **_QUOTA,
        409: {
            "model": ErrorBody,
            "description": "No host or cluster can take the VM now (`no_valid_placement`: "
            "the message says why, `rejected_by` counts the candidates each filter turned "
            "down); or the name is locked by another create; or a NIC's segment is not "
            "realised on the VM's pool, or its port is bound already.",
        },
        422: {
            "model": ErrorBody,
            "description": "Invalid input (an unknown zone, group or network included), or "
            "the pool given lacks a capability.",
        },
    },
)
def create_vm(
    body: VMCreate, rt: RuntimeDep, principal: PrincipalDep, scope: ScopeDep
) -> TaskPublic:
    """Without host_id or cluster_id, the scheduler chooses where (as the dry run would)
    and the task claims that capacity; its `result.placement` says where and why. Only
    on the pools and networks granted to the caller's project, which owns the VM."""
    request = _create_request(body, principal.user_name)
    return to_public(service.submit_create(rt, request, scope=scope))


@router.post(
    "/dry-run",
    response_model=PlacementDecision,
    responses={
        404: {"model": ErrorBody, "description": "No such provider or datastore."},
        422: {
            "model": ErrorBody,
            "description": "Invalid input, a host or cluster given, or the pool given lacks "
            "a capability.",
        },
    },
)
def create_vm_dry_run(
    body: VMCreate, session: SessionDep, rt: RuntimeDep, principal: PrincipalDep, scope: ScopeDep
) -> Response:
    """Where `POST /v1/vms` with this body would put the VM now, the candidates ranked,
    and why each other one cannot take it; nothing is created or claimed."""
    request = _create_request(body, principal.user_name)
    return decision_response(service.dry_run_create(session, rt.settings, request, scope=scope))


@router.delete(
    "/{vm_id}", status_code=status.HTTP_202_ACCEPTED, response_model=TaskPublic, responses=_ERRORS
)
def delete_vm(vm_id: str, rt: RuntimeDep, principal: PrincipalDep, scope: ScopeDep) -> TaskPublic:
    return to_public(service.submit_delete(rt, vm_id, requester=principal.user_name, scope=scope))


@router.post(
    "/{vm_id}/power",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TaskPublic,
    responses=_ERRORS,
)
def power_vm(
    vm_id: str, body: VMPowerRequest, rt: RuntimeDep, principal: PrincipalDep, scope: ScopeDep
) -> TaskPublic:
    task = service.submit_power(
        rt,
        vm_id,
        body.action,
        graceful_timeout_s=body.graceful_timeout_s,
        requester=principal.user_name,
        scope=scope,
    )
    return to_public(task)


@router.post(
    "/{vm_id}/rename",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TaskPublic,
    responses=_ERRORS,
)
def rename_vm(
    vm_id: str, body: VMRenameRequest, rt: RuntimeDep, principal: PrincipalDep, scope: ScopeDep
) -> TaskPublic:
    task = service.submit_rename(
        rt,
        vm_id,
        body.name,
        stop_if_running=body.stop_if_running,
        requester=principal.user_name,
        scope=scope,
    )
    return to_public(task)


def _action(
    path: str, method: str = "POST", *, quota: bool = False
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A VM change answering 202 with its task; with `quota`, one that takes more of its
    project's quotas (a 403 `quota_exceeded` when it would go past one)."""
    return router.api_route(
        path,
        methods=[method],
        status_code=status.HTTP_202_ACCEPTED,
        response_model=TaskPublic,
        responses={**_ERRORS, **_QUOTA} if quota else _ERRORS,
    )


@_action("/{vm_id}/resize", quota=True)
def resize_vm(
    vm_id: str, body: VMResizeRequest, rt: RuntimeDep, principal: PrincipalDep, scope: ScopeDep
) -> TaskPublic:
    task = service.submit_resize(
        rt,
        vm_id,
        cpu_count=body.cpu_count,
        memory_mib=body.memory_mib,
        requester=principal.user_name,
        scope=scope,
    )
    return to_public(task)


@_action("/{vm_id}/nics")
def add_nic(
    vm_id: str, body: NicCreate, rt: RuntimeDep, principal: PrincipalDep, scope: ScopeDep
) -> TaskPublic:
    nic = service.NicRequest(body.network_id, body.mac, body.port_id)
    task = service.submit_add_nic(rt, vm_id, nic, requester=principal.user_name, scope=scope)
    return to_public(task)


@_action("/{vm_id}/nics/{nic_id}", "DELETE")
def remove_nic(
    vm_id: str, nic_id: DeviceId, rt: RuntimeDep, principal: PrincipalDep, scope: ScopeDep
) -> TaskPublic:
    task = service.submit_remove_nic(rt, vm_id, nic_id, requester=principal.user_name, scope=scope)
    return to_public(task)


@_action("/{vm_id}/disks", quota=True)
def add_disk(
    vm_id: str, body: DiskCreate, rt: RuntimeDep, principal: PrincipalDep, scope: ScopeDep
) -> TaskPublic:
    disk = service.DiskRequest(body.size_gib, body.datastore_id)
    task = service.submit_add_disk(rt, vm_id, disk, requester=principal.user_name, scope=scope)
    return to_public(task)


@_action("/{vm_id}/disks/{disk_id}/grow", quota=True)
def grow_disk(
    vm_id: str,
    disk_id: DeviceId,
    body: DiskGrowRequest,
    rt: RuntimeDep,
    principal: PrincipalDep,
    scope: ScopeDep,
) -> TaskPublic:
    task = service.submit_grow_disk(
        rt, vm_id, disk_id, body.size_gib, requester=principal.user_name, scope=scope
    )
    return to_public(task)


@_action("/{vm_id}/disks/{disk_id}", "DELETE")
def remove_disk(
    vm_id: str, disk_id: DeviceId, rt: RuntimeDep, principal: PrincipalDep, scope: ScopeDep
) -> TaskPublic:
    task = service.submit_remove_disk(
        rt, vm_id, disk_id, requester=principal.user_name, scope=scope
    )
    return to_public(task)


@_action("/{vm_id}/snapshots", quota=True)
def create_snapshot(
    vm_id: str, body: SnapshotCreate, rt: RuntimeDep, principal: PrincipalDep, scope: ScopeDep
) -> TaskPublic:
    kind = TaskKind.VM_SNAPSHOT_CREATE
    return to_public(
        service.submit_snapshot(
            rt, vm_id, kind, body.name, requester=principal.user_name, scope=scope
        )
    )


@router.get(
    "/{vm_id}/snapshots",
    response_model=list[SnapshotPublic],
    responses={
        **_ERRORS,
        503: {"model": ErrorBody, "description": "The pool is unreachable (Retry-After)."},
    },
)
def list_snapshots(vm_id: str, rt: RuntimeDep, scope: ScopeDep) -> list[SnapshotPublic]:
    """Read from the provider each time: snapshots are not part of the inventory."""
    return [
        SnapshotPublic(
            id=s.native_id,
            name=s.name,
            description=s.description,
            created_at=s.created_at,
            parent_id=s.parent_native_id,
            is_current=s.is_current,
        )
        for s in service.list_snapshots(rt, vm_id, scope=scope)
    ]


@_action("/{vm_id}/snapshots/{name}/revert")
def revert_snapshot(
    vm_id: str, name: str, rt: RuntimeDep, principal: PrincipalDep, scope: ScopeDep
) -> TaskPublic:
    kind = TaskKind.VM_SNAPSHOT_REVERT
    task = service.submit_snapshot(
        rt, vm_id, kind, name, requester=principal.user_name, scope=scope
    )
    return to_public(task)


@_action("/{vm_id}/snapshots/{name}", "DELETE")
def delete_snapshot(
    vm_id: str, name: str, rt: RuntimeDep, principal: PrincipalDep, scope: ScopeDep
) -> TaskPublic:
    kind = TaskKind.VM_SNAPSHOT_DELETE
    task = service.submit_snapshot(
        rt, vm_id, kind, name, requester=principal.user_name, scope=scope
    )
    return to_public(task)


@_action("/{vm_id}/clone", quota=True)
def clone_vm(
    vm_id: str, body: VMCloneRequest, rt: RuntimeDep, principal: PrincipalDep, scope: ScopeDep
) -> TaskPublic:
    task = service.submit_clone(
        rt,
        vm_id,
        body.name,
        host_id=body.host_id,
        datastore_id=body.datastore_id,
        requester=principal.user_name,
        scope=scope,
    )
    return to_public(task)


@_action("/{vm_id}/template")
def convert_to_template(
    vm_id: str, rt: RuntimeDep, principal: PrincipalDep, scope: ScopeDep
) -> TaskPublic:
    task = service.submit_template(rt, vm_id, True, requester=principal.user_name, scope=scope)
    return to_public(task)


@_action("/{vm_id}/template", "DELETE")
def convert_to_vm(
    vm_id: str, rt: RuntimeDep, principal: PrincipalDep, scope: ScopeDep
) -> TaskPublic:
    task = service.submit_template(rt, vm_id, False, requester=principal.user_name, scope=scope)
    return to_public(task)


@_action("/{vm_id}/migrate")
def migrate_vm(
    vm_id: str, body: VMMigrateRequest, rt: RuntimeDep, principal: PrincipalDep, scope: ScopeDep
) -> TaskPublic:
    task = service.submit_migrate(
        rt, vm_id, body.host_id, requester=principal.user_name, scope=scope
    )
    return to_public(task)
