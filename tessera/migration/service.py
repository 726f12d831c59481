"""Migration plans: stored in Tessera ids, shown, edited while draft; readiness; start,
cancel, resume and rollback as durable tasks (tessera.migration.workflow).

A plan names the source vCenter and its VMs, the target KVM host, a network map
(source network -> target network) and a storage map (source datastore -> target
storage pool) with the target format. Native ids are looked up when the plan is checked
or run, never stored in it. Plans are the platform's: only platform admins reach them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tessera.db.rows import (
    DatastoreRow,
    MigrationPlanRow,
    MigrationVMRow,
    NetworkRow,
    ProviderRow,
    TaskRow,
    VMLockRow,
    VMRow,
    utcnow,
)
from tessera.domain.events import TaskEvent
from tessera.domain.tasks import TaskKind
from tessera.errors import ConflictError, InvalidInputError, NotFoundError, ProviderFailedError
from tessera.events.recorder import record_task
from tessera.inventory.pools import endpoint_for
from tessera.migration.model import (
    MAX_PARALLELISM,
    MIN_PARALLELISM,
    MigrationMode,
    PhaseState,
    PlanState,
    Severity,
    TargetFormat,
    VMState,
    phases_for,
)
from tessera.migration.readiness import RECENT_COPIES, PlanTargets, copy_speed, vm_report
from tessera.providers import open_provider
from tessera.providers.base import Provider
from tessera.providers.faults import ProviderError
from tessera.providers.libvirt import imports
from tessera.providers.libvirt.driver import LibvirtProvider
from tessera.providers.vsphere.driver import VSphereProvider
from tessera.runtime import Runtime
from tessera.tasks import service as tasks

_RESUMABLE = {PlanState.FAILED, PlanState.CANCELLED, PlanState.ROLLED_BACK}
_ROLLBACKABLE = {PlanState.SUCCEEDED, PlanState.FAILED, PlanState.CANCELLED}


class PlanNotReadyError(ConflictError):
    """The readiness report has blocking findings; the message lists them."""

    code = "plan_not_ready"


@dataclass(frozen=True)
class PlanInput:
    """A plan as the API takes it, in Tessera ids; None fields are left as they are."""

    name: str | None = None
    source_provider_id: str | None = None
    target_provider_id: str | None = None
    vm_ids: Sequence[str] | None = None
    network_map: dict[str, str] | None = None
    storage_map: dict[str, str] | None = None
    target_format: TargetFormat | None = None
    mode: MigrationMode | None = None
    schedule_at: datetime | None = None
    clear_schedule: bool = False
    parallelism: int | None = None


@dataclass
class _Resolved:
    """A plan's providers and maps in native ids."""

    source: ProviderRow
    target: ProviderRow
    targets: PlanTargets
    vms: list[tuple[str, str]] = field(default_factory=list)  # (row id, native id)


def get_plan(session: Session, plan_id: str) -> MigrationPlanRow:
    row = session.get(MigrationPlanRow, plan_id)
    if row is None:
        row = session.scalar(select(MigrationPlanRow).where(MigrationPlanRow.name == plan_id))
    if row is None:
        raise NotFoundError(f"migration plan {plan_id} not found")
    return row


def plan_vms(session: Session, plan_id: str) -> list[MigrationVMRow]:
    return list(
        session.scalars(
            select(MigrationVMRow)
            .where(MigrationVMRow.plan_id == plan_id)
            .order_by(MigrationVMRow.position)
        )
    )


def list_plans(session: Session) -> list[MigrationPlanRow]:
    return list(session.scalars(select(MigrationPlanRow).order_by(MigrationPlanRow.created_at)))


def _provider(session: Session, provider_id: str, kind: str, role: str) -> ProviderRow:
    row = session.get(ProviderRow, provider_id)
    if row is None:
        raise NotFoundError(f"provider {provider_id} not found")
    if row.kind != kind:
        raise InvalidInputError(f"the {role} must be a {kind} provider; {row.name} is {row.kind}")
    return row


