"""From Tessera's records of a router to what its namespace must hold (a RouterSpec), as
Neutron's L3 agent reads its routers from the server. IPv4 only for now: IPv6 subnets on
a router are left out of its namespace."""

from __future__ import annotations

import ipaddress

from sqlalchemy import select
from sqlalchemy.orm import Session

from tessera.db.rows import FloatingIPRow, NetPortRow, RouterRow, SegmentRow, SubnetRow
from tessera.network import addressing, routing
from tessera.network.dataplane.router import Attachment, FloatingNat, RouterSpec
from tessera.network.model import DeviceOwner
from tessera.network.realise.libvirt import bridge_for
from tessera.network.segments import segmentation_of


def router_spec(session: Session, router_id: str) -> RouterSpec | None:
    """The router's namespace as its records say; None when the router is gone."""
    router = session.get(RouterRow, router_id)
    if router is None:
        return None
    view = routing.view(session, router)
    interfaces = []
    for port_id, subnet_id, address in view.interfaces:
        attached = _attachment(session, port_id, subnet_id, address)
        if attached is not None:
            interfaces.append(attached)
    gateway, gateway_ip = None, None
    for port_id, subnet_id, address in _gateway_addresses(session, router.id):
        gateway = _attachment(session, port_id, subnet_id, address)
        subnet = session.get(SubnetRow, subnet_id)
        if gateway is not None and subnet is not None:
            gateway_ip = subnet.gateway_ip
            break
    floating = session.scalars(
        select(FloatingIPRow).where(
            FloatingIPRow.router_id == router.id, FloatingIPRow.fixed_ip.is_not(None)
        )
    )
    return RouterSpec(
        router_id=router.id,
        interfaces=tuple(sorted(interfaces, key=lambda a: a.port_id)),
        gateway=gateway,
        gateway_ip=gateway_ip,
        snat=router.enable_snat,
        floating_ips=tuple(
            FloatingNat(f.address, f.fixed_ip) for f in floating if f.fixed_ip is not None
        ),
    )


def _gateway_addresses(session: Session, router_id: str) -> list[tuple[str, str, str]]:
    """The router's external gateway addresses: (port id, subnet id, address)."""
    ports = session.scalars(
        select(NetPortRow.id).where(
            NetPortRow.device_id == router_id,
            NetPortRow.device_owner == DeviceOwner.ROUTER_GATEWAY.value,
        )
    )
    held = addressing.addresses_of(session, list(ports))
    return [(port, subnet, address) for port, found in held.items() for subnet, address in found]


def _attachment(session: Session, port_id: str, subnet_id: str, address: str) -> Attachment | None:
    subnet = session.get(SubnetRow, subnet_id)
    if subnet is None or subnet.ip_version != 4:
        return None
    segment = session.get(SegmentRow, subnet.segment_id)
    if segment is None:
        return None
    port = session.get(NetPortRow, port_id)
    if port is None:
        return None
    seg = segmentation_of(segment)
    prefix = ipaddress.ip_network(subnet.cidr).prefixlen
    cidr = f"{address}/{prefix}"
    return Attachment(port_id, cidr, bridge_for(seg.physical_network), seg.vlan_id, port.mac)
