"""The migration vocabulary: plans, phases, readiness findings and the facts read from
the source and the target. Plain values; no I/O.

A plan's VMs go through the phases of its mode in order (`phases_for`). Cold mode powers
off first, then copies. Warm mode copies first while the source runs (its copy phase is
a series of rounds: a full copy, then delta rounds from CBT), then powers off and runs
the final delta (`final_sync`); the phases after it are the cold ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class MigrationMode(StrEnum):
    COLD = "cold"
    WARM = "warm"


class TargetFormat(StrEnum):
    QCOW2 = "qcow2"
    RAW = "raw"


class PlanState(StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    ROLLED_BACK = "rolled_back"

    @property
    def editable(self) -> bool:
        return self is PlanState.DRAFT


class Phase(StrEnum):
    POWER_OFF = "power_off"
    COPY = "copy"
    FINAL_SYNC = "final_sync"
    VIRTIO = "virtio"
    DEFINE = "define"
    BOOT = "boot"
    VERIFY = "verify"
    CUTOVER = "cutover"


PHASES: tuple[Phase, ...] = tuple(p for p in Phase if p is not Phase.FINAL_SYNC)
WARM_PHASES: tuple[Phase, ...] = (Phase.COPY, Phase.POWER_OFF, Phase.FINAL_SYNC, *PHASES[2:])


def phases_for(mode: str) -> tuple[Phase, ...]:
    """The phases of a plan's mode, in order (PHASES: cold)."""
    return WARM_PHASES if mode == MigrationMode.WARM.value else PHASES


# How many of a plan's VMs may migrate at once (each holds a copy stream and a qemu-img).
MIN_PARALLELISM, MAX_PARALLELISM = 1, 8


class PhaseState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class VMState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    MIGRATED = "migrated"
    FAILED = "failed"
    CANCELLED = "cancelled"
    ROLLED_BACK = "rolled_back"


class Severity(StrEnum):
    BLOCKING = "blocking"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Finding:
    """One line of a readiness report; a blocking one stops the plan."""

    severity: Severity
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"severity": self.severity.value, "code": self.code, "message": self.message}


@dataclass(frozen=True, slots=True)
class SourceDisk:
    """A disk of the source VM as vCenter configures it."""

    key: str
    ds_path: str  # "[datastore] folder/file.vmdk"
    datastore: str
    capacity_bytes: int
    disk_mode: str = "persistent"
    sharing: str = "sharingNone"
    raw_mapping: bool = False

    @property
    def folder(self) -> str:
        return self.ds_path.partition("] ")[2].rpartition("/")[0]

    @property
    def file_name(self) -> str:
        return self.ds_path.rpartition("/")[2]


@dataclass(frozen=True, slots=True)
class SourceNic:
    mac: str
    order: int
    network_native_id: str
    network_name: str = ""
    model: str = ""


@dataclass(frozen=True, slots=True)
class SourceVM:
    """Everything the migration needs from the source VM's configuration."""

    native_id: str
    name: str
    power_state: str
    cpu_count: int
    memory_mib: int
    firmware: str  # "bios" or "efi"
    guest_id: str
    datacenter: str
    disks: tuple[SourceDisk, ...]
    nics: tuple[SourceNic, ...]
    snapshot_count: int = 0
    cbt_enabled: bool = False
    annotation: str = ""


@dataclass(frozen=True, slots=True)
class DatastoreFile:
    """How to read one datastore file over vCenter's HTTP file interface. The cookie is
    a session secret: handed to qemu-img through a 0600 file, never logged."""

    url: str
    cookie: str = field(repr=False)
    verify_tls: bool = True


@dataclass(frozen=True, slots=True)
class TargetPool:
    native_id: str
    name: str
    path: str
    free_bytes: int


@dataclass(frozen=True, slots=True)
class TargetDisk:
    pool: str
    volume: str
    fmt: str


@dataclass(frozen=True, slots=True)
class TargetNic:
    network: str
    mac: str


@dataclass(frozen=True, slots=True)
class TargetDomain:
    """The libvirt domain a migrated VM becomes: the source's hardware, its disks in
    the same order and its MACs in the same NIC order."""

    name: str
    cpu_count: int
    memory_mib: int
    firmware: str
    disks: tuple[TargetDisk, ...]
    nics: tuple[TargetNic, ...]
    serial_log: str
    description: str = ""


GUEST_FAMILIES: tuple[tuple[str, str], ...] = (
    ("windows", "windows"),
    ("win", "windows"),
    ("ubuntu", "linux"),
    ("debian", "linux"),
    ("rhel", "linux"),
    ("centos", "linux"),
    ("sles", "linux"),
    ("oracle", "linux"),
    ("linux", "linux"),
    ("freebsd", "bsd"),
)


def guest_family(guest_id: str) -> str:
    """vSphere's guestId ("ubuntu64Guest", "windows2019srv_64Guest") as an OS family."""
    lowered = guest_id.lower()
    return next((family for prefix, family in GUEST_FAMILIES if prefix in lowered), "other")


def volume_name(plan_id: str, position: int, disk_index: int, fmt: str) -> str:
    """The target volume of one disk: derived from the plan, so a repeat finds it."""
    return f"mig-{plan_id[:8]}-{position}-{disk_index}.{'qcow2' if fmt == 'qcow2' else 'img'}"
