"""Routers (interfaces on subnets, an external gateway with SNAT on or off) and floating
IPs (an external segment's address, 1:1 NAT to a port's fixed IP). Model and checks
only: the data plane that routes and NATs comes with the network node.

A floating IP reaches a port only through a router that has an interface on the port's
segment and its gateway on the floating IP's segment; without one the association is
refused (409), as Neutron's "external network is not reachable from the subnet".
Floating IPs count against the project's `floating_ips` quota, checked in the
transaction that allocates the address, serialised per project.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tessera.db.locks import serialize
from tessera.db.rows import (
    FloatingIPRow,
    IPAllocationRow,
    NetPortRow,
    QuotaRow,
    RouterRow,
    SegmentRow,
    SubnetRow,
)
from tessera.errors import ConflictError, InvalidInputError, NotFoundError, QuotaExceededError
from tessera.identity.scope import Scope
from tessera.network import access, addressing, ipam
from tessera.network.model import DeviceOwner
from tessera.network.ports import FixedIP, PortRequest, create_port
from tessera.runtime import Runtime


@dataclass(frozen=True)
class RouterView:
    router: RouterRow
    gateway_ips: list[str]
    interfaces: list[tuple[str, str, str]]  # (port id, subnet id, address)


def _external(session: Session, segment_id: str, scope: Scope) -> SegmentRow:
    segment = access.segment(session, segment_id, scope)
    if not segment.external:
        raise InvalidInputError(f"segment {segment_id} is not an external segment")
    return segment


def _router_ports(session: Session, router_id: str, owner: DeviceOwner) -> list[NetPortRow]:
    return list(
        session.scalars(
            select(NetPortRow).where(
                NetPortRow.device_id == router_id, NetPortRow.device_owner == owner.value
            )
        )
    )


def view(session: Session, router: RouterRow) -> RouterView:
    ports = _router_ports(session, router.id, DeviceOwner.ROUTER_GATEWAY) + _router_ports(
        session, router.id, DeviceOwner.ROUTER_INTERFACE
    )
    held = addressing.addresses_of(session, [p.id for p in ports])
    gateway_ips, interfaces = [], []
    for port in ports:
        for subnet_id, address in held[port.id]:
            if port.device_owner == DeviceOwner.ROUTER_GATEWAY.value:
                gateway_ips.append(address)
            else:
                interfaces.append((port.id, subnet_id, address))
    return RouterView(router, gateway_ips, interfaces)


def create_router(
    rt: Runtime,
    name: str,
    *,
    external_segment_id: str | None,
    enable_snat: bool,
    scope: Scope,
) -> RouterRow:
    with rt.sessions.begin() as session:
        router = RouterRow(name=name, project_id=scope.project_id, enable_snat=enable_snat)
        session.add(router)
        session.flush()
    if external_segment_id is not None:
        try:
            return set_gateway(
                rt, router.id, external_segment_id, enable_snat=enable_snat, scope=scope
            )
        except Exception:
            with rt.sessions.begin() as session:
                made = session.get(RouterRow, router.id)
                if made is not None:
                    session.delete(made)
            raise
    return router


def get_router(session: Session, router_id: str, scope: Scope) -> RouterRow:
    return access.owned(session, RouterRow, router_id, scope, "router")


def list_routers(session: Session, scope: Scope) -> list[RouterRow]:
    stmt = select(RouterRow).where(*scope.owned(RouterRow.project_id))
    return list(session.scalars(stmt.order_by(RouterRow.name, RouterRow.id)))


def set_gateway(
    rt: Runtime, router_id: str, segment_id: str, *, enable_snat: bool, scope: Scope
) -> RouterRow:
    """The router's gateway on an external segment: a port there with an address of its
    first subnet (SNAT goes out from it when on)."""
    with rt.sessions() as session:
        router = get_router(session, router_id, scope)
        segment = _external(session, segment_id, scope)
        if router.external_segment_id not in (None, segment.id):
            raise ConflictError(
                f"router {router_id} has its gateway on another segment; clear it first"
            )
        subnet: str | None = None
        if router.external_segment_id is None:
            subnet = session.scalar(
                select(SubnetRow.id)
                .where(SubnetRow.segment_id == segment.id)
                .order_by(SubnetRow.created_at, SubnetRow.id)
                .limit(1)
            )
            if subnet is None:
                raise ConflictError(f"external segment {segment_id} has no subnet to take from")
    if subnet is not None:
        request = PortRequest(segment_id=segment.id, fixed_ips=[FixedIP(subnet)])
        create_port(rt, request, scope=scope, owner=DeviceOwner.ROUTER_GATEWAY, device_id=router.id)
    with rt.sessions.begin() as session:
        router = get_router(session, router_id, scope)
        router.external_segment_id = segment.id
        router.enable_snat = enable_snat
    return router


def clear_gateway(rt: Runtime, router_id: str, *, scope: Scope) -> None:
    with rt.sessions.begin() as session:
        router = get_router(session, router_id, scope)
        _no_floating_ips(session, router.id, "its gateway")
        for port in _router_ports(session, router.id, DeviceOwner.ROUTER_GATEWAY):
            session.delete(port)
        router.external_segment_id = None


def _no_floating_ips(
    session: Session, router_id: str, what: str, segment_id: str | None = None
) -> None:
    """409 while floating IPs reach their ports through the router (on `segment_id`)."""
    stmt = (
        select(func.count()).select_from(FloatingIPRow).where(FloatingIPRow.router_id == router_id)
    )
    if segment_id is not None:
        on_segment = select(NetPortRow.id).where(NetPortRow.segment_id == segment_id)
        stmt = stmt.where(FloatingIPRow.port_id.in_(on_segment))
    count = session.scalar(stmt)
    if count:
        raise ConflictError(
            f"{count} floating IPs reach their ports through {what}; dissociate them first"
        )


def add_interface(rt: Runtime, router_id: str, subnet_id: str, *, scope: Scope) -> RouterRow:
    """An interface on a subnet of the caller's: a port holding the subnet's gateway."""
    with rt.sessions() as session:
        router = get_router(session, router_id, scope)
        subnet = addressing.get_subnet(session, subnet_id, scope)
        access.segment(session, subnet.segment_id, scope, write=True)
        if subnet.gateway_ip is None:
            raise InvalidInputError(f"subnet {subnet_id} has no gateway for a router to take")
        attached = session.scalar(
            select(NetPortRow.device_id)
            .join(IPAllocationRow, IPAllocationRow.port_id == NetPortRow.id)
            .where(
                IPAllocationRow.subnet_id == subnet.id,
                NetPortRow.device_owner == DeviceOwner.ROUTER_INTERFACE.value,
            )
        )
        if attached is not None:
            raise ConflictError(f"subnet {subnet_id} already has a router interface")
        request = PortRequest(
            segment_id=subnet.segment_id, fixed_ips=[FixedIP(subnet.id, subnet.gateway_ip)]
        )
    create_port(rt, request, scope=scope, owner=DeviceOwner.ROUTER_INTERFACE, device_id=router.id)
    return router


def remove_interface(rt: Runtime, router_id: str, subnet_id: str, *, scope: Scope) -> None:
    with rt.sessions.begin() as session:
        router = get_router(session, router_id, scope)
        subnet = addressing.get_subnet(session, subnet_id, scope)
        port = session.scalar(
            select(NetPortRow)
            .join(IPAllocationRow, IPAllocationRow.port_id == NetPortRow.id)
            .where(
                IPAllocationRow.subnet_id == subnet.id,
                NetPortRow.device_id == router.id,
                NetPortRow.device_owner == DeviceOwner.ROUTER_INTERFACE.value,
            )
        )
        if port is None:
            raise NotFoundError(f"router {router_id} has no interface on subnet {subnet_id}")
        what = f"the interface on subnet {subnet_id}"
        _no_floating_ips(session, router.id, what, subnet.segment_id)
        session.delete(port)


def delete_router(rt: Runtime, router_id: str, *, scope: Scope) -> None:
    with rt.sessions.begin() as session:
        router = get_router(session, router_id, scope)
        if _router_ports(session, router.id, DeviceOwner.ROUTER_INTERFACE):
            raise ConflictError(f"router {router_id} still has interfaces; remove them first")
        _no_floating_ips(session, router.id, "it")
        for port in _router_ports(session, router.id, DeviceOwner.ROUTER_GATEWAY):
            session.delete(port)
        session.delete(router)


# -- floating IPs ------------------------------------------------------------------


def _check_quota(session: Session, project_id: str | None) -> None:
    """One more floating IP must fit the project's quota (the transaction must have begun
    with serialize(session, quota_lock(project_id)))."""
    if project_id is None:
        return
    limits = session.get(QuotaRow, project_id)
    limit = limits.floating_ips if limits is not None else None
    if limit is None:
        return
    in_use = (
        session.scalar(
            select(func.count())
            .select_from(FloatingIPRow)
            .where(FloatingIPRow.project_id == project_id)
        )
        or 0
    )
    if in_use + 1 > limit:
        raise QuotaExceededError(
            f"quota exceeded for floating_ips: limit {limit}, {in_use} in use, 1 requested",
            quota="floating_ips",
            limit=limit,
            in_use=in_use,
            requested=1,
        )


def quota_lock(project_id: str | None) -> list[str]:
    """The lock quotas are checked under (tessera.identity.quotas uses the same name)."""
    return [f"quota:{project_id}"] if project_id is not None else []


def create_floating_ip(
    rt: Runtime,
    segment_id: str,
    *,
    port_id: str | None,
    fixed_ip: str | None,
    scope: Scope,
) -> FloatingIPRow:
    """An address of an external segment for the caller's project; associated at once
    when a port is given."""
    with rt.sessions() as session:
        segment = _external(session, segment_id, scope)
        subnets = list(
            session.scalars(
                select(SubnetRow.id)
                .where(SubnetRow.segment_id == segment.id)
                .order_by(SubnetRow.created_at, SubnetRow.id)
            )
        )
        if port_id is not None:  # a bad port is refused before an address is taken
            _reach(session, segment.id, port_id, fixed_ip, scope)
    if not subnets:
        raise ConflictError(f"external segment {segment_id} has no subnet to take from")
    project_id = scope.project_id
    with rt.sessions.begin() as session:
        serialize(session, *quota_lock(project_id), *(ipam.lock_name(s) for s in subnets))
        _check_quota(session, project_id)
        address = subnet_id = None
        for candidate in subnets:
            subnet = session.get(SubnetRow, candidate)
            if subnet is None:
                continue
            try:
                address = addressing.allocate(session, subnet)
            except ConflictError:
                continue
            subnet_id = subnet.id
            break
        if address is None or subnet_id is None:
            raise ConflictError(f"external segment {segment_id} has no free address left")
        fip = FloatingIPRow(
            project_id=project_id, segment_id=segment.id, subnet_id=subnet_id, address=address
        )
        session.add(fip)
        session.flush()
        session.add(IPAllocationRow(subnet_id=subnet_id, address=address, floating_ip_id=fip.id))
    if port_id is not None:
        return associate(rt, fip.id, port_id, fixed_ip, scope=scope)
    return fip


def _reach(
    session: Session, segment_id: str, port_id: str, fixed_ip: str | None, scope: Scope
) -> tuple[NetPortRow, str, str]:
    """(port, its IPv4 address the NAT goes to, the router that reaches it from the
    external segment); 409 when no router connects the port's segment to it."""
    port = access.owned(session, NetPortRow, port_id, scope, "port")
    if port.device_owner in (DeviceOwner.ROUTER_INTERFACE, DeviceOwner.ROUTER_GATEWAY):
        raise InvalidInputError(f"port {port_id} is a router's; floating IPs go to other ports")
    held = addressing.addresses_of(session, [port.id])[port.id]
    v4 = [(sid, a) for sid, a in held if ":" not in a]
    if fixed_ip is not None:
        v4 = [(sid, a) for sid, a in v4 if a == fixed_ip]
    if not v4:
        wanted = f" {fixed_ip}" if fixed_ip else " IPv4 address"
        raise InvalidInputError(f"port {port_id} has no fixed{wanted} for a floating IP")
    address = v4[0][1]
    router = session.scalar(
        select(RouterRow.id)
        .join(NetPortRow, NetPortRow.device_id == RouterRow.id)
        .join(IPAllocationRow, IPAllocationRow.port_id == NetPortRow.id)
        .where(
            NetPortRow.device_owner == DeviceOwner.ROUTER_INTERFACE.value,
            NetPortRow.segment_id == port.segment_id,
            RouterRow.external_segment_id == segment_id,
        )
        .limit(1)
    )
    if router is None:
        raise ConflictError(
            f"no router connects port {port_id}'s segment to external segment {segment_id}:"
            " add a router with its gateway there and an interface on the port's subnet"
        )
    return port, address, router


