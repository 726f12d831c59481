"""The task workflow: DBOS checkpoints each step, so a crash re-runs at most the step it
interrupted, and every step is safe to re-run (the providers' `op_key` is
f"{task_id}:{step}"; our row writes set values rather than add to them).

One workflow serves every kind of task: `begin` fixes the plan of steps from the task's
parameters, then each step runs in order. Cancellation is cooperative: a step checks the
task's cancel flag before it starts, never in the middle of a provider call. A create
that is cancelled or fails after its VM exists deletes that VM (`rollback`), so nothing
half-built is left behind; if that delete fails too, the task's error says so.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from dbos import DBOS
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from tessera.db.rows import PlacementClaimRow, ProviderRow, TaskRow, VMLockRow, VMRow, utcnow
from tessera.domain.events import TaskEvent
from tessera.domain.inventory import ObjectKind, ObjectRemoved, ObjectUpserted, VMInfo
from tessera.domain.operations import BridgeTarget, DiskSpec, NicSpec, Placement, VMCreateSpec
from tessera.domain.tasks import PowerAction, StepState, TaskKind, TaskState
from tessera.errors import TesseraError
from tessera.events.recorder import record_task
from tessera.inventory import adoption
from tessera.inventory.pools import endpoint_for, sync_provider
from tessera.inventory.reconcile import apply_changes
from tessera.network import ports
from tessera.network import tasks as network_tasks
from tessera.providers import open_provider
from tessera.providers.base import Provider
from tessera.providers.faults import ProviderError, ProviderInvalidRequest, ProviderNotFound
from tessera.runtime import Runtime
from tessera.scheduler.inventory import GROUP_PARAM
from tessera.scheduler.service import join_group
from tessera.tasks import bulk
from tessera.tasks.engine import WORKFLOW_NAME, QueuedTask, TaskEngine

log = logging.getLogger(__name__)
_T = TypeVar("_T")

CANCELLED_CODE = "cancelled"
# Steps that run even when cancel was asked: "refresh" records a change already made;
# the bulk steps see the cancel themselves and stop handing out work.
_UNCANCELLABLE = frozenset({"refresh", "fan-out", "tag", "adopt", "release"})


class StepFailed(Exception):
    """A step's failure as DBOS stores it: plain positional args, so it pickles."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class StepContext:
    """What a step body gets: the task, a connected provider and the runtime."""

    rt: Runtime
    task_id: str
    step: str
    provider_id: str
    params: dict[str, Any]
    provider: Provider

    @property
    def op_key(self) -> str:
        return f"{self.task_id}:{self.step}"

    @property
    def vm_native_id(self) -> str:
        native = self.params.get("vm_native_id")
        if not isinstance(native, str):
            raise StepFailed("internal", "the task has no VM yet")
        return native


def plan_of(kind: TaskKind, params: dict[str, Any]) -> list[str]:
    """The steps of a task, in order; one per disk and per NIC, so a crash re-runs one."""
    if kind is TaskKind.VM_CREATE:
        steps = ["create"]
        steps += [f"disk-{i}" for i in range(len(params["disks"]))]
        steps += [f"nic-{i}" for i in range(len(params["nics"]))]
        if params.get("power_on"):
            steps.append("power-on")
        return [*steps, "refresh"]
    if kind in network_tasks.KINDS:
        return network_tasks.plan(kind, params)
    if kind in _LOCAL_PLANS:
        return list(_LOCAL_PLANS[kind])
    return [_MAIN_STEP[kind], "refresh"]


@DBOS.workflow(name=WORKFLOW_NAME)
def run_task(task_id: str) -> str:
    """Run the task's plan; always ends in `finish`, which frees the task's VM locks."""
    plan = begin_step(task_id)
    try:
        for step in plan:
            if step == "collect":
                _collect(task_id)
            elif step == "fan-out":
                for child in fan_out_step(task_id):
                    TaskEngine.current().enqueue_workflow(child)
            elif step in _LOCAL_STEPS:
                local_step(task_id, step)
            elif network_tasks.owns(step):
                network_step(task_id, step)
            elif step in _MIGRATION_STEPS:
                from tessera.migration.workflow import run_step

                run_step(task_id, step)
            else:
                provider_step(task_id, step)
    except Exception as exc:
        code, message = _describe(exc)
        state = TaskState.CANCELLED if code == CANCELLED_CODE else TaskState.FAILED
        if plan[0] == "create":
            message += rollback_step(task_id)
        elif plan[0] == "add-nic":
            message += nic_rollback_step(task_id)
        elif network_tasks.owns(plan[0]):
            message += network_rollback_step(task_id)
        return finish_step(task_id, state.value, code, message)
    return finish_step(task_id, TaskState.SUCCEEDED.value, None, None)


