"""The dashboard's figures: pools and their reachability, hosts by state, VMs by power
state, and capacity per pool and per availability zone, for what a scope reaches.

Five queries whatever the estate's size, the database aggregating (Python folds a row
per pool, or per pool and host state). Capacity counts every VM on a pool's hosts, as the
scheduler does (tessera.scheduler.inventory): room is shared by the projects a pool is
granted to. VM counts are the scope's VMs only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.orm import Session

from tessera.db.rows import DatastoreRow, HostRow, ProviderRow, RegionRow, VMRow, ZoneRow
from tessera.domain.inventory import PowerState
from tessera.identity.scope import PoolGrants, Scope
from tessera.inventory.objects import host_state, scope_vms

GIB = 1 << 30
HOST_STATES = ("connected", "maintenance", "disconnected")


@dataclass
class Capacity:
    """Compute from hosts against the VMs on them; storage from datastores."""

    vcpus_total: int = 0
    vcpus_used: int = 0
    memory_mib_total: int = 0
    memory_mib_used: int = 0
    storage_bytes_total: int = 0
    storage_bytes_free: int = 0

    def add(self, other: Capacity) -> None:
        self.vcpus_total += other.vcpus_total
        self.vcpus_used += other.vcpus_used
        self.memory_mib_total += other.memory_mib_total
        self.memory_mib_used += other.memory_mib_used
        self.storage_bytes_total += other.storage_bytes_total
        self.storage_bytes_free += other.storage_bytes_free


@dataclass
class PoolFigures:
    id: str
    name: str
    kind: str
    status: str
    zone_id: str
    zone: str
    region: str
    last_sync_at: datetime | None
    last_sync_ok_at: datetime | None
    hosts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(HOST_STATES, 0))
    vms: int = 0
    capacity: Capacity = field(default_factory=Capacity)


@dataclass
class ZoneFigures:
    id: str
    name: str
    region: str
    pools: int = 0
    capacity: Capacity = field(default_factory=Capacity)


@dataclass
class Figures:
    pools: list[PoolFigures]
    zones: list[ZoneFigures]
    hosts: dict[str, int]
    vms: dict[str, int] = field(default_factory=dict)
    templates: int = 0
    capacity: Capacity = field(default_factory=Capacity)


def figures(session: Session, scope: Scope, grants: PoolGrants) -> Figures:
    """What the dashboard shows of the pools `grants` reaches and the VMs of `scope`."""
    pools = {
        row.id: PoolFigures(
            id=row.id,
            name=row.name,
            kind=row.kind,
            status=row.status,
            zone_id=row.zone_id,
            zone=row.zone,
            region=row.region,
            last_sync_at=row.last_sync_at,
            last_sync_ok_at=row.last_sync_ok_at,
        )
        for row in session.execute(
            select(
                ProviderRow.id,
                ProviderRow.name,
                ProviderRow.kind,
                ProviderRow.status,
                ProviderRow.zone_id,
                ProviderRow.last_sync_at,
                ProviderRow.last_sync_ok_at,
                ZoneRow.name.label("zone"),
                RegionRow.name.label("region"),
            )
            .join(ZoneRow, ZoneRow.id == ProviderRow.zone_id)
            .join(RegionRow, RegionRow.id == ZoneRow.region_id)
            .where(*grants.in_pools(ProviderRow.id))
            .order_by(ProviderRow.name)
        )
    }
    in_reach = list(pools)
    for pid, connected, maintenance, count, cores, memory in session.execute(
        select(
            HostRow.provider_id,
            HostRow.connected,
            HostRow.in_maintenance,
            func.count(),
            func.sum(HostRow.cpu_cores),
            func.sum(HostRow.memory_mib),
        )
        .where(HostRow.provider_id.in_(in_reach))
        .group_by(HostRow.provider_id, HostRow.connected, HostRow.in_maintenance)
    ):
        pool = pools[pid]
        pool.hosts[host_state(connected, maintenance)] += count
        pool.capacity.vcpus_total += int(cores or 0)
        pool.capacity.memory_mib_total += int(memory or 0)
    for pid, capacity, free in session.execute(
        select(
            DatastoreRow.provider_id,
            func.sum(DatastoreRow.capacity_bytes),
            func.sum(DatastoreRow.free_bytes),
        )
        .where(DatastoreRow.provider_id.in_(in_reach))
        .group_by(DatastoreRow.provider_id)
    ):
        pools[pid].capacity.storage_bytes_total += int(capacity or 0)
        pools[pid].capacity.storage_bytes_free += int(free or 0)

    out = Figures(
        pools=list(pools.values()),
        zones=[],
        hosts=dict.fromkeys(HOST_STATES, 0),
        vms=dict.fromkeys((s.value for s in PowerState), 0),
    )
    _vms(session, scope, pools, out)
    zones: dict[str, ZoneFigures] = {}
    for pool in out.pools:
        zone = zones.setdefault(pool.zone_id, ZoneFigures(pool.zone_id, pool.zone, pool.region))
        zone.pools += 1
        zone.capacity.add(pool.capacity)
        out.capacity.add(pool.capacity)
        for state, count in pool.hosts.items():
            out.hosts[state] += count
    out.zones = sorted(zones.values(), key=lambda z: (z.region, z.name))
    return out


def _vms(session: Session, scope: Scope, pools: dict[str, PoolFigures], out: Figures) -> None:
    """One scan of the VMs, grouped by pool only (an index walk, no sort): what those on
    the pools' hosts take, and the scope's VMs by power state. A project's VMs count
    even on a pool no longer granted to it, as its VM list shows them."""
    live, mine = VMRow.is_template.is_(False), scope_vms(scope)
    placed = and_(live, VMRow.host_id.is_not(None))
    states = [s.value for s in PowerState if s is not PowerState.UNKNOWN]

    def count(*conditions: ColumnElement[bool]) -> Any:
        return func.sum(case((and_(mine, *conditions), 1), else_=0))

    stmt = select(
        VMRow.provider_id,
        func.sum(case((placed, VMRow.cpu_count), else_=0)),
        func.sum(case((placed, VMRow.memory_mib), else_=0)),
        count(VMRow.is_template.is_(True)),
        count(live, VMRow.power_state.not_in(states)),
        *(count(live, VMRow.power_state == state) for state in states),
    ).group_by(VMRow.provider_id)
    if not scope.unrestricted:
        stmt = stmt.where(or_(VMRow.provider_id.in_(list(pools)), mine))
    for pid, vcpus, memory, templates, unknown, *by_state in session.execute(stmt):
        counts = dict(zip(states, map(int, by_state), strict=True))
        counts[PowerState.UNKNOWN.value] = int(unknown)
        out.templates += int(templates)
        for state, n in counts.items():
            out.vms[state] += n
        if pid in pools:
            pools[pid].capacity.vcpus_used += int(vcpus or 0)
            pools[pid].capacity.memory_mib_used += int(memory or 0)
            pools[pid].vms += sum(counts.values())
