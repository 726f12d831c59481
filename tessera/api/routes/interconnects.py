"""Interconnects between regions (platform admins): routed over BGP or OSPF, or VPN over
IPsec or GRE. The API records them and their ranges (checked against the address space);
the interconnect agent on each region's node starts the daemons and keeps what they
announce or tunnel in step with the regions' subnets."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Response, status
from sqlalchemy.orm import Session

from tessera.api.deps import PrincipalDep, RuntimeDep, ScopeDep, SessionDep
from tessera.api.network_schemas import (
    InterconnectCreate,
    InterconnectPublic,
    InterconnectSide,
    InterconnectSidePublic,
)
from tessera.api.routes.networks import errors
from tessera.db.rows import InterconnectRow
from tessera.network.interconnect import service
from tessera.network.interconnect.agent import read_status
from tessera.network.interconnect.model import InterconnectKind
from tessera.network.interconnect.service import InterconnectRequest, SideRequest

router = APIRouter(prefix="/v1", tags=["networks"])


def _side_request(side: InterconnectSide) -> SideRequest:
    return SideRequest(
        region=side.region,
        namespace=side.namespace,
        underlay_ip=side.underlay_ip,
        asn=side.asn,
        tunnel_ip=side.tunnel_ip,
        ranges=side.ranges,
    )


def to_public(session: Session, row: InterconnectRow, data_dir: Path) -> InterconnectPublic:
    """With each side's tunnel state as this node's agent last saw it."""
    sides = {}
    for which in service.SIDES:
        plan = service.plan(session, row, which)
        local = plan.local
        tunnel = read_status(data_dir, row.id, which)
        sides[which] = InterconnectSidePublic(
            region_id=local.region_id,
            region=local.region,
            namespace=local.namespace,
            underlay_ip=local.underlay_ip,
            asn=local.asn,
            tunnel_ip=local.tunnel_ip,
            ranges=list(local.ranges),
            prefixes=list(plan.local_prefixes),
            tunnel_state=tunnel.state.value,
            tunnel_checked_at=tunnel.checked_at,
        )
    return InterconnectPublic(
        id=row.id,
        name=row.name,
        kind=InterconnectKind(row.kind).value,
        a=sides["a"],
        b=sides["b"],
        ospf_area=row.ospf_area,
        has_psk=row.psk_secret is not None,
        created_at=row.created_at,
    )


@router.get("/interconnects", response_model=list[InterconnectPublic])
def list_interconnects(session: SessionDep, rt: RuntimeDep) -> list[InterconnectPublic]:
    data_dir = rt.settings.data_dir
    return [to_public(session, row, data_dir) for row in service.list_all(session)]


@router.post(
    "/interconnects",
    status_code=status.HTTP_201_CREATED,
    response_model=InterconnectPublic,
    responses=errors("interconnect", 409, 422),
)
def create_interconnect(
    body: InterconnectCreate, rt: RuntimeDep, session: SessionDep, scope: ScopeDep
) -> InterconnectPublic:
    """A range of a side that overlaps another region's, peer's or migration target's
    range (or a subnet) is refused (409) naming both ranges and owners; nothing is kept."""
    request = InterconnectRequest(
        name=body.name,
        kind=InterconnectKind(body.kind),
        a=_side_request(body.a),
        b=_side_request(body.b),
        ospf_area=body.ospf_area,
        psk=body.psk,
    )
    row = service.create(rt, request, scope=scope)
    return to_public(session, service.get(session, row.id), rt.settings.data_dir)


@router.get(
    "/interconnects/{interconnect_id}",
    response_model=InterconnectPublic,
    responses=errors("interconnect", 404),
)
def show_interconnect(
    interconnect_id: str, session: SessionDep, rt: RuntimeDep
) -> InterconnectPublic:
    return to_public(session, service.get(session, interconnect_id), rt.settings.data_dir)


@router.delete(
    "/interconnects/{interconnect_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors("interconnect", 404),
)
def delete_interconnect(interconnect_id: str, rt: RuntimeDep, principal: PrincipalDep) -> Response:
    """Also removes the ranges it recorded; its sides run on this node are stopped by a
    task (`interconnect.sync`), another node's by its agent at its next sync."""
    service.delete(rt, interconnect_id, requester=principal.user_name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