def _describe(exc: Exception) -> tuple[str, str]:
    """Error code and message of a failed step; a bug still ends the task cleanly (its
    locks freed) rather than leaving it running."""
    if isinstance(exc, StepFailed):
        return exc.code, exc.message
    log.error("task step failed unexpectedly", exc_info=exc)
    return "internal", f"{type(exc).__name__}: {exc}"


def _engine_rt() -> Runtime:
    return TaskEngine.current().rt


def _task(session: Session, task_id: str) -> TaskRow:
    row = session.get(TaskRow, task_id)
    if row is None:
        raise StepFailed("not_found", f"task {task_id} is gone")
    return row


def _set_step(row: TaskRow, name: str, state: StepState) -> None:
    """Record a step's state and the worker running it (after a takeover, the new one)."""
    now = utcnow().isoformat()
    worker = DBOS.executor_id
    steps = [dict(s) for s in row.steps]
    done = 0
    for step in steps:
        if step["name"] == name:
            step["state"] = state.value
            step["executor"] = worker
            if state is StepState.RUNNING:
                step["started_at"], step["finished_at"] = now, None
            else:
                step["finished_at"] = now
        done += step["state"] == StepState.SUCCEEDED.value
    row.steps = steps
    if not TaskKind(row.kind).bulk:  # a bulk task's progress counts its VMs instead
        row.progress = done * 100 // max(len(steps), 1)
    row.executor_id = worker
    row.updated_at = utcnow()


@DBOS.step(name="tessera.task.begin")
def begin_step(task_id: str) -> list[str]:
    """Mark the task running and lay out its steps (fresh on each attempt)."""
    with _engine_rt().sessions.begin() as session:
        row = _task(session, task_id)
        plan = plan_of(TaskKind(row.kind), row.params)
        previous = row.state
        row.state = TaskState.RUNNING.value
        row.started_at = row.started_at or utcnow()
        row.updated_at = utcnow()
        if not row.steps:
            row.steps = [
                {"name": n, "state": "pending", "started_at": None, "finished_at": None}
                for n in plan
            ]
        if previous != row.state:  # not when this step runs again after a crash
            record_task(session, row, TaskEvent.RUNNING, before={"state": previous})
    return plan


def _transient_retry(rt: Runtime, call: Callable[[], None]) -> None:
    """Run `call`, retrying with doubling waits while the provider says the fault is
    transient (ProviderError.retryable); anything else is final at once."""
    wait = rt.settings.task_retry_interval_s
    for attempt in range(1, rt.settings.task_retry_attempts + 1):
        try:
            call()
            return
        except ProviderError as exc:
            if not exc.retryable or attempt == rt.settings.task_retry_attempts:
                raise StepFailed(exc.code, exc.message) from None
            log.warning("transient %s, retrying in %.1fs: %s", exc.code, wait, exc.message)
            time.sleep(wait)
            wait *= 2


def _start_step(rt: Runtime, task_id: str, step: str) -> tuple[str | None, dict[str, Any]]:
    """Mark the step running unless the task was asked to cancel; the task's provider and
    parameters."""
    with rt.sessions.begin() as session:
        row = _task(session, task_id)
        if row.cancel_requested and step not in _UNCANCELLABLE:
            raise StepFailed(CANCELLED_CODE, f"cancelled before step {step}")
        _set_step(row, step, StepState.RUNNING)
        return row.provider_id, dict(row.params)


def _end_step(rt: Runtime, task_id: str, step: str, state: StepState) -> None:
    with rt.sessions.begin() as session:
        _set_step(_task(session, task_id), step, state)


