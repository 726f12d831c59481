"""The cold pipeline: each phase of each VM is one checkpointed DBOS step of the plan's
task, so a control-plane crash resumes at the phase it interrupted (the phases before it
are not run again) and every phase is safe to repeat:

power_off  graceful (ShutdownGuest), then forced after GRACEFUL_TIMEOUT_S
copy       per disk: headers checked again, an empty target volume, qemu-img streaming
           from the datastore's HTTP interface, or reading the file where this host
           mounts the datastore (progress persisted: bytes, MiB/s, ETA)
virtio     make the guest boot on virtio (tessera.migration.virtio)
define     the libvirt domain: vCPUs, memory, firmware, disks in order, MACs in NIC order
boot       start it, with a fresh serial log
verify     the copy's digest (qemu-img compare, source vs target, done at the end of
           copy, before anything boots from it) and, for the lab guest, the marker and
           the source's MACs in order on the serial log
cutover    annotate the source, autostart the target

Each VM is a child workflow of the plan's task (id: the task workflow's, plus the VM's
position), up to the plan's `parallelism` at once, each starting as another ends. A
failure or cancel at any phase rolls that VM back (target removed, source annotation
removed, source powered as it was) and ends its child; the other VMs go on (a cancel
reaches them all, through the task's cancel flag, and starts no new one). The plan then
ends failed (or cancelled), the task's error counting and naming the VMs that did not
migrate; each shows its failed phase, and `resume` runs only what is not migrated.

Warm mode (tessera.migration.warm) copies first, in rounds while the source runs (each
round its own checkpointed step), then powers off and runs `final_sync`; the phases
after it are the same.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

from dbos import DBOS, SetWorkflowID, WorkflowHandle

from tessera.db.rows import MigrationPlanRow, MigrationVMRow, ProviderRow, TaskRow, utcnow
from tessera.domain.events import EventDraft, migration_phase_kind
from tessera.errors import ProviderFailedError
from tessera.events.recorder import record
from tessera.inventory.pools import endpoint_for
from tessera.lab.guest import DONE, MARKER, NIC_PREFIX
from tessera.migration import disks, transfer, virtio, warm
from tessera.migration.model import (
    MigrationMode,
    Phase,
    PhaseState,
    PlanState,
    SourceVM,
    TargetDisk,
    TargetDomain,
    TargetNic,
    VMState,
    phases_for,
    volume_name,
)
from tessera.migration.readiness import check_source
from tessera.migration.service import connected, get_plan, plan_vms, resolve
from tessera.providers import open_provider
from tessera.providers.faults import ProviderError
from tessera.providers.libvirt import imports
from tessera.providers.libvirt.driver import LibvirtProvider
from tessera.providers.vsphere import export
from tessera.providers.vsphere.driver import VSphereProvider
from tessera.runtime import Runtime
from tessera.tasks.engine import TaskEngine
from tessera.tasks.workflows import CANCELLED_CODE, StepFailed

log = logging.getLogger(__name__)

GRACEFUL_TIMEOUT_S = 30.0
VERIFY_TIMEOUT_S = 240.0
_PROGRESS_EVERY_S = 0.5
# A rollback that cannot reach a pool tries again after each wait: a network blip must
# not leave the source powered off.
ROLLBACK_RETRY_WAITS_S = (1.0, 2.0, 4.0, 8.0)
# How often the plan looks whether one of its running VMs has ended.
_WAIT_POLL_S = 0.5
_ENDED = {"SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"}


def _rt() -> Runtime:
    return TaskEngine.current().rt


def run_step(task_id: str, step: str) -> None:
    """The task's one plan step: "migrate-vms" (its VMs, up to the plan's parallelism at
    once, each phase by phase) or "unmigrate"."""
    begun = begin_step(task_id, step)
    if step == "unmigrate":
        for position, _ in begun.vms:
            rollback_step(task_id, position, None, VMState.ROLLED_BACK.value)
        end_step(task_id, PlanState.ROLLED_BACK.value)
        return
    delay = schedule_delay_step(begun.plan_id)
    if delay > 0:
        DBOS.sleep(delay)
    outcomes = _migrate_vms(task_id, begun)
    if len(outcomes) == len(begun.vms) and all(o.state == VMState.MIGRATED.value for o in outcomes):
        end_step(task_id, PlanState.SUCCEEDED.value)
        return
    failure = _plan_failure(begun, outcomes)
    cancelled = failure.code == CANCELLED_CODE
    end_step(task_id, (PlanState.CANCELLED if cancelled else PlanState.FAILED).value)
    raise failure


@dataclass(frozen=True, slots=True)
class _Begun:
    """What a plan step works on: the plan, its VMs (position, name) still to do, its
    mode and how many VMs may migrate at once."""

    plan_id: str
    vms: list[tuple[int, str]]
    mode: str
    parallelism: int


@dataclass(frozen=True, slots=True)
class VMOutcome:
    """How one VM's child workflow ended: migrated, or failed or cancelled (then rolled
    back) with the error code and message of its failed phase."""

    position: int
    state: str
    code: str = ""
    message: str = ""


def _migrate_vms(task_id: str, begun: _Begun) -> list[VMOutcome]:
    """Run one child workflow per VM, at most `parallelism` at once, each starting when
    another ends; none starts once a cancel was asked. The ids are derived from this
    workflow's, and starting and awaiting them are checkpoints, so a recovered plan finds
    its children (themselves recovered) instead of starting them again."""
    parent = DBOS.workflow_id
    waiting = [position for position, _ in begun.vms]
    running: dict[str, WorkflowHandle[VMOutcome]] = {}
    outcomes: list[VMOutcome] = []
    while waiting or running:
        while waiting and len(running) < begun.parallelism and not cancel_asked_step(task_id):
            position = waiting.pop(0)
            with SetWorkflowID(f"{parent}:vm-{position}"):
                handle = DBOS.start_workflow(migrate_vm, task_id, position, begun.mode)
            running[handle.workflow_id] = handle
        if not running:
            break
        ended = wait_any_step(list(running))
        handle = running.pop(ended)
        try:
            outcomes.append(handle.get_result())
        except Exception as exc:  # a bug in the child: its VM counts as failed
            log.error("migration of one VM ended unexpectedly", exc_info=exc)
            position = int(ended.rpartition(":vm-")[2])
            outcomes.append(VMOutcome(position, VMState.FAILED.value, "internal", str(exc)))
    return outcomes


def _plan_failure(begun: _Begun, outcomes: list[VMOutcome]) -> StepFailed:
    """The task's error when not every VM migrated: with one VM, its own error; with
    more, the counts and each VM that did not migrate with its error. A VM left unstarted
    (only a cancel does that) or cancelled makes it a cancel."""
    names = dict(begun.vms)
    failed = [o for o in outcomes if o.state != VMState.MIGRATED.value]
    not_started = len(begun.vms) - len(outcomes)
    cancelled = bool(not_started) or any(o.code == CANCELLED_CODE for o in failed)
    if len(begun.vms) == 1 and failed:
        return StepFailed(failed[0].code, failed[0].message)
    codes = {o.code for o in failed}
    if cancelled:
        code = CANCELLED_CODE
    elif len(codes) == 1:
        code = codes.pop()
    else:
        code = "migration_failed"  # the VMs failed in different ways; the message says each
    counts = f"{len(outcomes) - len(failed)} of {len(begun.vms)} VMs migrated"
    if failed:
        counts += f", {len(failed)} failed or cancelled"
    if not_started:
        counts += f", {not_started} not started (cancelled)"
    details = "; ".join(f"{names.get(o.position, o.position)}: {o.message}" for o in failed)
    return StepFailed(code, f"{counts}" + (f": {details}" if details else ""))


@DBOS.workflow(name="tessera.migration.vm")
def migrate_vm(task_id: str, position: int, mode: str) -> VMOutcome:
    """One VM of the plan, phase by phase (each a checkpointed step); a failed or
    cancelled phase rolls this VM back and ends it, the plan's other VMs go on."""
    for phase in phases_for(mode):
        try:
            while not phase_step(task_id, position, phase.value):
                pass  # a warm copy round; the next one is a step of its own
        except StepFailed as exc:
            cancelled = exc.code == CANCELLED_CODE
            outcome = VMState.CANCELLED if cancelled else VMState.FAILED
            message = exc.message
            try:
                rollback_step(task_id, position, phase.value, outcome.value)
            except StepFailed as undo:
                message = f"{message}; the rollback failed too: {undo.message}"
            return VMOutcome(position, outcome.value, exc.code, message)
    return VMOutcome(position, VMState.MIGRATED.value)


