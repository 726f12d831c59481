"""Adopting VMs in place: the unmanaged VMs (those no project owns), and adopting or
releasing many at once as one task. Platform admins only (the policy table says so);
nothing of this reaches a pool."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from tessera.api.deps import PrincipalDep, RuntimeDep, SessionDep
from tessera.api.routes.inventory import Cursor, IdFilter, Limit, NameFilter, page_response
from tessera.api.routes.tasks import to_public
from tessera.api.schemas import (
    FOLDER_PATTERN,
    AdoptionSelector,
    AdoptPreviewBody,
    AdoptRequestBody,
    BulkPreview,
    ErrorBody,
    ReleasePreviewBody,
    ReleaseRequestBody,
    ReleaseSelector,
    TaskPublic,
    UnmanagedVMPage,
    VMRef,
)
from tessera.domain.inventory import PowerState
from tessera.domain.tasks import TaskKind
from tessera.inventory import adoption
from tessera.inventory.adoption import AdoptionFilter, AdoptionRequest
from tessera.runtime import Runtime

router = APIRouter(prefix="/v1", tags=["adoption"])

_SELECTION_ERRORS: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorBody, "description": "A listed VM (or the project) does not exist."},
    409: {
        "model": ErrorBody,
        "description": "A listed VM is not one the request takes, or the match count is "
        "not `expected_count`.",
    },
}


def _filter(select: AdoptionSelector) -> AdoptionFilter:
    return AdoptionFilter(
        provider_id=select.provider_id,
        cluster_id=select.cluster_id,
        folder=select.folder,
        name_contains=select.name,
        power_state=select.power_state.value if select.power_state else None,
        guest_os=select.guest_os,
        project_id=select.project_id if isinstance(select, ReleaseSelector) else None,
    )


def _preview(rt: Runtime, request: AdoptionRequest) -> BulkPreview:
    matched = adoption.preview(rt, request)
    return BulkPreview(
        count=matched.count, vms=[VMRef(id=vm_id, name=name) for vm_id, name in matched.vms]
    )


@router.get(
    "/vms/unmanaged",
    response_model=UnmanagedVMPage,
    responses={422: {"model": ErrorBody, "description": "Invalid filter, sort or cursor."}},
)
def list_unmanaged_vms(
    session: SessionDep,
    provider_id: IdFilter = None,
    cluster_id: IdFilter = None,
    folder: Annotated[
        str | None, Query(pattern=FOLDER_PATTERN, description="This folder and those below.")
    ] = None,
    name: NameFilter = None,
    power_state: PowerState | None = None,
    guest_os: NameFilter = None,
    sort: Annotated[
        str, Query(pattern=r"^-?[a-z_]{1,32}$", description="Field, '-' for descending.")
    ] = "name",
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Response:
    """The VMs the pools have that no project owns, with their cluster and folder: what
    can be adopted."""
    flt = AdoptionFilter(
        provider_id=provider_id,
        cluster_id=cluster_id,
        folder=folder,
        name_contains=name,
        power_state=power_state.value if power_state else None,
        guest_os=guest_os,
    )
    page = adoption.list_unmanaged(session, flt, sort=sort, cursor=cursor, limit=limit)
    return page_response(page)


@router.post("/vms/adopt/preview", response_model=BulkPreview, responses=_SELECTION_ERRORS)
def preview_adopt(body: AdoptPreviewBody, rt: RuntimeDep) -> BulkPreview:
    """The unmanaged VMs an adoption with this selection would take now; nothing changes."""
    return _preview(
        rt,
        AdoptionRequest(
            kind=TaskKind.VM_ADOPT, flt=_filter(body.select), vm_ids=body.select.vm_ids
        ),
    )


@router.post(
    "/vms/adopt",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TaskPublic,
    responses=_SELECTION_ERRORS,
)
def adopt_vms(body: AdoptRequestBody, rt: RuntimeDep, principal: PrincipalDep) -> TaskPublic:
    """Adopt the selected unmanaged VMs (at most 10,000) into a project as they are: one
    `vm.adopt` task, an item per VM, a `vm.adopted` event each. They count against the
    project's quotas (403 `quota_exceeded` when they would not fit); its members then
    manage them like the VMs they made. Nothing is sent to the pools."""
    request = AdoptionRequest(
        kind=TaskKind.VM_ADOPT,
        flt=_filter(body.select),
        vm_ids=body.select.vm_ids,
        project_id=body.project_id,
        expected_count=body.expected_count,
        requester=principal.user_name,
    )
    return to_public(adoption.submit(rt, request))


@router.post("/vms/release/preview", response_model=BulkPreview, responses=_SELECTION_ERRORS)
def preview_release(body: ReleasePreviewBody, rt: RuntimeDep) -> BulkPreview:
    """The adopted VMs a release with this selection would give back now."""
    return _preview(
        rt,
        AdoptionRequest(
            kind=TaskKind.VM_RELEASE, flt=_filter(body.select), vm_ids=body.select.vm_ids
        ),
    )


@router.post(
    "/vms/release",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TaskPublic,
    responses=_SELECTION_ERRORS,
)
def release_vms(body: ReleaseRequestBody, rt: RuntimeDep, principal: PrincipalDep) -> TaskPublic:
    """Give the selected VMs back to the platform (unmanaged again): one `vm.release`
    task, a `vm.released` event per VM in the project it left. The VMs stay as they are
    in their pools. A VM an unfinished task is changing fails its item (`locked`)."""
    request = AdoptionRequest(
        kind=TaskKind.VM_RELEASE,
        flt=_filter(body.select),
        vm_ids=body.select.vm_ids,
        expected_count=body.expected_count,
        requester=principal.user_name,
    )
    return to_public(adoption.submit(rt, request))
