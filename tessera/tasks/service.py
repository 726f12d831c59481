"""Submitting and managing tasks: validate, translate Tessera ids to native ones, take
the VM locks and queue the workflow. Routes and the CLI only ever see Tessera ids.

A task row and its locks are committed before the workflow is queued; should the process
die in between, the engine's start-up sweep queues it (a task is never lost).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tessera.config import Settings
from tessera.db.locks import serialize
from tessera.db.rows import (
    ClusterRow,
    DatastoreRow,
    HostRow,
    NetPortRow,
    NetworkRow,
    PlacementClaimRow,
    ProjectRow,
    ProviderRow,
    SegmentRow,
    TaskItemRow,
    TaskRow,
    VMDiskRow,
    VMLockRow,
    VMNicRow,
    VMRow,
    new_id,
    utcnow,
)
from tessera.domain.events import TaskEvent
from tessera.domain.inventory import PowerState
from tessera.domain.operations import SnapshotInfo
from tessera.domain.tasks import POWER_OPERATIONS, ItemState, PowerAction, TaskKind, TaskState
from tessera.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    LockedError,
    NotFoundError,
    ProviderFailedError,
    UnsupportedError,
)
from tessera.events.recorder import record_task
from tessera.identity import quotas
from tessera.identity.scope import ALL_POOLS, PLATFORM, PoolGrants, Scope, pool_grants
from tessera.inventory import queries
from tessera.inventory.pools import endpoint_for, get_provider
from tessera.network import ports
from tessera.providers import driver_class, open_provider
from tessera.providers.base import OPERATION_CAPABILITIES
from tessera.providers.faults import ProviderError, ProviderNotFound
from tessera.runtime import Runtime
from tessera.scheduler import service as placement
from tessera.scheduler.inventory import GROUP_PARAM
from tessera.scheduler.model import CandidateKind, Strategy
from tessera.scheduler.scheduler import Decision
from tessera.scheduler.service import PlacementSpec
from tessera.tasks.engine import TaskEngine

log = logging.getLogger(__name__)

GIB = 1 << 30
TASK_SORTS = ("created_at",)


@dataclass(frozen=True)
class ChildOf:
    """Makes a task one VM's share of a bulk task; its id is fixed by the parent, so a
    parent's step that runs again finds the child rather than making a second one. The
    parent's workflow queues it (DBOS refuses to start workflows from inside a step).
    It belongs to the parent's project."""

    parent_id: str
    task_id: str
    project_id: str | None = None


@dataclass(frozen=True)
class DiskRequest:
    size_gib: int
    datastore_id: str | None = None


@dataclass(frozen=True)
class NicRequest:
    """A NIC on a network of the VM's pool or on a Tessera segment (`network_id`, either
    kind of id), or on a port of the caller's (`port_id`, whose MAC it takes)."""

    network_id: str | None = None
    mac: str | None = None
    port_id: str | None = None


@dataclass(frozen=True)
class VMCreateRequest:
    """A VM to create, in Tessera ids. Without a host or cluster the scheduler chooses
    where, within `provider_id`'s pool when given; zone and group by name or id.
    `project_id` is the project asked to own it (see _owner)."""

    provider_id: str | None
    name: str
    cpus: int
    memory_mib: int
    disks: Sequence[DiskRequest] = ()
    nics: Sequence[NicRequest] = ()
    host_id: str | None = None
    cluster_id: str | None = None
    datastore_id: str | None = None
    power_on: bool = False
    zone: str | None = None
    group: str | None = None
    strategy: Strategy = Strategy.SPREAD
    requester: str = "admin"
    project_id: str | None = None


def _require(provider: ProviderRow, *operations: str) -> None:
    """422 naming the missing capability flag, before any task exists."""
    for operation in operations:
        _require_flag(provider, OPERATION_CAPABILITIES[operation], operation)


def _require_flag(provider: ProviderRow, flag: str, operation: str) -> None:
    if not getattr(driver_class(provider.kind).capabilities, flag):
        raise UnsupportedError(
            f"provider {provider.name!r} ({provider.kind}) cannot {operation}: it lacks {flag}",
            capability=flag,
        )


def _native(session: Session, row: Any, row_id: str, provider_id: str, what: str) -> str:
    """The native id of an inventory object of this provider (404 otherwise)."""
    found = session.get(row, row_id)
    if found is None or found.provider_id != provider_id:
        raise NotFoundError(f"{what} {row_id} not found on this provider")
    native: str = found.native_id
    return native


def _network_native(session: Session, network_id: str, provider_id: str, grants: PoolGrants) -> str:
    """The native id of a network of this provider the project may use; one it may not
    is not found, as a missing one."""
    if not grants.has_network(provider_id, network_id):
        raise NotFoundError(f"network {network_id} not found on this provider")
    return _native(session, NetworkRow, network_id, provider_id, "network")


def _on_segment(session: Session, nic: NicRequest) -> bool:
    """Whether the NIC is on a Tessera segment (through a port), not a pool network."""
    if nic.port_id is not None:
        if nic.network_id is not None:
            raise InvalidInputError("a NIC takes a network_id or a port_id, not both")
        return True
    return (
        nic.network_id is not None
        and session.get(NetworkRow, nic.network_id) is None
        and session.get(SegmentRow, nic.network_id) is not None
    )


