"""Ports: a MAC unique across Tessera, fixed IPs from IPAM, the security groups applied,
and what the port serves (a VM's NIC, a router's interface or gateway).

Addresses are taken in a transaction serialised per subnet (tessera.network.ipam), so
parallel ports on one subnet never get the same address.

A VM's NIC on a segment is a port bound to the VM (device_owner compute), as Nova binds
Neutron's: made (or, given, bound) in the transaction that saves the VM's task, with the
task's id as device_id until the VM exists, and released when the NIC or the VM goes (or
the create fails): a port made for the NIC is deleted, a port the caller gave is unbound.
A VM that leaves its pool's inventory without Tessera (deleted in vCenter or libvirt, seen
by a sync or the change feed) releases its ports the same way.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tessera.db.locks import serialize
from tessera.db.rows import (
    FloatingIPRow,
    IPAllocationRow,
    NetPortRow,
    PortSecurityGroupRow,
    ProviderRow,
    SecurityGroupRow,
    SegmentRealisationRow,
    SegmentRow,
    SubnetRow,
    TaskRow,
    VMRow,
)
from tessera.domain.events import PORT_RELEASED, EventDraft
from tessera.domain.operations import NicSpec
from tessera.domain.tasks import TaskKind
from tessera.errors import ConflictError, InvalidInputError, NotFoundError
from tessera.events.recorder import record_many
from tessera.identity.scope import Scope
from tessera.network import access, addressing, ipam
from tessera.network.model import DeviceOwner, NetworkType, RealisationState, Segmentation
from tessera.network.realise import Realised, realiser_class
from tessera.runtime import Runtime

_MAC_DRAWS = 5


@dataclass(frozen=True)
class FixedIP:
    subnet_id: str
    ip_address: str | None = None


@dataclass(frozen=True)
class PortRequest:
    segment_id: str
    name: str = ""
    mac: str | None = None
    fixed_ips: Sequence[FixedIP] | None = None
    vm_id: str | None = None
    security_group_ids: Sequence[str] = field(default_factory=tuple)


def _subnets(
    session: Session, segment: SegmentRow, wanted: Sequence[FixedIP] | None
) -> list[tuple[SubnetRow, str | None]]:
    """The (subnet, address or None) pairs a port gets: those asked (each subnet of this
    segment), or by default one address of the segment's first subnet of each IP version."""
    on = list(
        session.scalars(
            select(SubnetRow)
            .where(SubnetRow.segment_id == segment.id)
            .order_by(SubnetRow.created_at, SubnetRow.id)
        )
    )
    if wanted is None:
        firsts: dict[int, SubnetRow] = {}
        for subnet in on:
            firsts.setdefault(subnet.ip_version, subnet)
        return [(subnet, None) for subnet in firsts.values()]
    by_id = {subnet.id: subnet for subnet in on}
    picked = []
    for fixed in wanted:
        chosen = by_id.get(fixed.subnet_id)
        if chosen is None:
            raise InvalidInputError(
                f"subnet {fixed.subnet_id} is not a subnet of segment {segment.id}"
            )
        picked.append((chosen, fixed.ip_address))
    return picked


def _security_groups(
    session: Session, ids: Sequence[str], project_id: str | None, scope: Scope
) -> list[str]:
    found = []
    for group_id in dict.fromkeys(ids):
        group = access.owned(session, SecurityGroupRow, group_id, scope, "security group")
        if group.project_id != project_id:
            raise NotFoundError(f"security group {group_id} not found")
        found.append(group.id)
    return found


