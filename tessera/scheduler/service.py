"""Placement services: dry runs and real choices over the live inventory, and placement
groups.

Names in a request (zone, pool, group) are resolved here; a reference to something that
does not exist makes the request invalid (InvalidInputError), while an unknown id in a
route's path is NotFoundError. For a project's caller, a pool or network not granted to
it and another project's group do not exist (tessera.identity.scope): the scheduler only
ever considers the candidates of granted pools. Segments and ports (a VM create's NICs)
out of the caller's reach are not found (404), as the create's own checks say.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tessera.config import Settings
from tessera.db.rows import (
    NetPortRow,
    NetworkRow,
    PlacementGroupMemberRow,
    PlacementGroupRow,
    ProviderRow,
    RegionRow,
    SegmentRow,
    VMRow,
    ZoneRow,
)
from tessera.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    NoValidPlacementError,
)
from tessera.identity.scope import PLATFORM, PoolGrants, Scope, pool_grants
from tessera.network import access
from tessera.runtime import Runtime
from tessera.scheduler.inventory import building_in_group, load_candidates
from tessera.scheduler.model import (
    Candidate,
    GroupPolicy,
    Overcommit,
    PlacementGroup,
    PlacementRequest,
    SegmentRef,
    Strategy,
)
from tessera.scheduler.scheduler import Decision, place

# The name under which placements are serialised (tessera.db.locks.serialize).
PLACEMENT_LOCK = "tessera.placement"


@dataclass(frozen=True)
class PlacementSpec:
    """A placement request as a caller states it: pools, zones and groups by name or id,
    allocation ratios defaulting to the settings'. `segments` and `ports` are those the
    VM's NICs are on (by id): the pool must carry each segment, and each port's."""

    vcpus: int
    memory_mib: int
    disk_gib: float = 0
    zone: str | None = None
    provider: str | None = None
    capabilities: tuple[str, ...] = ()
    networks: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    ports: tuple[str, ...] = ()
    group: str | None = None
    strategy: Strategy = Strategy.SPREAD
    cpu_allocation_ratio: float | None = None
    ram_allocation_ratio: float | None = None
    disk_allocation_ratio: float | None = None
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class GroupView:
    id: str
    name: str
    policy: GroupPolicy
    members: list[str]
    created_at: datetime


def dry_run(
    session: Session, settings: Settings, spec: PlacementSpec, *, scope: Scope = PLATFORM
) -> Decision:
    """Where `spec` would be placed now, and why every other candidate would not: among
    the candidates of the pools `scope` is granted."""
    grants = pool_grants(session, scope)
    loaded = load_candidates(session, grants)
    known = {c.id for c in loaded.candidates}
    unknown = sorted(set(spec.exclude) - known)
    if unknown:
        raise InvalidInputError(f"exclude: no candidate (host or cluster) {', '.join(unknown)}")
    group = None
    if spec.group is not None:
        row = _find_group(session, spec.group, InvalidInputError, scope)
        held = session.scalars(
            select(VMRow.host_id)
            .join(PlacementGroupMemberRow, PlacementGroupMemberRow.vm_id == VMRow.id)
            .where(PlacementGroupMemberRow.group_id == row.id, VMRow.host_id.is_not(None))
        )
        group = PlacementGroup(
            row.name,
            GroupPolicy(row.policy),
            frozenset(loaded.candidate_of_host[h] for h in held if h in loaded.candidate_of_host)
            | building_in_group(session, row.id),
        )
    request = PlacementRequest(
        vcpus=spec.vcpus,
        memory_mib=spec.memory_mib,
        disk_gib=spec.disk_gib,
        zone=_zone_id(session, spec.zone) if spec.zone is not None else None,
        provider_id=_provider_id(session, spec.provider, grants)
        if spec.provider is not None
        else None,
        capabilities=frozenset(spec.capabilities),
        networks=_network_ids(session, spec.networks, grants),
        segments=_segments(session, spec, scope),
        group=group,
        strategy=spec.strategy,
        overcommit=Overcommit(
            cpu=_or(spec.cpu_allocation_ratio, settings.cpu_allocation_ratio),
            ram=_or(spec.ram_allocation_ratio, settings.ram_allocation_ratio),
            disk=_or(spec.disk_allocation_ratio, settings.disk_allocation_ratio),
        ),
        exclude=frozenset(spec.exclude),
    )
    return place(request, loaded.candidates)


def choose(
    session: Session, settings: Settings, spec: PlacementSpec, *, scope: Scope = PLATFORM
) -> tuple[Decision, Candidate]:
    """Where `spec` goes, for real: the decision and its chosen candidate. The caller's
    transaction must have begun with serialize(session, PLACEMENT_LOCK) and write its
    claim before it commits, so the next choice sees that claim. NoValidPlacementError
    (409) says why when nothing fits."""
    decision = dry_run(session, settings, spec, scope=scope)
    if decision.chosen is not None:
        return decision, decision.chosen
    examples: dict[str, str] = {}  # one candidate per filter that turned any down
    for rejected in decision.rejected:
        for why in rejected.reasons:
            examples.setdefault(why.filter, f"{rejected.candidate.name}: {why.reason}")
    shown = [examples[name] for name in decision.rejected_by if name in examples]
    raise NoValidPlacementError(
        decision.summary + (f" (e.g. {'; '.join(shown)})" if shown else ""),
        rejected_by={name: n for name, n in decision.rejected_by.items() if n},
    )


def group_id(session: Session, name_or_id: str, scope: Scope = PLATFORM) -> str:
    """The id of the group a request names (422 when there is none in `scope`)."""
    return _find_group(session, name_or_id, InvalidInputError, scope).id


def join_group(session: Session, group_id: str, vm_id: str) -> None:
    """Make a VM just created a member of the group its create named, unless the group
    was deleted meanwhile; again changes nothing."""
    if session.get(PlacementGroupRow, group_id) is None:
        return
    if session.get(PlacementGroupMemberRow, (group_id, vm_id)) is None:
        session.add(PlacementGroupMemberRow(group_id=group_id, vm_id=vm_id))


def _or(given: float | None, default: float) -> float:
    return default if given is None else given


def _zone_id(session: Session, zone: str) -> str:
    """A zone by id, name, or region/name when the name is used in several regions."""
    region, _, name = zone.rpartition("/")
    query = select(ZoneRow.id).join(RegionRow, RegionRow.id == ZoneRow.region_id)
    if region:
        query = query.where(RegionRow.name == region, ZoneRow.name == name)
    else:
        query = query.where(or_(ZoneRow.id == zone, ZoneRow.name == zone))
    found = list(session.scalars(query))
    if not found:
        raise InvalidInputError(f"zone: no zone {zone!r}")
    if len(found) > 1:
        raise InvalidInputError(f"zone: {zone!r} is in several regions; give region/zone")
    return found[0]


def _provider_id(session: Session, provider: str, grants: PoolGrants) -> str:
    found = session.scalar(
        select(ProviderRow.id).where(or_(ProviderRow.id == provider, ProviderRow.name == provider))
    )
    if found is None or not grants.has_pool(found):
        raise InvalidInputError(f"provider: no pool {provider!r}")
    return found


def _network_ids(session: Session, networks: tuple[str, ...], grants: PoolGrants) -> frozenset[str]:
    wanted = frozenset(networks)
    if not wanted:
        return wanted
    found = {
        network_id
        for network_id, provider_id in session.execute(
            select(NetworkRow.id, NetworkRow.provider_id).where(NetworkRow.id.in_(wanted))
        )
        if grants.has_network(provider_id, network_id)
    }
    unknown = sorted(wanted - found)
    if unknown:
        raise InvalidInputError(f"networks: no network {', '.join(unknown)}")
    return wanted


def _segments(session: Session, spec: PlacementSpec, scope: Scope) -> frozenset[SegmentRef]:
    """The segments the NICs are on: those named, and those of the ports given; one out of
    `scope`'s reach (or a port) is not found, so nothing of it shows in an explanation."""
    rows = [access.segment(session, segment_id, scope) for segment_id in spec.segments]
    for port_id in spec.ports:
        port = access.owned(session, NetPortRow, port_id, scope, "port")
        segment = session.get(SegmentRow, port.segment_id)
        if segment is not None:
            rows.append(segment)
    return frozenset(SegmentRef(row.id, row.name) for row in rows)


