"""Filters: each turns candidates down for one reason a person can read and act on.

A filter has two faces that must agree (tests hold them to it): `keep` passes a whole
list in one comprehension, the scheduler's hot path, so a decision over thousands of hosts
stays within a few milliseconds; `check` explains one candidate, and runs only when a dry
run asks why a candidate was turned down (then every filter runs, so all reasons show).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

from tessera.scheduler.model import GIB, Candidate, GroupPolicy, PlacementRequest


class Filter(ABC):
    name: ClassVar[str]

    def applies(self, request: PlacementRequest) -> bool:
        """Whether the request asks for anything this filter checks; else it is skipped."""
        return True

    @abstractmethod
    def check(self, request: PlacementRequest, candidate: Candidate) -> str | None:
        """None when `candidate` can take the request, else why it cannot."""

    @abstractmethod
    def keep(self, request: PlacementRequest, candidates: Sequence[Candidate]) -> list[Candidate]:
        """The candidates `check` accepts, in their order."""


class ExcludeFilter(Filter):
    name = "exclude"

    def applies(self, request: PlacementRequest) -> bool:
        return bool(request.exclude)

    def check(self, request: PlacementRequest, candidate: Candidate) -> str | None:
        if candidate.id in request.exclude:
            return "excluded by the request (the current location)"
        return None

    def keep(self, request: PlacementRequest, candidates: Sequence[Candidate]) -> list[Candidate]:
        excluded = request.exclude
        return [c for c in candidates if c.id not in excluded]


class HostStateFilter(Filter):
    """Maintenance, disconnection and unreachable pools: nothing can be started there."""

    name = "host_state"

    def check(self, request: PlacementRequest, candidate: Candidate) -> str | None:
        if not candidate.pool_reachable:
            return f"pool {candidate.provider_name} is unreachable"
        if not candidate.connected:
            return f"{candidate.kind.value} is disconnected"
        if candidate.in_maintenance:
            return f"{candidate.kind.value} is in maintenance mode"
        return None

    def keep(self, request: PlacementRequest, candidates: Sequence[Candidate]) -> list[Candidate]:
        return [c for c in candidates if c.pool_reachable and c.connected and not c.in_maintenance]


class ZoneFilter(Filter):
    name = "zone"

    def applies(self, request: PlacementRequest) -> bool:
        return request.zone is not None

    def check(self, request: PlacementRequest, candidate: Candidate) -> str | None:
        if candidate.zone != request.zone:
            return f"in zone {candidate.zone_name or candidate.zone}, not the one requested"
        return None

    def keep(self, request: PlacementRequest, candidates: Sequence[Candidate]) -> list[Candidate]:
        zone = request.zone
        return [c for c in candidates if c.zone == zone]


class ProviderFilter(Filter):
    name = "provider"

    def applies(self, request: PlacementRequest) -> bool:
        return request.provider_id is not None

    def check(self, request: PlacementRequest, candidate: Candidate) -> str | None:
        if candidate.provider_id != request.provider_id:
            return f"in pool {candidate.provider_name}, not the one requested"
        return None

    def keep(self, request: PlacementRequest, candidates: Sequence[Candidate]) -> list[Candidate]:
        wanted = request.provider_id
        return [c for c in candidates if c.provider_id == wanted]


class CapabilityFilter(Filter):
    """The drivers' capability flags (Nova's pattern): refuse a pool that cannot do what
    the VM will need, such as snapshots for a VM that is backed up."""

    name = "capability"

    def applies(self, request: PlacementRequest) -> bool:
        return bool(request.capabilities)

    def check(self, request: PlacementRequest, candidate: Candidate) -> str | None:
        missing = request.capabilities - candidate.capabilities
        if missing:
            return f"{candidate.provider_kind} pools lack {', '.join(sorted(missing))}"
        return None

    def keep(self, request: PlacementRequest, candidates: Sequence[Candidate]) -> list[Candidate]:
        required = request.capabilities
        return [c for c in candidates if required <= c.capabilities]


class NetworkFilter(Filter):
    name = "network"

    def applies(self, request: PlacementRequest) -> bool:
        return bool(request.networks)

    def check(self, request: PlacementRequest, candidate: Candidate) -> str | None:
        missing = request.networks - candidate.networks
        if missing:
            return f"cannot reach {len(missing)} of the {len(request.networks)} requested networks"
        return None

    def keep(self, request: PlacementRequest, candidates: Sequence[Candidate]) -> list[Candidate]:
        required = request.networks
        return [c for c in candidates if required <= c.networks]


class SegmentFilter(Filter):
    """A NIC on a Tessera segment plugs into the segment's object on the VM's pool (a
    portgroup, a bridge): only a pool where every segment asked is realised will do."""

    name = "segment"

    def applies(self, request: PlacementRequest) -> bool:
        return bool(request.segments)

    def check(self, request: PlacementRequest, candidate: Candidate) -> str | None:
        missing = sorted(
            (s for s in request.segments if s.id not in candidate.segments),
            key=lambda s: (s.name, s.id),
        )
        if not missing:
            return None
        named = ", ".join(f"{s.name!r} ({s.id})" for s in missing)
        verb = "is" if len(missing) == 1 else "are"
        noun = "segment" if len(missing) == 1 else "segments"
        return f"{noun} {named} {verb} not realised on pool {candidate.provider_name}"

    def keep(self, request: PlacementRequest, candidates: Sequence[Candidate]) -> list[Candidate]:
        required = frozenset(s.id for s in request.segments)
        return [c for c in candidates if required <= c.segments]


class GroupFilter(Filter):
    """Affinity keeps a group's VMs on one candidate, anti-affinity on different ones. On a
    cluster this holds at cluster level: DRS decides the host inside it."""

    name = "group"

    def applies(self, request: PlacementRequest) -> bool:
        return request.group is not None and bool(request.group.member_candidate_ids)

    def check(self, request: PlacementRequest, candidate: Candidate) -> str | None:
        group = request.group
        if group is None:
            return None
        here = candidate.id in group.member_candidate_ids
        if group.policy is GroupPolicy.AFFINITY and not here:
            return f"affinity group {group.name} has its members elsewhere"
        if group.policy is GroupPolicy.ANTI_AFFINITY and here:
            return f"anti-affinity group {group.name} already has a member here"
        return None

    def keep(self, request: PlacementRequest, candidates: Sequence[Candidate]) -> list[Candidate]:
        group = request.group
        if group is None:
            return list(candidates)
        members = group.member_candidate_ids
        if group.policy is GroupPolicy.AFFINITY:
            return [c for c in candidates if c.id in members]
        return [c for c in candidates if c.id not in members]


class CpuFilter(Filter):
    """vCPUs within the overcommitted cores, and no more vCPUs than one host has cores."""

    name = "cpu"

    def check(self, request: PlacementRequest, candidate: Candidate) -> str | None:
        need, ratio = request.vcpus, request.overcommit.cpu
        free = candidate.cpu_cores * ratio - candidate.vcpus_used
        if free < need:
            return (
                f"needs {need} vCPUs, {max(free, 0):g} free after {ratio:g}x overcommit "
                f"of {candidate.cpu_cores} cores ({candidate.vcpus_used} in use)"
            )
        if need > candidate.max_host_cores:
            return f"needs {need} vCPUs, its largest host has {candidate.max_host_cores} cores"
        return None

    def keep(self, request: PlacementRequest, candidates: Sequence[Candidate]) -> list[Candidate]:
        need, ratio = request.vcpus, request.overcommit.cpu
        return [
            c
            for c in candidates
            if c.cpu_cores * ratio - c.vcpus_used >= need and c.max_host_cores >= need
        ]


class RamFilter(Filter):
    name = "ram"

    def check(self, request: PlacementRequest, candidate: Candidate) -> str | None:
        need, ratio = request.memory_mib, request.overcommit.ram
        free = candidate.memory_mib * ratio - candidate.memory_mib_used
        if free < need:
            return f"needs {need} MiB RAM, {max(free, 0):.0f} MiB free after {ratio:g}x overcommit"
        return None

    def keep(self, request: PlacementRequest, candidates: Sequence[Candidate]) -> list[Candidate]:
        need, ratio = request.memory_mib, request.overcommit.ram
        return [c for c in candidates if c.memory_mib * ratio - c.memory_mib_used >= need]


class DiskFilter(Filter):
    """Room for the disk on at least one datastore or storage pool of the candidate."""

    name = "disk"

    def applies(self, request: PlacementRequest) -> bool:
        return request.disk_gib > 0

    def check(self, request: PlacementRequest, candidate: Candidate) -> str | None:
        ratio = request.overcommit.disk
        if not candidate.datastores:
            return f"needs {request.disk_gib:g} GiB disk, has no datastore"
        best = max(d.available_bytes(ratio) for d in candidate.datastores)
        if best < request.disk_bytes:
            return (
                f"needs {request.disk_gib:g} GiB disk, the roomiest datastore has "
                f"{max(best, 0) / GIB:.1f} GiB free after {ratio:g}x overcommit"
            )
        return None

    def keep(self, request: PlacementRequest, candidates: Sequence[Candidate]) -> list[Candidate]:
        need, ratio = request.disk_bytes, request.overcommit.disk
        if ratio == 1.0:  # the common case needs only the number precomputed per candidate
            return [c for c in candidates if c.max_datastore_free_bytes >= need]
        return [
            c for c in candidates if any(d.available_bytes(ratio) >= need for d in c.datastores)
        ]


# Cheap and selective first: each filter's hot path only sees what the previous kept.
DEFAULT_FILTERS: tuple[Filter, ...] = (
    ExcludeFilter(),
    ZoneFilter(),
    ProviderFilter(),
    HostStateFilter(),
    CapabilityFilter(),
    NetworkFilter(),
    SegmentFilter(),
    GroupFilter(),
    CpuFilter(),
    RamFilter(),
    DiskFilter(),
)
