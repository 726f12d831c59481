"""Security groups and their rules (ingress/egress, by protocol, ports and a remote prefix
or group), a project's own. Model and checks only: they are enforced once the network
node realises them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tessera.db.rows import PortSecurityGroupRow, SecurityGroupRow, SecurityGroupRuleRow
from tessera.errors import ConflictError, InvalidInputError, NotFoundError
from tessera.identity.scope import Scope
from tessera.network import access, validation
from tessera.network.model import Direction, Ethertype, RuleProtocol
from tessera.runtime import Runtime


@dataclass(frozen=True)
class RuleRequest:
    direction: Direction
    ethertype: Ethertype = Ethertype.IPV4
    protocol: RuleProtocol | None = None
    port_range_min: int | None = None
    port_range_max: int | None = None
    remote_ip_prefix: str | None = None
    remote_group_id: str | None = None


def create_group(rt: Runtime, name: str, description: str, *, scope: Scope) -> SecurityGroupRow:
    with rt.sessions.begin() as session:
        row = SecurityGroupRow(name=name, description=description, project_id=scope.project_id)
        session.add(row)
    return row


def get_group(session: Session, group_id: str, scope: Scope) -> SecurityGroupRow:
    return access.owned(session, SecurityGroupRow, group_id, scope, "security group")


def list_groups(session: Session, scope: Scope) -> list[SecurityGroupRow]:
    stmt = select(SecurityGroupRow).where(*scope.owned(SecurityGroupRow.project_id))
    return list(session.scalars(stmt.order_by(SecurityGroupRow.name, SecurityGroupRow.id)))


def rules_of(session: Session, group_ids: list[str]) -> dict[str, list[SecurityGroupRuleRow]]:
    found: dict[str, list[SecurityGroupRuleRow]] = {gid: [] for gid in group_ids}
    if group_ids:
        rows = session.scalars(
            select(SecurityGroupRuleRow)
            .where(SecurityGroupRuleRow.security_group_id.in_(group_ids))
            .order_by(SecurityGroupRuleRow.created_at, SecurityGroupRuleRow.id)
        )
        for row in rows:
            found[row.security_group_id].append(row)
    return found


def delete_group(rt: Runtime, group_id: str, *, scope: Scope) -> None:
    """Only a group no port uses."""
    with rt.sessions.begin() as session:
        group = get_group(session, group_id, scope)
        used = session.scalar(
            select(func.count())
            .select_from(PortSecurityGroupRow)
            .where(PortSecurityGroupRow.security_group_id == group.id)
        )
        if used:
            raise ConflictError(f"security group {group_id} is used by {used} ports")
        session.delete(group)


def add_rule(rt: Runtime, group_id: str, req: RuleRequest, *, scope: Scope) -> SecurityGroupRuleRow:
    low, high = validation.rule_ports(req.protocol, req.port_range_min, req.port_range_max)
    if req.protocol is RuleProtocol.ICMPV6 and req.ethertype is not Ethertype.IPV6:
        raise InvalidInputError("icmpv6 rules are IPv6")
    if req.protocol is RuleProtocol.ICMP and req.ethertype is not Ethertype.IPV4:
        raise InvalidInputError("icmp rules are IPv4; use icmpv6")
    if req.remote_ip_prefix is not None and req.remote_group_id is not None:
        raise InvalidInputError("give remote_ip_prefix or remote_group_id, not both")
    prefix = validation.remote_prefix(req.remote_ip_prefix, req.ethertype)
    with rt.sessions.begin() as session:
        group = get_group(session, group_id, scope)
        if req.remote_group_id is not None:
            remote = session.get(SecurityGroupRow, req.remote_group_id)
            if remote is None or remote.project_id != group.project_id:
                raise NotFoundError(f"security group {req.remote_group_id} not found")
        row = SecurityGroupRuleRow(
            security_group_id=group.id,
            direction=req.direction.value,
            ethertype=req.ethertype.value,
            protocol=req.protocol.value if req.protocol else None,
            port_range_min=low,
            port_range_max=high,
            remote_ip_prefix=prefix,
            remote_group_id=req.remote_group_id,
        )
        session.add(row)
    return row


def delete_rule(rt: Runtime, group_id: str, rule_id: str, *, scope: Scope) -> None:
    with rt.sessions.begin() as session:
        group = get_group(session, group_id, scope)
        rule = session.get(SecurityGroupRuleRow, rule_id)
        if rule is None or rule.security_group_id != group.id:
            raise NotFoundError(f"rule {rule_id} not found in security group {group_id}")
        session.delete(rule)
