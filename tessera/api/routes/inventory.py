"""The inventory's VMs (read-only), and which project owns a VM; the pools' other
objects are tessera.api.routes.objects.

The handlers are async and query on the event loop: each query is bounded (an indexed
keyset page of at most 1,000 rows, about a millisecond at 50 per page), and skipping the
worker-thread hop is what lets one process serve several hundred pages a second.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Response

from tessera.api.deps import PrincipalDep, RuntimeDep, ScopeDep, SessionDep
from tessera.api.schemas import ErrorBody, VMDetail, VMPage, VMProjectAssign
from tessera.domain.inventory import PowerState
from tessera.inventory import ownership, queries

router = APIRouter(prefix="/v1", tags=["inventory"])

Limit = Annotated[int, Query(ge=1, le=queries.MAX_LIMIT, description="Page size.")]
Cursor = Annotated[
    str | None, Query(max_length=512, description="next_cursor of the previous page.")
]
NameFilter = Annotated[
    str | None, Query(min_length=1, max_length=256, description="Name contains (case-insensitive).")
]
IdFilter = Annotated[str | None, Query(min_length=1, max_length=64)]


def _json(payload: Any) -> Response:
    """Serialise straight to bytes: list pages are the hottest path of the API."""
    return Response(
        orjson.dumps(payload, option=orjson.OPT_NAIVE_UTC), media_type="application/json"
    )


def page_response(page: queries.Page) -> Response:
    return _json({"items": page.items, "next_cursor": page.next_cursor})


@router.get(
    "/vms",
    response_model=VMPage,
    responses={422: {"model": ErrorBody, "description": "Invalid filter, sort or cursor."}},
)
async def list_vms(
    session: SessionDep,
    scope: ScopeDep,
    provider_id: IdFilter = None,
    power_state: PowerState | None = None,
    name: NameFilter = None,
    host_id: IdFilter = None,
    tag: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    sort: Annotated[
        str, Query(pattern=r"^-?[a-z_]{1,32}$", description="Field, '-' for descending.")
    ] = "name",
    cursor: Cursor = None,
    limit: Limit = 50,
    fields: Annotated[
        str | None,
        Query(
            pattern=r"^[a-z_]+(,[a-z_]+)*$",
            max_length=512,
            description="Comma-separated fields to return (id always).",
        ),
    ] = None,
) -> Response:
    page = queries.list_vms(
        session,
        queries.VMFilter(
            provider_id=provider_id,
            power_state=power_state.value if power_state else None,
            name_contains=name,
            host_id=host_id,
            tag=tag,
        ),
        sort=sort,
        cursor=cursor,
        limit=limit,
        fields=fields.split(",") if fields else queries.DEFAULT_VM_FIELDS,
        scope=scope,
    )
    return page_response(page)


@router.get(
    "/vms/{vm_id}",
    response_model=VMDetail,
    responses={404: {"model": ErrorBody, "description": "No such VM."}},
)
async def show_vm(vm_id: str, session: SessionDep, scope: ScopeDep) -> Response:
    return _json(queries.get_vm(session, vm_id, scope))


@router.put(
    "/vms/{vm_id}/project",
    response_model=VMDetail,
    responses={404: {"model": ErrorBody, "description": "No such VM or project."}},
)
def adopt_vm(
    vm_id: str, body: VMProjectAssign, rt: RuntimeDep, principal: PrincipalDep
) -> Response:
    """Give a VM to a project (adopt one a sync discovered, or move one), or back to the
    platform with null: the project's users then see and manage it. Nothing on the pool
    changes."""
    ownership.assign_project(rt, vm_id, body.project_id, actor=principal.user_name)
    with rt.sessions() as session:
        return _json(queries.get_vm(session, vm_id))