def get_floating_ip(session: Session, fip_id: str, scope: Scope) -> FloatingIPRow:
    return access.owned(session, FloatingIPRow, fip_id, scope, "floating IP")


def list_floating_ips(session: Session, scope: Scope) -> list[FloatingIPRow]:
    stmt = select(FloatingIPRow).where(*scope.owned(FloatingIPRow.project_id))
    return list(session.scalars(stmt.order_by(FloatingIPRow.address)))


def associate(
    rt: Runtime, fip_id: str, port_id: str | None, fixed_ip: str | None = None, *, scope: Scope
) -> FloatingIPRow:
    """Point the floating IP at a port (None: at nothing)."""
    with rt.sessions.begin() as session:
        fip = get_floating_ip(session, fip_id, scope)
        if port_id is None:
            fip.port_id = fip.fixed_ip = fip.router_id = None
            return fip
        port, address, router = _reach(session, fip.segment_id, port_id, fixed_ip, scope)
        other = session.scalar(
            select(FloatingIPRow.address).where(
                FloatingIPRow.port_id == port.id,
                FloatingIPRow.fixed_ip == address,
                FloatingIPRow.id != fip.id,
            )
        )
        if other is not None:
            raise ConflictError(f"{address} of port {port_id} already has floating IP {other}")
        fip.port_id, fip.fixed_ip, fip.router_id = port.id, address, router
    return fip


def delete_floating_ip(rt: Runtime, fip_id: str, *, scope: Scope) -> None:
    with rt.sessions.begin() as session:
        session.delete(get_floating_ip(session, fip_id, scope))