def _nic_params(session: Session, nic: NicRequest, pid: str, grants: PoolGrants) -> dict[str, Any]:
    if nic.network_id is None:
        raise InvalidInputError("a NIC needs a network_id or a port_id")
    return {"network": _network_native(session, nic.network_id, pid, grants), "mac": nic.mac}


@dataclass(frozen=True)
class PortBinder:
    """Makes the ports of a task's NICs on segments (or binds the ports given) in the
    transaction that saves the task, once its pool is known; begins it with `locks` (the
    segments' IPAM locks). A create's ports name its task until the VM exists (`vm_id`
    None); its params get the NICs at their index, an add-NIC task's at the top. The ports
    made (not given) are listed in `made_ports`, to be deleted with their NIC."""

    nics: tuple[tuple[int, NicRequest], ...]
    scope: Scope
    locks: tuple[str, ...]
    vm_id: str | None = None

    def __call__(self, session: Session, row: TaskRow) -> None:
        provider = session.get(ProviderRow, row.provider_id)
        if provider is None:
            raise NotFoundError(f"provider {row.provider_id} not found")
        device_id, made = self.vm_id or row.id, []
        params: dict[str, Any] = dict(row.params)
        for index, nic in self.nics:
            if nic.port_id is not None:
                if nic.mac is not None:
                    raise InvalidInputError("a NIC on a port has the port's MAC: give no mac")
                port = ports.bind_vm_port(session, nic.port_id, self.scope, device_id=device_id)
                if port.project_id != row.project_id:
                    raise InvalidInputError(
                        f"port {nic.port_id} belongs to another project than the VM"
                    )
            else:
                segment = ports.vm_segment(session, str(nic.network_id), self.scope)
                port = ports.new_vm_port(
                    session, segment, project_id=row.project_id, mac=nic.mac, device_id=device_id
                )
                made.append(port.id)
            spec = ports.vm_nic(session, port, provider)
            entry = {
                "network": spec.network_native_id,
                "mac": spec.mac,
                "bridge": asdict(spec.bridge) if spec.bridge else None,
                "port_id": port.id,
            }
            if self.vm_id is None:
                params["nics"] = [entry if i == index else n for i, n in enumerate(params["nics"])]
            else:
                params.update(entry)
        params["made_ports"] = made
        row.params = params


def port_binder(
    session: Session, nics: Sequence[NicRequest], scope: Scope, vm_id: str | None = None
) -> PortBinder | None:
    """The binder of the NICs on segments; None when every NIC is on a pool network."""
    wanted = tuple((i, nic) for i, nic in enumerate(nics) if _on_segment(session, nic))
    if not wanted:
        return None
    segment_ids = {str(nic.network_id) for _, nic in wanted if nic.port_id is None}
    return PortBinder(wanted, scope, tuple(ports.ipam_locks(session, segment_ids)), vm_id)


def _default_datastore(session: Session, provider_id: str) -> DatastoreRow:
    row = session.scalar(
        select(DatastoreRow)
        .where(DatastoreRow.provider_id == provider_id)
        .order_by(DatastoreRow.free_bytes.desc(), DatastoreRow.id)
        .limit(1)
    )
    if row is None:
        raise InvalidInputError("the provider has no datastore in the inventory; sync it first")
    return row


def _holder_conflict(session: Session, keys: Sequence[str], scope: Scope) -> ConflictError | None:
    """The 409 for keys another task holds, naming that task only when `scope` sees it:
    another project's task (a create of the same name on the same pool, say) is not
    even hinted at."""
    lock = session.scalar(select(VMLockRow).where(VMLockRow.key.in_(keys)).limit(1))
    if lock is None:
        return None
    holder = session.get(TaskRow, lock.task_id)
    if holder is None or not scope.sees(holder.project_id):
        return ConflictError(
            "another operation holds this resource; try again once it has finished"
        )
    what = "the pool's sync" if lock.key.startswith("sync:") else "the VM"
    return LockedError(
        f"{what} is locked by {holder.kind} task {lock.task_id} until it finishes",
        holder_task_id=lock.task_id,
    )


def new_task(
    kind: TaskKind,
    params: dict[str, Any],
    requester: str,
    *,
    provider_id: str | None,
    vm_id: str | None = None,
    child: ChildOf | None = None,
    project_id: str | None = None,
) -> TaskRow:
    """A queued task's row, first attempt, not yet saved; it belongs to `project_id` (a
    bulk task's child: to its parent's project)."""
    task_id, now = (child.task_id if child else new_id()), utcnow()
    return TaskRow(
        id=task_id,
        parent_id=child.parent_id if child else None,
        project_id=child.project_id if child else project_id,
        kind=kind.value,
        state=TaskState.QUEUED.value,
        progress=0,
        steps=[],
        params=params,
        requester=requester,
        provider_id=provider_id,
        vm_id=vm_id,
        cancel_requested=False,
        attempt=1,
        workflow_id=f"{task_id}:1",
        created_at=now,
        updated_at=now,
    )