def _find_group(
    session: Session,
    name_or_id: str,
    missing: type[NotFoundError | InvalidInputError],
    scope: Scope = PLATFORM,
) -> PlacementGroupRow:
    """A group in `scope` by id, or by name among the groups of the caller's own project
    (an unscoped admin's: the platform's), the only place a name is unique."""
    by_name = and_(PlacementGroupRow.name == name_or_id, _of_project(scope.project_id))
    row = session.scalar(
        select(PlacementGroupRow).where(
            or_(PlacementGroupRow.id == name_or_id, by_name),
            *scope.owned(PlacementGroupRow.project_id),
        )
    )
    if row is None:
        raise missing(f"placement group {name_or_id!r} not found")
    return row


def _of_project(project_id: str | None) -> ColumnElement[bool]:
    """The groups of `project_id`; None: the platform's own."""
    column = PlacementGroupRow.project_id
    return column.is_(None) if project_id is None else column == project_id


def _members(session: Session, scope: Scope, group_ids: list[str]) -> dict[str, list[str]]:
    """Group id → the ids of its member VMs in `scope` (an admin may have put another
    project's VM in a group; its owners alone see it there)."""
    stmt = (
        select(PlacementGroupMemberRow.group_id, PlacementGroupMemberRow.vm_id)
        .where(PlacementGroupMemberRow.group_id.in_(group_ids))
        .order_by(PlacementGroupMemberRow.vm_id)
    )
    if not scope.unrestricted:
        stmt = stmt.join(VMRow, VMRow.id == PlacementGroupMemberRow.vm_id).where(
            *scope.owned(VMRow.project_id)
        )
    members: dict[str, list[str]] = {}
    for group_id, vm_id in session.execute(stmt):
        members.setdefault(group_id, []).append(vm_id)
    return members


