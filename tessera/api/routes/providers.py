"""Pools: register with a connection test, list, show, delete, sync."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from tessera.api.deps import PrincipalDep, RuntimeDep, ScopeDep, SessionDep
from tessera.api.routes.tasks import to_public as task_public
from tessera.api.schemas import (
    ErrorBody,
    ProviderCreate,
    ProviderDatastoreMounts,
    ProviderKind,
    ProviderNetworkSettings,
    ProviderPublic,
    TaskPublic,
)
from tessera.db.rows import ProviderRow, RegionRow, ZoneRow
from tessera.identity.scope import pool_grants
from tessera.inventory import datastore_mounts, pools
from tessera.network import poolsettings
from tessera.providers import capability_matrix, driver_class
from tessera.tasks import service

router = APIRouter(prefix="/v1/providers", tags=["providers"])
kinds_router = APIRouter(prefix="/v1/provider-kinds", tags=["providers"])

_ERRORS: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorBody, "description": "No such provider."},
}


def to_public(session: Session, row: ProviderRow, *, full: bool = True) -> ProviderPublic:
    """The pool as shown to a platform admin (`full`), or the reduced view of a project's
    users: without how the platform reaches it (see ProviderPublic)."""
    region, zone = session.execute(
        select(RegionRow.name, ZoneRow.name)
        .join(ZoneRow, ZoneRow.region_id == RegionRow.id)
        .where(ZoneRow.id == row.zone_id)
    ).one()
    age = None
    if row.last_sync_ok_at is not None:
        ok_at = row.last_sync_ok_at
        if ok_at.tzinfo is None:
            ok_at = ok_at.replace(tzinfo=UTC)
        age = (datetime.now(UTC) - ok_at).total_seconds()
    return ProviderPublic(
        id=row.id,
        name=row.name,
        kind=row.kind,
        url=row.url if full else None,
        username=row.username if full else None,
        verify_tls=row.verify_tls if full else None,
        region=region,
        zone=zone,
        zone_id=row.zone_id,
        status=row.status,  # type: ignore[arg-type]
        status_message=row.status_message if full else None,
        product=row.product if full else None,
        version=row.version if full else None,
        capabilities=driver_class(row.kind).capabilities.as_dict(),
        created_at=row.created_at,
        last_sync_at=row.last_sync_at,
        last_sync_ok_at=row.last_sync_ok_at,
        last_sync_seconds=row.last_sync_seconds,
        inventory_age_s=age,
        network_settings=ProviderNetworkSettings(**row.network_settings)
        if full and row.network_settings
        else None,
        datastore_mounts=row.datastore_mounts if full and row.datastore_mounts else None,
    )


@router.get("", response_model=list[ProviderPublic])
def list_providers(session: SessionDep, scope: ScopeDep) -> list[ProviderPublic]:
    """Every pool for a platform admin; for a project, the pools granted to it."""
    grants = pool_grants(session, scope)
    full = scope.unrestricted
    return [to_public(session, row, full=full) for row in pools.list_providers(session, grants)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ProviderPublic,
    responses={
        409: {"model": ErrorBody, "description": "Name or endpoint already registered."},
        422: {"model": ErrorBody, "description": "Invalid input or failed connection test."},
    },
)
def add_provider(body: ProviderCreate, rt: RuntimeDep, request: Request) -> ProviderPublic:
    spec = pools.ProviderSpec(
        name=body.name,
        kind=body.kind,
        url=body.url,
        username=body.username,
        password=body.password.get_secret_value() if body.password else None,
        verify_tls=body.verify_tls,
        region=body.region,
        zone=body.zone,
    )
    row = pools.add_provider(rt, spec)
    watchers = getattr(request.app.state, "watchers", None)
    if watchers is not None:
        watchers.start(row.id)
    with rt.sessions() as session:
        return to_public(session, pools.get_provider(session, row.id))


@router.get("/{provider_id}", response_model=ProviderPublic, responses=_ERRORS)
def show_provider(provider_id: str, session: SessionDep, scope: ScopeDep) -> ProviderPublic:
    row = pools.get_provider(session, provider_id, pool_grants(session, scope))
    return to_public(session, row, full=scope.unrestricted)


@router.delete("/{provider_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_ERRORS)
def delete_provider(provider_id: str, rt: RuntimeDep, request: Request) -> Response:
    watchers = getattr(request.app.state, "watchers", None)
    if watchers is not None:
        watchers.stop(provider_id)
    pools.delete_provider(rt, provider_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put(
    "/{provider_id}/network",
    response_model=ProviderPublic,
    responses={
        **_ERRORS,
        422: {"model": ErrorBody, "description": "A bad setting, or a pool that takes none."},
    },
)
def set_provider_network(
    provider_id: str, body: ProviderNetworkSettings, rt: RuntimeDep
) -> ProviderPublic:
    """Where Tessera reaches a KVM pool's Open vSwitch (`ovsdb`), and its VXLAN endpoint
    (`netns`, `vxlan_local_ip`, `vxlan_group`); the whole set is replaced."""
    settings = poolsettings.parse(body.model_dump(exclude_none=True))
    poolsettings.store(rt, provider_id, settings)
    with rt.sessions() as session:
        return to_public(session, pools.get_provider(session, provider_id))


@router.put(
    "/{provider_id}/datastore-mounts",
    response_model=ProviderPublic,
    responses={
        **_ERRORS,
        422: {"model": ErrorBody, "description": "A bad name or path, or a pool that takes none."},
    },
)
def set_provider_datastore_mounts(
    provider_id: str, body: ProviderDatastoreMounts, rt: RuntimeDep
) -> ProviderPublic:
    """Where this host mounts a vSphere pool's datastores (an absolute existing folder
    each, stored resolved): cold migrations read those disks there instead of over
    HTTPS. The whole set is replaced; `{"mounts": {}}` clears it."""
    datastore_mounts.store(rt, provider_id, body.mounts)
    with rt.sessions() as session:
        return to_public(session, pools.get_provider(session, provider_id))


@router.post(
    "/{provider_id}/sync",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TaskPublic,
    responses={
        **_ERRORS,
        409: {"model": ErrorBody, "description": "A sync of this pool is already queued."},
    },
)
def sync_provider(provider_id: str, rt: RuntimeDep, principal: PrincipalDep) -> TaskPublic:
    """Read the pool in full now, as a task; its result counts what was added, changed,
    removed. An unreachable pool fails the task and is marked unreachable."""
    return task_public(service.submit_sync(rt, provider_id, requester=principal.user_name))


@kinds_router.get("", response_model=list[ProviderKind])
async def list_provider_kinds() -> list[ProviderKind]:
    """The kinds of pool Tessera can manage and what each can do (its capability flags)."""
    return [ProviderKind(kind=k, capabilities=c) for k, c in capability_matrix().items()]