def _submit(
    rt: Runtime,
    *,
    kind: TaskKind,
    provider_id: str | None,
    vm_id: str | None,
    params: dict[str, Any],
    lock_keys: Sequence[str],
    requester: str,
    child: ChildOf | None = None,
    place: Placer | None = None,
    project_id: str | None = None,
    scope: Scope = PLATFORM,
    bind: PortBinder | None = None,
) -> TaskRow:
    """Save and queue a task for a caller who sees `scope`; a bulk task's child is seen
    (its errors read) by its parent's project. `bind` makes its NICs' ports with it."""
    row = new_task(
        kind,
        params,
        requester,
        provider_id=provider_id,
        vm_id=vm_id,
        child=child,
        project_id=project_id,
    )
    if child is not None:
        scope = Scope(project_id=child.project_id, unrestricted=child.project_id is None)
    _commit_with_locks(rt, row, lock_keys, place, scope=scope, bind=bind)
    if child is None:  # a bulk task's workflow queues its children itself
        enqueue(row)
    return row


# Fills in a task from the scheduler's choice inside the transaction that saves it;
# returns the task's lock keys and the capacity claim to save with it.
Placer = Callable[[Session, TaskRow], tuple[list[str], PlacementClaimRow]]


def _commit_with_locks(
    rt: Runtime,
    row: TaskRow,
    lock_keys: Sequence[str],
    place: Placer | None = None,
    *,
    scope: Scope = PLATFORM,
    retried_from: str | None = None,
    bind: PortBinder | None = None,
) -> None:
    """Save the task and its locks together; the locks' primary key settles races. With
    `place`, the task is placed first and its claim saved too, serialised with every other
    placement, so two tasks never both take the last room. A task that takes more of its
    project's quotas is checked against them in the same transaction, serialised with the
    project's other such tasks (quotas.reserve). Its task.queued event (after task.retried
    for a retry, from the state `retried_from`) commits with it, and so do the ports
    `bind` makes. A conflict names the task holding a lock when `scope` sees that task."""
    keys, claim = list(lock_keys), None
    serialized = quotas.lock_names(row) + ([placement.PLACEMENT_LOCK] if place else [])
    serialized += list(bind.locks) if bind else []
    try:
        with rt.sessions.begin() as session:
            if serialized:
                serialize(session, *serialized)
            if place is not None:
                keys, claim = place(session, row)
            conflict = _holder_conflict(session, keys, scope)
            if conflict is not None:
                raise conflict
            quotas.reserve(session, row)
            if bind is not None:
                bind(session, row)
            session.merge(row)
            session.flush()
            session.add_all(VMLockRow(key=key, task_id=row.id) for key in keys)
            if claim is not None:
                session.add(claim)
            _record_queued(session, row, retried_from)
    except IntegrityError:
        with rt.sessions() as session:
            conflict = _holder_conflict(session, keys, scope)
        raise conflict or ConflictError("the VM is locked by another task") from None


def _record_queued(session: Session, row: TaskRow, retried_from: str | None) -> None:
    if retried_from is not None:
        before = {"state": retried_from, "attempt": row.attempt - 1}
        record_task(session, row, TaskEvent.RETRIED, before=before)
    record_task(session, row, TaskEvent.QUEUED)


def enqueue(row: TaskRow) -> None:
    try:
        TaskEngine.current().enqueue(row)
    except Exception:
        # Committed already: the start-up sweep queues it. Say so, but do not fail.
        log.exception("task %s could not be queued now; it will be at the next start", row.id)


def _create_operations(req: VMCreateRequest) -> list[str]:
    """The provider operations a create runs; each needs its capability flag."""
    operations = ["create_vm"]
    if req.disks:
        operations.append("add_disk")
    if req.nics:
        operations.append("add_nic")
    if req.power_on:
        operations.append("start_vm")
    return operations


def _owner(session: Session, req: VMCreateRequest, scope: Scope) -> str | None:
    """The project a new VM belongs to: the caller's. Only a platform admin names another
    one (or, with an unscoped token, none: the VM is then the platform's)."""
    if req.project_id is None or req.project_id == scope.project_id:
        return scope.project_id
    if not scope.unrestricted:
        raise ForbiddenError("only a platform admin names the project of a new VM")
    if session.get(ProjectRow, req.project_id) is None:
        raise NotFoundError(f"project {req.project_id} not found")
    return req.project_id


def _check_given_pool(session: Session, req: VMCreateRequest, grants: PoolGrants) -> None:
    """A pool named in the request must exist and be granted (404) and be able to do it
    all (422)."""
    if req.provider_id is not None:
        _require(get_provider(session, req.provider_id, grants), *_create_operations(req))


def _pinned_pool(session: Session, req: VMCreateRequest, grants: PoolGrants) -> str | None:
    """The pool the request names, or the one its datastores are in (a datastore belongs
    to one pool); None leaves the pool to the scheduler."""
    pools = {req.provider_id} if req.provider_id else set()
    named = {d.datastore_id for d in req.disks if d.datastore_id} | {req.datastore_id}
    for ds_id in sorted(d for d in named if d):
        found = session.get(DatastoreRow, ds_id)
        if (
            found is None
            or not grants.has_pool(found.provider_id)
            or (req.provider_id and found.provider_id != req.provider_id)
        ):
            where = " on this provider" if req.provider_id else ""
            raise NotFoundError(f"datastore {ds_id} not found{where}")
        pools.add(found.provider_id)
    if len(pools) > 1:
        raise InvalidInputError("the datastores given are in different pools")
    return next(iter(pools), None)