def _view(session: Session, row: PlacementGroupRow, scope: Scope = PLATFORM) -> GroupView:
    members = _members(session, scope, [row.id]).get(row.id, [])
    return GroupView(row.id, row.name, GroupPolicy(row.policy), members, row.created_at)


def list_groups(session: Session, scope: Scope = PLATFORM) -> list[GroupView]:
    """The groups of `scope`'s project (every group for an admin)."""
    rows = list(
        session.scalars(
            select(PlacementGroupRow)
            .where(*scope.owned(PlacementGroupRow.project_id))
            .order_by(PlacementGroupRow.name)
        )
    )
    members = _members(session, scope, [r.id for r in rows])
    return [
        GroupView(r.id, r.name, GroupPolicy(r.policy), members.get(r.id, []), r.created_at)
        for r in rows
    ]


def get_group(session: Session, name_or_id: str, scope: Scope = PLATFORM) -> GroupView:
    return _view(session, _find_group(session, name_or_id, NotFoundError, scope), scope)


def create_group(
    rt: Runtime, name: str, policy: GroupPolicy, *, project_id: str | None = None
) -> GroupView:
    """A group of `project_id` (None: the platform's). Names are unique within a project
    (the platform's groups: among themselves), so another project's never conflicts."""
    taken = and_(PlacementGroupRow.name == name, _of_project(project_id))
    try:
        with rt.sessions.begin() as session:
            if session.scalar(select(PlacementGroupRow.id).where(taken)):
                raise ConflictError(f"a placement group named {name!r} already exists")
            row = PlacementGroupRow(name=name, policy=policy.value, project_id=project_id)
            session.add(row)
            session.flush()
            return _view(session, row)
    except IntegrityError:  # created by someone else between the check and the insert
        raise ConflictError(f"a placement group named {name!r} already exists") from None


def delete_group(rt: Runtime, name_or_id: str, *, scope: Scope = PLATFORM) -> None:
    with rt.sessions.begin() as session:
        session.delete(_find_group(session, name_or_id, NotFoundError, scope))


def add_member(rt: Runtime, name_or_id: str, vm_id: str, *, scope: Scope = PLATFORM) -> GroupView:
    """Put a VM in a group; doing it again changes nothing. Both must be in `scope`."""
    with rt.sessions.begin() as session:
        row = _find_group(session, name_or_id, NotFoundError, scope)
        vm = session.get(VMRow, vm_id)
        if vm is None or not scope.sees(vm.project_id):
            raise NotFoundError(f"VM {vm_id} not found")
        if session.get(PlacementGroupMemberRow, (row.id, vm_id)) is None:
            session.add(PlacementGroupMemberRow(group_id=row.id, vm_id=vm_id))
            session.flush()
        return _view(session, row, scope)


def remove_member(rt: Runtime, name_or_id: str, vm_id: str, *, scope: Scope = PLATFORM) -> None:
    with rt.sessions.begin() as session:
        row = _find_group(session, name_or_id, NotFoundError, scope)
        gone = session.execute(
            delete(PlacementGroupMemberRow).where(
                PlacementGroupMemberRow.group_id == row.id, PlacementGroupMemberRow.vm_id == vm_id
            )
        )
        if not getattr(gone, "rowcount", 0):
            raise NotFoundError(f"VM {vm_id} is not in placement group {row.name}")