@DBOS.step(name="tessera.task.step")
def provider_step(task_id: str, step: str) -> None:
    """One step of the plan against the provider, with the task's step record kept."""
    rt = _engine_rt()
    provider_id, params = _start_step(rt, task_id, step)
    if provider_id is None:
        raise StepFailed("not_found", "the task's provider was removed")

    def attempt() -> None:
        with _open(rt, provider_id) as provider:
            body = _STEPS[step.rsplit("-", 1)[0] if step[-1].isdigit() else step]
            body(StepContext(rt, task_id, step, provider_id, params, provider))

    try:
        _transient_retry(rt, attempt)
    except StepFailed:
        _end_step(rt, task_id, step, StepState.FAILED)
        raise
    _pause_if_asked(rt, task_id, step)
    _end_step(rt, task_id, step, StepState.SUCCEEDED)


@DBOS.step(name="tessera.task.local")
def local_step(task_id: str, step: str) -> None:
    """A step that opens no provider of ours: a bulk task's tags, or a pool sync (which
    connects by itself)."""
    _run_local(task_id, step, _LOCAL_STEPS[step])


@DBOS.step(name="tessera.task.network")
def network_step(task_id: str, step: str) -> None:
    """A step of a segment task (tessera.network.tasks): one pool each, or the end."""
    _run_local(
        task_id, step, lambda rt, tid: network_tasks.run_step(rt, tid, step, _transient_retry)
    )


@DBOS.step(name="tessera.task.network-rollback")
def network_rollback_step(task_id: str) -> str:
    """Undo a failed segment task on the pools it reached; what to add to its error."""
    return network_tasks.rollback(_engine_rt(), task_id, _transient_retry)


@DBOS.step(name="tessera.task.fan-out")
def fan_out_step(task_id: str) -> list[QueuedTask]:
    """Make a bulk task's children; the workflow queues the ones returned."""
    return _run_local(task_id, "fan-out", bulk.fan_out)


def _run_local(task_id: str, step: str, body: Callable[[Runtime, str], _T]) -> _T:
    rt = _engine_rt()
    _start_step(rt, task_id, step)
    try:
        result = body(rt, task_id)
    except TesseraError as exc:
        _end_step(rt, task_id, step, StepState.FAILED)
        raise StepFailed(exc.code, exc.message) from None
    except StepFailed:
        _end_step(rt, task_id, step, StepState.FAILED)
        raise
    _pause_if_asked(rt, task_id, step)
    _end_step(rt, task_id, step, StepState.SUCCEEDED)
    return result


def _collect(task_id: str) -> None:
    """Wait for a bulk task's children, polling with durable sleeps that lengthen to 5 s
    (a resumed workflow skips the polls and sleeps it had done)."""
    wait = 0.2
    while True:
        tally = collect_step(task_id)
        if not tally["remaining"]:
            break
        DBOS.sleep(wait)
        wait = min(wait * 2, 5.0)
    _bulk_outcome(tally)


@DBOS.step(name="tessera.task.collect")
def collect_step(task_id: str) -> dict[str, int]:
    """One poll of the children; the collect step counts as running until the last ends."""
    rt = _engine_rt()
    tally = bulk.poll(rt, task_id)
    with rt.sessions.begin() as session:
        row = _task(session, task_id)
        current = next((s["state"] for s in row.steps if s["name"] == "collect"), None)
        if tally.remaining and current == StepState.PENDING.value:
            _set_step(row, "collect", StepState.RUNNING)
        elif not tally.remaining:
            ok = not (tally.failed or tally.cancelled)
            _set_step(row, "collect", StepState.SUCCEEDED if ok else StepState.FAILED)
    return {**tally.as_result(), "remaining": tally.remaining, "cancel": tally.cancel_requested}


def _bulk_outcome(tally: dict[str, int]) -> None:
    """Fail the parent when any of its VMs did not succeed; its items say which."""
    total, failed, cancelled = tally["total"], tally["failed"], tally["cancelled"]
    if cancelled and tally["cancel"]:
        done = tally["succeeded"]
        raise StepFailed(CANCELLED_CODE, f"cancelled: {done} of {total} VMs done, {cancelled} not")
    if failed or cancelled:
        raise StepFailed(
            "items_failed",
            f"{failed + cancelled} of {total} VMs did not succeed; see the task's items",
        )


def _tag(rt: Runtime, task_id: str) -> None:
    tally = bulk.apply_tags(rt, task_id)
    _bulk_outcome({**tally.as_result(), "cancel": tally.cancel_requested})


