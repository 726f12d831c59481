"""Adopting VMs in place: the pools' VMs no project owns yet ("unmanaged"), listed by
pool, cluster, folder and more, taken into a project in bulk, and released again.

Adoption is ownership only: the VM stays where it is and nothing is sent to its pool, so
it is a change of `vms.project_id`. A request fixes its VMs when it is accepted (one task
item each, as bulk tasks do) and the task's one step writes them in chunks, each chunk a
few set-based statements in one transaction (the VMs, their events, their items), so
10,000 VMs take seconds rather than 10,000 child tasks. A chunk's transaction is
serialised with the project's other quota checks (tessera.identity.quotas) and checks
the quotas itself, so two adoptions racing for the last room cannot both take it: the
VMs that fit are adopted in order, the others fail their items.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, func, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnClause

from tessera.db.locks import serialize
from tessera.db.rows import (
    HostRow,
    ProjectRow,
    QuotaRow,
    TaskItemRow,
    TaskRow,
    VMDiskRow,
    VMLockRow,
    VMRow,
    utcnow,
)
from tessera.domain.events import VM_ADOPTED, VM_RELEASED, EventDraft, TaskEvent
from tessera.domain.inventory import ObjectKind
from tessera.domain.tasks import ItemState, TaskKind
from tessera.errors import (
    ConflictError,
    InvalidInputError,
    LockedError,
    NotFoundError,
    QuotaExceededError,
)
from tessera.events.recorder import record_many, record_task
from tessera.identity import quotas
from tessera.inventory import queries
from tessera.runtime import Runtime
from tessera.tasks import service
from tessera.tasks.bulk import (
    MAX_VMS,
    PREVIEW_LIMIT,
    Matched,
    Tally,
    count_items,
    next_pending,
    record_tally,
)

# VMs written per transaction by the adopt and release steps.
CHUNK = 1000

UNMANAGED_FIELDS: tuple[str, ...] = (
    "id",
    "name",
    "power_state",
    "cpu_count",
    "memory_mib",
    "guest_os",
    "provider_id",
    "host_id",
    "folder",
    "is_template",
    "instance_uuid",
    "created_at",
)
UNMANAGED_SORTS: tuple[str, ...] = ("name", "power_state", "cpu_count", "memory_mib", "folder")


@dataclass(frozen=True)
class AdoptionFilter:
    """Which VMs: those of a pool, of a cluster's hosts, in a folder or below it (its
    path, "/DC0/vm/web"), whose name or guest OS contains a text, in a power state;
    `project_id` (releases only) those of one project."""

    provider_id: str | None = None
    cluster_id: str | None = None
    folder: str | None = None
    name_contains: str | None = None
    power_state: str | None = None
    guest_os: str | None = None
    project_id: str | None = None

    def as_params(self) -> dict[str, Any]:
        return {
            "provider_id": self.provider_id,
            "cluster_id": self.cluster_id,
            "folder": self.folder,
            "name": self.name_contains,
            "power_state": self.power_state,
            "guest_os": self.guest_os,
            "project_id": self.project_id,
        }


def _in_folder(path: str) -> ColumnElement[bool]:
    """The folder itself and every folder below it; compared exactly (case and all), not
    with LIKE, whose case rules differ between SQLite and PostgreSQL."""
    path = path.rstrip("/") or "/"
    below = path if path.endswith("/") else path + "/"
    return (VMRow.folder == path) | (func.substr(VMRow.folder, 1, len(below)) == below)


def conditions(session: Session, flt: AdoptionFilter) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    if flt.provider_id:
        out.append(VMRow.provider_id == flt.provider_id)
    if flt.cluster_id:
        hosts = select(HostRow.id).where(HostRow.cluster_id == flt.cluster_id)
        out.append(VMRow.host_id.in_(hosts))
    if flt.folder:
        out.append(_in_folder(flt.folder))
    if flt.name_contains:
        out.append(queries.name_matches(session, VMRow.name, flt.name_contains))
    if flt.power_state:
        out.append(VMRow.power_state == flt.power_state)
    if flt.guest_os:
        out.append(queries.name_matches(session, VMRow.guest_os, flt.guest_os))
    if flt.project_id:
        out.append(VMRow.project_id == flt.project_id)
    return out


def list_unmanaged(
    session: Session,
    flt: AdoptionFilter,
    *,
    sort: str = "name",
    cursor: str | None = None,
    limit: int = 50,
) -> queries.Page:
    """A page of the VMs no project owns, with each one's cluster (through its host)."""
    columns: list[ColumnClause[Any]] = [getattr(VMRow, name) for name in UNMANAGED_FIELDS]
    stmt: Select[Any] = (
        select(*columns, HostRow.cluster_id)
        .outerjoin(HostRow, HostRow.id == VMRow.host_id)
        .where(VMRow.project_id.is_(None), *conditions(session, flt))
    )
    stmt, sort_name, _ = queries.paginate(
        stmt, VMRow, sort=sort, allowed_sorts=UNMANAGED_SORTS, cursor=cursor, limit=limit
    )
    return queries.run_page(session, stmt, sort_name, limit)


