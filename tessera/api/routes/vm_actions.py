"""VM changes: each answers 202 with the durable task that carries it out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Response, status

from tessera.api.deps import PrincipalDep, RuntimeDep, SessionDep
from tessera.api.routes.placement import decision_response
from tessera.api.routes.tasks import to_public
from tessera.api.schemas import (
    DiskCreate,
    DiskGrowRequest,
    ErrorBody,
    NicCreate,
    PlacementDecision,
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


_ERRORS: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorBody, "description": "No such VM, provider or inventory object."},
    409: {"model": ErrorBody, "description": "The VM is locked by another task (named)."},
    422: {
        "model": ErrorBody,
        "description": "Invalid input, or the provider lacks the capability.",
    },
}


def _create_request(body: VMCreate, requester: str) -> service.VMCreateRequest:
    return service.VMCreateRequest(
        provider_id=body.provider_id,
        name=body.name,
        cpus=body.cpus,
        memory_mib=body.memory_mib,
        disks=[service.DiskRequest(d.size_gib, d.datastore_id) for d in body.disks],
        nics=[service.NicRequest(n.network_id, n.mac) for n in body.nics],
        host_id=body.host_id,
        cluster_id=body.cluster_id,
        datastore_id=body.datastore_id,
        power_on=body.power_on,
        zone=body.zone,
        group=body.group,
        strategy=Strategy(body.strategy),
        requester=requester,
    )


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TaskPublic,
    responses={
        **_ERRORS,
        409: {
            "model": ErrorBody,
            "description": "No host or cluster can take the VM now (`no_valid_placement`: "
            "the message says why, `rejected_by` counts the candidates each filter turned "
            "down); or the name is locked by another create.",
        },
        422: {
            "model": ErrorBody,
            "description": "Invalid input (an unknown zone, group or network included), or "
            "the pool given lacks a capability.",
        },
    },
)
def create_vm(body: VMCreate, rt: RuntimeDep, principal: PrincipalDep) -> TaskPublic:
    """Without host_id or cluster_id, the scheduler chooses where (as the dry run would)
    and the task claims that capacity; its `result.placement` says where and why."""
    return to_public(service.submit_create(rt, _create_request(body, principal.user_name)))


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
    body: VMCreate, session: SessionDep, rt: RuntimeDep, principal: PrincipalDep
) -> Response:
    """Where `POST /v1/vms` with this body would put the VM now, the candidates ranked,
    and why each other one cannot take it; nothing is created or claimed."""
    return decision_response(
        service.dry_run_create(session, rt.settings, _create_request(body, principal.user_name))
    )


@router.delete(
    "/{vm_id}", status_code=status.HTTP_202_ACCEPTED, response_model=TaskPublic, responses=_ERRORS
)
def delete_vm(vm_id: str, rt: RuntimeDep, principal: PrincipalDep) -> TaskPublic:
    return to_public(service.submit_delete(rt, vm_id, requester=principal.user_name))


@router.post(
    "/{vm_id}/power",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TaskPublic,
    responses=_ERRORS,
)
def power_vm(
    vm_id: str, body: VMPowerRequest, rt: RuntimeDep, principal: PrincipalDep
) -> TaskPublic:
    task = service.submit_power(
        rt,
        vm_id,
        body.action,
        graceful_timeout_s=body.graceful_timeout_s,
        requester=principal.user_name,
    )
    return to_public(task)


@router.post(
    "/{vm_id}/rename",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TaskPublic,
    responses=_ERRORS,
)
def rename_vm(
    vm_id: str, body: VMRenameRequest, rt: RuntimeDep, principal: PrincipalDep
) -> TaskPublic:
    task = service.submit_rename(
        rt, vm_id, body.name, stop_if_running=body.stop_if_running, requester=principal.user_name
    )
    return to_public(task)


def _action(path: str, method: str = "POST") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A VM change answering 202 with its task."""
    return router.api_route(
        path,
        methods=[method],
        status_code=status.HTTP_202_ACCEPTED,
        response_model=TaskPublic,
        responses=_ERRORS,
    )


@_action("/{vm_id}/resize")
def resize_vm(
    vm_id: str, body: VMResizeRequest, rt: RuntimeDep, principal: PrincipalDep
) -> TaskPublic:
    task = service.submit_resize(
        rt,
        vm_id,
        cpu_count=body.cpu_count,
        memory_mib=body.memory_mib,
        requester=principal.user_name,
    )
    return to_public(task)