def _own(rt: Runtime, task_id: str) -> None:
    """Adopt or release a task's VMs (Tessera's records only; the pools are untouched)."""
    tally = adoption.run(rt, task_id)
    _bulk_outcome({**tally.as_result(), "cancel": tally.cancel_requested})


def _sync(rt: Runtime, task_id: str) -> None:
    """A full read of the pool; a failure also marks the pool unreachable (pools does)."""
    with rt.sessions() as session:
        provider_id = _task(session, task_id).provider_id
    if provider_id is None:
        raise StepFailed("not_found", "the task's provider was removed")
    report = sync_provider(rt, provider_id, task_id=task_id)
    with rt.sessions.begin() as session:
        row = _task(session, task_id)
        row.result = {
            "seconds": round(report.seconds, 3),
            "added": report.counts.added,
            "changed": report.counts.changed,
            "removed": report.counts.removed,
            "unchanged": report.counts.unchanged,
        }


_LOCAL_STEPS: dict[str, Callable[[Runtime, str], None]] = {
    "tag": _tag,
    "adopt": _own,
    "release": _own,
    "sync": _sync,
}
# A migration plan's task is one such step: its phases are steps of their own
# (tessera.migration.workflow), checkpointed within this workflow.
_MIGRATION_STEPS = frozenset({"migrate-vms", "unmigrate"})
_LOCAL_PLANS: dict[TaskKind, tuple[str, ...]] = {
    TaskKind.MIGRATION_RUN: ("migrate-vms",),
    TaskKind.MIGRATION_ROLLBACK: ("unmigrate",),
    TaskKind.VM_BULK_POWER: ("fan-out", "collect"),
    TaskKind.VM_BULK_DELETE: ("fan-out", "collect"),
    TaskKind.VM_BULK_TAG: ("tag",),
    TaskKind.VM_ADOPT: ("adopt",),
    TaskKind.VM_RELEASE: ("release",),
    TaskKind.PROVIDER_SYNC: ("sync",),
}


def _pause_if_asked(rt: Runtime, task_id: str, step: str) -> None:
    """Test hook choosing the moment of a crash: after the side effect, before the
    checkpoint. It only waits; the work done is real."""
    if rt.settings.task_pause_after_step != step:
        return
    (rt.settings.data_dir / f"paused-{task_id}-{step}").touch()
    while True:
        time.sleep(1.0)


def _open(rt: Runtime, provider_id: str) -> Provider:
    with rt.sessions() as session:
        row = session.get(ProviderRow, provider_id)
        if row is None:
            raise StepFailed("not_found", "the task's provider was removed")
        kind, endpoint = row.kind, endpoint_for(rt, row)
    return open_provider(kind, endpoint)


def _record_vm(ctx: StepContext, info: VMInfo, *, made: bool = False) -> str:
    """Write the VM into the inventory now (not at the watcher's pace); its row id. A VM
    the task `made` (a create's, a clone) belongs to the task's project, even when the
    pool's change feed wrote it first."""
    with ctx.rt.provider_lock(ctx.provider_id), ctx.rt.sessions.begin() as session:
        task = _task(session, ctx.task_id)
        change = ObjectUpserted(ObjectKind.VM, info)
        apply_changes(
            session,
            ctx.provider_id,
            [change],
            actor=task.requester,
            task_id=ctx.task_id,
            project_id=task.project_id if made else None,
        )
        row_id = session.scalar(
            select(VMRow.id).where(
                VMRow.provider_id == ctx.provider_id, VMRow.native_id == info.native_id
            )
        )
        if made and row_id is not None and task.project_id is not None:
            session.execute(
                update(VMRow)
                .where(VMRow.id == row_id, VMRow.project_id.is_(None))
                .values(project_id=task.project_id)
            )
    if row_id is None:
        raise StepFailed("internal", f"VM {info.name} did not reach the inventory")
    return row_id


