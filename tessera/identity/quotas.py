"""Project quotas: what a project has, what its unfinished tasks have reserved, and the
check made in the very transaction that saves a task.

Nothing is kept as a counter, so nothing can leak when a worker dies mid-task: usage is
read each time. `in_use` is the inventory's rows of the project's VMs (their number,
vCPUs, RAM and the disks of vm_disks; templates included). A task that makes or grows a
VM stores in its params (`quota`) the totals it gives that VM, and `reserved` is what of
those totals the inventory does not show yet. So a create reserves its whole VM until
the VM's row appears (its first step), then only the disks not yet recorded (its last
step records them), then nothing; a resize reserves the vCPUs and RAM above what the VM
has now; a finished task reserves nothing (a failed create's VM, if made, is rolled
back). Only a VM of the task's project offsets its reservation, the very rows `in_use`
counts, so no resource is counted twice or missed, except for an instant right after a
create or clone records its VM and before it notes the VM's id, when the VM counts
twice: too much, never too little.

Snapshots are not in the inventory, and asking every pool at each check would make
submitting a task as slow as the slowest pool: a project's snapshots in use are those
its VMs' succeeded snapshot tasks made and did not delete, plus one per unfinished
snapshot create. Snapshots taken or deleted outside Tessera are not seen. Floating IPs
in use are the project's rows of floating_ips (tessera.network.routing checks their
quota as it allocates one, under this module's lock name for the project).
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tessera.db.rows import FloatingIPRow, QuotaRow, TaskRow, VMDiskRow, VMRow
from tessera.domain.tasks import TaskKind, TaskState
from tessera.errors import QuotaExceededError

QUOTA_FIELDS = ("vms", "vcpus", "ram_mib", "disk_gib", "floating_ips", "snapshots")
GIB = 1 << 30
PARAM = "quota"
_UNFINISHED = (TaskState.QUEUED.value, TaskState.RUNNING.value)
# The tasks that take more of some quota; every other kind is never checked.
CHARGED_KINDS = frozenset(
    {
        TaskKind.VM_CREATE,
        TaskKind.VM_CLONE,
        TaskKind.VM_RESIZE,
        TaskKind.VM_DISK_ADD,
        TaskKind.VM_DISK_GROW,
        TaskKind.VM_SNAPSHOT_CREATE,
    }
)


@dataclass(frozen=True)
class Totals:
    """Amounts of each quota's resource; disk in bytes (shown in GiB, rounded up)."""

    vms: int = 0
    vcpus: int = 0
    ram_mib: int = 0
    disk_bytes: int = 0
    snapshots: int = 0
    floating_ips: int = 0

    def __add__(self, other: Totals) -> Totals:
        return Totals(*(a + b for a, b in zip(self.values(), other.values(), strict=True)))

    def values(self) -> tuple[int, ...]:
        return dataclasses.astuple(self)

    def beyond(self, recorded: Totals) -> Totals:
        """What of these totals `recorded` does not cover yet."""
        pairs = zip(self.values(), recorded.values(), strict=True)
        return Totals(*(max(0, want - have) for want, have in pairs))

    def of(self, quota: str) -> int:
        """The amount in the quota's unit."""
        if quota == "disk_gib":
            return math.ceil(self.disk_bytes / GIB)
        return int(getattr(self, quota, 0))

    def exceeds(self, quota: str, limit: int) -> bool:
        if quota == "disk_gib":
            return self.disk_bytes > limit * GIB
        return self.of(quota) > limit


@dataclass(frozen=True)
class QuotaUsage:
    quota: str
    limit: int | None
    in_use: int
    reserved: int

    @property
    def free(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.in_use - self.reserved)


def lock_names(row: TaskRow) -> list[str]:
    """The lock to serialise a task's check on: its project's, when the task is charged.
    A platform admin's task outside any project is not subject to quotas."""
    if row.project_id is None or TaskKind(row.kind) not in CHARGED_KINDS:
        return []
    return [f"quota:{row.project_id}"]


def reserve(session: Session, row: TaskRow) -> None:
    """Refuse the task (QuotaExceededError) when what it adds would take its project past
    a limit; otherwise note in its params what it reserves. The transaction must have
    begun with serialize(session, *lock_names(row)), and saves the task."""
    if not lock_names(row):
        return
    project_id = str(row.project_id)
    stored = row.params.get(PARAM)  # a retry keeps what its first attempt asked
    wanted = Totals(**stored) if isinstance(stored, dict) else _wanted(session, row)
    row.params = {**row.params, PARAM: dataclasses.asdict(wanted)}
    target = _target_vm(row)
    recorded = _recorded(session, project_id, [target] if target else [])
    requested = wanted.beyond(recorded.get(target or "", Totals()))
    limits = session.get(QuotaRow, project_id)
    if limits is None or not any(requested.values()):
        return
    in_use, reserved = _in_use(session, project_id), _reserved(session, project_id)
    for quota in QUOTA_FIELDS:
        limit = getattr(limits, quota)
        if limit is None or not requested.of(quota):
            continue
        if (in_use + reserved + requested).exceeds(quota, limit):
            raise QuotaExceededError(
                f"quota exceeded for {quota}: limit {limit}, {in_use.of(quota)} in use and"
                f" {reserved.of(quota)} reserved by unfinished tasks,"
                f" {requested.of(quota)} requested",
                quota=quota,
                limit=limit,
                in_use=(in_use + reserved).of(quota),
                requested=requested.of(quota),
            )