@DBOS.step(name="tessera.migration.wait-any")
def wait_any_step(workflow_ids: list[str]) -> str:
    """The first of the running VM workflows to end (a checkpoint: a recovered plan
    awaits them in the same order)."""
    while True:
        for workflow_id in workflow_ids:
            status = DBOS.get_workflow_status(workflow_id)
            if status is None or status.status in _ENDED:
                return workflow_id
        time.sleep(_WAIT_POLL_S)


@DBOS.step(name="tessera.migration.cancel-asked")
def cancel_asked_step(task_id: str) -> bool:
    with _rt().sessions() as session:
        return bool(_task(session, task_id).cancel_requested)


@DBOS.step(name="tessera.migration.begin")
def begin_step(task_id: str, step: str) -> _Begun:
    """The plan and the VMs this step works on: to migrate, those not migrated; to undo,
    those a migration touched."""
    with _rt().sessions() as session:
        task = _task(session, task_id)
        plan = get_plan(session, str(task.params["plan_id"]))
        entries = plan_vms(session, plan.id)
        if step == "unmigrate":
            todo = [(v.position, v.vm_name) for v in entries if v.state != VMState.PENDING.value]
        else:
            todo = [(v.position, v.vm_name) for v in entries if v.state != VMState.MIGRATED.value]
        return _Begun(plan.id, todo, plan.mode, max(1, plan.parallelism or 1))


