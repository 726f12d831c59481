"""The dashboard in one call: pools, hosts, VMs, capacity, the latest tasks and events,
of what the caller reaches."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from tessera.api.deps import ScopeDep, SessionDep
from tessera.api.routes.events import to_public as event_public
from tessera.api.routes.tasks import to_public as task_public
from tessera.api.schemas import (
    CapacityPublic,
    HostCounts,
    Overview,
    OverviewPool,
    OverviewZone,
    VMCounts,
)
from tessera.events import queries as events
from tessera.identity.scope import pool_grants
from tessera.inventory import overview
from tessera.tasks import service as tasks

router = APIRouter(prefix="/v1", tags=["overview"])

RECENT = 10


def _capacity(c: overview.Capacity) -> CapacityPublic:
    used_bytes = c.storage_bytes_total - c.storage_bytes_free
    return CapacityPublic(
        vcpus_total=c.vcpus_total,
        vcpus_used=c.vcpus_used,
        vcpus_free=c.vcpus_total - c.vcpus_used,
        memory_mib_total=c.memory_mib_total,
        memory_mib_used=c.memory_mib_used,
        memory_mib_free=c.memory_mib_total - c.memory_mib_used,
        storage_gib_total=round(c.storage_bytes_total / overview.GIB, 2),
        storage_gib_used=round(used_bytes / overview.GIB, 2),
        storage_gib_free=round(c.storage_bytes_free / overview.GIB, 2),
    )


def _hosts(counts: dict[str, int]) -> HostCounts:
    return HostCounts(total=sum(counts.values()), **counts)


def _age(now: datetime, moment: datetime | None) -> float | None:
    if moment is None:
        return None
    return (now - (moment if moment.tzinfo else moment.replace(tzinfo=UTC))).total_seconds()


def _pool(now: datetime, p: overview.PoolFigures) -> OverviewPool:
    return OverviewPool(
        id=p.id,
        name=p.name,
        kind=p.kind,
        region=p.region,
        zone=p.zone,
        zone_id=p.zone_id,
        status=p.status,  # type: ignore[arg-type]
        reachable=p.status == "ok",
        last_sync_at=p.last_sync_at,
        last_sync_ok_at=p.last_sync_ok_at,
        inventory_age_s=_age(now, p.last_sync_ok_at),
        hosts=_hosts(p.hosts),
        vms=p.vms,
        capacity=_capacity(p.capacity),
    )


@router.get("/overview", response_model=Overview)
def show_overview(session: SessionDep, scope: ScopeDep) -> Overview:
    """Pools with reachability and inventory age, hosts by state, VMs by power state,
    capacity used and free per pool, per zone and in all, the 10 newest tasks and events.
    A project sees its own VMs, tasks and events and the pools granted to it."""
    now = datetime.now(UTC)
    figures = overview.figures(session, scope, pool_grants(session, scope))
    recent_tasks, _ = tasks.list_tasks(
        session, state=None, kind=None, cursor=None, limit=RECENT, scope=scope
    )
    recent_events = events.list_events(session, events.EventFilter(), limit=RECENT, scope=scope)
    return Overview(
        generated_at=now,
        pools=[_pool(now, p) for p in figures.pools],
        zones=[
            OverviewZone(
                id=z.id, name=z.name, region=z.region, pools=z.pools, capacity=_capacity(z.capacity)
            )
            for z in figures.zones
        ],
        hosts=_hosts(figures.hosts),
        vms=VMCounts(total=sum(figures.vms.values()), templates=figures.templates, **figures.vms),
        capacity=_capacity(figures.capacity),
        recent_tasks=[task_public(row) for row in recent_tasks],
        recent_events=[event_public(e) for e in recent_events.items],
    )