def project_usage(session: Session, project_id: str) -> list[QuotaUsage]:
    """Each quota of the project: its limit (None: unlimited), in use and reserved."""
    row = session.get(QuotaRow, project_id)
    in_use, reserved = _in_use(session, project_id), _reserved(session, project_id)
    return [
        QuotaUsage(
            quota=name,
            limit=getattr(row, name) if row else None,
            in_use=in_use.of(name),
            reserved=reserved.of(name),
        )
        for name in QUOTA_FIELDS
    ]


def _target_vm(row: TaskRow) -> str | None:
    """The VM whose totals the task sets: the one it makes (once recorded) or changes."""
    if row.kind == TaskKind.VM_CLONE.value:
        made = (row.result or {}).get("clone_vm_id")
        return made if isinstance(made, str) else None
    return row.vm_id


def _wanted(session: Session, row: TaskRow) -> Totals:
    """The totals a task gives its VM (zero: the task leaves that resource alone), from
    its params in native form and the inventory as it is now."""
    params: dict[str, Any] = row.params
    kind = TaskKind(row.kind)
    if kind is TaskKind.VM_CREATE:
        spec = params["spec"]
        disks = sum(int(disk["size_bytes"]) for disk in params["disks"])
        return Totals(1, spec["cpu_count"], spec["memory_mib"], disks)
    if kind is TaskKind.VM_SNAPSHOT_CREATE:
        return Totals(snapshots=1)
    vm_id = str(row.vm_id)
    if kind is TaskKind.VM_CLONE:  # a copy of the source, whatever project that is in
        source = _recorded(session, None, [vm_id]).get(vm_id, Totals())
        return dataclasses.replace(source, vms=1)
    if kind is TaskKind.VM_RESIZE:
        return Totals(vcpus=params["cpu_count"] or 0, ram_mib=params["memory_mib"] or 0)
    disks = _recorded(session, str(row.project_id), [vm_id]).get(vm_id, Totals()).disk_bytes
    if kind is TaskKind.VM_DISK_GROW:
        old = session.scalar(
            select(VMDiskRow.size_bytes).where(
                VMDiskRow.vm_id == vm_id, VMDiskRow.key == params["disk_key"]
            )
        )
        disks -= old or 0
    return Totals(disk_bytes=disks + int(params["size_bytes"]))


def _recorded(session: Session, project_id: str | None, vm_ids: Iterable[str]) -> dict[str, Totals]:
    """What the inventory shows of these VMs, those of `project_id` only when given."""
    ids = sorted(set(vm_ids))
    if not ids:
        return {}
    disks = (
        select(VMDiskRow.vm_id, func.sum(VMDiskRow.size_bytes).label("bytes"))
        .where(VMDiskRow.vm_id.in_(ids))
        .group_by(VMDiskRow.vm_id)
        .subquery()
    )
    stmt = (
        select(VMRow.id, VMRow.cpu_count, VMRow.memory_mib, disks.c.bytes)
        .outerjoin(disks, disks.c.vm_id == VMRow.id)
        .where(VMRow.id.in_(ids))
    )
    if project_id is not None:
        stmt = stmt.where(VMRow.project_id == project_id)
    return {
        vm_id: Totals(1, cpus or 0, int(mib or 0), int(size or 0))
        for vm_id, cpus, mib, size in session.execute(stmt)
    }


def _in_use(session: Session, project_id: str) -> Totals:
    vms, cpus, mib = session.execute(
        select(func.count(VMRow.id), func.sum(VMRow.cpu_count), func.sum(VMRow.memory_mib)).where(
            VMRow.project_id == project_id
        )
    ).one()
    disks = session.scalar(
        select(func.sum(VMDiskRow.size_bytes))
        .join(VMRow, VMRow.id == VMDiskRow.vm_id)
        .where(VMRow.project_id == project_id)
    )
    snapshots = _snapshots(session, project_id)
    floating_ips = session.scalar(
        select(func.count(FloatingIPRow.id)).where(FloatingIPRow.project_id == project_id)
    )
    return Totals(
        vms, int(cpus or 0), int(mib or 0), int(disks or 0), snapshots, int(floating_ips or 0)
    )


def _snapshots(session: Session, project_id: str) -> int:
    """Snapshots of the project's VMs that Tessera made and has not deleted since: the
    succeeded snapshot tasks on each VM, in the order they ended."""
    kinds = (TaskKind.VM_SNAPSHOT_CREATE.value, TaskKind.VM_SNAPSHOT_DELETE.value)
    history = session.execute(
        select(TaskRow.vm_id, TaskRow.kind, TaskRow.params)
        .join(VMRow, VMRow.id == TaskRow.vm_id)
        .where(
            VMRow.project_id == project_id,
            TaskRow.kind.in_(kinds),
            TaskRow.state == TaskState.SUCCEEDED.value,
        )
        .order_by(TaskRow.finished_at, TaskRow.id)
    )
    held: Counter[tuple[str | None, object]] = Counter()
    for vm_id, kind, params in history:
        key = (vm_id, params.get("snapshot"))
        if kind == TaskKind.VM_SNAPSHOT_CREATE.value:
            held[key] += 1
        elif held[key]:
            held[key] -= 1
    return sum(held.values())


def _reserved(session: Session, project_id: str) -> Totals:
    """What the project's unfinished tasks will add beyond what the inventory shows."""
    rows = list(
        session.scalars(
            select(TaskRow).where(
                TaskRow.project_id == project_id,
                TaskRow.state.in_(_UNFINISHED),
                TaskRow.kind.in_(sorted(CHARGED_KINDS)),
            )
        )
    )
    recorded = _recorded(session, project_id, (t for r in rows if (t := _target_vm(r))))
    total = Totals()
    for row in rows:
        stored = row.params.get(PARAM)
        if isinstance(stored, dict):
            target = _target_vm(row)
            total += Totals(**stored).beyond(recorded.get(target or "", Totals()))
    return total