@DBOS.step(name="tessera.migration.schedule")
def schedule_delay_step(plan_id: str) -> float:
    with _rt().sessions() as session:
        at = get_plan(session, plan_id).schedule_at
    if at is None:
        return 0.0
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return max(0.0, (at - utcnow()).total_seconds())


class _Transient(StepFailed):
    """A step failed because a pool could not be reached for now; a new try may work."""


def _task(session: Any, task_id: str) -> TaskRow:
    row: TaskRow | None = session.get(TaskRow, task_id)
    if row is None:
        raise StepFailed("not_found", f"task {task_id} is gone")
    return row


class _Ctx:
    """One VM's phase: the rows it updates and the connected providers."""

    def __init__(
        self,
        rt: Runtime,
        task_id: str,
        plan: MigrationPlanRow,
        vm_row_id: str,
        native_id: str,
        src: VSphereProvider,
        dst: LibvirtProvider,
        targets: Any,
        target_row: ProviderRow,
    ) -> None:
        self.rt, self.task_id, self.plan_id, self.plan_name = rt, task_id, plan.id, plan.name
        self.vm_row_id, self.native_id = vm_row_id, native_id
        self.src, self.dst, self.targets, self.target_row = src, dst, targets, target_row
        self.target_format = plan.target_format
        self.mode = plan.mode

    def entry(self, session: Any, position: int) -> MigrationVMRow:
        found = session.query(MigrationVMRow).filter_by(plan_id=self.plan_id, position=position)
        row: MigrationVMRow = found.one()
        return row

    def cancel_asked(self) -> bool:
        with self.rt.sessions() as session:
            return bool(_task(session, self.task_id).cancel_requested)


@contextlib.contextmanager
def _context(task_id: str, position: int, *, target_required: bool = True) -> Iterator[_Ctx]:
    rt = _rt()
    with rt.sessions() as session:
        task = _task(session, task_id)
        plan = get_plan(session, str(task.params["plan_id"]))
        resolved = resolve(session, plan)
        session.expunge(plan)
    vm_row_id, native = resolved.vms[position]
    try:
        with (
            connected(rt, resolved.source) as src,
            _target(rt, resolved.target, target_required) as dst,
        ):
            assert isinstance(src, VSphereProvider)
            assert isinstance(dst, LibvirtProvider)
            yield _Ctx(
                rt, task_id, plan, vm_row_id, native, src, dst, resolved.targets, resolved.target
            )
    except ProviderError as exc:
        raise (_Transient if exc.retryable else StepFailed)(exc.code, exc.message) from None
    except Exception as exc:
        if isinstance(exc, StepFailed):
            raise
        code = getattr(exc, "code", "internal")
        failed = _Transient if getattr(exc, "retryable", False) else StepFailed
        raise failed(str(code), str(getattr(exc, "message", exc))) from None


