"""Read side of the pools' objects: hosts, clusters, datastores and networks, as an
operator's tables show them (pool and cluster names, state, totals, VM counts).

A page is one keyset query (tessera.inventory.queries' paging) joined to the pool's name,
then grouped queries for the figures of that page's rows only: its cost follows its rows
(and for hosts and clusters, the VMs on them), not the size of the estate. Capacity
figures (vCPUs and memory used) count every VM, as the scheduler does; VM counts count
only the VMs the caller's scope reaches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, select, true
from sqlalchemy.orm import Session

from tessera.db.rows import ClusterRow, DatastoreRow, HostRow, NetworkRow, ProviderRow, VMRow
from tessera.identity.scope import ALL_POOLS, PLATFORM, PoolGrants, Scope
from tessera.inventory.queries import Page, name_matches, paginate, run_page

HOST_SORTS = ("name", "cpu_cores", "memory_mib")
DATASTORE_SORTS = ("name", "capacity_bytes", "free_bytes")
NAME_SORT = ("name",)


@dataclass(frozen=True)
class ObjectQuery:
    """One page of a pool object list: filters, order and what the caller reaches."""

    provider_id: str | None = None
    name_contains: str | None = None
    sort: str = "name"
    cursor: str | None = None
    limit: int = 50
    grants: PoolGrants = ALL_POOLS
    scope: Scope = PLATFORM


def host_state(connected: bool, in_maintenance: bool) -> str:
    """One word for a host: a disconnected host's maintenance flag is stale, so
    disconnected wins."""
    if not connected:
        return "disconnected"
    return "maintenance" if in_maintenance else "connected"


def _page(
    session: Session,
    table: Any,
    stmt: Select[Any],
    q: ObjectQuery,
    sorts: Sequence[str],
) -> Page:
    stmt = stmt.join(ProviderRow, ProviderRow.id == table.provider_id).where(
        *q.grants.visible(table)
    )
    if q.provider_id:
        stmt = stmt.where(table.provider_id == q.provider_id)
    if q.name_contains:
        stmt = stmt.where(name_matches(session, table.name, q.name_contains))
    stmt, sort_name, _ = paginate(
        stmt, table, sort=q.sort, allowed_sorts=sorts, cursor=q.cursor, limit=q.limit
    )
    return run_page(session, stmt, sort_name, q.limit)


def _public_columns(table: Any) -> list[Any]:
    """A table's columns but the pool's own keys, which never leave the service layer."""
    return [c for c in table.__table__.columns if c.name not in {"fingerprint", "native_id"}]


def _select(table: Any, *extra: Any) -> Select[Any]:
    """A list's row: the object's public columns, its pool's name, then `extra`."""
    return select(*_public_columns(table), ProviderRow.name.label("provider_name"), *extra)


def scope_vms(scope: Scope) -> ColumnElement[bool]:
    """True of the VMs `scope` reaches (a condition for conditional sums)."""
    owned = scope.owned(VMRow.project_id)
    return and_(*owned) if owned else true()


def _vm_figures(
    session: Session, key: Any, ids: Sequence[str], scope: Scope, *joins: Any
) -> dict[str, tuple[int, int, int]]:
    """Per `key` value among `ids`: (vCPUs used, memory used, the scope's VM count)."""
    if not ids:
        return {}
    allocated = VMRow.is_template.is_(False)
    stmt = select(
        key,
        func.sum(case((allocated, VMRow.cpu_count), else_=0)),
        func.sum(case((allocated, VMRow.memory_mib), else_=0)),
        func.sum(case((scope_vms(scope), 1), else_=0)),
    ).select_from(VMRow)
    for join in joins:
        stmt = stmt.join(*join)
    stmt = stmt.where(key.in_(ids)).group_by(key)
    return {
        row[0]: (int(row[1] or 0), int(row[2] or 0), int(row[3] or 0))
        for row in session.execute(stmt)
    }


def _hosts_per_pool(session: Session, provider_ids: set[str]) -> dict[str, int]:
    if not provider_ids:
        return {}
    stmt = (
        select(HostRow.provider_id, func.count())
        .where(HostRow.provider_id.in_(sorted(provider_ids)))
        .group_by(HostRow.provider_id)
    )
    return {pid: int(n) for pid, n in session.execute(stmt)}


def list_hosts(session: Session, q: ObjectQuery) -> Page:
    stmt = _select(HostRow, ClusterRow.name.label("cluster_name")).outerjoin(
        ClusterRow, ClusterRow.id == HostRow.cluster_id
    )
    page = _page(session, HostRow, stmt, q, HOST_SORTS)
    figures = _vm_figures(session, VMRow.host_id, [h["id"] for h in page.items], q.scope)
    for host in page.items:
        vcpus, memory, count = figures.get(host["id"], (0, 0, 0))
        host |= {
            "state": host_state(host["connected"], host["in_maintenance"]),
            "cpu_ghz": round(host["cpu_cores"] * host["cpu_mhz"] / 1000, 2),
            "vcpus_used": vcpus,
            "memory_mib_used": memory,
            "vm_count": count,
        }
    return page


def list_clusters(session: Session, q: ObjectQuery) -> Page:
    page = _page(session, ClusterRow, _select(ClusterRow), q, NAME_SORT)
    ids = [c["id"] for c in page.items]
    hosts: dict[str, tuple[int, int, float, int]] = {}
    if ids:
        for cluster_id, count, cores, mhz, memory in session.execute(
            select(
                HostRow.cluster_id,
                func.count(),
                func.sum(HostRow.cpu_cores),
                func.sum(HostRow.cpu_cores * HostRow.cpu_mhz),
                func.sum(HostRow.memory_mib),
            )
            .where(HostRow.cluster_id.in_(ids))
            .group_by(HostRow.cluster_id)
        ):
            ghz = (mhz or 0) / 1000
            hosts[str(cluster_id)] = (int(count), int(cores or 0), ghz, int(memory or 0))
    figures = _vm_figures(
        session, HostRow.cluster_id, ids, q.scope, (HostRow, HostRow.id == VMRow.host_id)
    )
    for cluster in page.items:
        count, cores, ghz, memory = hosts.get(cluster["id"], (0, 0, 0.0, 0))
        vcpus, memory_used, vms = figures.get(cluster["id"], (0, 0, 0))
        cluster |= {
            "host_count": count,
            "cpu_cores": cores,
            "cpu_ghz": round(ghz, 2),
            "memory_mib": memory,
            "vcpus_used": vcpus,
            "memory_mib_used": memory_used,
            "vm_count": vms,
        }
    return page


def list_datastores(session: Session, q: ObjectQuery) -> Page:
    page = _page(session, DatastoreRow, _select(DatastoreRow), q, DATASTORE_SORTS)
    hosts = _hosts_per_pool(session, {d["provider_id"] for d in page.items})
    for datastore in page.items:
        datastore |= {
            "used_bytes": datastore["capacity_bytes"] - datastore["free_bytes"],
            "host_count": hosts.get(datastore["provider_id"], 0),
        }
    return page


def list_networks(session: Session, q: ObjectQuery) -> Page:
    page = _page(session, NetworkRow, _select(NetworkRow), q, NAME_SORT)
    hosts = _hosts_per_pool(session, {n["provider_id"] for n in page.items})
    for network in page.items:
        network["host_count"] = hosts.get(network["provider_id"], 0)
    return page
