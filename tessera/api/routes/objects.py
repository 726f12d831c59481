"""The pools' hosts, clusters, datastores and networks (read-only): those of the pools the
caller's project is granted (and of its granted networks); every one for an admin.

Unlike the VM list these run in worker threads: a page's figures sum the VMs on its
hosts, which for a page of 1,000 hosts is every VM of the estate, too long to hold the
event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlalchemy.orm import Session

from tessera.api.deps import ScopeDep, SessionDep
from tessera.api.routes.inventory import Cursor, IdFilter, Limit, NameFilter, page_response
from tessera.api.schemas import ClusterPage, DatastorePage, ErrorBody, HostPage, NetworkPage
from tessera.identity.scope import Scope, pool_grants
from tessera.inventory import objects
from tessera.inventory.queries import Page

router = APIRouter(prefix="/v1", tags=["inventory"])

_BAD_INPUT: dict[int | str, dict[str, object]] = {
    422: {"model": ErrorBody, "description": "Invalid filter, sort or cursor."}
}


def _sort(*fields: str) -> object:
    names = "|".join(fields)
    return Query(pattern=rf"^-?({names})$", description="Field, '-' for descending.")


def _page(
    lister: Callable[[Session, objects.ObjectQuery], Page],
    session: Session,
    scope: Scope,
    provider_id: str | None,
    name: str | None,
    sort: str,
    cursor: str | None,
    limit: int,
) -> Response:
    """One page of `lister` within what the caller's grants reach: the four lists differ
    only in their lister and sorts."""
    q = objects.ObjectQuery(
        provider_id=provider_id,
        name_contains=name,
        sort=sort,
        cursor=cursor,
        limit=limit,
        grants=pool_grants(session, scope),
        scope=scope,
    )
    return page_response(lister(session, q))


@router.get("/hosts", response_model=HostPage, responses=_BAD_INPUT)
def list_hosts(
    session: SessionDep,
    scope: ScopeDep,
    provider_id: IdFilter = None,
    name: NameFilter = None,
    sort: Annotated[str, _sort(*objects.HOST_SORTS)] = "name",
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Response:
    """Hosts with their pool, cluster, state, CPU, memory, what their VMs take and how
    many of the caller's VMs run there."""
    return _page(objects.list_hosts, session, scope, provider_id, name, sort, cursor, limit)


@router.get("/clusters", response_model=ClusterPage, responses=_BAD_INPUT)
def list_clusters(
    session: SessionDep,
    scope: ScopeDep,
    provider_id: IdFilter = None,
    name: NameFilter = None,
    sort: Annotated[str, _sort(*objects.NAME_SORT)] = "name",
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Response:
    """Clusters (vSphere) with their hosts' totals."""
    return _page(objects.list_clusters, session, scope, provider_id, name, sort, cursor, limit)


@router.get("/datastores", response_model=DatastorePage, responses=_BAD_INPUT)
def list_datastores(
    session: SessionDep,
    scope: ScopeDep,
    provider_id: IdFilter = None,
    name: NameFilter = None,
    sort: Annotated[str, _sort(*objects.DATASTORE_SORTS)] = "name",
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Response:
    """Datastores (storage pools) with capacity, free and used bytes."""
    return _page(objects.list_datastores, session, scope, provider_id, name, sort, cursor, limit)


@router.get("/networks", response_model=NetworkPage, responses=_BAD_INPUT)
def list_networks(
    session: SessionDep,
    scope: ScopeDep,
    provider_id: IdFilter = None,
    name: NameFilter = None,
    sort: Annotated[str, _sort(*objects.NAME_SORT)] = "name",
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Response:
    """Networks and port groups with kind and VLAN; of a pool with network grants, only
    the granted ones."""
    return _page(objects.list_networks, session, scope, provider_id, name, sort, cursor, limit)