def _validate(session: Session, plan: MigrationPlanRow, vm_ids: Sequence[str]) -> None:
    """Everything a plan names exists where it should (404/422 naming what does not)."""
    if plan.source_provider_id is None or plan.target_provider_id is None:
        raise InvalidInputError("the plan's source or target provider was removed")
    _provider(session, plan.source_provider_id, "vsphere", "source")
    _provider(session, plan.target_provider_id, "libvirt", "target")
    if not vm_ids:
        raise InvalidInputError("a plan needs at least one VM")
    if len(set(vm_ids)) != len(vm_ids):
        raise InvalidInputError("a VM is named twice")
    for vm_id in vm_ids:
        vm = session.get(VMRow, vm_id)
        if vm is None or vm.provider_id != plan.source_provider_id:
            raise NotFoundError(f"VM {vm_id} not found on the source provider")
    for src, dst in plan.network_map.items():
        for net_id, provider_id, side in (
            (src, plan.source_provider_id, "source"),
            (dst, plan.target_provider_id, "target"),
        ):
            net = session.get(NetworkRow, str(net_id))
            if net is None or net.provider_id != provider_id:
                raise NotFoundError(f"network {net_id} not found on the {side} provider")
    for src, dst in plan.storage_map.items():
        for ds_id, provider_id, side in (
            (src, plan.source_provider_id, "source"),
            (dst, plan.target_provider_id, "target"),
        ):
            ds = session.get(DatastoreRow, str(ds_id))
            if ds is None or ds.provider_id != provider_id:
                raise NotFoundError(f"datastore {ds_id} not found on the {side} provider")


def _set_vms(session: Session, plan: MigrationPlanRow, vm_ids: Sequence[str]) -> None:
    session.execute(delete(MigrationVMRow).where(MigrationVMRow.plan_id == plan.id))
    session.flush()
    for position, vm_id in enumerate(vm_ids):
        vm = session.get(VMRow, vm_id)
        session.add(
            MigrationVMRow(
                plan_id=plan.id,
                position=position,
                vm_id=vm_id,
                vm_name=vm.name if vm else "",
                state=VMState.PENDING.value,
                phases={p.value: PhaseState.PENDING.value for p in phases_for(plan.mode)},
                disks=[],
            )
        )


def _parallelism(value: int) -> int:
    """How many of the plan's VMs migrate at once, checked here too for callers other
    than the API."""
    if not MIN_PARALLELISM <= value <= MAX_PARALLELISM:
        raise InvalidInputError(
            f"parallelism must be {MIN_PARALLELISM} to {MAX_PARALLELISM}, not {value}"
        )
    return value


def create_plan(rt: Runtime, given: PlanInput, requester: str) -> MigrationPlanRow:
    if not given.name or not given.source_provider_id or not given.target_provider_id:
        raise InvalidInputError("a plan needs a name, a source and a target provider")
    plan = MigrationPlanRow(
        name=given.name,
        source_provider_id=given.source_provider_id,
        target_provider_id=given.target_provider_id,
        network_map=dict(given.network_map or {}),
        storage_map=dict(given.storage_map or {}),
        target_format=(given.target_format or TargetFormat.QCOW2).value,
        mode=(given.mode or MigrationMode.COLD).value,
        schedule_at=given.schedule_at,
        parallelism=_parallelism(1 if given.parallelism is None else given.parallelism),
        state=PlanState.DRAFT.value,
        created_by=requester,
    )
    vm_ids = list(given.vm_ids or [])
    try:
        with rt.sessions.begin() as session:
            _validate(session, plan, vm_ids)
            session.add(plan)
            session.flush()
            _set_vms(session, plan, vm_ids)
    except IntegrityError:
        raise ConflictError(f"a migration plan named {given.name!r} exists") from None
    return plan


def update_plan(rt: Runtime, plan_id: str, given: PlanInput) -> MigrationPlanRow:
    """Change a draft plan; a started one is 409."""
    try:
        with rt.sessions.begin() as session:
            plan = get_plan(session, plan_id)
            if not PlanState(plan.state).editable:
                raise ConflictError(f"plan {plan.name} is {plan.state}; only a draft is edited")
            for name in ("name", "source_provider_id", "target_provider_id"):
                value = getattr(given, name)
                if value is not None:
                    setattr(plan, name, value)
            if given.network_map is not None:
                plan.network_map = dict(given.network_map)
            if given.storage_map is not None:
                plan.storage_map = dict(given.storage_map)
            if given.target_format is not None:
                plan.target_format = given.target_format.value
            if given.mode is not None:
                plan.mode = given.mode.value
            if given.schedule_at is not None or given.clear_schedule:
                plan.schedule_at = given.schedule_at
            if given.parallelism is not None:
                plan.parallelism = _parallelism(given.parallelism)
            vm_ids = (
                list(given.vm_ids)
                if given.vm_ids is not None
                else [v.vm_id for v in plan_vms(session, plan.id)]
            )
            _validate(session, plan, vm_ids)
            if given.vm_ids is not None or given.mode is not None:
                _set_vms(session, plan, vm_ids)
            plan.readiness = None
            plan.updated_at = utcnow()
    except IntegrityError:
        raise ConflictError(f"a migration plan named {given.name!r} exists") from None
    return plan


