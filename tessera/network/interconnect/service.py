"""Interconnects in the database: made and removed by platform admins, with every range
a side adds (a routed announcement, a VPN peer's range) recorded in the address space
and refused when it collides (tessera.network.addressing, 409 naming both ranges and
owners), in the same transaction as the interconnect, so a refusal leaves nothing.

What a side announces or reaches through the tunnel is computed here, each time, from
the region's subnets: a subnet made in a region is announced, a deleted one withdrawn, by
the `interconnect.sync` task the change saves (tessera.network.interconnect.tasks).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

from netaddr import AddrFormatError, IPAddress, IPNetwork  # type: ignore[import-untyped]
from sqlalchemy import select
from sqlalchemy.orm import Session

from tessera.db.locks import serialize
from tessera.db.rows import AddressRangeRow, InterconnectRow, RegionRow, SegmentRow, SubnetRow
from tessera.errors import ConflictError, InvalidInputError, NotFoundError
from tessera.identity.scope import Scope
from tessera.network import addressing, validation
from tessera.network.interconnect import tasks
from tessera.network.interconnect.model import BACKBONE, InterconnectKind, Plan, Side
from tessera.network.model import AddressRange, RangeKind
from tessera.runtime import Runtime

NAMESPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ASN_MAX = 4_294_967_295
MIN_PSK = 16
SIDES = ("a", "b")


@dataclass(frozen=True)
class SideRequest:
    region: str
    namespace: str
    underlay_ip: str
    asn: int | None = None
    tunnel_ip: str | None = None
    ranges: Sequence[str] = ()


@dataclass(frozen=True)
class InterconnectRequest:
    name: str
    kind: InterconnectKind
    a: SideRequest
    b: SideRequest
    ospf_area: str | None = None
    psk: str | None = field(default=None, repr=False)


def _side(req: SideRequest, kind: InterconnectKind, which: str) -> dict[str, object]:
    """A side's JSON, every value checked (422 naming the side and the field)."""
    if not NAMESPACE.match(req.namespace):
        raise InvalidInputError(f"side {which}: namespace {req.namespace!r} is not a valid name")
    underlay = validation.address(req.underlay_ip, f"side {which}: underlay_ip")
    if underlay.version != 4:
        raise InvalidInputError(f"side {which}: underlay_ip must be IPv4")
    if kind is InterconnectKind.BGP and (req.asn is None or not 1 <= req.asn <= ASN_MAX):
        raise InvalidInputError(f"side {which}: a BGP interconnect needs an asn, 1 to {ASN_MAX}")
    tunnel: str | None = None
    if kind is InterconnectKind.GRE:
        tunnel = _tunnel_ip(req.tunnel_ip, which)
    ranges = [str(validation.network(r, f"side {which}: range")) for r in req.ranges]
    if any(IPNetwork(r).version != 4 for r in ranges):
        raise InvalidInputError(f"side {which}: ranges must be IPv4")
    return {
        "namespace": req.namespace,
        "underlay_ip": str(underlay),
        "asn": req.asn if kind is InterconnectKind.BGP else None,
        "tunnel_ip": tunnel,
        "ranges": ranges,
    }


def _tunnel_ip(value: str | None, which: str) -> str:
    """An address with its prefix length, as 10.255.0.1/30."""
    wrong = f"side {which}: a GRE interconnect needs a tunnel_ip with its prefix (10.255.0.1/30)"
    if value is None or "/" not in value:
        raise InvalidInputError(wrong)
    try:
        parsed = IPNetwork(value, flags=0)
    except (AddrFormatError, ValueError, TypeError):
        raise InvalidInputError(f"{wrong}, not {value!r}") from None
    if parsed.version != 4 or parsed.ip in (parsed.network, parsed.broadcast):
        raise InvalidInputError(f"{wrong}, not {value!r}")
    return f"{parsed.ip}/{parsed.prefixlen}"


def _check_pair(kind: InterconnectKind, a: dict[str, object], b: dict[str, object]) -> None:
    if a["underlay_ip"] == b["underlay_ip"]:
        raise InvalidInputError("the two sides need different underlay_ip addresses")
    if kind is InterconnectKind.GRE:
        ta, tb = IPNetwork(str(a["tunnel_ip"])), IPNetwork(str(b["tunnel_ip"]))
        if ta.cidr != tb.cidr or ta.ip == tb.ip:
            raise InvalidInputError(f"tunnel_ip {ta} and {tb} must be two addresses of one subnet")


def _region(session: Session, name: str) -> RegionRow:
    """The region of that name or id, made when new (as registering a pool does)."""
    row = session.get(RegionRow, name) or session.scalar(
        select(RegionRow).where(RegionRow.name == name)
    )
    if row is None:
        if not NAMESPACE.match(name):
            raise InvalidInputError(f"region {name!r} is not a valid name")
        row = RegionRow(name=name)
        session.add(row)
        session.flush()
    return row


def _ospf_area(kind: InterconnectKind, area: str | None) -> str | None:
    if kind is not InterconnectKind.OSPF:
        return None
    value = area or BACKBONE
    try:
        return str(IPAddress(int(value) if value.isdigit() else value, 4, flags=0))
    except (ValueError, TypeError, AddrFormatError):
        raise InvalidInputError(f"ospf_area {area!r} is not an area id (0 or 0.0.0.0)") from None