def create_placement_spec(
    session: Session, req: VMCreateRequest, grants: PoolGrants = ALL_POOLS
) -> PlacementSpec:
    """What the scheduler is asked for a create, for its dry run and the real thing alike:
    the size, the disks that go on the datastore it picks (none when one is given), what
    the pool must be able to do, the NICs' networks (per pool, so they pin the pool too)
    and segments, named or through a port (the pool must carry each)."""
    return PlacementSpec(
        vcpus=req.cpus,
        memory_mib=req.memory_mib,
        disk_gib=0 if req.datastore_id else _unplaced_disk_gib(req),
        zone=req.zone,
        provider=_pinned_pool(session, req, grants),
        capabilities=tuple(OPERATION_CAPABILITIES[op] for op in _create_operations(req)),
        networks=tuple(str(nic.network_id) for nic in req.nics if not _on_segment(session, nic)),
        segments=tuple(
            str(nic.network_id)
            for nic in req.nics
            if nic.port_id is None and _on_segment(session, nic)
        ),
        ports=tuple(nic.port_id for nic in req.nics if nic.port_id is not None),
        group=req.group,
        strategy=req.strategy,
    )


def _unplaced_disk_gib(req: VMCreateRequest) -> int:
    """The disks that go on the VM's datastore: those that do not name their own."""
    return sum(disk.size_gib for disk in req.disks if disk.datastore_id is None)


def dry_run_create(
    session: Session, settings: Settings, req: VMCreateRequest, *, scope: Scope = PLATFORM
) -> Decision:
    """Where submit_create would put this VM now, and why not elsewhere (among what
    `scope` is granted); nothing is kept."""
    if req.host_id or req.cluster_id:
        raise InvalidInputError("a host or cluster is given: the scheduler has nothing to choose")
    _owner(session, req, scope)
    grants = pool_grants(session, scope)
    _check_given_pool(session, req, grants)
    spec = create_placement_spec(session, req, grants)
    return placement.dry_run(session, settings, spec, scope=scope)


def _pool_datastore(session: Session, provider_id: str, datastore_id: str | None) -> DatastoreRow:
    """The VM's datastore: the one given (404 unless in the pool), else the roomiest."""
    if datastore_id is None:
        return _default_datastore(session, provider_id)
    found = session.get(DatastoreRow, datastore_id)
    if found is None or found.provider_id != provider_id:
        raise NotFoundError(f"datastore {datastore_id} not found on this provider")
    return found


def _create_params(
    session: Session,
    req: VMCreateRequest,
    pid: str,
    *,
    host_id: str | None,
    cluster_id: str | None,
    datastore: DatastoreRow,
    grants: PoolGrants,
) -> dict[str, Any]:
    """The task's parameters, in the pool's native ids."""
    disks = [
        {
            "size_bytes": disk.size_gib * GIB,
            "datastore": _native(session, DatastoreRow, disk.datastore_id, pid, "datastore")
            if disk.datastore_id
            else datastore.native_id,
        }
        for disk in req.disks
    ]
    nics = [
        None if _on_segment(session, nic) else _nic_params(session, nic, pid, grants)
        for nic in req.nics
    ]
    placement = {
        "host_native_id": _native(session, HostRow, host_id, pid, "host") if host_id else None,
        "cluster_native_id": _native(session, ClusterRow, cluster_id, pid, "cluster")
        if cluster_id
        else None,
        "datastore_native_id": datastore.native_id,
    }
    return {
        "spec": {
            "name": req.name,
            "cpu_count": req.cpus,
            "memory_mib": req.memory_mib,
            "placement": placement,
        },
        "disks": disks,
        "nics": nics,
        "power_on": req.power_on,
        "vm_native_id": None,
    }


def submit_create(rt: Runtime, req: VMCreateRequest, *, scope: Scope = PLATFORM) -> TaskRow:
    """Create a VM on the host or cluster given (in its pool), or where the scheduler
    chooses (within the pool given, if one is), claiming that capacity until the VM is in
    the inventory. Only on pools and networks `scope` is granted; the VM and its task
    belong to the caller's project (see _owner)."""
    if req.host_id is None and req.cluster_id is None:
        with rt.sessions() as session:
            owner = _owner(session, req, scope)
            _check_given_pool(session, req, pool_grants(session, scope))
            bind = port_binder(session, req.nics, scope)
        return _submit(
            rt,
            kind=TaskKind.VM_CREATE,
            provider_id=None,
            vm_id=None,
            params={},
            lock_keys=(),
            requester=req.requester,
            place=_placer(rt.settings, req, scope),
            project_id=owner,
            scope=scope,
            bind=bind,
        )
    if req.zone is not None or req.group is not None:
        raise InvalidInputError("zone and group guide the scheduler: not with a host or cluster")
    with rt.sessions() as session:
        owner = _owner(session, req, scope)
        grants = pool_grants(session, scope)
        provider = get_provider(
            session, req.provider_id or _target_pool(session, req, grants), grants
        )
        _require(provider, *_create_operations(req))
        pid = provider.id
        params = _create_params(
            session,
            req,
            pid,
            host_id=req.host_id,
            cluster_id=req.cluster_id,
            datastore=_pool_datastore(session, pid, req.datastore_id),
            grants=grants,
        )
        bind = port_binder(session, req.nics, scope)
    return _submit(
        rt,
        kind=TaskKind.VM_CREATE,
        provider_id=pid,
        vm_id=None,
        params=params,
        lock_keys=[f"new:{pid}:{req.name}"],
        requester=req.requester,
        project_id=owner,
        scope=scope,
        bind=bind,
    )


