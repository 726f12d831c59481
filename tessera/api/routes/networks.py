"""Tessera's own networks: segments and their subnets and ports, and the address space.

Tessera-managed L2 networks live under /v1/segments: /v1/networks is the pools' own
networks as the inventory reads them (portgroups, bridges), and a segment realised on a
pool shows up there too once synced, as the portgroup it became. A segment changes pools,
so creating, re-tagging or deleting one answers 202 with the task that does it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status
from sqlalchemy.orm import Session

from tessera.api.deps import PrincipalDep, RuntimeDep, ScopeDep, SessionDep
from tessera.api.network_schemas import (
    AddressRangeCreate,
    AddressRangePublic,
    AllocationPoolBody,
    FixedIPPublic,
    OverlapPublic,
    PortCreate,
    PortPublic,
    RangeOwner,
    RealisationPublic,
    SegmentAccepted,
    SegmentCreate,
    SegmentPublic,
    SegmentUpdate,
    SubnetCreate,
    SubnetPublic,
)
from tessera.api.routes.tasks import to_public as task_public
from tessera.api.schemas import ErrorBody
from tessera.db.rows import AddressRangeRow, NetPortRow, SegmentRow, SubnetRow
from tessera.identity.scope import Scope
from tessera.network import access, addressing, ports, segments
from tessera.network.model import (
    AddressRange,
    AllocationPool,
    NetworkType,
    RangeKind,
    RealisationState,
    SegmentStatus,
)
from tessera.network.ports import FixedIP, PortRequest
from tessera.network.segments import SegmentRequest

router = APIRouter(prefix="/v1", tags=["networks"])


def errors(what: str, *codes: int) -> dict[int | str, dict[str, Any]]:
    """The error answers of a route about `what`."""
    text = {
        404: f"No such {what} (or not yours).",
        409: "It clashes with what exists: an overlap, a VLAN or address in use, a "
        "dependent object, or a task at work on it.",
        422: "Invalid input; `message` says what.",
        403: "The caller's role, or the object's owner, does not allow it.",
    }
    return {code: {"model": ErrorBody, "description": text[code]} for code in codes}


def segment_public(session: Session, row: SegmentRow) -> SegmentPublic:
    realised = segments.realisations(session, [row.id])[row.id]
    subnets = addressing.list_subnets(session, Scope(None, True), row.id)
    return SegmentPublic(
        id=row.id,
        name=row.name,
        description=row.description,
        project_id=row.project_id,
        network_type=NetworkType(row.network_type),
        segmentation_id=row.segmentation_id,
        physical_network=row.physical_network,
        shared=row.shared,
        external=row.external,
        region_id=row.region_id,
        status=SegmentStatus(row.status),
        realisations=[
            RealisationPublic(
                provider_id=r.provider_id,
                state=RealisationState(r.state),
                native_name=r.native_name,
                location=r.location,
            )
            for r in realised
        ],
        subnet_ids=[s.id for s in subnets],
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _accepted(session: Session, result: segments.SegmentResult) -> SegmentAccepted:
    fresh = session.get(SegmentRow, result.segment.id)
    return SegmentAccepted(
        segment=segment_public(session, fresh or result.segment),
        task=task_public(result.task) if result.task else None,
    )


@router.get("/segments", response_model=list[SegmentPublic])
def list_segments(session: SessionDep, scope: ScopeDep) -> list[SegmentPublic]:
    """The caller's segments, and the shared and external ones."""
    return [segment_public(session, row) for row in segments.list_segments(session, scope)]


@router.post(
    "/segments",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SegmentAccepted,
    responses=errors("pool or region", 403, 404, 409, 422),
)
def create_segment(
    body: SegmentCreate,
    rt: RuntimeDep,
    session: SessionDep,
    scope: ScopeDep,
    principal: PrincipalDep,
) -> SegmentAccepted:
    """Save a segment and queue the task realising it on its pools (a portgroup with its
    VLAN on each vCenter); without pools it is active at once. 409 when its VLAN or VNI
    is taken, or a network of one of its pools carries the VLAN already."""
    request = SegmentRequest(
        name=body.name,
        description=body.description,
        network_type=body.network_type,
        segmentation_id=body.segmentation_id,
        physical_network=body.physical_network,
        provider_ids=body.provider_ids,
        shared=body.shared,
        external=body.external,
        region=body.region,
        project_id=body.project_id,
        requester=principal.user_name,
    )
    return _accepted(session, segments.create_segment(rt, request, scope=scope))