@contextlib.contextmanager
def _target(rt: Runtime, row: ProviderRow, required: bool) -> Iterator[Any]:
    """The target connected; unless `required`, an unreachable one comes unconnected
    (each of its calls then fails), so a rollback still restores the source first."""
    with contextlib.ExitStack() as stack:
        try:
            dst = stack.enter_context(connected(rt, row))
        except ProviderFailedError:
            if required:
                raise
            dst = open_provider(row.kind, endpoint_for(rt, row))
        yield dst


def _event(
    session: Any, ctx: _Ctx, entry: MigrationVMRow, phase: str, state: str, msg: str
) -> None:
    task = _task(session, ctx.task_id)
    record(
        session,
        EventDraft(
            kind=migration_phase_kind(state),
            actor=task.requester,
            object_kind="migration",
            object_id=ctx.plan_id,
            object_name=ctx.plan_name,
            provider_id=ctx.target_row.id,
            task_id=ctx.task_id,
            message=f"{entry.vm_name}: {phase} {state}" + (f" ({msg})" if msg else ""),
            after={"vm": entry.vm_name, "phase": phase, "state": state},
        ),
    )


def _mark(ctx: _Ctx, position: int, phase: str, state: PhaseState, message: str = "") -> None:
    with ctx.rt.sessions.begin() as session:
        entry = ctx.entry(session, position)
        entry.phases = {**entry.phases, phase: state.value}
        entry.phase = phase
        entry.state = VMState.FAILED.value if state is PhaseState.FAILED else VMState.RUNNING.value
        if state is PhaseState.FAILED:
            entry.error = message
        elif phase == Phase.CUTOVER.value and state is PhaseState.DONE:
            entry.state = VMState.MIGRATED.value
        entry.updated_at = utcnow()
        _event(session, ctx, entry, phase, state.value, message)
        task = _task(session, ctx.task_id)
        done = sum(
            1
            for v in plan_vms(session, ctx.plan_id)
            for s in v.phases.values()
            if s == PhaseState.DONE.value
        )
        total = len(plan_vms(session, ctx.plan_id)) * len(phases_for(ctx.mode))
        task.progress = min(99, done * 100 // max(total, 1))
        task.updated_at = utcnow()


@DBOS.step(name="tessera.migration.phase")
def phase_step(task_id: str, position: int, phase: str) -> bool:
    """One phase of one VM (a phase already done, an earlier attempt's, is skipped);
    False when it needs another call (a warm copy round that did not converge)."""
    with _context(task_id, position) as ctx:
        with ctx.rt.sessions() as session:
            entry = ctx.entry(session, position)
            if entry.phases.get(phase) == PhaseState.DONE.value:
                return True
        if ctx.cancel_asked():
            raise StepFailed(CANCELLED_CODE, f"cancelled before {phase}")
        _mark(ctx, position, phase, PhaseState.RUNNING)
        warm_copy = ctx.mode == MigrationMode.WARM.value and phase == Phase.COPY.value
        try:
            message = (warm.copy_round if warm_copy else _PHASES[Phase(phase)])(ctx, position)
        except transfer.Cancelled:
            _mark(ctx, position, phase, PhaseState.FAILED, "cancelled")
            raise StepFailed(CANCELLED_CODE, f"cancelled during {phase}") from None
        except (ProviderError, transfer.TransferError, disks.DiskRefused) as exc:
            text = exc.message
            _mark(ctx, position, phase, PhaseState.FAILED, text)
            code = exc.code if isinstance(exc, ProviderError) else f"{phase}_failed"
            raise StepFailed(code, f"{phase} failed: {text}") from None
        except StepFailed as exc:
            _mark(ctx, position, phase, PhaseState.FAILED, exc.message)
            raise
        if isinstance(message, warm.Round):
            with ctx.rt.sessions.begin() as session:
                _event(session, ctx, ctx.entry(session, position), phase, "round", message.text)
            if not message.converged:
                return False
            message = message.text
        _mark(ctx, position, phase, PhaseState.DONE, message)
        return True


def _source(ctx: _Ctx) -> SourceVM:
    return export.source_vm(ctx.src, ctx.native_id)


def _power_off(ctx: _Ctx, position: int) -> str:
    vm = _source(ctx)
    with ctx.rt.sessions.begin() as session:
        entry = ctx.entry(session, position)
        if entry.original_power is None:  # a repeat must not take "stopped" as original
            entry.original_power = vm.power_state
    ctx.src.stop_vm(
        ctx.native_id,
        op_key=f"{ctx.task_id}:{position}:power_off",
        graceful_timeout_s=GRACEFUL_TIMEOUT_S,
    )
    return f"was {vm.power_state}"


def _serial_log(ctx: _Ctx, vm: SourceVM) -> Path:
    pools = list(ctx.targets.pools.values())
    pool = imports.target_pool(ctx.dst, pools[0])
    folder = Path(f"{pool.path.rstrip('/')}.serial")
    return folder / f"mig-{ctx.plan_id[:8]}-{vm.name}.log"


def _copy(ctx: _Ctx, position: int) -> str:
    vm = _source(ctx)
    with ctx.rt.sessions() as session:
        previous = {d["index"]: d for d in ctx.entry(session, position).disks}
    progress: list[dict[str, Any]] = []
    rates = []
    for index, disk in enumerate(vm.disks):
        pool_id = ctx.targets.pools[disk.datastore]
        pool = imports.target_pool(ctx.dst, pool_id)
        volume = volume_name(ctx.plan_id, position, index, ctx.target_format)
        done = previous.get(index, {})
        if done.get("state") == "done" and done.get("volume") == volume:
            progress.append(done)
            continue
        checked = check_source(ctx.src, vm, index, pool.free_bytes, ctx.targets.copy_mounts)
        image, source = checked.image, checked.source
        path = Path(
            imports.fresh_volume(ctx.dst, pool_id, volume, image.virtual_size, ctx.target_format)
        )
        if not path.parent.is_dir():
            raise StepFailed(
                "target_storage_unreachable",
                f"the worker cannot see {pool.name}'s folder {pool.path}; run it where the "
                "pool's storage is mounted",
            )
        entry: dict[str, Any] = {
            "index": index,
            "ds_path": disk.ds_path,
            "volume": volume,
            "format": image.fmt,
            "state": "copying",
            "total_bytes": image.virtual_size,
            "transfer_bytes": checked.file_bytes,
            "done_bytes": 0,
            "mib_s": 0.0,
            "eta_s": None,
        }

        def report(p: transfer.Progress, entry: dict[str, Any] = entry) -> None:
            entry.update(done_bytes=p.done_bytes, mib_s=p.mib_s, eta_s=p.eta_s)
            _save_disks(ctx, position, [*progress, entry])

        final = transfer.convert(
            source,
            image.fmt,
            path,
            ctx.target_format,
            total_bytes=image.virtual_size,
            on_progress=report,
            should_stop=ctx.cancel_asked,
            poll_s=_PROGRESS_EVERY_S,
        )
        # Digest, before anything boots from the copy: the guest sees the same bytes.
        if not transfer.compare(source, image.fmt, path, ctx.target_format):
            raise StepFailed("digest_mismatch", f"disk {index}'s copy differs from the source")
        entry.update(state="done", eta_s=0.0, mib_s=final.mib_s, identical=True)
        progress.append(entry)
        _save_disks(ctx, position, progress)
        rates.append(f"disk {index} {final.mib_s} MiB/s from the {checked.transport}")
    return ", ".join(rates)


def _save_disks(ctx: _Ctx, position: int, disks_now: list[dict[str, Any]]) -> None:
    with ctx.rt.sessions.begin() as session:
        entry = ctx.entry(session, position)
        entry.disks = [dict(d) for d in disks_now]
        entry.updated_at = utcnow()


def _volume_paths(ctx: _Ctx, position: int) -> list[Path]:
    vm = _source(ctx)
    paths = []
    for index, disk in enumerate(vm.disks):
        pool = imports.target_pool(ctx.dst, ctx.targets.pools[disk.datastore])
        name = volume_name(ctx.plan_id, position, index, ctx.target_format)
        paths.append(Path(pool.path) / name)
    return paths


def _virtio(ctx: _Ctx, position: int) -> str:
    """The road taken (and virt-v2v-in-place's progress lines, when it ran) is the
    phase's message, so the plan task's events keep it."""
    paths = _volume_paths(ctx, position)
    if not paths:
        return "no disk"
    name = f"tessera-{ctx.plan_id[:8]}-{position}"
    try:
        result = virtio.prepare(name, paths, ctx.target_format)
    except virtio.ConversionFailed as exc:
        raise StepFailed("virtio_failed", exc.message) from None
    with ctx.rt.sessions.begin() as session:
        entry = ctx.entry(session, position)
        entry.phases = {**entry.phases, "virtio_lab_guest": result.prints_markers}
    return result.message


def _define(ctx: _Ctx, position: int) -> str:
    vm = _source(ctx)
    serial = _serial_log(ctx, vm)
    serial.parent.mkdir(parents=True, exist_ok=True)
    pools = {p: imports.target_pool(ctx.dst, p).name for p in set(ctx.targets.pools.values())}
    spec = TargetDomain(
        name=vm.name,
        cpu_count=vm.cpu_count,
        memory_mib=vm.memory_mib,
        firmware=vm.firmware,
        disks=tuple(
            TargetDisk(
                pools[ctx.targets.pools[d.datastore]],
                volume_name(ctx.plan_id, position, i, ctx.target_format),
                ctx.target_format,
            )
            for i, d in enumerate(vm.disks)
        ),
        nics=tuple(TargetNic(ctx.targets.networks[n.network_native_id], n.mac) for n in vm.nics),
        serial_log=str(serial),
        description=f"migrated from vSphere VM {vm.name} by Tessera plan {ctx.plan_name}",
    )
    uuid = imports.define(ctx.dst, spec, op_key=f"{ctx.plan_id}:{position}:define")
    with ctx.rt.sessions.begin() as session:
        ctx.entry(session, position).target_native_id = uuid
    return uuid


def _target_id(ctx: _Ctx, position: int) -> str:
    with ctx.rt.sessions() as session:
        uuid = ctx.entry(session, position).target_native_id
    if uuid is None:
        raise StepFailed("internal", "the target VM was not defined")
    return uuid


def _boot(ctx: _Ctx, position: int) -> str:
    vm = _source(ctx)
    uuid = _target_id(ctx, position)
    if imports.state(ctx.dst, uuid) != "running":
        serial = _serial_log(ctx, vm)
        serial.unlink(missing_ok=True)
        ctx.dst.start_vm(uuid, op_key=f"{ctx.task_id}:{position}:boot")
    return "started"


def _verify(ctx: _Ctx, position: int) -> str:
    vm = _source(ctx)
    with ctx.rt.sessions() as session:
        entry = ctx.entry(session, position)
        notes = [f"disk {d['index']} identical" for d in entry.disks if d.get("identical")]
    with ctx.rt.sessions() as session:
        lab_guest = bool(ctx.entry(session, position).phases.get("virtio_lab_guest"))
    if lab_guest:
        macs = _wait_serial(ctx, _serial_log(ctx, vm))
        wanted = [n.mac.lower() for n in vm.nics]
        if macs != wanted:
            raise StepFailed(
                "fidelity_mismatch", f"the guest saw MACs {macs}, the source has {wanted}"
            )
        notes.append(f"guest booted and saw MACs {', '.join(macs)} in order")
    elif imports.state(ctx.dst, _target_id(ctx, position)) == "gone":
        raise StepFailed("boot_failed", "the target VM is gone")
    return "; ".join(notes)


def _wait_serial(ctx: _Ctx, serial: Path) -> list[str]:
    deadline = time.monotonic() + VERIFY_TIMEOUT_S
    while time.monotonic() < deadline:
        text = serial.read_text(errors="replace") if serial.exists() else ""
        if MARKER in text and DONE in text:
            return [
                line.split()[-1].lower()
                for line in text.splitlines()
                if line.strip().startswith(NIC_PREFIX)
            ]
        if ctx.cancel_asked():
            raise transfer.Cancelled
        time.sleep(0.5)
    raise StepFailed("boot_failed", f"the guest printed no marker within {VERIFY_TIMEOUT_S:.0f} s")


def _cutover(ctx: _Ctx, position: int) -> str:
    vm = _source(ctx)
    uuid = _target_id(ctx, position)
    export.annotate(
        ctx.src,
        ctx.native_id,
        f"migrated to {ctx.target_row.name} as {vm.name} ({uuid}) by plan {ctx.plan_name} "
        f"at {utcnow().isoformat(timespec='seconds')}",
    )
    imports.set_autostart(ctx.dst, uuid)
    with ctx.rt.sessions() as session:
        original = ctx.entry(session, position).original_power
    if original != "running" and imports.state(ctx.dst, uuid) == "running":
        ctx.dst.stop_vm(uuid, op_key=f"{ctx.task_id}:{position}:cutover")
    return f"target {uuid}"


_PHASES = {
    Phase.POWER_OFF: _power_off,
    Phase.COPY: _copy,
    Phase.FINAL_SYNC: warm.final_sync,
    Phase.VIRTIO: _virtio,
    Phase.DEFINE: _define,
    Phase.BOOT: _boot,
    Phase.VERIFY: _verify,
    Phase.CUTOVER: _cutover,
}


@DBOS.step(name="tessera.migration.rollback")
def rollback_step(task_id: str, position: int, failed_phase: str | None, outcome: str) -> None:
    """Undo one VM: our annotation removed, warm mode's snapshots and CBT as they were,
    the source powered as it was (first: even with the target host down), then its
    target (domain, volumes, serial log) removed. Phases reset to pending; the failed
    phase stays named on the VM. A pool out of reach is waited for a while (every part
    is safe to repeat)."""
    for wait in ROLLBACK_RETRY_WAITS_S:
        try:
            _rollback(task_id, position, failed_phase, outcome)
            return
        except _Transient as exc:
            log.warning("rollback: %s; trying again in %.0f s", exc.message, wait)
            time.sleep(wait)
    _rollback(task_id, position, failed_phase, outcome)


def _rollback(task_id: str, position: int, failed_phase: str | None, outcome: str) -> None:
    with _context(task_id, position, target_required=False) as ctx:
        vm = _source(ctx)
        with ctx.rt.sessions() as session:
            entry = ctx.entry(session, position)
            uuid, original = entry.target_native_id, entry.original_power
            staged_only = uuid is None and warm.staged_only(ctx.mode, entry.phases)
        export.annotate(ctx.src, ctx.native_id, None)
        if ctx.mode == MigrationMode.WARM.value:
            warm.restore_source(ctx, position)
        if original == "running" and vm.power_state != "running":
            ctx.src.start_vm(ctx.native_id, op_key=f"{task_id}:{position}:rollback")
        if uuid is not None:
            ctx.dst.delete_vm(uuid, op_key=f"{task_id}:{position}:rollback")
        if ctx.mode == MigrationMode.WARM.value:
            warm.drop_staging(ctx, position, vm)
        for index, disk in enumerate(vm.disks):
            pool = ctx.targets.pools.get(disk.datastore)
            if pool is not None and not staged_only:
                name = volume_name(ctx.plan_id, position, index, ctx.target_format)
                imports.drop_volume(ctx.dst, pool, name)
        if ctx.targets.pools and not staged_only:
            _serial_log(ctx, vm).unlink(missing_ok=True)
        with ctx.rt.sessions.begin() as session:
            entry = ctx.entry(session, position)
            entry.phases = {p.value: PhaseState.PENDING.value for p in phases_for(ctx.mode)}
            entry.disks = []
            entry.target_native_id = None
            entry.original_power = None
            entry.phase = failed_phase or entry.phase
            entry.state = outcome
            entry.updated_at = utcnow()
            _event(session, ctx, entry, failed_phase or "all", "rolled_back", "")


@DBOS.step(name="tessera.migration.end")
def end_step(task_id: str, state: str) -> None:
    """The plan's state once its step is over."""
    with _rt().sessions.begin() as session:
        plan = get_plan(session, str(_task(session, task_id).params["plan_id"]))
        plan.state = state
        plan.updated_at = utcnow()