def _target_pool(session: Session, req: VMCreateRequest, grants: PoolGrants) -> str:
    """The pool of the host (or else cluster) given, for a request that names no pool;
    one in a pool not granted is not found."""
    target: HostRow | ClusterRow | None = (
        session.get(HostRow, req.host_id)
        if req.host_id
        else session.get(ClusterRow, req.cluster_id)
    )
    if target is None or not grants.has_pool(target.provider_id):
        raise NotFoundError(f"host or cluster {req.host_id or req.cluster_id} not found")
    return target.provider_id


def _placer(settings: Settings, req: VMCreateRequest, scope: Scope) -> Placer:
    """Places a create in the transaction that saves its task: the scheduler's choice
    (among what `scope` is granted) becomes the task's pool and parameters, and its
    result says where and why."""

    def place(session: Session, row: TaskRow) -> tuple[list[str], PlacementClaimRow]:
        grants = pool_grants(session, scope)
        spec = create_placement_spec(session, req, grants)
        decision, chosen = placement.choose(session, settings, spec, scope=scope)
        pid = chosen.provider_id
        picked = decision.datastore.id if decision.datastore else None
        datastore = _pool_datastore(session, pid, req.datastore_id or picked)
        on_host = chosen.kind is CandidateKind.HOST
        row.provider_id = pid
        row.params = _create_params(
            session,
            req,
            pid,
            host_id=chosen.id if on_host else None,
            cluster_id=None if on_host else chosen.id,
            datastore=datastore,
            grants=grants,
        )
        if req.group is not None:  # the VM joins it once made
            row.params[GROUP_PARAM] = placement.group_id(session, req.group, scope)
        row.result = {
            "placement": {
                "summary": decision.summary,
                "strategy": req.strategy.value,
                "provider_id": pid,
                "provider_name": chosen.provider_name,
                "zone": chosen.zone_name,
                "kind": chosen.kind.value,
                "candidate_id": chosen.id,
                "candidate_name": chosen.name,
                "datastore_id": datastore.id,
                "datastore_name": datastore.name,
            }
        }
        claim = PlacementClaimRow(
            task_id=row.id,
            provider_id=pid,
            candidate_id=chosen.id,
            datastore_id=datastore.id,
            vcpus=req.cpus,
            memory_mib=req.memory_mib,
            disk_bytes=_unplaced_disk_gib(req) * GIB,
        )
        return [f"new:{pid}:{req.name}"], claim

    return place


# Reads a VM's inventory rows and returns the task's extra parameters (native ids);
# raises a 4xx error for bad input, so no task exists when the request is wrong.
Resolver = Callable[[Session, VMRow, ProviderRow], dict[str, Any]]


def _vm_task(
    rt: Runtime,
    vm_id: str,
    kind: TaskKind,
    operation: str,
    params: dict[str, Any],
    requester: str,
    resolve: Resolver | None = None,
    new_name: str | None = None,
    child: ChildOf | None = None,
    scope: Scope = PLATFORM,
    bind: PortBinder | None = None,
) -> TaskRow:
    """A task on one VM in `scope` (another project's is not found), which it locks; with
    `new_name` (a clone), that name too. The task belongs to the VM's project."""
    with rt.sessions() as session:
        vm = session.get(VMRow, vm_id)
        if vm is None or not scope.sees(vm.project_id):
            raise NotFoundError(f"VM {vm_id} not found")
        provider = get_provider(session, vm.provider_id)
        _require(provider, operation)
        if resolve is not None:
            params = {**params, **resolve(session, vm, provider)}
        provider_id, native, project_id = provider.id, vm.native_id, vm.project_id
    return _submit(
        rt,
        kind=kind,
        provider_id=provider_id,
        vm_id=vm_id,
        params={**params, "vm_native_id": native},
        lock_keys=[vm_id] + ([f"new:{provider_id}:{new_name}"] if new_name else []),
        requester=requester,
        child=child,
        project_id=project_id,
        scope=scope,
        bind=bind,
    )


def submit_delete(
    rt: Runtime,
    vm_id: str,
    *,
    requester: str,
    child: ChildOf | None = None,
    scope: Scope = PLATFORM,
) -> TaskRow:
    kind = TaskKind.VM_DELETE
    return _vm_task(rt, vm_id, kind, "delete_vm", {}, requester, child=child, scope=scope)