def delete_plan(rt: Runtime, plan_id: str) -> None:
    with rt.sessions.begin() as session:
        plan = get_plan(session, plan_id)
        if plan.state == PlanState.RUNNING.value:
            raise ConflictError(f"plan {plan.name} is running; cancel it first")
        session.delete(plan)


def resolve(session: Session, plan: MigrationPlanRow) -> _Resolved:
    """The plan's providers, native maps and VMs, as they are in the inventory now."""
    if plan.source_provider_id is None or plan.target_provider_id is None:
        raise ConflictError("the plan's source or target provider was removed")
    source = _provider(session, plan.source_provider_id, "vsphere", "source")
    target = _provider(session, plan.target_provider_id, "libvirt", "target")
    networks = {}
    for src, dst in plan.network_map.items():
        src_net, dst_net = session.get(NetworkRow, src), session.get(NetworkRow, str(dst))
        if src_net is None or dst_net is None:
            raise ConflictError("a network of the plan's map is gone; edit the plan")
        networks[src_net.native_id] = dst_net.name
    pools = {}
    for src, dst in plan.storage_map.items():
        src_ds, dst_ds = session.get(DatastoreRow, src), session.get(DatastoreRow, str(dst))
        if src_ds is None or dst_ds is None:
            raise ConflictError("a datastore of the plan's storage map is gone; edit the plan")
        pools[src_ds.name] = dst_ds.native_id
    mounts = dict(source.datastore_mounts or {})
    targets = PlanTargets(networks, pools, plan.target_format, plan.mode, mounts)
    resolved = _Resolved(source, target, targets)
    for entry in plan_vms(session, plan.id):
        vm = session.get(VMRow, entry.vm_id)
        if vm is None:
            raise ConflictError(f"VM {entry.vm_name} is no longer in the inventory")
        resolved.vms.append((vm.id, vm.native_id))
    return resolved


@contextlib.contextmanager
def connected(rt: Runtime, row: ProviderRow) -> Iterator[Provider]:
    """A connected driver for the row's pool; a failure to reach it is a clear 502."""
    provider = open_provider(row.kind, endpoint_for(rt, row))
    try:
        provider.connect()
    except ProviderError as exc:
        raise ProviderFailedError.during(f"reaching provider {row.name}", exc) from None
    try:
        yield provider
    finally:
        provider.close()


def readiness(rt: Runtime, plan_id: str) -> dict[str, Any]:
    """Check every VM of the plan now and store the report on the plan."""
    with rt.sessions() as session:
        plan = get_plan(session, plan_id)
        resolved = resolve(session, plan)
        plan_id = plan.id
    report = compute_readiness(rt, resolved)
    with rt.sessions.begin() as session:
        plan = get_plan(session, plan_id)
        plan.readiness = report
        plan.updated_at = utcnow()
    return report


def compute_readiness(rt: Runtime, resolved: _Resolved) -> dict[str, Any]:
    with connected(rt, resolved.source) as src, connected(rt, resolved.target) as dst:
        assert isinstance(src, VSphereProvider)
        assert isinstance(dst, LibvirtProvider)
        free: dict[str, int] = {}
        for pool in set(resolved.targets.pools.values()):
            try:
                free[pool] = imports.target_pool(dst, pool).free_bytes
            except ProviderError as exc:
                raise ProviderFailedError.during("the readiness check", exc) from None
        reports = []
        names: set[str] = set()
        for vm_id, native in resolved.vms:
            try:
                report = vm_report(src, dst, vm_id, native, resolved.targets, free)
            except ProviderError as exc:
                raise ProviderFailedError.during("the readiness check", exc) from None
            if report.name in names:
                report.add(Severity.BLOCKING, "name_clash", "two VMs of the plan share this name")
            names.add(report.name)
            reports.append(report.as_dict())
    with rt.sessions() as session:
        speed = copy_speed(recent_copy_speeds(session, resolved.source.id))
    for report_of_vm in reports:
        report_of_vm["estimate_s"] = speed.estimate_s(
            report_of_vm["transfer_bytes"], report_of_vm["estimate_s"]
        )
    return {
        "checked_at": utcnow().isoformat(),
        "ready": all(r["ready"] for r in reports),
        "vms": reports,
        "transfer_bytes": sum(r["transfer_bytes"] for r in reports),
        "estimate_s": round(sum(r["estimate_s"] for r in reports), 1),
        "estimate_basis": speed.basis,
        "estimate_mib_s": speed.mib_s,
        "estimate_copies": speed.copies,
    }


