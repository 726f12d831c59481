"""Subnets, address allocation and the address space: every subnet and recorded range is
checked against all the others (tessera.network.overlap) in a transaction serialised on
ADDRESS_SPACE_LOCK, so two overlapping subnets made at once cannot both get in.

A collision is refused (409) with a message naming both ranges and their owners; a
range of another project is named only as "a range owned by another project".

Creating or deleting a subnet saves, in its transaction, the `interconnect.sync` task that
announces or withdraws it on its region's interconnects (tessera.network.interconnect.
tasks), queued once committed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from netaddr import IPNetwork  # type: ignore[import-untyped]
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tessera.db.locks import serialize
from tessera.db.rows import (
    AddressRangeRow,
    IPAllocationRow,
    NetPortRow,
    RegionRow,
    SegmentRow,
    SubnetRow,
)
from tessera.errors import ConflictError, InvalidInputError, NotFoundError
from tessera.identity.scope import Scope
from tessera.network import access, ipam, overlap, validation
from tessera.network.interconnect import tasks as interconnect_tasks
from tessera.network.model import (
    AddressRange,
    AllocationPool,
    DeviceOwner,
    Overlap,
    RangeKind,
)
from tessera.runtime import Runtime

ADDRESS_SPACE_LOCK = "network:address-space"


@dataclass(frozen=True)
class SubnetRequest:
    segment_id: str
    cidr: str
    name: str = ""
    ip_version: int | None = None
    gateway_ip: str | None = None
    no_gateway: bool = False
    allocation_pools: Sequence[AllocationPool] = ()
    dns_nameservers: Sequence[str] = ()
    enable_dhcp: bool = True


def pools_of(row: SubnetRow) -> list[AllocationPool]:
    return [AllocationPool(start, end) for start, end in row.allocation_pools]


# -- the address space -------------------------------------------------------------


def known_ranges(session: Session) -> list[AddressRange]:
    """Every range Tessera knows, with its owner named."""
    projects = access.project_names(session)
    regions = {rid: name for rid, name in session.execute(select(RegionRow.id, RegionRow.name))}
    found: list[AddressRange] = []
    subnets = session.execute(
        select(
            SubnetRow.id,
            SubnetRow.name,
            SubnetRow.cidr,
            SegmentRow.name,
            SegmentRow.project_id,
            SegmentRow.region_id,
        ).join(SegmentRow, SegmentRow.id == SubnetRow.segment_id)
    )
    for subnet_id, name, cidr, segment_name, project_id, region_id in subnets:
        whose = f"project {projects[project_id]!r}" if project_id in projects else "the platform"
        found.append(
            AddressRange(
                cidr=cidr,
                kind=RangeKind.SUBNET,
                object_id=subnet_id,
                owner=f"{_subnet_label(name, subnet_id)} of segment {segment_name!r}, {whose}",
                project_id=project_id,
                region_id=region_id,
            )
        )
    for row in session.scalars(select(AddressRangeRow)):
        kind = RangeKind(row.kind)
        region = ""
        if kind is not RangeKind.REGION and row.region_id in regions:
            region = f" of region {regions[row.region_id]!r}"
        found.append(
            AddressRange(
                cidr=row.cidr,
                kind=kind,
                object_id=row.id,
                owner=f"{kind.value} {row.name!r}{region}",
                region_id=row.region_id,
            )
        )
    return found


def _subnet_label(name: str, subnet_id: str) -> str:
    return f"subnet {name!r}" if name else f"subnet {subnet_id}"


def describe(item: AddressRange, scope: Scope) -> str:
    """A range and its owner as `scope` may be told of them."""
    if item.kind is RangeKind.SUBNET and not scope.sees(item.project_id):
        return f"{item.cidr}, a range owned by another project"
    return f"{item.cidr} ({item.owner})"


def refuse_collisions(session: Session, candidate: AddressRange, scope: Scope) -> None:
    """409 naming the first range `candidate` collides with; the transaction must have
    begun with serialize(session, ADDRESS_SPACE_LOCK)."""
    hits = overlap.collisions(candidate, known_ranges(session))
    if hits:
        more = f" (and {len(hits) - 1} more)" if len(hits) > 1 else ""
        raise ConflictError(
            f"{candidate.cidr} ({candidate.owner}) overlaps {describe(hits[0], scope)}{more}"
        )


def overlap_report(session: Session) -> list[Overlap]:
    """Every pair of colliding ranges now (an admin's view: owners named in full)."""
    return overlap.report(known_ranges(session))


def _region_id(session: Session, region: str | None) -> str | None:
    if region is None:
        return None
    row = session.get(RegionRow, region) or session.scalar(
        select(RegionRow).where(RegionRow.name == region)
    )
    if row is None:
        raise InvalidInputError(f"region {region!r} not found")
    return row.id


def create_range(
    rt: Runtime,
    *,
    name: str,
    kind: RangeKind,
    cidr: str,
    region: str | None,
    description: str = "",
    scope: Scope,
) -> AddressRangeRow:
    """Record a range (admins). A peer's range or an announcement that collides is
    refused; a region's or a migration target's is recorded as it is (the report shows
    what it collides with)."""
    if kind is RangeKind.SUBNET:
        raise InvalidInputError("subnets are made with POST /v1/subnets")
    net = validation.network(cidr)
    if kind in (RangeKind.REGION, RangeKind.ANNOUNCEMENT) and region is None:
        raise InvalidInputError(f"a {kind.value} range needs its region")
    with rt.sessions.begin() as session:
        serialize(session, ADDRESS_SPACE_LOCK)
        row = AddressRangeRow(
            name=name,
            kind=kind.value,
            cidr=str(net),
            region_id=_region_id(session, region),
            description=description,
        )
        session.add(row)
        session.flush()
        if kind.refused_on_overlap:
            region_name = (
                f" of region {region!r}" if region and kind is not RangeKind.REGION else ""
            )
            candidate = AddressRange(
                str(net), kind, row.id, f"{kind.value} {name!r}{region_name}", None, row.region_id
            )
            refuse_collisions(session, candidate, scope)
    return row


def list_ranges(session: Session) -> list[AddressRangeRow]:
    return list(session.scalars(select(AddressRangeRow).order_by(AddressRangeRow.cidr)))


def delete_range(rt: Runtime, range_id: str) -> None:
    with rt.sessions.begin() as session:
        row = session.get(AddressRangeRow, range_id)
        if row is None:
            raise NotFoundError(f"address range {range_id} not found")
        session.delete(row)


# -- subnets -----------------------------------------------------------------------


def create_subnet(rt: Runtime, req: SubnetRequest, *, scope: Scope, requester: str) -> SubnetRow:
    """A subnet of a segment the caller may change, clear of every other range; its
    region's interconnects then announce it (a task `requester` asked for)."""
    plan = validation.subnet(
        req.cidr,
        ip_version=req.ip_version,
        gateway_ip=req.gateway_ip,
        no_gateway=req.no_gateway,
        allocation_pools=req.allocation_pools,
        dns_nameservers=req.dns_nameservers,
    )
    with rt.sessions.begin() as session:
        serialize(session, ADDRESS_SPACE_LOCK)
        segment = access.segment(session, req.segment_id, scope, write=True)
        row = SubnetRow(
            segment_id=segment.id,
            project_id=segment.project_id,
            name=req.name,
            cidr=plan.cidr,
            ip_version=plan.ip_version,
            gateway_ip=plan.gateway_ip,
            allocation_pools=[[p.start, p.end] for p in plan.allocation_pools],
            dns_nameservers=list(plan.dns_nameservers),
            enable_dhcp=req.enable_dhcp,
        )
        session.add(row)
        session.flush()
        whose = "the platform"
        if segment.project_id is not None:
            whose = f"project {access.project_names(session).get(segment.project_id, '')!r}"
        candidate = AddressRange(
            plan.cidr,
            RangeKind.SUBNET,
            row.id,
            f"{_subnet_label(req.name, row.id)} of segment {segment.name!r}, {whose}",
            segment.project_id,
            segment.region_id,
        )
        refuse_collisions(session, candidate, scope)
        sync = interconnect_tasks.add_sync(
            session,
            interconnect_tasks.of_subnet(session, segment, plan.ip_version),
            requester=requester,
        )
    interconnect_tasks.enqueue(sync)
    return row


def get_subnet(session: Session, subnet_id: str, scope: Scope) -> SubnetRow:
    row = session.get(SubnetRow, subnet_id)
    if row is None:
        raise NotFoundError(f"subnet {subnet_id} not found")
    try:
        access.segment(session, row.segment_id, scope)
    except NotFoundError:
        raise NotFoundError(f"subnet {subnet_id} not found") from None
    return row


def list_subnets(session: Session, scope: Scope, segment_id: str | None = None) -> list[SubnetRow]:
    stmt = (
        select(SubnetRow)
        .join(SegmentRow, SegmentRow.id == SubnetRow.segment_id)
        .where(*access.readable_segments(scope))
    )
    if segment_id is not None:
        stmt = stmt.where(SubnetRow.segment_id == segment_id)
    return list(session.scalars(stmt.order_by(SubnetRow.created_at, SubnetRow.id)))


def delete_subnet(rt: Runtime, subnet_id: str, *, scope: Scope, requester: str) -> None:
    """Only a subnet no port or floating IP holds an address of; its region's
    interconnects then withdraw it (a task `requester` asked for)."""
    with rt.sessions.begin() as session:
        row = get_subnet(session, subnet_id, scope)
        segment = access.segment(session, row.segment_id, scope, write=True)
        held = session.scalar(
            select(func.count())
            .select_from(IPAllocationRow)
            .where(IPAllocationRow.subnet_id == row.id)
        )
        if held:
            raise ConflictError(
                f"subnet {subnet_id} has {held} addresses in use (ports, router interfaces or"
                " floating IPs); remove them first"
            )
        session.delete(row)
        sync = interconnect_tasks.add_sync(
            session,
            interconnect_tasks.of_subnet(session, segment, row.ip_version),
            requester=requester,
        )
    interconnect_tasks.enqueue(sync)


def usage(session: Session, row: SubnetRow) -> tuple[int, int]:
    """(addresses held, size of its allocation pools)."""
    held = session.scalar(
        select(func.count()).select_from(IPAllocationRow).where(IPAllocationRow.subnet_id == row.id)
    )
    return int(held or 0), ipam.pool_size(pools_of(row))


# -- allocation --------------------------------------------------------------------


def allocate(
    session: Session,
    subnet: SubnetRow,
    wanted: str | None = None,
    *,
    owner: DeviceOwner = DeviceOwner.NONE,
) -> str:
    """An address of `subnet` for one holder: `wanted` when free, else the first free one
    of its pools (409 when they are exhausted). The transaction must have begun with
    serialize(session, ipam.lock_name(subnet.id)). Only a router's interface takes the
    gateway's address."""
    used = set(
        session.scalars(
            select(IPAllocationRow.address).where(IPAllocationRow.subnet_id == subnet.id)
        )
    )
    if wanted is None:
        found = ipam.first_free(pools_of(subnet), used)
        if found is None:
            raise ConflictError(f"subnet {subnet.cidr} has no free address left")
        return found
    address = validation.address(wanted, "ip_address")
    net = IPNetwork(subnet.cidr)
    reserved = {net.network, net.broadcast} if net.version == 4 else {net.network}
    if address not in net or address in reserved:
        raise InvalidInputError(
            f"ip_address {address} is not a host address of subnet {subnet.cidr}"
        )
    if str(address) == subnet.gateway_ip and owner is not DeviceOwner.ROUTER_INTERFACE:
        raise ConflictError(f"{address} is the gateway of subnet {subnet.cidr}")
    if str(address) in used:
        raise ConflictError(f"{address} is already in use on subnet {subnet.cidr}")
    return str(address)


def addresses_of(session: Session, port_ids: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
    """Each port's fixed IPs: [(subnet id, address)]."""
    found: dict[str, list[tuple[str, str]]] = {pid: [] for pid in port_ids}
    if not port_ids:
        return found
    rows = session.execute(
        select(IPAllocationRow.port_id, IPAllocationRow.subnet_id, IPAllocationRow.address)
        .where(IPAllocationRow.port_id.in_(list(port_ids)))
        .order_by(IPAllocationRow.subnet_id, IPAllocationRow.address)
    )
    for port_id, subnet_id, address in rows:
        found[str(port_id)].append((subnet_id, address))
    return found


def ports_on(session: Session, segment_id: str) -> int:
    return int(
        session.scalar(
            select(func.count()).select_from(NetPortRow).where(NetPortRow.segment_id == segment_id)
        )
        or 0
    )