def submit_power(
    rt: Runtime,
    vm_id: str,
    action: PowerAction,
    *,
    graceful_timeout_s: float = 0.0,
    requester: str,
    child: ChildOf | None = None,
    scope: Scope = PLATFORM,
) -> TaskRow:
    params = {"action": action.value, "graceful_timeout_s": graceful_timeout_s}
    operation = POWER_OPERATIONS[action]
    kind = TaskKind.VM_POWER
    return _vm_task(rt, vm_id, kind, operation, params, requester, child=child, scope=scope)


def submit_rename(
    rt: Runtime,
    vm_id: str,
    name: str,
    *,
    stop_if_running: bool,
    requester: str,
    scope: Scope = PLATFORM,
) -> TaskRow:
    params = {"name": name, "stop_if_running": stop_if_running}
    return _vm_task(rt, vm_id, TaskKind.VM_RENAME, "rename_vm", params, requester, scope=scope)


def _require_hot(vm: VMRow, provider: ProviderRow, flag: str, operation: str) -> None:
    """A device change on a running VM also needs the hot-add flag."""
    if vm.power_state == PowerState.RUNNING.value:
        _require_flag(provider, flag, f"{operation} on a running VM")


def submit_resize(
    rt: Runtime,
    vm_id: str,
    *,
    cpu_count: int | None,
    memory_mib: int | None,
    requester: str,
    scope: Scope = PLATFORM,
) -> TaskRow:
    if cpu_count is None and memory_mib is None:
        raise InvalidInputError("give cpu_count, memory_mib or both")
    params = {"cpu_count": cpu_count, "memory_mib": memory_mib}
    return _vm_task(rt, vm_id, TaskKind.VM_RESIZE, "resize_vm", params, requester, scope=scope)


def submit_add_nic(
    rt: Runtime, vm_id: str, nic: NicRequest, *, requester: str, scope: Scope = PLATFORM
) -> TaskRow:
    """On a network of the VM's pool that the VM's project may use, or on a segment
    realised there (a port made for it, or the port given, bound to the VM)."""

    def resolve(session: Session, vm: VMRow, provider: ProviderRow) -> dict[str, Any]:
        _require_hot(vm, provider, "supports_hot_add_nic", "add_nic")
        if _on_segment(session, nic):
            return {}
        return _nic_params(session, nic, provider.id, pool_grants(session, scope))

    with rt.sessions() as session:
        bind = port_binder(session, [nic], scope, vm_id=vm_id)
    kind = TaskKind.VM_NIC_ADD
    return _vm_task(rt, vm_id, kind, "add_nic", {}, requester, resolve, scope=scope, bind=bind)


def _device(session: Session, row: Any, device_id: int, vm: VMRow, what: str) -> Any:
    """A NIC or disk row of this VM (404 otherwise); devices are addressed by row id."""
    found = session.get(row, device_id)
    if found is None or found.vm_id != vm.id:
        raise NotFoundError(f"{what} {device_id} not found on VM {vm.id}")
    return found


def submit_remove_nic(
    rt: Runtime, vm_id: str, nic_id: int, *, requester: str, scope: Scope = PLATFORM
) -> TaskRow:
    def resolve(session: Session, vm: VMRow, provider: ProviderRow) -> dict[str, Any]:
        _require_hot(vm, provider, "supports_hot_add_nic", "remove_nic")
        found = _device(session, VMNicRow, nic_id, vm, "NIC")
        return {"nic_key": found.key, "mac": found.mac}

    kind = TaskKind.VM_NIC_REMOVE
    return _vm_task(rt, vm_id, kind, "remove_nic", {}, requester, resolve, scope=scope)


def submit_add_disk(
    rt: Runtime, vm_id: str, disk: DiskRequest, *, requester: str, scope: Scope = PLATFORM
) -> TaskRow:
    def resolve(session: Session, vm: VMRow, provider: ProviderRow) -> dict[str, Any]:
        _require_hot(vm, provider, "supports_hot_add_disk", "add_disk")
        datastore = (
            _native(session, DatastoreRow, disk.datastore_id, provider.id, "datastore")
            if disk.datastore_id
            else None
        )
        return {"size_bytes": disk.size_gib * GIB, "datastore": datastore}

    kind = TaskKind.VM_DISK_ADD
    return _vm_task(rt, vm_id, kind, "add_disk", {}, requester, resolve, scope=scope)


def submit_grow_disk(
    rt: Runtime,
    vm_id: str,
    disk_id: int,
    size_gib: int,
    *,
    requester: str,
    scope: Scope = PLATFORM,
) -> TaskRow:
    def resolve(session: Session, vm: VMRow, provider: ProviderRow) -> dict[str, Any]:
        found: VMDiskRow = _device(session, VMDiskRow, disk_id, vm, "disk")
        if size_gib * GIB < found.size_bytes:
            raise InvalidInputError(
                f"disk {disk_id} is {found.size_bytes / GIB:g} GiB; disks only grow"
            )
        return {"disk_key": found.key, "size_bytes": size_gib * GIB}

    kind = TaskKind.VM_DISK_GROW
    return _vm_task(rt, vm_id, kind, "grow_disk", {}, requester, resolve, scope=scope)