# --- requests ------------------------------------------------------------------------


@dataclass(frozen=True)
class AdoptionRequest:
    """Adopt (`project_id` given) or release (`project_id` None) the VMs `vm_ids` names,
    else every VM `flt` matches: adoption takes only unmanaged VMs, release only managed
    ones. `expected_count` guards against a selection that changed since its preview."""

    kind: TaskKind
    flt: AdoptionFilter = field(default_factory=AdoptionFilter)
    vm_ids: Sequence[str] = ()
    project_id: str | None = None
    expected_count: int | None = None
    requester: str = "admin"


def _owned(kind: TaskKind) -> ColumnElement[bool]:
    """The VMs a request of this kind may take: unmanaged to adopt, managed to release."""
    if kind is TaskKind.VM_ADOPT:
        return VMRow.project_id.is_(None)
    return VMRow.project_id.is_not(None)


def _selection(session: Session, req: AdoptionRequest) -> Select[str, str]:
    stmt = select(VMRow.id, VMRow.name).where(_owned(req.kind))
    if req.vm_ids:
        return stmt.where(VMRow.id.in_(list(dict.fromkeys(req.vm_ids))))
    where = conditions(session, req.flt)
    if not where:
        raise InvalidInputError("give vm_ids or at least one filter; a selection never means all")
    return stmt.where(*where)


def _check_ids(session: Session, req: AdoptionRequest, found: set[str]) -> None:
    """Listed VMs must all exist (404) and be the kind the request takes (409)."""
    wanted = list(dict.fromkeys(req.vm_ids))
    if len(found) == len(wanted):
        return
    absent = [vm_id for vm_id in wanted if vm_id not in found]
    existing = set(session.scalars(select(VMRow.id).where(VMRow.id.in_(absent[: MAX_VMS + 1]))))
    missing = [vm_id for vm_id in absent if vm_id not in existing]
    if missing:
        raise NotFoundError(f"VM(s) not found: {', '.join(missing[:10])}")
    state = "already in a project" if req.kind is TaskKind.VM_ADOPT else "in no project"
    raise ConflictError(f"VM(s) {state}: {', '.join(absent[:10])}")


def _matching(session: Session, req: AdoptionRequest, limit: int) -> list[tuple[str, str]]:
    """(id, name) of the VMs the request is about, by name then id."""
    stmt = _selection(session, req).order_by(VMRow.name, VMRow.id).limit(limit)
    rows = [(vm_id, name) for vm_id, name in session.execute(stmt)]
    if req.vm_ids:
        _check_ids(session, req, {vm_id for vm_id, _ in rows})
    return rows


def preview(rt: Runtime, req: AdoptionRequest) -> Matched:
    """How many VMs (and the first of them) the request would take now."""
    with rt.sessions() as session:
        if req.vm_ids:  # every listed VM is checked
            rows = _matching(session, req, MAX_VMS + 1)
            count = len(rows)
        else:
            rows = _matching(session, req, PREVIEW_LIMIT)
            count = len(rows)
            if count == PREVIEW_LIMIT:
                counted = select(func.count()).select_from(_selection(session, req).subquery())
                count = session.scalar(counted) or 0
    return Matched(count, rows[:PREVIEW_LIMIT])


def _sizes(session: Session, vm_ids: Sequence[str]) -> dict[str, quotas.Totals]:
    """What each VM would add to a project's quotas: itself, its vCPUs, RAM and disks."""
    out: dict[str, quotas.Totals] = {}
    for start in range(0, len(vm_ids), CHUNK):
        part = vm_ids[start : start + CHUNK]
        disks = dict(
            session.execute(
                select(VMDiskRow.vm_id, func.sum(VMDiskRow.size_bytes))
                .where(VMDiskRow.vm_id.in_(part))
                .group_by(VMDiskRow.vm_id)
            ).all()
        )
        stmt = select(VMRow.id, VMRow.cpu_count, VMRow.memory_mib).where(VMRow.id.in_(part))
        for vm_id, cpus, mib in session.execute(stmt):
            out[vm_id] = quotas.Totals(1, cpus or 0, int(mib or 0), int(disks.get(vm_id) or 0))
    return out


def _limited(session: Session, project_id: str) -> list[quotas.QuotaUsage]:
    """The project's quotas that have a limit, with what is in use and reserved."""
    if session.get(QuotaRow, project_id) is None:
        return []
    return [u for u in quotas.project_usage(session, project_id) if u.limit is not None]


