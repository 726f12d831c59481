"""What the scheduler decides over: candidates, a request, and the explained decision.

Plain data, no I/O: the loader (tessera.scheduler.inventory) builds candidates from the
database, and tests and the benchmark build them directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from tessera.errors import InvalidInputError
from tessera.providers.base import Capabilities

CAPABILITY_NAMES: frozenset[str] = frozenset(Capabilities.__dataclass_fields__)
GIB = 1 << 30


class CandidateKind(StrEnum):
    """A host placed on directly, or a cluster whose own scheduler (vSphere DRS) picks the
    host: we cannot do better than DRS inside a cluster, so we do not try."""

    HOST = "host"
    CLUSTER = "cluster"


class Strategy(StrEnum):
    SPREAD = "spread"
    PACK = "pack"


class GroupPolicy(StrEnum):
    AFFINITY = "affinity"
    ANTI_AFFINITY = "anti-affinity"


@dataclass(frozen=True, slots=True)
class DatastoreSpace:
    """A datastore or storage pool a candidate can put disks on."""

    id: str
    name: str
    capacity_bytes: int
    free_bytes: int

    def available_bytes(self, ratio: float) -> float:
        """Room for new disks when thin disks may overcommit the capacity `ratio` times."""
        return self.capacity_bytes * ratio - (self.capacity_bytes - self.free_bytes)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A place a VM can go. For a cluster the figures are the sums over its hosts that are
    connected and out of maintenance; `max_host_cores` bounds one VM's vCPUs, as a VM
    cannot span hosts. `zone` is the zone's id (names repeat across regions). `segments`
    holds the ids of the Tessera segments realised on its pool."""

    id: str
    name: str
    kind: CandidateKind
    provider_id: str
    provider_name: str
    provider_kind: str
    zone: str
    capabilities: frozenset[str]
    cpu_cores: int
    vcpus_used: int
    memory_mib: int
    memory_mib_used: int
    datastores: tuple[DatastoreSpace, ...] = ()
    networks: frozenset[str] = frozenset()
    segments: frozenset[str] = frozenset()
    in_maintenance: bool = False
    connected: bool = True
    pool_reachable: bool = True
    hosts: int = 1
    max_host_cores: int = 0
    zone_name: str = ""
    max_datastore_free_bytes: int = field(init=False)

    def __post_init__(self) -> None:
        # Precomputed once: with no disk overcommit the disk filter needs only this number.
        most = max((d.free_bytes for d in self.datastores), default=0)
        object.__setattr__(self, "max_datastore_free_bytes", most)


@dataclass(frozen=True, slots=True)
class Overcommit:
    """Allocation ratios: how much more vCPU, RAM and disk may be promised than exists."""

    cpu: float = 4.0
    ram: float = 1.0
    disk: float = 1.0

    def __post_init__(self) -> None:
        for name in ("cpu", "ram", "disk"):
            value = getattr(self, name)
            if not 0 < value <= 100:
                raise InvalidInputError(f"{name} overcommit ratio must be in (0, 100], not {value}")


@dataclass(frozen=True, slots=True)
class PlacementGroup:
    """A group the new VM joins, with the candidates that already hold its members."""

    name: str
    policy: GroupPolicy
    member_candidate_ids: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class SegmentRef:
    """A Tessera segment a NIC of the VM is on: its id to match candidates by, its name to
    explain a refusal with."""

    id: str
    name: str


@dataclass(frozen=True, slots=True)
class PlacementRequest:
    """What to place and under which constraints. `exclude` holds candidate ids not to
    consider, such as a migrating VM's current location."""

    vcpus: int
    memory_mib: int
    disk_gib: float = 0
    zone: str | None = None
    provider_id: str | None = None
    capabilities: frozenset[str] = frozenset()
    networks: frozenset[str] = frozenset()
    segments: frozenset[SegmentRef] = frozenset()
    group: PlacementGroup | None = None
    strategy: Strategy = Strategy.SPREAD
    overcommit: Overcommit = field(default_factory=Overcommit)
    exclude: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.vcpus < 1:
            raise InvalidInputError(f"vcpus must be at least 1, not {self.vcpus}")
        if self.memory_mib < 1:
            raise InvalidInputError(f"memory_mib must be at least 1, not {self.memory_mib}")
        if self.disk_gib < 0:
            raise InvalidInputError(f"disk_gib must not be negative, not {self.disk_gib}")
        unknown = sorted(self.capabilities - CAPABILITY_NAMES)
        if unknown:
            known = ", ".join(sorted(CAPABILITY_NAMES))
            raise InvalidInputError(f"unknown capability {', '.join(unknown)}; known: {known}")

    @property
    def disk_bytes(self) -> int:
        return int(self.disk_gib * GIB)


@dataclass(frozen=True, slots=True)
class FilterReason:
    """Why one filter turned a candidate down."""

    filter: str
    reason: str


@dataclass(frozen=True, slots=True)
class Rejected:
    candidate: Candidate
    reasons: tuple[FilterReason, ...]