@_action("/{vm_id}/nics")
def add_nic(vm_id: str, body: NicCreate, rt: RuntimeDep, principal: PrincipalDep) -> TaskPublic:
    nic = service.NicRequest(body.network_id, body.mac)
    return to_public(service.submit_add_nic(rt, vm_id, nic, requester=principal.user_name))


@_action("/{vm_id}/nics/{nic_id}", "DELETE")
def remove_nic(vm_id: str, nic_id: int, rt: RuntimeDep, principal: PrincipalDep) -> TaskPublic:
    return to_public(service.submit_remove_nic(rt, vm_id, nic_id, requester=principal.user_name))


@_action("/{vm_id}/disks")
def add_disk(vm_id: str, body: DiskCreate, rt: RuntimeDep, principal: PrincipalDep) -> TaskPublic:
    disk = service.DiskRequest(body.size_gib, body.datastore_id)
    return to_public(service.submit_add_disk(rt, vm_id, disk, requester=principal.user_name))


@_action("/{vm_id}/disks/{disk_id}/grow")
def grow_disk(
    vm_id: str, disk_id: int, body: DiskGrowRequest, rt: RuntimeDep, principal: PrincipalDep
) -> TaskPublic:
    task = service.submit_grow_disk(
        rt, vm_id, disk_id, body.size_gib, requester=principal.user_name
    )
    return to_public(task)


@_action("/{vm_id}/disks/{disk_id}", "DELETE")
def remove_disk(vm_id: str, disk_id: int, rt: RuntimeDep, principal: PrincipalDep) -> TaskPublic:
    return to_public(service.submit_remove_disk(rt, vm_id, disk_id, requester=principal.user_name))


@_action("/{vm_id}/snapshots")
def create_snapshot(
    vm_id: str, body: SnapshotCreate, rt: RuntimeDep, principal: PrincipalDep
) -> TaskPublic:
    kind = TaskKind.VM_SNAPSHOT_CREATE
    return to_public(
        service.submit_snapshot(rt, vm_id, kind, body.name, requester=principal.user_name)
    )


@router.get(
    "/{vm_id}/snapshots",
    response_model=list[SnapshotPublic],
    responses={
        **_ERRORS,
        503: {"model": ErrorBody, "description": "The pool is unreachable (Retry-After)."},
    },
)
def list_snapshots(vm_id: str, rt: RuntimeDep) -> list[SnapshotPublic]:
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
        for s in service.list_snapshots(rt, vm_id)
    ]


@_action("/{vm_id}/snapshots/{name}/revert")
def revert_snapshot(vm_id: str, name: str, rt: RuntimeDep, principal: PrincipalDep) -> TaskPublic:
    kind = TaskKind.VM_SNAPSHOT_REVERT
    return to_public(service.submit_snapshot(rt, vm_id, kind, name, requester=principal.user_name))


@_action("/{vm_id}/snapshots/{name}", "DELETE")
def delete_snapshot(vm_id: str, name: str, rt: RuntimeDep, principal: PrincipalDep) -> TaskPublic:
    kind = TaskKind.VM_SNAPSHOT_DELETE
    return to_public(service.submit_snapshot(rt, vm_id, kind, name, requester=principal.user_name))


@_action("/{vm_id}/clone")
def clone_vm(
    vm_id: str, body: VMCloneRequest, rt: RuntimeDep, principal: PrincipalDep
) -> TaskPublic:
    task = service.submit_clone(
        rt,
        vm_id,
        body.name,
        host_id=body.host_id,
        datastore_id=body.datastore_id,
        requester=principal.user_name,
    )
    return to_public(task)


@_action("/{vm_id}/template")
def convert_to_template(vm_id: str, rt: RuntimeDep, principal: PrincipalDep) -> TaskPublic:
    return to_public(service.submit_template(rt, vm_id, True, requester=principal.user_name))


@_action("/{vm_id}/template", "DELETE")
def convert_to_vm(vm_id: str, rt: RuntimeDep, principal: PrincipalDep) -> TaskPublic:
    return to_public(service.submit_template(rt, vm_id, False, requester=principal.user_name))


@_action("/{vm_id}/migrate")
def migrate_vm(
    vm_id: str, body: VMMigrateRequest, rt: RuntimeDep, principal: PrincipalDep
) -> TaskPublic:
    return to_public(service.submit_migrate(rt, vm_id, body.host_id, requester=principal.user_name))