def submit_remove_disk(
    rt: Runtime, vm_id: str, disk_id: int, *, requester: str, scope: Scope = PLATFORM
) -> TaskRow:
    def resolve(session: Session, vm: VMRow, provider: ProviderRow) -> dict[str, Any]:
        _require_hot(vm, provider, "supports_hot_add_disk", "remove_disk")
        return {"disk_key": _device(session, VMDiskRow, disk_id, vm, "disk").key}

    kind = TaskKind.VM_DISK_REMOVE
    return _vm_task(rt, vm_id, kind, "remove_disk", {}, requester, resolve, scope=scope)


_SNAPSHOT_OPERATIONS = {
    TaskKind.VM_SNAPSHOT_CREATE: "create_snapshot",
    TaskKind.VM_SNAPSHOT_REVERT: "revert_snapshot",
    TaskKind.VM_SNAPSHOT_DELETE: "delete_snapshot",
}


def submit_snapshot(
    rt: Runtime, vm_id: str, kind: TaskKind, name: str, *, requester: str, scope: Scope = PLATFORM
) -> TaskRow:
    """Create, revert to or delete the snapshot called `name`."""
    params = {"snapshot": name}
    operation = _SNAPSHOT_OPERATIONS[kind]
    return _vm_task(rt, vm_id, kind, operation, params, requester, scope=scope)


def list_snapshots(rt: Runtime, vm_id: str, *, scope: Scope = PLATFORM) -> list[SnapshotInfo]:
    """Straight from the provider (snapshots are not in the inventory); 503 with
    Retry-After when the pool cannot be reached."""
    with rt.sessions() as session:
        vm = session.get(VMRow, vm_id)
        if vm is None or not scope.sees(vm.project_id):
            raise NotFoundError(f"VM {vm_id} not found")
        provider = get_provider(session, vm.provider_id)
        _require(provider, "list_snapshots")
        kind, endpoint, native = provider.kind, endpoint_for(rt, provider), vm.native_id
    try:
        with open_provider(kind, endpoint) as driver:
            return driver.list_snapshots(native)
    except ProviderNotFound:
        raise NotFoundError(f"VM {vm_id} is no longer on its provider") from None
    except ProviderError as exc:
        raise ProviderFailedError.during("listing snapshots", exc) from None


def submit_clone(
    rt: Runtime,
    vm_id: str,
    name: str,
    *,
    host_id: str | None,
    datastore_id: str | None,
    requester: str,
    scope: Scope = PLATFORM,
) -> TaskRow:
    """The source is locked, and so is the new name, as for a create. The copy belongs
    to the source's project."""

    def resolve(session: Session, vm: VMRow, provider: ProviderRow) -> dict[str, Any]:
        pid = provider.id
        placement = {
            "host_native_id": _native(session, HostRow, host_id, pid, "host") if host_id else None,
            "datastore_native_id": _native(session, DatastoreRow, datastore_id, pid, "datastore")
            if datastore_id
            else None,
        }
        return {"placement": placement}

    params = {"name": name}
    kind = TaskKind.VM_CLONE
    return _vm_task(rt, vm_id, kind, "clone_vm", params, requester, resolve, name, scope=scope)


def submit_template(
    rt: Runtime, vm_id: str, to_template: bool, *, requester: str, scope: Scope = PLATFORM
) -> TaskRow:
    kind, operation = (
        (TaskKind.VM_TEMPLATE, "convert_to_template")
        if to_template
        else (TaskKind.VM_UNTEMPLATE, "convert_to_vm")
    )
    return _vm_task(rt, vm_id, kind, operation, {}, requester, scope=scope)


def submit_migrate(
    rt: Runtime, vm_id: str, host_id: str, *, requester: str, scope: Scope = PLATFORM
) -> TaskRow:
    """A running VM needs live migration, a stopped one cold migration."""

    def resolve(session: Session, vm: VMRow, provider: ProviderRow) -> dict[str, Any]:
        if vm.power_state == PowerState.RUNNING.value:
            _require_flag(provider, "supports_live_migration", "migrate_vm a running VM")
        return {"host": _native(session, HostRow, host_id, provider.id, "host")}

    kind = TaskKind.VM_MIGRATE
    return _vm_task(rt, vm_id, kind, "migrate_vm", {}, requester, resolve, scope=scope)


def get_task(session: Session, task_id: str, scope: Scope = PLATFORM) -> TaskRow:
    """A task in `scope`; another project's (or the platform's) is not found."""
    row = session.get(TaskRow, task_id)
    if row is None or not scope.sees(row.project_id):
        raise NotFoundError(f"task {task_id} not found")
    return row


