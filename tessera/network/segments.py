"""Segments: Tessera's L2 networks, and the durable tasks that put them on their pools.

Everything is checked before anything is stored: the segmentation (VLAN 1-4094 unique per
physical network, VNI unique), the pools (granted, and of a kind with a realiser that
carries this type), the VLAN not already used by a network of those pools. Then the
segment, one realisation per pool and the task are saved in one transaction (the
segment's key is unique, so two requests for one VLAN cannot both get in), and the task
realises it pool by pool (tessera.network.tasks); a failure on one pool removes it from
the others. A segment without pools is made at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tessera.db.rows import (
    FloatingIPRow,
    NetworkRow,
    ProviderRow,
    RegionRow,
    RouterRow,
    SegmentRealisationRow,
    SegmentRow,
    TaskRow,
    VMLockRow,
    ZoneRow,
    utcnow,
)
from tessera.domain.events import TaskEvent
from tessera.domain.tasks import TaskKind
from tessera.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    UnsupportedError,
)
from tessera.events.recorder import record_task
from tessera.identity.scope import Scope, pool_grants
from tessera.inventory.pools import get_provider
from tessera.network import access, addressing, validation
from tessera.network.model import (
    NetworkType,
    RealisationState,
    Segmentation,
    SegmentStatus,
)
from tessera.network.realise import realiser_class
from tessera.runtime import Runtime
from tessera.tasks import service as tasks

MAX_POOLS = 16


@dataclass(frozen=True)
class SegmentRequest:
    name: str
    network_type: NetworkType
    segmentation_id: int | None = None
    physical_network: str | None = None
    provider_ids: Sequence[str] = ()
    description: str = ""
    shared: bool = False
    external: bool = False
    region: str | None = None
    project_id: str | None = None
    requester: str = "admin"


@dataclass(frozen=True)
class SegmentResult:
    """A segment as saved, and the task realising the change on its pools, if any."""

    segment: SegmentRow
    task: TaskRow | None


def lock_key(segment_id: str) -> str:
    """The lock one task at a time holds on a segment (in the tasks' lock table)."""
    return f"segment:{segment_id}"


def pool_name(name: str, segment_id: str) -> str:
    """The name of the segment's object on a pool: its name and the start of its id, so
    two projects' segments of one name never meet in a vCenter."""
    return f"{name}-{segment_id[:8]}"


def segmentation_of(row: SegmentRow) -> Segmentation:
    return Segmentation(NetworkType(row.network_type), row.segmentation_id, row.physical_network)


def _pools(
    session: Session, provider_ids: Sequence[str], network_type: NetworkType, scope: Scope
) -> list[ProviderRow]:
    if len(set(provider_ids)) != len(provider_ids):
        raise InvalidInputError("a pool is named twice in provider_ids")
    if len(provider_ids) > MAX_POOLS:
        raise InvalidInputError(f"a segment spans at most {MAX_POOLS} pools")
    grants = pool_grants(session, scope)
    rows = []
    for provider_id in provider_ids:
        row = get_provider(session, provider_id, grants)
        cls = realiser_class(row.kind)
        if cls is None or network_type not in cls.network_types:
            raise UnsupportedError(
                f"pool {row.name!r} ({row.kind}) cannot carry a {network_type.value} segment yet",
                capability="supports_dvs" if row.kind == "vsphere" else "network_realisation",
            )
        rows.append(row)
    return rows


def _vlan_free_on_pools(
    session: Session,
    segmentation: Segmentation,
    pools: Sequence[ProviderRow],
    scope: Scope,
    mine: Sequence[str] = (),
) -> None:
    """409 when a network a pool already has (one not made for this segment) carries the
    VLAN id: a second portgroup of that VLAN would join its broadcast domain."""
    if segmentation.network_type is not NetworkType.VLAN or not pools:
        return
    clash = session.execute(
        select(NetworkRow.name, ProviderRow.name)
        .join(ProviderRow, ProviderRow.id == NetworkRow.provider_id)
        .where(
            NetworkRow.provider_id.in_([p.id for p in pools]),
            NetworkRow.vlan_id == segmentation.segmentation_id,
            NetworkRow.native_id.not_in(list(mine) or [""]),
        )
        .limit(1)
    ).first()
    if clash is not None:
        network, pool = clash
        what = f"network {network!r}" if scope.unrestricted else "a network"
        raise ConflictError(
            f"VLAN {segmentation.segmentation_id} is already used on pool {pool!r} by {what}"
        )


def _key_taken(session: Session, segmentation: Segmentation, scope: Scope) -> ConflictError | None:
    taken = session.scalar(select(SegmentRow).where(SegmentRow.segment_key == segmentation.key))
    if taken is None:
        return None
    who = (
        f"segment {taken.name!r}"
        if scope.sees(taken.project_id) or taken.shared or taken.external
        else "a segment of another project"
    )
    return ConflictError(f"{segmentation.describe()} is already used by {who}")


def _region(session: Session, region: str | None, pools: Sequence[ProviderRow]) -> str | None:
    """The region named, else the one all the pools are in (none when they differ)."""
    if region is not None:
        row = session.get(RegionRow, region) or session.scalar(
            select(RegionRow).where(RegionRow.name == region)
        )
        if row is None:
            raise InvalidInputError(f"region {region!r} not found")
        return row.id
    regions = {
        session.scalar(select(ZoneRow.region_id).where(ZoneRow.id == pool.zone_id))
        for pool in pools
    }
    return regions.pop() if len(regions) == 1 else None


def _queue(
    session: Session,
    kind: TaskKind,
    segment: SegmentRow,
    pools: Sequence[str],
    requester: str,
    **params: object,
) -> TaskRow:
    """Save a task over `pools` with the segment's lock; the caller commits, then
    enqueues. It runs in the partition of its first pool."""
    row = tasks.new_task(
        kind,
        {"segment_id": segment.id, "pools": list(pools), **params},
        requester,
        provider_id=pools[0],
        project_id=segment.project_id,
    )
    session.add(row)
    session.flush()
    record_task(session, row, TaskEvent.QUEUED)
    session.add(VMLockRow(key=lock_key(segment.id), task_id=row.id))
    return row


def _busy(session: Session, segment: SegmentRow) -> None:
    lock = session.get(VMLockRow, lock_key(segment.id))
    if lock is not None:
        raise ConflictError(
            f"segment {segment.id} is being changed by task {lock.task_id}; try again once it"
            " has finished"
        )


def create_segment(rt: Runtime, req: SegmentRequest, *, scope: Scope) -> SegmentResult:
    segmentation = validation.segmentation(
        req.network_type, req.segmentation_id, req.physical_network
    )
    if (req.shared or req.external) and not scope.unrestricted:
        raise ForbiddenError("only a platform admin makes shared or external segments")
    try:
        with rt.sessions.begin() as session:
            project_id = access.owner(session, scope, req.project_id)
            pools = _pools(session, req.provider_ids, segmentation.network_type, scope)
            taken = _key_taken(session, segmentation, scope)
            if taken is not None:
                raise taken
            _vlan_free_on_pools(session, segmentation, pools, scope)
            now = utcnow()
            segment = SegmentRow(
                name=req.name,
                description=req.description,
                project_id=project_id,
                network_type=segmentation.network_type.value,
                segmentation_id=segmentation.segmentation_id,
                physical_network=segmentation.physical_network,
                segment_key=segmentation.key,
                shared=req.shared,
                external=req.external,
                region_id=_region(session, req.region, pools),
                status=(SegmentStatus.BUILDING if pools else SegmentStatus.ACTIVE).value,
                created_at=now,
                updated_at=now,
            )
            session.add(segment)
            session.flush()
            session.add_all(
                SegmentRealisationRow(
                    segment_id=segment.id,
                    provider_id=pool.id,
                    position=i,
                    state=RealisationState.PENDING.value,
                    native_name=pool_name(req.name, segment.id),
                )
                for i, pool in enumerate(pools)
            )
            task = (
                _queue(
                    session, TaskKind.SEGMENT_CREATE, segment, [p.id for p in pools], req.requester
                )
                if pools
                else None
            )
    except IntegrityError:
        with rt.sessions() as session:
            taken = _key_taken(session, segmentation, scope)
        raise taken or ConflictError("the segment clashes with one made at the same time") from None
    if task is not None:
        tasks.enqueue(task)
    return SegmentResult(segment, task)


def realisations(
    session: Session, segment_ids: Sequence[str]
) -> dict[str, list[SegmentRealisationRow]]:
    found: dict[str, list[SegmentRealisationRow]] = {sid: [] for sid in segment_ids}
    if not segment_ids:
        return found
    rows = session.scalars(
        select(SegmentRealisationRow)
        .where(SegmentRealisationRow.segment_id.in_(list(segment_ids)))
        .order_by(SegmentRealisationRow.position)
    )
    for row in rows:
        found[row.segment_id].append(row)
    return found


def list_segments(session: Session, scope: Scope) -> list[SegmentRow]:
    stmt = select(SegmentRow).where(*access.readable_segments(scope))
    return list(session.scalars(stmt.order_by(SegmentRow.name, SegmentRow.id)))


def update_segment(
    rt: Runtime,
    segment_id: str,
    *,
    name: str | None,
    description: str | None,
    segmentation_id: int | None,
    requester: str,
    scope: Scope,
) -> SegmentResult:
    """Rename at once; a new segmentation id is checked as on create, stored, and taken
    to the pools the segment is on by a task (which puts the old one back on failure)."""
    try:
        with rt.sessions.begin() as session:
            segment = access.segment(session, segment_id, scope, write=True)
            if name is not None:
                segment.name = name
            if description is not None:
                segment.description = description
            segment.updated_at = utcnow()
            task = None
            if segmentation_id is not None and segmentation_id != segment.segmentation_id:
                task = _retag(session, segment, segmentation_id, requester, scope)
    except IntegrityError:
        raise ConflictError(
            f"segmentation id {segmentation_id} was taken by a segment made at the same time"
        ) from None
    if task is not None:
        tasks.enqueue(task)
    return SegmentResult(segment, task)


def _retag(
    session: Session, segment: SegmentRow, segmentation_id: int, requester: str, scope: Scope
) -> TaskRow | None:
    if segment.network_type == NetworkType.FLAT.value:
        raise InvalidInputError("a flat segment has no segmentation_id")
    _busy(session, segment)
    if segment.status != SegmentStatus.ACTIVE.value:
        raise ConflictError(f"segment {segment.id} is {segment.status}; it cannot change now")
    current = segmentation_of(segment)
    wanted = validation.segmentation(
        current.network_type, segmentation_id, current.physical_network
    )
    taken = _key_taken(session, wanted, scope)
    if taken is not None:
        raise taken
    on = [
        r
        for r in realisations(session, [segment.id])[segment.id]
        if r.state == RealisationState.REALISED.value
    ]
    pools = [session.get(ProviderRow, r.provider_id) for r in on]
    mine = [r.native_id for r in on if r.native_id]
    _vlan_free_on_pools(session, wanted, [p for p in pools if p is not None], scope, mine)
    previous = segment.segmentation_id
    segment.segmentation_id = wanted.segmentation_id
    segment.segment_key = wanted.key
    session.flush()
    if not on:
        return None
    return _queue(
        session,
        TaskKind.SEGMENT_UPDATE,
        segment,
        [r.provider_id for r in on],
        requester,
        previous=previous,
    )


def delete_segment(rt: Runtime, segment_id: str, *, requester: str, scope: Scope) -> TaskRow | None:
    """Only a segment no port, router or floating IP uses; taken off its pools by a task
    that forgets it once the last is done (or at once when it is on none)."""
    with rt.sessions.begin() as session:
        segment = access.segment(session, segment_id, scope, write=True)
        _busy(session, segment)
        ports = addressing.ports_on(session, segment.id)
        if ports:
            raise ConflictError(
                f"segment {segment_id} has {ports} ports (router interfaces included);"
                " delete them first"
            )
        for what, column in (
            ("routers use it as their external gateway", RouterRow.external_segment_id),
            ("floating IPs are allocated from it", FloatingIPRow.segment_id),
        ):
            count = session.scalar(select(func.count()).where(column == segment.id))
            if count:
                raise ConflictError(f"segment {segment_id} is in use: {count} {what}")
        on = [
            r.provider_id
            for r in realisations(session, [segment.id])[segment.id]
            if r.state != RealisationState.REMOVED.value
        ]
        if not on:
            session.delete(segment)
            return None
        segment.status = SegmentStatus.DELETING.value
        segment.updated_at = utcnow()
        task = _queue(session, TaskKind.SEGMENT_DELETE, segment, on, requester)
    tasks.enqueue(task)
    return task