def _create(ctx: StepContext) -> None:
    """Create the bare VM (devices follow, one step each), record it, lock it and put it in
    the placement group its request named. Its row now counts its vCPUs and RAM, so its
    placement claim keeps only the disk space, which the datastore shows once the disks
    exist; the task's end drops the claim."""
    spec = ctx.params["spec"]
    info = ctx.provider.create_vm(
        VMCreateSpec(
            name=spec["name"],
            cpu_count=spec["cpu_count"],
            memory_mib=spec["memory_mib"],
            placement=Placement(**spec["placement"]),
        ),
        op_key=ctx.op_key,
    )
    vm_id = _record_vm(ctx, info, made=True)
    with ctx.rt.sessions.begin() as session:
        row = _task(session, ctx.task_id)
        row.params = {**row.params, "vm_native_id": info.native_id}
        row.vm_id = vm_id
        row.result = {**(row.result or {}), "vm_id": vm_id}
        if session.get(VMLockRow, vm_id) is None:
            session.add(VMLockRow(key=vm_id, task_id=ctx.task_id))
        ports.claim_for_vm(session, ctx.task_id, vm_id)
        claim = session.get(PlacementClaimRow, ctx.task_id)
        if claim is not None:
            claim.vcpus = claim.memory_mib = 0
        if GROUP_PARAM in ctx.params:
            join_group(session, ctx.params[GROUP_PARAM], vm_id)


def _disk(ctx: StepContext) -> None:
    disk = ctx.params["disks"][int(ctx.step.split("-")[1])]
    ctx.provider.add_disk(
        ctx.vm_native_id, DiskSpec(disk["size_bytes"], disk["datastore"]), op_key=ctx.op_key
    )


def _nic_spec(nic: dict[str, Any]) -> NicSpec:
    """A NIC of the task's params: on a pool network, or on a segment's bridge (KVM)."""
    bridge = nic.get("bridge")
    return NicSpec(nic["network"], nic.get("mac"), BridgeTarget(**bridge) if bridge else None)


def _nic(ctx: StepContext) -> None:
    nic = ctx.params["nics"][int(ctx.step.split("-")[1])]
    ctx.provider.add_nic(ctx.vm_native_id, _nic_spec(nic), op_key=ctx.op_key)


def _release_ports(rt: Runtime, task_id: str, mac: str | None = None) -> None:
    """Release the ports of the task's VM (with `mac`: of that NIC), and of a create's
    task before its VM existed; a port its create or NIC add made is deleted. Safe to
    repeat."""
    with rt.sessions.begin() as session:
        task = _task(session, task_id)
        devices = [d for d in (task.vm_id, task.id) if d]
        ports.release_vm_ports(session, devices, made=ports.made_for(session, devices), mac=mac)


def _power_on(ctx: StepContext) -> None:
    ctx.provider.start_vm(ctx.vm_native_id, op_key=ctx.op_key)


def _power(ctx: StepContext) -> None:
    vm, key, p = ctx.vm_native_id, ctx.op_key, ctx.provider
    match PowerAction(ctx.params["action"]):
        case PowerAction.START:
            p.start_vm(vm, op_key=key)
        case PowerAction.STOP:
            p.stop_vm(vm, op_key=key, graceful_timeout_s=ctx.params.get("graceful_timeout_s", 0.0))
        case PowerAction.REBOOT:
            p.reboot_vm(vm, op_key=key)
        case PowerAction.SUSPEND:
            p.suspend_vm(vm, op_key=key)


def _rename(ctx: StepContext) -> None:
    ctx.provider.rename_vm(
        ctx.vm_native_id,
        ctx.params["name"],
        op_key=ctx.op_key,
        stop_if_running=bool(ctx.params.get("stop_if_running")),
    )


def _delete(ctx: StepContext) -> None:
    ctx.provider.delete_vm(ctx.vm_native_id, op_key=ctx.op_key)
    _release_ports(ctx.rt, ctx.task_id)


def _resize(ctx: StepContext) -> None:
    ctx.provider.resize_vm(
        ctx.vm_native_id,
        op_key=ctx.op_key,
        cpu_count=ctx.params.get("cpu_count"),
        memory_mib=ctx.params.get("memory_mib"),
    )


def _add_nic(ctx: StepContext) -> None:
    ctx.provider.add_nic(ctx.vm_native_id, _nic_spec(ctx.params), op_key=ctx.op_key)


def _remove_nic(ctx: StepContext) -> None:
    ctx.provider.remove_nic(ctx.vm_native_id, ctx.params["nic_key"], op_key=ctx.op_key)
    if ctx.params.get("mac"):
        _release_ports(ctx.rt, ctx.task_id, ctx.params["mac"])