def _exceeded(
    limited: Sequence[quotas.QuotaUsage], adding: quotas.Totals
) -> QuotaExceededError | None:
    """The refusal for `adding` to a project with these usages, None when it fits. Disks
    are compared in whole GiB, as usage shows them."""
    for usage in limited:
        asked, limit = adding.of(usage.quota), usage.limit or 0
        taken = usage.in_use + usage.reserved
        if asked and taken + asked > limit:
            return QuotaExceededError(
                f"quota exceeded for {usage.quota}: limit {limit}, {usage.in_use} in use"
                f" and {usage.reserved} reserved by unfinished tasks, {asked} requested",
                quota=usage.quota,
                limit=limit,
                in_use=taken,
                requested=asked,
            )
    return None


def quota_lock(project_id: str) -> str:
    """The name quotas.lock_names gives a project's checks, so ours queue with theirs."""
    return f"quota:{project_id}"


def submit(rt: Runtime, req: AdoptionRequest) -> TaskRow:
    """Fix the VMs and save the task with an item per VM; an adoption is checked against
    the project's quotas in the transaction that saves it. Then queue it."""
    if req.kind is TaskKind.VM_ADOPT and req.project_id is None:
        raise InvalidInputError("name the project to adopt the VMs into")
    with rt.sessions() as session:
        if req.project_id is not None and session.get(ProjectRow, req.project_id) is None:
            raise NotFoundError(f"project {req.project_id} not found")
        rows = _matching(session, req, MAX_VMS + 1)
    if not rows:
        raise InvalidInputError("the selection matches no VM")
    if len(rows) > MAX_VMS:
        raise InvalidInputError(f"the selection matches more than {MAX_VMS} VMs; narrow it")
    if req.expected_count is not None and req.expected_count != len(rows):
        raise ConflictError(
            f"the selection now matches {len(rows)} VMs, not the {req.expected_count} expected"
        )
    params: dict[str, Any] = {
        "project_id": req.project_id,
        "filter": {"vm_ids": list(req.vm_ids), **req.flt.as_params()},
    }
    row = service.new_task(req.kind, params, req.requester, provider_id=None)
    row.result = dict(Tally(len(rows)).as_result())
    items = [
        {
            "task_id": row.id,
            "vm_id": vm_id,
            "position": position,
            "vm_name": name,
            "state": ItemState.PENDING.value,
            "updated_at": row.created_at,
        }
        for position, (vm_id, name) in enumerate(rows)
    ]
    with rt.sessions.begin() as session:
        if req.kind is TaskKind.VM_ADOPT and req.project_id is not None:
            serialize(session, quota_lock(req.project_id))
            adding = sum(_sizes(session, [vm_id for vm_id, _ in rows]).values(), quotas.Totals())
            refused = _exceeded(_limited(session, req.project_id), adding)
            if refused is not None:
                raise refused
        session.add(row)
        session.flush()
        record_task(session, row, TaskEvent.QUEUED)
        for start in range(0, len(items), CHUNK):
            session.execute(insert(TaskItemRow), items[start : start + CHUNK])
    service.enqueue(row)
    return row


# --- the task's step (run by tessera.tasks.workflows) ---------------------------------


@dataclass
class _Outcomes:
    """A chunk's items: the VMs done, and the failed ones with why."""

    done: list[str] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)

    def fail(self, vm_id: str, code: str, message: str) -> None:
        self.failed.append({"vm_id": vm_id, "error_code": code, "error_message": message})


def run(rt: Runtime, task_id: str) -> Tally:
    """Adopt or release the task's pending VMs, a chunk per transaction; a re-run after a
    crash finds the committed chunks done (their items no longer pending). A VM gone, or
    taken by another project meanwhile, fails its own item; a cancel stops at a chunk's
    end and cancels the rest."""
    with rt.sessions() as session:
        project_id = service.get_task(session, task_id).params.get("project_id")
    while True:
        with rt.sessions.begin() as session:
            if isinstance(project_id, str):
                serialize(session, quota_lock(project_id))
            task = service.get_task(session, task_id)
            pending = list(session.scalars(next_pending(select(TaskItemRow.vm_id), task_id, CHUNK)))
            if not pending:
                break
            now = utcnow()
            if task.cancel_requested:
                _set_items(session, task_id, pending, ItemState.CANCELLED, now)
                continue
            if isinstance(project_id, str):
                outcomes = _adopt_chunk(session, task, project_id, pending)
            else:
                outcomes = _release_chunk(session, task, pending)
            _set_items(session, task_id, outcomes.done, ItemState.SUCCEEDED, now)
            if outcomes.failed:  # an UPDATE by primary key, executed for each
                failed = {"task_id": task_id, "state": ItemState.FAILED.value, "updated_at": now}
                session.execute(
                    update(TaskItemRow), [failed | failure for failure in outcomes.failed]
                )
            _progress(session, task, now)
    with rt.sessions.begin() as session:
        return _progress(session, service.get_task(session, task_id), utcnow())