@router.get(
    "/segments/{segment_id}", response_model=SegmentPublic, responses=errors("segment", 404)
)
def show_segment(segment_id: str, session: SessionDep, scope: ScopeDep) -> SegmentPublic:
    return segment_public(session, access.segment(session, segment_id, scope))


@router.patch(
    "/segments/{segment_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SegmentAccepted,
    responses=errors("segment", 403, 404, 409, 422),
)
def update_segment(
    segment_id: str,
    body: SegmentUpdate,
    rt: RuntimeDep,
    session: SessionDep,
    scope: ScopeDep,
    principal: PrincipalDep,
) -> SegmentAccepted:
    """Rename, describe, or give it a new VLAN id (a task re-tags it on its pools, and
    puts the old one back everywhere if one pool fails)."""
    result = segments.update_segment(
        rt,
        segment_id,
        name=body.name,
        description=body.description,
        segmentation_id=body.segmentation_id,
        requester=principal.user_name,
        scope=scope,
    )
    return _accepted(session, result)


@router.delete(
    "/segments/{segment_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SegmentAccepted,
    responses=errors("segment", 403, 404, 409),
)
def delete_segment(
    segment_id: str,
    rt: RuntimeDep,
    session: SessionDep,
    scope: ScopeDep,
    principal: PrincipalDep,
) -> SegmentAccepted:
    """Take it off its pools (a task) and forget it; refused (409) while ports, routers
    or floating IPs use it. Without pools it is gone at once (`task` null)."""
    with rt.sessions() as reading:
        before = segment_public(reading, access.segment(reading, segment_id, scope))
    task = segments.delete_segment(rt, segment_id, requester=principal.user_name, scope=scope)
    return SegmentAccepted(segment=before, task=task_public(task) if task else None)


# -- subnets -----------------------------------------------------------------------


def subnet_public(session: Session, row: SubnetRow) -> SubnetPublic:
    used, total = addressing.usage(session, row)
    return SubnetPublic(
        id=row.id,
        segment_id=row.segment_id,
        project_id=row.project_id,
        name=row.name,
        cidr=row.cidr,
        ip_version=row.ip_version,
        gateway_ip=row.gateway_ip,
        allocation_pools=[AllocationPoolBody(start=s, end=e) for s, e in row.allocation_pools],
        dns_nameservers=row.dns_nameservers,
        enable_dhcp=row.enable_dhcp,
        addresses_used=used,
        addresses_total=total,
        created_at=row.created_at,
    )


@router.get("/subnets", response_model=list[SubnetPublic])
def list_subnets(
    session: SessionDep, scope: ScopeDep, segment_id: str | None = None
) -> list[SubnetPublic]:
    rows = addressing.list_subnets(session, scope, segment_id)
    return [subnet_public(session, row) for row in rows]


@router.post(
    "/subnets",
    status_code=status.HTTP_201_CREATED,
    response_model=SubnetPublic,
    responses=errors("segment", 403, 404, 409, 422),
)
def create_subnet(
    body: SubnetCreate,
    rt: RuntimeDep,
    session: SessionDep,
    scope: ScopeDep,
    principal: PrincipalDep,
) -> SubnetPublic:
    """A subnet of one of the caller's segments: the gateway inside it, allocation pools
    inside it and apart; 409 naming both ranges and owners when it overlaps any range
    Tessera knows (another project's is only said to be one)."""
    request = addressing.SubnetRequest(
        segment_id=body.segment_id,
        cidr=body.cidr,
        name=body.name,
        ip_version=body.ip_version,
        gateway_ip=body.gateway_ip,
        no_gateway=body.no_gateway,
        allocation_pools=[AllocationPool(p.start, p.end) for p in body.allocation_pools],
        dns_nameservers=body.dns_nameservers,
        enable_dhcp=body.enable_dhcp,
    )
    row = addressing.create_subnet(rt, request, scope=scope, requester=principal.user_name)
    return subnet_public(session, row)


@router.get("/subnets/{subnet_id}", response_model=SubnetPublic, responses=errors("subnet", 404))
def show_subnet(subnet_id: str, session: SessionDep, scope: ScopeDep) -> SubnetPublic:
    return subnet_public(session, addressing.get_subnet(session, subnet_id, scope))


