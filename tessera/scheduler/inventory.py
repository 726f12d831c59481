"""Build scheduler candidates from the inventory tables, in eight queries whatever its size."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tessera.db.rows import (
    ClusterRow,
    DatastoreRow,
    HostRow,
    NetworkRow,
    PlacementClaimRow,
    ProviderRow,
    SegmentRealisationRow,
    TaskRow,
    VMRow,
    ZoneRow,
)
from tessera.domain.tasks import TaskState
from tessera.identity.scope import ALL_POOLS, PoolGrants
from tessera.network.model import RealisationState
from tessera.providers import DRIVERS, driver_class
from tessera.scheduler.model import Candidate, CandidateKind, DatastoreSpace

# A pool in these states cannot start anything; "unknown" (never synced yet) is given the
# benefit of the doubt, as its inventory is empty until a sync anyway.
DOWN_STATUSES = frozenset({"unreachable", "error"})
# A claim holds capacity while its task may still build the VM.
_CLAIMING_STATES = (TaskState.QUEUED.value, TaskState.RUNNING.value)
# The create task parameter naming the placement group its VM joins once made.
GROUP_PARAM = "placement_group_id"


@dataclass(frozen=True)
class CandidateSet:
    """The candidates, sorted by name then id, and which candidate holds each host, so
    group members (VMs on hosts) can be mapped to candidates."""

    candidates: list[Candidate]
    candidate_of_host: dict[str, str]


@dataclass
class _Pool:
    name: str
    kind: str
    zone_id: str
    zone_name: str
    reachable: bool
    capabilities: frozenset[str]
    datastores: tuple[DatastoreSpace, ...] = ()
    networks: frozenset[str] = frozenset()
    segments: frozenset[str] = frozenset()


@dataclass
class _Claims:
    """Capacity promised to create tasks not yet finished: vCPUs and RAM per candidate
    (host or cluster id), disk bytes per datastore."""

    compute: dict[str, tuple[int, int]] = field(default_factory=dict)
    disk: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Host:
    id: str
    name: str
    provider_id: str
    cluster_id: str | None
    cpu_cores: int
    memory_mib: int
    in_maintenance: bool
    connected: bool


@cache
def _capabilities(kind: str) -> frozenset[str]:
    if kind not in DRIVERS:
        return frozenset()
    flags = driver_class(kind).capabilities.as_dict()
    return frozenset(name for name, on in flags.items() if on)


def load_candidates(session: Session, grants: PoolGrants = ALL_POOLS) -> CandidateSet:
    """Every host outside a cluster, and every cluster, as a candidate: of the pools
    `grants` reaches, each with the networks it reaches there.

    A clustered host (vSphere) is folded into its cluster: vCenter's DRS places VMs inside
    a cluster better than we could, so we choose the cluster and leave the host to it.

    Usage is the sum of the vCPUs and RAM of the VMs on each host, powered on or off
    (templates excluded): a stopped VM comes back on the same host and must still fit
    when it does, which is how Nova and vSphere admission control count as well.

    The inventory does not record which hosts mount which datastore or see which network,
    so every datastore and network of the candidate's pool counts as reachable from it;
    exact for a KVM pool (one host), optimistic for a vCenter with partitioned storage.
    Likewise a Tessera segment realised on a pool (its portgroup or bridge made there)
    counts as reachable from each of the pool's candidates.

    Placement claims of unfinished create tasks count as used, on the candidate and the
    datastore they chose, until the VM is in the inventory (and its disks are made).
    """
    claims = _claims(session)
    pools = _pools(session, claims, grants)
    usage: dict[str, tuple[int, int]] = {
        str(host_id): (int(vcpus or 0), int(memory or 0))
        for host_id, vcpus, memory in session.execute(
            select(VMRow.host_id, func.sum(VMRow.cpu_count), func.sum(VMRow.memory_mib))
            .where(VMRow.host_id.is_not(None), VMRow.is_template.is_(False))
            .group_by(VMRow.host_id)
        )
    }
    clusters = {
        cluster_id: (name, provider_id)
        for cluster_id, name, provider_id in session.execute(
            select(ClusterRow.id, ClusterRow.name, ClusterRow.provider_id).where(
                *grants.in_pools(ClusterRow.provider_id)
            )
        )
    }
    members: dict[str, list[_Host]] = defaultdict(list)
    candidates: list[Candidate] = []
    candidate_of_host: dict[str, str] = {}
    for row in session.execute(
        select(
            HostRow.id,
            HostRow.name,
            HostRow.provider_id,
            HostRow.cluster_id,
            HostRow.cpu_cores,
            HostRow.memory_mib,
            HostRow.in_maintenance,
            HostRow.connected,
        ).where(*grants.in_pools(HostRow.provider_id))
    ):
        host = _Host(*row)
        if host.cluster_id is not None and host.cluster_id in clusters:
            members[host.cluster_id].append(host)
            candidate_of_host[host.id] = host.cluster_id
        else:
            candidates.append(_host_candidate(host, pools[host.provider_id], usage, claims))
            candidate_of_host[host.id] = host.id
    for cluster_id, (name, provider_id) in clusters.items():
        candidates.append(
            _cluster_candidate(
                cluster_id,
                name,
                provider_id,
                pools[provider_id],
                members[cluster_id],
                usage,
                claims,
            )
        )
    candidates.sort(key=lambda c: (c.name, c.id))
    return CandidateSet(candidates, candidate_of_host)


def _claims(session: Session) -> _Claims:
    """Few rows (the creates in flight), so summed here rather than in SQL twice."""
    claims = _Claims()
    for candidate_id, datastore_id, vcpus, memory, disk in session.execute(
        select(
            PlacementClaimRow.candidate_id,
            PlacementClaimRow.datastore_id,
            PlacementClaimRow.vcpus,
            PlacementClaimRow.memory_mib,
            PlacementClaimRow.disk_bytes,
        )
        .join(TaskRow, TaskRow.id == PlacementClaimRow.task_id)
        .where(TaskRow.state.in_(_CLAIMING_STATES))
    ):
        held = claims.compute.get(candidate_id, (0, 0))
        claims.compute[candidate_id] = (held[0] + vcpus, held[1] + memory)
        if datastore_id is not None:
            claims.disk[datastore_id] = claims.disk.get(datastore_id, 0) + disk
    return claims


def building_in_group(session: Session, group_id: str) -> frozenset[str]:
    """The candidates claimed by unfinished creates of VMs that will join the group: they
    count as members already, or two creates at once could break anti-affinity."""
    return frozenset(
        candidate_id
        for candidate_id, params in session.execute(
            select(PlacementClaimRow.candidate_id, TaskRow.params)
            .join(TaskRow, TaskRow.id == PlacementClaimRow.task_id)
            .where(TaskRow.state.in_(_CLAIMING_STATES))
        )
        if params.get(GROUP_PARAM) == group_id
    )


def _pools(session: Session, claims: _Claims, grants: PoolGrants) -> dict[str, _Pool]:
    pools = {
        pid: _Pool(name, kind, zone_id, zone_name, status not in DOWN_STATUSES, _capabilities(kind))
        for pid, name, kind, status, zone_id, zone_name in session.execute(
            select(
                ProviderRow.id,
                ProviderRow.name,
                ProviderRow.kind,
                ProviderRow.status,
                ZoneRow.id,
                ZoneRow.name,
            )
            .join(ZoneRow, ZoneRow.id == ProviderRow.zone_id)
            .where(*grants.in_pools(ProviderRow.id))
        )
    }
    stores: dict[str, list[DatastoreSpace]] = defaultdict(list)
    for ds_id, name, provider_id, capacity, free in session.execute(
        select(
            DatastoreRow.id,
            DatastoreRow.name,
            DatastoreRow.provider_id,
            DatastoreRow.capacity_bytes,
            DatastoreRow.free_bytes,
        ).order_by(DatastoreRow.name, DatastoreRow.id)
    ):
        claimed = claims.disk.get(ds_id, 0)
        stores[provider_id].append(DatastoreSpace(ds_id, name, capacity, free - claimed))
    networks: dict[str, set[str]] = defaultdict(set)
    for net_id, provider_id in session.execute(select(NetworkRow.id, NetworkRow.provider_id)):
        networks[provider_id].add(net_id)
    segments: dict[str, set[str]] = defaultdict(set)
    for segment_id, provider_id in session.execute(
        select(SegmentRealisationRow.segment_id, SegmentRealisationRow.provider_id).where(
            SegmentRealisationRow.state == RealisationState.REALISED.value,
            SegmentRealisationRow.native_id.is_not(None),
        )
    ):
        segments[provider_id].add(segment_id)
    for pid, pool in pools.items():
        pool.datastores = tuple(stores[pid])
        pool.networks = grants.networks_of(pid, frozenset(networks[pid]))
        pool.segments = frozenset(segments[pid])
    return pools


def _host_candidate(
    host: _Host, pool: _Pool, usage: dict[str, tuple[int, int]], claims: _Claims
) -> Candidate:
    vcpus, memory = usage.get(host.id, (0, 0))
    claimed_vcpus, claimed_memory = claims.compute.get(host.id, (0, 0))
    return Candidate(
        id=host.id,
        name=host.name,
        kind=CandidateKind.HOST,
        provider_id=host.provider_id,
        provider_name=pool.name,
        provider_kind=pool.kind,
        zone=pool.zone_id,
        zone_name=pool.zone_name,
        capabilities=pool.capabilities,
        cpu_cores=host.cpu_cores,
        vcpus_used=vcpus + claimed_vcpus,
        memory_mib=host.memory_mib,
        memory_mib_used=memory + claimed_memory,
        datastores=pool.datastores,
        networks=pool.networks,
        segments=pool.segments,
        in_maintenance=host.in_maintenance,
        connected=host.connected,
        pool_reachable=pool.reachable,
        max_host_cores=host.cpu_cores,
    )


def _cluster_candidate(
    cluster_id: str,
    name: str,
    provider_id: str,
    pool: _Pool,
    hosts: Iterable[_Host],
    usage: dict[str, tuple[int, int]],
    claims: _Claims,
) -> Candidate:
    """Capacity from the hosts DRS can use (connected, out of maintenance); usage from every
    host, as VMs on a host under maintenance are moved to the others. The cluster counts as
    in maintenance, or disconnected, when no host is usable."""
    hosts = list(hosts)
    usable = [h for h in hosts if h.connected and not h.in_maintenance]
    claimed_vcpus, claimed_memory = claims.compute.get(cluster_id, (0, 0))
    return Candidate(
        id=cluster_id,
        name=name,
        kind=CandidateKind.CLUSTER,
        provider_id=provider_id,
        provider_name=pool.name,
        provider_kind=pool.kind,
        zone=pool.zone_id,
        zone_name=pool.zone_name,
        capabilities=pool.capabilities,
        cpu_cores=sum(h.cpu_cores for h in usable),
        vcpus_used=sum(usage.get(h.id, (0, 0))[0] for h in hosts) + claimed_vcpus,
        memory_mib=sum(h.memory_mib for h in usable),
        memory_mib_used=sum(usage.get(h.id, (0, 0))[1] for h in hosts) + claimed_memory,
        datastores=pool.datastores,
        networks=pool.networks,
        segments=pool.segments,
        in_maintenance=not usable and any(h.connected for h in hosts),
        connected=any(h.connected for h in hosts),
        pool_reachable=pool.reachable,
        hosts=len(usable),
        max_host_cores=max((h.cpu_cores for h in usable), default=0),
    )