def _set_items(
    session: Session, task_id: str, vm_ids: Sequence[str], state: ItemState, now: Any
) -> None:
    if vm_ids:
        session.execute(
            update(TaskItemRow)
            .where(TaskItemRow.task_id == task_id, TaskItemRow.vm_id.in_(vm_ids))
            .values(state=state.value, updated_at=now)
        )


def _progress(session: Session, task: TaskRow, now: Any) -> Tally:
    tally = count_items(session, task.id, task.cancel_requested)
    record_tally(task, tally, now)
    return tally


def _vms(session: Session, vm_ids: Sequence[str]) -> dict[str, tuple[str, str, str | None]]:
    """id → (name, provider id, project id) of those VMs still in the inventory."""
    stmt = select(VMRow.id, VMRow.name, VMRow.provider_id, VMRow.project_id).where(
        VMRow.id.in_(vm_ids)
    )
    return {vm_id: (name, pid, project) for vm_id, name, pid, project in session.execute(stmt)}


def _event(
    task: TaskRow, kind: str, vm_id: str, vm: tuple[str, str, str | None], project_id: str | None
) -> EventDraft:
    """`vm.adopted` (in the project it joined) or `vm.released` (in the one it left), by
    the task's requester, with the owner before and after."""
    name, provider_id, before = vm
    after = project_id if kind == VM_ADOPTED else None
    return EventDraft(
        kind=kind,
        actor=task.requester,
        object_kind=ObjectKind.VM.value,
        object_id=vm_id,
        object_name=name,
        provider_id=provider_id,
        task_id=task.id,
        project_id=project_id,
        before={"project_id": before},
        after={"project_id": after},
    )


def _adopt_chunk(
    session: Session, task: TaskRow, project_id: str, vm_ids: Sequence[str]
) -> _Outcomes:
    out = _Outcomes()
    if session.get(ProjectRow, project_id) is None:
        for vm_id in vm_ids:
            out.fail(vm_id, NotFoundError.code, f"project {project_id} no longer exists")
        return out
    vms = _vms(session, vm_ids)
    free: list[str] = []
    for vm_id in vm_ids:
        found = vms.get(vm_id)
        if found is None:
            out.fail(vm_id, NotFoundError.code, f"VM {vm_id} is no longer in the inventory")
        elif found[2] == project_id:
            out.done.append(vm_id)  # adopted already: by an earlier attempt, or by hand
        elif found[2] is not None:
            out.fail(vm_id, ConflictError.code, f"VM {vm_id} was adopted into another project")
        else:
            free.append(vm_id)
    if not free:
        return out
    limited = _limited(session, project_id)
    if limited:  # in order, as many as fit; the rest fail
        sizes, fits, adding = _sizes(session, free), [], quotas.Totals()
        for position, vm_id in enumerate(free):
            refused = _exceeded(limited, adding + sizes[vm_id])
            if refused is not None:
                for late in free[position:]:
                    out.fail(late, refused.code, refused.message)
                break
            adding += sizes[vm_id]
            fits.append(vm_id)
        free = fits
        if not free:
            return out
    session.execute(
        update(VMRow)
        .where(VMRow.id.in_(free), VMRow.project_id.is_(None))
        .values(project_id=project_id)
    )
    record_many(
        session,
        (_event(task, VM_ADOPTED, vm_id, vms[vm_id], project_id) for vm_id in free),
    )
    out.done += free
    return out


def _release_chunk(session: Session, task: TaskRow, vm_ids: Sequence[str]) -> _Outcomes:
    """Back to the platform, except a VM an unfinished task is changing: that task runs
    for its project, which must keep the VM until it ends."""
    out = _Outcomes()
    vms = _vms(session, vm_ids)
    holders = select(VMLockRow.key, VMLockRow.task_id).where(VMLockRow.key.in_(vm_ids))
    locked = dict(session.execute(holders).all())
    owned: list[str] = []
    for vm_id in vm_ids:
        found = vms.get(vm_id)
        if found is None:
            out.fail(vm_id, NotFoundError.code, f"VM {vm_id} is no longer in the inventory")
        elif found[2] is None:
            out.done.append(vm_id)  # released already
        elif vm_id in locked:
            holder = locked[vm_id]
            out.fail(
                vm_id, LockedError.code, f"the VM is locked by task {holder} until it finishes"
            )
        else:
            owned.append(vm_id)
    if not owned:
        return out
    session.execute(update(VMRow).where(VMRow.id.in_(owned)).values(project_id=None))
    record_many(
        session,
        (_event(task, VM_RELEASED, vm_id, vms[vm_id], vms[vm_id][2]) for vm_id in owned),
    )
    out.done += owned
    return out