@router.delete(
    "/subnets/{subnet_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors("subnet", 403, 404, 409),
)
def delete_subnet(
    subnet_id: str, rt: RuntimeDep, scope: ScopeDep, principal: PrincipalDep
) -> Response:
    """Refused (409) while any of its addresses is held."""
    addressing.delete_subnet(rt, subnet_id, scope=scope, requester=principal.user_name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -- ports -------------------------------------------------------------------------


def ports_public(session: Session, rows: list[NetPortRow]) -> list[PortPublic]:
    ids = [row.id for row in rows]
    held = addressing.addresses_of(session, ids)
    groups = ports.security_groups_of(session, ids)
    return [
        PortPublic(
            id=row.id,
            segment_id=row.segment_id,
            project_id=row.project_id,
            name=row.name,
            mac=row.mac,
            fixed_ips=[FixedIPPublic(subnet_id=s, ip_address=a) for s, a in held[row.id]],
            device_owner=row.device_owner,
            device_id=row.device_id,
            security_group_ids=groups[row.id],
            created_at=row.created_at,
        )
        for row in rows
    ]


@router.get("/ports", response_model=list[PortPublic])
def list_ports(
    session: SessionDep, scope: ScopeDep, segment_id: str | None = None
) -> list[PortPublic]:
    return ports_public(session, ports.list_ports(session, scope, segment_id))


@router.post(
    "/ports",
    status_code=status.HTTP_201_CREATED,
    response_model=PortPublic,
    responses=errors("segment, subnet, VM or security group", 404, 409, 422),
)
def create_port(
    body: PortCreate, rt: RuntimeDep, session: SessionDep, scope: ScopeDep
) -> PortPublic:
    """A port with a unique MAC and fixed IPs from the segment's subnets (the address
    asked, or the first free one); 409 when it is taken or the pools are exhausted."""
    request = PortRequest(
        segment_id=body.segment_id,
        name=body.name,
        mac=body.mac,
        fixed_ips=[FixedIP(f.subnet_id, f.ip_address) for f in body.fixed_ips]
        if body.fixed_ips is not None
        else None,
        vm_id=body.vm_id,
        security_group_ids=body.security_group_ids,
    )
    row = ports.create_port(rt, request, scope=scope)
    return ports_public(session, [row])[0]


@router.get("/ports/{port_id}", response_model=PortPublic, responses=errors("port", 404))
def show_port(port_id: str, session: SessionDep, scope: ScopeDep) -> PortPublic:
    return ports_public(session, [ports.get_port(session, port_id, scope)])[0]


@router.delete(
    "/ports/{port_id}", status_code=status.HTTP_204_NO_CONTENT, responses=errors("port", 404, 409)
)
def delete_port(port_id: str, rt: RuntimeDep, scope: ScopeDep) -> Response:
    """Its addresses are freed; a floating IP on it is dissociated."""
    ports.delete_port(rt, port_id, scope=scope)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -- the address space (admins) ----------------------------------------------------


def range_public(row: AddressRangeRow) -> AddressRangePublic:
    return AddressRangePublic(
        id=row.id,
        name=row.name,
        kind=RangeKind(row.kind),
        cidr=row.cidr,
        region_id=row.region_id,
        description=row.description,
        created_at=row.created_at,
    )


@router.get("/address-ranges", response_model=list[AddressRangePublic])
def list_address_ranges(session: SessionDep) -> list[AddressRangePublic]:
    """Regions' spaces, VPN peers, routed announcements and migration targets."""
    return [range_public(row) for row in addressing.list_ranges(session)]


@router.post(
    "/address-ranges",
    status_code=status.HTTP_201_CREATED,
    response_model=AddressRangePublic,
    responses=errors("region", 409, 422),
)
def create_address_range(
    body: AddressRangeCreate, rt: RuntimeDep, scope: ScopeDep
) -> AddressRangePublic:
    """A VPN peer's range or an announcement that overlaps another region's, peer's or
    migration target's range (or a subnet) is refused, naming both; a region's or a
    migration target's range is recorded as it is (see the overlap report)."""
    row = addressing.create_range(
        rt,
        name=body.name,
        kind=RangeKind(body.kind),
        cidr=body.cidr,
        region=body.region,
        description=body.description,
        scope=scope,
    )
    return range_public(row)


@router.delete(
    "/address-ranges/{range_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors("address range", 404),
)
def delete_address_range(range_id: str, rt: RuntimeDep) -> Response:
    addressing.delete_range(rt, range_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _owner(item: AddressRange) -> RangeOwner:
    return RangeOwner(
        cidr=item.cidr,
        kind=item.kind,
        object_id=item.object_id,
        owner=item.owner,
        project_id=item.project_id,
    )


@router.get("/address-overlaps", response_model=list[OverlapPublic])
def list_address_overlaps(session: SessionDep) -> list[OverlapPublic]:
    """Every pair of colliding ranges now (say, after ranges were adopted from
    elsewhere), with both owners named."""
    return [
        OverlapPublic(first=_owner(o.first), second=_owner(o.second))
        for o in addressing.overlap_report(session)
    ]