def recent_copy_speeds(session: Session, source_provider_id: str) -> list[float]:
    """The MiB/s of the disk copies made from this source pool, latest first (as the
    plans' VM rows keep them; a rolled-back VM's are gone with its copy)."""
    rows = session.scalars(
        select(MigrationVMRow.disks)
        .join(MigrationPlanRow, MigrationPlanRow.id == MigrationVMRow.plan_id)
        .where(MigrationPlanRow.source_provider_id == source_provider_id)
        .order_by(MigrationVMRow.updated_at.desc())
        .limit(RECENT_COPIES)
    )
    speeds = (disk.get("mib_s") for disks in rows for disk in disks if disk.get("state") == "done")
    return [float(mib_s) for mib_s in speeds if isinstance(mib_s, int | float)]


def blocking_message(report: dict[str, Any]) -> str:
    lines = [
        f"{vm['name']}: {f['message']}"
        for vm in report["vms"]
        for f in vm["findings"]
        if f["severity"] == "blocking"
    ]
    return "the plan cannot start: " + "; ".join(lines)


def _submit(
    rt: Runtime, plan_id: str, kind: TaskKind, requester: str, allowed: set[PlanState]
) -> TaskRow:
    """The plan's task, with its source VMs locked, saved with the plan's new state."""
    with rt.sessions() as session:
        plan = get_plan(session, plan_id)
        if PlanState(plan.state) not in allowed:
            wanted = ", ".join(sorted(s.value for s in allowed))
            raise ConflictError(f"plan {plan.name} is {plan.state}; this needs {wanted}")
        resolved = resolve(session, plan)
        plan_id = plan.id
        migrated = {v.vm_id for v in plan_vms(session, plan_id) if v.state == VMState.MIGRATED}
    if kind is TaskKind.MIGRATION_RUN:
        # A resume checks the VMs it will run: a migrated one now clashes with its copy.
        todo = [vm for vm in resolved.vms if vm[0] not in migrated]
        report = compute_readiness(rt, replace(resolved, vms=todo))
        with rt.sessions.begin() as session:
            get_plan(session, plan_id).readiness = report
        if not report["ready"]:
            raise PlanNotReadyError(blocking_message(report))
    row = tasks.new_task(kind, {"plan_id": plan_id}, requester, provider_id=resolved.source.id)
    try:
        with rt.sessions.begin() as session:
            plan = get_plan(session, plan_id)
            if PlanState(plan.state) not in allowed:  # changed meanwhile
                raise ConflictError(f"plan {plan.name} is {plan.state}")
            session.add(row)
            session.flush()
            session.add_all(VMLockRow(key=vm_id, task_id=row.id) for vm_id, _ in resolved.vms)
            plan.state = PlanState.RUNNING.value
            plan.task_id = row.id
            plan.updated_at = utcnow()
            record_task(session, row, TaskEvent.QUEUED)
    except IntegrityError:
        raise ConflictError("a VM of the plan is locked by another task") from None
    tasks.enqueue(row)
    return row


def start_plan(rt: Runtime, plan_id: str, requester: str) -> TaskRow:
    """Check readiness now and, with no blocking finding, start the migration task."""
    return _submit(rt, plan_id, TaskKind.MIGRATION_RUN, requester, {PlanState.DRAFT})


def resume_plan(rt: Runtime, plan_id: str, requester: str) -> TaskRow:
    """Run a failed, cancelled or rolled-back plan again: its VMs not yet migrated start
    over from their first pending phase (a rollback resets what it undid)."""
    return _submit(rt, plan_id, TaskKind.MIGRATION_RUN, requester, _RESUMABLE)


def rollback_plan(rt: Runtime, plan_id: str, requester: str) -> TaskRow:
    """Power every source back as it was, remove every target the plan made."""
    return _submit(rt, plan_id, TaskKind.MIGRATION_ROLLBACK, requester, _ROLLBACKABLE)


def cancel_plan(rt: Runtime, plan_id: str) -> TaskRow:
    with rt.sessions() as session:
        plan = get_plan(session, plan_id)
        task_id = plan.task_id
        if plan.state != PlanState.RUNNING.value or task_id is None:
            raise ConflictError(f"plan {plan.name} is {plan.state}; nothing to cancel")
    return tasks.cancel_task(rt, task_id)