def create(rt: Runtime, req: InterconnectRequest, *, scope: Scope) -> InterconnectRow:
    """Record an interconnect; its sides' extra ranges must clear the address space."""
    side_a, side_b = _side(req.a, req.kind, "a"), _side(req.b, req.kind, "b")
    _check_pair(req.kind, side_a, side_b)
    area = _ospf_area(req.kind, req.ospf_area)
    psk: str | None = None
    if req.kind is InterconnectKind.IPSEC:
        psk = req.psk or secrets.token_urlsafe(32)
        if len(psk) < MIN_PSK or not psk.isprintable() or '"' in psk or "\\" in psk:
            raise InvalidInputError(
                f"psk must be {MIN_PSK} or more printable characters, no quotes or backslashes"
            )
    elif req.psk is not None:
        raise InvalidInputError("only an ipsec interconnect takes a psk")
    range_kind = RangeKind.ANNOUNCEMENT if req.kind.routed else RangeKind.VPN_PEER
    with rt.sessions.begin() as session:
        serialize(session, addressing.ADDRESS_SPACE_LOCK)
        if session.scalar(select(InterconnectRow.id).where(InterconnectRow.name == req.name)):
            raise ConflictError(f"an interconnect named {req.name!r} already exists")
        region_a, region_b = _region(session, req.a.region), _region(session, req.b.region)
        if region_a.id == region_b.id:
            raise InvalidInputError("an interconnect joins two different regions")
        row = InterconnectRow(
            name=req.name,
            kind=req.kind.value,
            region_a_id=region_a.id,
            region_b_id=region_b.id,
            side_a=side_a,
            side_b=side_b,
            ospf_area=area,
            range_ids=[],
        )
        session.add(row)
        session.flush()
        if psk is not None:
            row.psk_secret = rt.secrets.encrypt(psk, bound_to=row.id)
        ids = []
        for region, side in ((region_a, side_a), (region_b, side_b)):
            for cidr in cast(list[str], side["ranges"]):
                made = AddressRangeRow(
                    name=f"{req.name}/{region.name}",
                    kind=range_kind.value,
                    cidr=cidr,
                    region_id=region.id,
                    description=f"{req.kind.value} interconnect {req.name!r}",
                )
                session.add(made)
                session.flush()
                owner = f"{range_kind.value} {made.name!r} of region {region.name!r}"
                candidate = AddressRange(cidr, range_kind, made.id, owner, None, region.id)
                addressing.refuse_collisions(session, candidate, scope)
                ids.append(made.id)
        row.range_ids = ids
    return row


def get(session: Session, interconnect_id: str) -> InterconnectRow:
    """By id or name."""
    row = session.get(InterconnectRow, interconnect_id) or session.scalar(
        select(InterconnectRow).where(InterconnectRow.name == interconnect_id)
    )
    if row is None:
        raise NotFoundError(f"interconnect {interconnect_id} not found")
    return row


def list_all(session: Session) -> list[InterconnectRow]:
    return list(session.scalars(select(InterconnectRow).order_by(InterconnectRow.name)))


def delete(rt: Runtime, interconnect_id: str, *, requester: str) -> None:
    """Remove it and the ranges it recorded; the task this saves stops the daemons of
    its sides run on this node (another node's agent stops its own at its next sync)."""
    with rt.sessions.begin() as session:
        row = get(session, interconnect_id)
        for range_id in row.range_ids:
            recorded = session.get(AddressRangeRow, range_id)
            if recorded is not None:
                session.delete(recorded)
        session.delete(row)
        sync = tasks.add_sync(session, [row.id], requester=requester)
    tasks.enqueue(sync)


def psk(rt: Runtime, row: InterconnectRow) -> str:
    if row.psk_secret is None:
        raise InvalidInputError(f"interconnect {row.name!r} has no pre-shared key")
    return rt.secrets.decrypt(row.psk_secret, bound_to=row.id)


def region_subnets(session: Session, region_id: str) -> list[str]:
    """The IPv4 tenant subnets of a region (external segments' are not announced)."""
    cidrs = session.scalars(
        select(SubnetRow.cidr)
        .join(SegmentRow, SegmentRow.id == SubnetRow.segment_id)
        .where(
            SegmentRow.region_id == region_id,
            SegmentRow.external.is_(False),
            SubnetRow.ip_version == 4,
        )
    )
    return sorted(set(cidrs), key=lambda c: (IPNetwork(c).first, IPNetwork(c).prefixlen))


def side(session: Session, row: InterconnectRow, which: str) -> Side:
    if which not in SIDES:
        raise InvalidInputError(f"side {which!r} is not one of {', '.join(SIDES)}")
    data = row.side_a if which == "a" else row.side_b
    region_id = row.region_a_id if which == "a" else row.region_b_id
    region = session.get(RegionRow, region_id)
    return Side(
        region_id=region_id,
        region=region.name if region is not None else region_id,
        namespace=str(data["namespace"]),
        underlay_ip=str(data["underlay_ip"]),
        asn=int(str(data["asn"])) if data.get("asn") is not None else None,
        tunnel_ip=str(data["tunnel_ip"]) if data.get("tunnel_ip") else None,
        ranges=tuple(str(r) for r in data.get("ranges", [])),  # type: ignore[attr-defined]
    )


def plan(session: Session, row: InterconnectRow, which: str) -> Plan:
    """What side `which` must announce (routed) or protect (VPN) now, and what lies
    behind its peer."""
    local = side(session, row, which)
    peer = side(session, row, "b" if which == "a" else "a")
    return Plan(
        interconnect_id=row.id,
        name=row.name,
        kind=InterconnectKind(row.kind),
        local=local,
        peer=peer,
        local_prefixes=tuple(region_subnets(session, local.region_id)) + local.ranges,
        remote_prefixes=tuple(region_subnets(session, peer.region_id)) + peer.ranges,
        ospf_area=row.ospf_area or BACKBONE,
    )