def create_port(
    rt: Runtime,
    req: PortRequest,
    *,
    scope: Scope,
    owner: DeviceOwner | None = None,
    device_id: str | None = None,
) -> NetPortRow:
    """A port of the caller's project on a segment it reads (its own or a shared one; an
    external segment takes ports only from routers, made here with `owner`)."""
    with rt.sessions() as session:
        segment = access.segment(session, req.segment_id, scope)
        if segment.external and owner is None and not scope.unrestricted:
            raise InvalidInputError(
                f"segment {segment.id} is external: addresses on it are floating IPs"
            )
        subnet_ids = [s.id for s, _ in _subnets(session, segment, req.fixed_ips)]
    for draw in range(_MAC_DRAWS):
        mac = req.mac or ipam.random_mac()
        try:
            return _save_port(rt, req, mac, subnet_ids, scope, owner, device_id)
        except IntegrityError:
            with rt.sessions() as session:
                taken = session.scalar(select(NetPortRow.id).where(NetPortRow.mac == mac))
            if taken is not None and req.mac is not None:
                raise ConflictError(f"MAC {mac} is already used by another port") from None
            if taken is None or draw == _MAC_DRAWS - 1:
                raise ConflictError(
                    "the port clashes with one made at the same time; try again"
                ) from None
    raise AssertionError("unreachable")


def _save_port(
    rt: Runtime,
    req: PortRequest,
    mac: str,
    subnet_ids: Sequence[str],
    scope: Scope,
    owner: DeviceOwner | None,
    device_id: str | None,
) -> NetPortRow:
    with rt.sessions.begin() as session:
        serialize(session, *(ipam.lock_name(s) for s in subnet_ids))
        segment = access.segment(session, req.segment_id, scope)
        project_id = scope.project_id if scope.project_id is not None else segment.project_id
        kind = owner or DeviceOwner.NONE
        if req.vm_id is not None:
            vm = session.get(VMRow, req.vm_id)
            if vm is None or not scope.sees(vm.project_id):
                raise NotFoundError(f"VM {req.vm_id} not found")
            kind, device_id = DeviceOwner.COMPUTE, vm.id
        port = NetPortRow(
            segment_id=segment.id,
            project_id=project_id,
            name=req.name,
            mac=mac.lower(),
            device_owner=kind.value,
            device_id=device_id,
        )
        session.add(port)
        session.flush()
        for subnet, wanted in _subnets(session, segment, req.fixed_ips):
            address = addressing.allocate(session, subnet, wanted, owner=kind)
            session.add(IPAllocationRow(subnet_id=subnet.id, address=address, port_id=port.id))
        for group_id in _security_groups(session, req.security_group_ids, project_id, scope):
            session.add(PortSecurityGroupRow(port_id=port.id, security_group_id=group_id))
        session.flush()
    return port


def get_port(session: Session, port_id: str, scope: Scope) -> NetPortRow:
    return access.owned(session, NetPortRow, port_id, scope, "port")


def list_ports(session: Session, scope: Scope, segment_id: str | None = None) -> list[NetPortRow]:
    stmt = select(NetPortRow).where(*scope.owned(NetPortRow.project_id))
    if segment_id is not None:
        stmt = stmt.where(NetPortRow.segment_id == segment_id)
    return list(session.scalars(stmt.order_by(NetPortRow.created_at, NetPortRow.id)))