def _add_disk(ctx: StepContext) -> None:
    disk = DiskSpec(ctx.params["size_bytes"], ctx.params.get("datastore"))
    ctx.provider.add_disk(ctx.vm_native_id, disk, op_key=ctx.op_key)


def _grow_disk(ctx: StepContext) -> None:
    ctx.provider.grow_disk(
        ctx.vm_native_id, ctx.params["disk_key"], ctx.params["size_bytes"], op_key=ctx.op_key
    )


def _remove_disk(ctx: StepContext) -> None:
    ctx.provider.remove_disk(ctx.vm_native_id, ctx.params["disk_key"], op_key=ctx.op_key)


def _snapshot_id(ctx: StepContext) -> str | None:
    """The API names snapshots; drivers want their native id, looked up at run time."""
    name = ctx.params["snapshot"]
    found = (s for s in ctx.provider.list_snapshots(ctx.vm_native_id) if s.name == name)
    return next((s.native_id for s in found), None)


def _snapshot(ctx: StepContext) -> None:
    ctx.provider.create_snapshot(ctx.vm_native_id, ctx.params["snapshot"], op_key=ctx.op_key)


def _revert(ctx: StepContext) -> None:
    snapshot = _snapshot_id(ctx)
    if snapshot is None:
        raise ProviderInvalidRequest(f"the VM has no snapshot named {ctx.params['snapshot']!r}")
    ctx.provider.revert_snapshot(ctx.vm_native_id, snapshot, op_key=ctx.op_key)


def _delete_snapshot(ctx: StepContext) -> None:
    """A snapshot already gone counts as deleted (a repeat after a crash)."""
    snapshot = _snapshot_id(ctx)
    if snapshot is not None:
        ctx.provider.delete_snapshot(ctx.vm_native_id, snapshot, op_key=ctx.op_key)


def _clone(ctx: StepContext) -> None:
    """Clone and record the copy at once, so the result names its Tessera id."""
    info = ctx.provider.clone_vm(
        ctx.vm_native_id,
        ctx.params["name"],
        op_key=ctx.op_key,
        placement=Placement(**ctx.params["placement"]),
    )
    clone_id = _record_vm(ctx, info, made=True)
    with ctx.rt.sessions.begin() as session:
        row = _task(session, ctx.task_id)
        row.result = {**(row.result or {}), "clone_vm_id": clone_id}


def _to_template(ctx: StepContext) -> None:
    ctx.provider.convert_to_template(ctx.vm_native_id, op_key=ctx.op_key)


def _to_vm(ctx: StepContext) -> None:
    ctx.provider.convert_to_vm(ctx.vm_native_id, op_key=ctx.op_key)


def _migrate(ctx: StepContext) -> None:
    ctx.provider.migrate_vm(ctx.vm_native_id, ctx.params["host"], op_key=ctx.op_key)


def _refresh(ctx: StepContext) -> None:
    """Re-read the VM and store it, so the API shows the result straight away."""
    try:
        info = ctx.provider.get_vm(ctx.vm_native_id)
    except ProviderNotFound:
        _forget_vm(ctx.rt, ctx.provider_id, ctx.vm_native_id, ctx.task_id)
        return
    vm_id = _record_vm(ctx, info)
    with ctx.rt.sessions.begin() as session:
        row = _task(session, ctx.task_id)
        row.result = {**(row.result or {}), "vm_id": vm_id}


def _forget_vm(rt: Runtime, provider_id: str, native_id: str, task_id: str) -> None:
    """Drop the VM from the inventory; the event names the task and its requester."""
    with rt.provider_lock(provider_id), rt.sessions.begin() as session:
        requester = _task(session, task_id).requester
        change = ObjectRemoved(ObjectKind.VM, native_id)
        apply_changes(session, provider_id, [change], actor=requester, task_id=task_id)