def list_tasks(
    session: Session,
    *,
    state: TaskState | None,
    kind: TaskKind | None,
    cursor: str | None,
    limit: int,
    parent_id: str | None = None,
    scope: Scope = PLATFORM,
) -> tuple[list[TaskRow], str | None]:
    """Newest first, keyset-paged like the inventory lists; the tasks of `scope`."""
    columns: list[Any] = [TaskRow.id, TaskRow.created_at]
    stmt: Select[Any] = select(*columns).where(*scope.owned(TaskRow.project_id))
    if state is not None:
        stmt = stmt.where(TaskRow.state == state.value)
    if kind is not None:
        stmt = stmt.where(TaskRow.kind == kind.value)
    if parent_id is not None:
        stmt = stmt.where(TaskRow.parent_id == parent_id)
    stmt, sort_name, _ = queries.paginate(
        stmt, TaskRow, sort="-created_at", allowed_sorts=TASK_SORTS, cursor=cursor, limit=limit
    )
    page = queries.run_page(session, stmt, sort_name, limit)
    ids = [item["id"] for item in page.items]
    rows = {r.id: r for r in session.scalars(select(TaskRow).where(TaskRow.id.in_(ids)))}
    return [rows[i] for i in ids], page.next_cursor


def cancel_task(rt: Runtime, task_id: str, *, scope: Scope = PLATFORM) -> TaskRow:
    """Ask the task to stop; it does so before its next step (a running step finishes)."""
    with rt.sessions.begin() as session:
        row = get_task(session, task_id, scope)
        if TaskState(row.state).finished:
            raise ConflictError(f"task {task_id} has already {row.state}")
        asked = row.cancel_requested
        row.cancel_requested = True
        row.updated_at = utcnow()
        if not asked:
            before = {"cancel_requested": False}
            record_task(session, row, TaskEvent.CANCEL_REQUESTED, before=before)
    return row


def retry_task(rt: Runtime, task_id: str, *, scope: Scope = PLATFORM) -> TaskRow:
    """Run a failed or cancelled task again, as a new workflow with the same op keys, so
    whatever its earlier attempts did is found rather than done twice."""
    with rt.sessions() as session:
        row = get_task(session, task_id, scope)
        if row.state not in {TaskState.FAILED.value, TaskState.CANCELLED.value}:
            raise ConflictError(f"only a failed or cancelled task can be retried ({row.state})")
        bulk = TaskKind(row.kind).bulk
        if row.provider_id is None and not bulk:
            raise ConflictError(f"task {task_id}'s provider was removed; it cannot run again")
        if _released_ports(session, row):
            raise ConflictError(
                f"task {task_id}'s NIC ports were released when it ended; submit it again"
            )
        session.expunge(row)
    ended = row.state
    row.attempt += 1
    row.workflow_id = f"{row.id}:{row.attempt}"
    row.state = TaskState.QUEUED.value
    row.cancel_requested = False
    row.progress = 0
    row.steps = []
    row.error_code = row.error_message = None
    row.started_at = row.finished_at = None
    row.updated_at = utcnow()
    if bulk:
        _commit_bulk_retry(rt, row, ended)
        enqueue(row)
        return row
    if row.kind == TaskKind.VM_CREATE.value:
        spec: dict[str, Any] = dict(row.params["spec"])  # type: ignore[call-overload]
        keys = [f"new:{row.provider_id}:{spec['name']}"]
    elif row.kind == TaskKind.PROVIDER_SYNC.value:
        keys = [f"sync:{row.provider_id}"]
    else:
        keys = [row.vm_id] if row.vm_id else []
        if row.kind == TaskKind.VM_CLONE.value:
            keys.append(f"new:{row.provider_id}:{row.params['name']}")
    _commit_with_locks(rt, row, keys, scope=scope, retried_from=ended)
    enqueue(row)
    return row


def _released_ports(session: Session, row: TaskRow) -> list[str]:
    """The ports of a create's or NIC add's NICs on segments that are no longer bound to
    it (released when it failed), so running it again would plug NICs without ports."""
    if row.kind == TaskKind.VM_CREATE.value:
        nics = row.params.get("nics")
        entries = nics if isinstance(nics, list) else []
    elif row.kind == TaskKind.VM_NIC_ADD.value:
        entries = [row.params]
    else:
        return []
    bound_to = {row.id, row.vm_id}
    port_ids = [e["port_id"] for e in entries if isinstance(e, dict) and e.get("port_id")]
    return [
        port_id
        for port_id in port_ids
        if (port := session.get(NetPortRow, port_id)) is None or port.device_id not in bound_to
    ]


def _commit_bulk_retry(rt: Runtime, row: TaskRow, ended: str) -> None:
    """A bulk task runs again for the VMs that did not succeed; they get new children."""
    with rt.sessions.begin() as session:
        session.merge(row)
        _record_queued(session, row, ended)
        session.execute(
            update(TaskItemRow)
            .where(
                TaskItemRow.task_id == row.id,
                TaskItemRow.state != ItemState.SUCCEEDED.value,
            )
            .values(
                state=ItemState.PENDING.value,
                child_task_id=None,
                error_code=None,
                error_message=None,
                updated_at=utcnow(),
            )
        )


def submit_sync(rt: Runtime, provider_id: str, *, requester: str) -> TaskRow:
    """Read a pool in full and reconcile its inventory, as a task; one at a time per pool."""
    with rt.sessions() as session:
        pid = get_provider(session, provider_id).id
    return _submit(
        rt,
        kind=TaskKind.PROVIDER_SYNC,
        provider_id=pid,
        vm_id=None,
        params={},
        lock_keys=[f"sync:{pid}"],
        requester=requester,
    )