def security_groups_of(session: Session, port_ids: Sequence[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {pid: [] for pid in port_ids}
    if port_ids:
        rows = session.execute(
            select(PortSecurityGroupRow.port_id, PortSecurityGroupRow.security_group_id).where(
                PortSecurityGroupRow.port_id.in_(list(port_ids))
            )
        )
        for port_id, group_id in rows:
            found[port_id].append(group_id)
    return found


def delete_port(rt: Runtime, port_id: str, *, scope: Scope) -> None:
    """A port a router owns goes with its interface or gateway, not on its own; a floating
    IP associated with the port is dissociated."""
    with rt.sessions.begin() as session:
        port = get_port(session, port_id, scope)
        if port.device_owner in (DeviceOwner.ROUTER_INTERFACE, DeviceOwner.ROUTER_GATEWAY):
            raise ConflictError(
                f"port {port_id} belongs to router {port.device_id}; remove the router's"
                " interface or gateway instead"
            )
        _drop(session, port)


def _drop(session: Session, port: NetPortRow) -> None:
    for fip in session.scalars(select(FloatingIPRow).where(FloatingIPRow.port_id == port.id)):
        fip.port_id = fip.fixed_ip = fip.router_id = None
    session.delete(port)


# -- VM NICs -------------------------------------------------------------------------


def vm_segment(session: Session, segment_id: str, scope: Scope) -> SegmentRow:
    """A segment a VM of `scope` may have a NIC on: one it reads, not an external one."""
    segment = access.segment(session, segment_id, scope)
    if segment.external and not scope.unrestricted:
        raise InvalidInputError(
            f"segment {segment.id} is external: addresses on it are floating IPs"
        )
    return segment


def ipam_locks(session: Session, segment_ids: Collection[str]) -> list[str]:
    """The IPAM locks to begin a transaction with that makes ports on these segments."""
    if not segment_ids:
        return []
    subnets = session.scalars(select(SubnetRow.id).where(SubnetRow.segment_id.in_(segment_ids)))
    return [ipam.lock_name(s) for s in subnets]


def new_vm_port(
    session: Session,
    segment: SegmentRow,
    *,
    project_id: str | None,
    mac: str | None,
    device_id: str,
) -> NetPortRow:
    """A port for a VM's NIC, made in the caller's transaction (begun with `ipam_locks`):
    the MAC given or a free random one, an address of each IP version's first subnet."""
    if mac is None:
        mac = next(
            (
                m
                for m in (ipam.random_mac() for _ in range(_MAC_DRAWS))
                if not _mac_taken(session, m)
            ),
            None,
        )
        if mac is None:
            raise ConflictError("no free MAC address was found; try again")
    elif _mac_taken(session, mac):
        raise ConflictError(f"MAC {mac} is already used by another port")
    port = NetPortRow(
        segment_id=segment.id,
        project_id=project_id,
        mac=mac.lower(),
        device_owner=DeviceOwner.COMPUTE.value,
        device_id=device_id,
    )
    session.add(port)
    session.flush()
    for subnet, _ in _subnets(session, segment, None):
        address = addressing.allocate(session, subnet, owner=DeviceOwner.COMPUTE)
        session.add(IPAllocationRow(subnet_id=subnet.id, address=address, port_id=port.id))
    session.flush()
    return port


def _mac_taken(session: Session, mac: str) -> bool:
    return session.scalar(select(NetPortRow.id).where(NetPortRow.mac == mac.lower())) is not None


def bind_vm_port(session: Session, port_id: str, scope: Scope, *, device_id: str) -> NetPortRow:
    """The caller's unbound port, bound to a VM's NIC (409 when it serves something)."""
    port = get_port(session, port_id, scope)
    if port.device_owner or port.device_id:
        what = port.device_owner or "a device"
        raise ConflictError(f"port {port_id} is bound already ({what} {port.device_id})")
    port.device_owner, port.device_id = DeviceOwner.COMPUTE.value, device_id
    return port


def vm_nic(session: Session, port: NetPortRow, provider: ProviderRow) -> NicSpec:
    """The NIC a VM on `provider` gets for `port`: on its segment's object there (409
    when the segment is not realised on that pool)."""
    segment = session.get(SegmentRow, port.segment_id)
    found = session.get(SegmentRealisationRow, (port.segment_id, provider.id))
    realiser = realiser_class(provider.kind)
    if (
        segment is None
        or found is None
        or found.state != RealisationState.REALISED.value
        or found.native_id is None
        or realiser is None
    ):
        name = segment.name if segment is not None else port.segment_id
        raise ConflictError(
            f"segment {name!r} ({port.segment_id}) is not realised on pool {provider.name!r},"
            " where the VM is: make the NIC on a segment of that pool"
        )
    segmentation = Segmentation(
        NetworkType(segment.network_type), segment.segmentation_id, segment.physical_network
    )
    realised = Realised(found.native_id, found.location)
    return realiser.nic(realised, segmentation, mac=port.mac, port_id=port.id)


def claim_for_vm(session: Session, placeholder: str, vm_id: str) -> None:
    """The VM exists: its ports, bound to its task until now, name it."""
    for port in session.scalars(select(NetPortRow).where(NetPortRow.device_id == placeholder)):
        port.device_id = vm_id


def release_vm_ports(
    session: Session, device_ids: Collection[str], *, made: Collection[str], mac: str | None = None
) -> list[str]:
    """Release the VM ports bound to `device_ids` (with `mac`: that NIC's only): those in
    `made` (made for their NIC) are deleted, the others unbound. The ports released."""
    stmt = select(NetPortRow).where(
        NetPortRow.device_owner == DeviceOwner.COMPUTE.value,
        NetPortRow.device_id.in_(list(device_ids)),
    )
    if mac is not None:
        stmt = stmt.where(NetPortRow.mac == mac.lower())
    released = []
    for port in session.scalars(stmt):
        released.append(port.id)
        if port.id in made:
            _drop(session, port)
        else:
            port.device_owner, port.device_id = DeviceOwner.NONE.value, None
    return released


def made_for(session: Session, device_ids: Collection[str]) -> set[str]:
    """The ports made for the NICs of these devices (VMs, or creates' tasks before their
    VM existed), as their create and NIC-add tasks list them: deleted when released."""
    made: set[str] = set()
    for params in session.scalars(
        select(TaskRow.params).where(
            or_(TaskRow.vm_id.in_(list(device_ids)), TaskRow.id.in_(list(device_ids))),
            TaskRow.kind.in_([TaskKind.VM_CREATE.value, TaskKind.VM_NIC_ADD.value]),
        )
    ):
        found = params.get("made_ports")
        made.update(found if isinstance(found, list) else ())
    return made


def release_vanished_vms(
    session: Session,
    vm_ids: Collection[str],
    *,
    provider_id: str,
    actor: str,
    task_id: str | None = None,
) -> list[str]:
    """Release the ports of VMs about to leave the inventory because their pool no longer
    has them, as a delete through Tessera would (a port made for its NIC goes, with its
    addresses; one given is unbound and keeps them), so an address is not held for a VM
    that is gone. One port.released event per port, by `actor` (the sync, the change feed
    or a task's requester); the ports released. Runs before the VMs' rows are deleted."""
    bound = list(
        session.scalars(
            select(NetPortRow).where(
                NetPortRow.device_owner == DeviceOwner.COMPUTE.value,
                NetPortRow.device_id.in_(list(vm_ids)),
            )
        )
    )
    if not bound:
        return []
    vm_names = {
        vm_id: name
        for vm_id, name in session.execute(
            select(VMRow.id, VMRow.name).where(VMRow.id.in_([p.device_id for p in bound]))
        )
    }
    addresses: dict[str, list[str]] = defaultdict(list)
    for port_id, address in session.execute(
        select(IPAllocationRow.port_id, IPAllocationRow.address)
        .where(IPAllocationRow.port_id.in_([p.id for p in bound]))
        .order_by(IPAllocationRow.address)
    ):
        addresses[str(port_id)].append(address)
    made = made_for(session, vm_ids)
    events = []
    for port in bound:
        vm_id, fixed = str(port.device_id), addresses[port.id]
        deleted = port.id in made
        held = ", ".join(fixed) or "no address"
        outcome = f"port deleted, {held} freed" if deleted else f"port unbound, keeps {held}"
        events.append(
            EventDraft(
                kind=PORT_RELEASED,
                actor=actor,
                object_kind="port",
                object_id=port.id,
                object_name=port.name or port.mac,
                provider_id=provider_id,
                task_id=task_id,
                project_id=port.project_id,
                message=f"VM {vm_names.get(vm_id, vm_id)} left its pool's inventory: {outcome}",
                before={"device_owner": port.device_owner, "device_id": vm_id, "fixed_ips": fixed},
                after=None if deleted else {"device_owner": "", "device_id": None},
            )
        )
    released = release_vm_ports(session, vm_ids, made=made)
    record_many(session, events)
    return released