_STEPS: dict[str, Callable[[StepContext], None]] = {
    "create": _create,
    "disk": _disk,
    "nic": _nic,
    "power-on": _power_on,
    "power": _power,
    "rename": _rename,
    "delete": _delete,
    "resize": _resize,
    "add-nic": _add_nic,
    "remove-nic": _remove_nic,
    "add-disk": _add_disk,
    "grow-disk": _grow_disk,
    "remove-disk": _remove_disk,
    "snapshot": _snapshot,
    "revert": _revert,
    "delete-snapshot": _delete_snapshot,
    "clone": _clone,
    "to-template": _to_template,
    "to-vm": _to_vm,
    "migrate": _migrate,
    "refresh": _refresh,
}

# The one provider step of each single-operation kind (before its refresh).
_MAIN_STEP: dict[TaskKind, str] = {
    TaskKind.VM_DELETE: "delete",
    TaskKind.VM_POWER: "power",
    TaskKind.VM_RENAME: "rename",
    TaskKind.VM_RESIZE: "resize",
    TaskKind.VM_NIC_ADD: "add-nic",
    TaskKind.VM_NIC_REMOVE: "remove-nic",
    TaskKind.VM_DISK_ADD: "add-disk",
    TaskKind.VM_DISK_GROW: "grow-disk",
    TaskKind.VM_DISK_REMOVE: "remove-disk",
    TaskKind.VM_SNAPSHOT_CREATE: "snapshot",
    TaskKind.VM_SNAPSHOT_REVERT: "revert",
    TaskKind.VM_SNAPSHOT_DELETE: "delete-snapshot",
    TaskKind.VM_CLONE: "clone",
    TaskKind.VM_TEMPLATE: "to-template",
    TaskKind.VM_UNTEMPLATE: "to-vm",
    TaskKind.VM_MIGRATE: "migrate",
}


@DBOS.step(name="tessera.task.rollback")
def rollback_step(task_id: str) -> str:
    """Delete the VM a failed or cancelled create made, and release its ports; what to add
    to its error."""
    rt = _engine_rt()
    with rt.sessions() as session:
        row = _task(session, task_id)
        provider_id, native = row.provider_id, row.params.get("vm_native_id")
    if provider_id is None or not isinstance(native, str):
        _release_ports(rt, task_id)
        return ""

    def attempt() -> None:
        with _open(rt, provider_id) as provider:
            provider.delete_vm(native, op_key=f"{task_id}:rollback")

    try:
        _transient_retry(rt, attempt)
    except StepFailed as exc:
        return f"; the VM it made could not be removed ({exc.code}: {exc.message})"
    _forget_vm(rt, provider_id, native, task_id)
    _release_ports(rt, task_id)
    return "; the VM it had made was deleted"


@DBOS.step(name="tessera.task.nic-rollback")
def nic_rollback_step(task_id: str) -> str:
    """Release the port a failed NIC add bound, unless its NIC was made; what to add to
    its error."""
    with _engine_rt().sessions.begin() as session:
        row = _task(session, task_id)
        added = any(
            s["name"] == "add-nic" and s["state"] == StepState.SUCCEEDED.value for s in row.steps
        )
        made, mac = row.params.get("made_ports"), row.params.get("mac")
        if added or row.vm_id is None or not row.params.get("port_id") or not isinstance(mac, str):
            return ""
        made_ports = made if isinstance(made, list) else []
        ports.release_vm_ports(session, [row.vm_id], made=made_ports, mac=mac)
    return "; the port it had bound was released"


@DBOS.step(name="tessera.task.finish")
def finish_step(task_id: str, state: str, code: str | None, message: str | None) -> str:
    """Record the outcome and free the task's VM locks and placement claim, in one
    transaction."""
    with _engine_rt().sessions.begin() as session:
        row = _task(session, task_id)
        previous = row.state
        row.state = state
        row.error_code, row.error_message = code, message
        row.executor_id = DBOS.executor_id
        now = utcnow()
        row.finished_at = row.updated_at = now
        row.steps = [
            {**s, "state": StepState.SKIPPED.value}
            if s["state"] == StepState.PENDING.value
            else dict(s)
            for s in row.steps
        ]
        if state == TaskState.SUCCEEDED.value:
            row.progress = 100
        if not TaskState(previous).finished:  # not when this step runs again after a crash
            event = TaskEvent.finished(TaskState(state))
            record_task(session, row, event, before={"state": previous})
        session.execute(delete(VMLockRow).where(VMLockRow.task_id == task_id))
        session.execute(delete(PlacementClaimRow).where(PlacementClaimRow.task_id == task_id))
    return state
