"""VM changes: each answers 202 with the durable task that carries it out."""

from __future__ import annotations

from fastapi import APIRouter, status

from tessera.api.deps import RuntimeDep
from tessera.api.routes.tasks import to_public
from tessera.api.schemas import ErrorBody, TaskPublic, VMCreate, VMPowerRequest, VMRenameRequest
from tessera.tasks import service

router = APIRouter(prefix="/v1/vms", tags=["vm actions"])

# The only principal today is the platform admin's token.
REQUESTER = "admin"

_ERRORS: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorBody, "description": "No such VM, provider or inventory object."},
    409: {"model": ErrorBody, "description": "The VM is locked by another task (named)."},
    422: {
        "model": ErrorBody,
        "description": "Invalid input, or the provider lacks the capability.",
    },
}


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=TaskPublic, responses=_ERRORS)
def create_vm(body: VMCreate, rt: RuntimeDep) -> TaskPublic:
    request = service.VMCreateRequest(
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
        requester=REQUESTER,
    )
    return to_public(service.submit_create(rt, request))


@router.delete(
    "/{vm_id}", status_code=status.HTTP_202_ACCEPTED, response_model=TaskPublic, responses=_ERRORS
)
def delete_vm(vm_id: str, rt: RuntimeDep) -> TaskPublic:
    return to_public(service.submit_delete(rt, vm_id, requester=REQUESTER))


@router.post(
    "/{vm_id}/power",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TaskPublic,
    responses=_ERRORS,
)
def power_vm(vm_id: str, body: VMPowerRequest, rt: RuntimeDep) -> TaskPublic:
    task = service.submit_power(
        rt, vm_id, body.action, graceful_timeout_s=body.graceful_timeout_s, requester=REQUESTER
    )
    return to_public(task)


@router.post(
    "/{vm_id}/rename",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TaskPublic,
    responses=_ERRORS,
)
def rename_vm(vm_id: str, body: VMRenameRequest, rt: RuntimeDep) -> TaskPublic:
    task = service.submit_rename(
        rt, vm_id, body.name, stop_if_running=body.stop_if_running, requester=REQUESTER
    )
    return to_public(task)
