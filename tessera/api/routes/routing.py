"""Routers, floating IPs and security groups of Tessera's networks.

A change to a router (its interfaces, gateway, SNAT) or to a floating IP's association is
saved, then applied on the network node by a `router.sync` task (tessera.network.l3tasks):
the answer keeps its usual status and body and links that task in a `Link` header
(`</v1/tasks/<id>>; rel="monitor"`), where a failure to apply it is reported."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from sqlalchemy.orm import Session

from tessera.api.deps import PrincipalDep, RuntimeDep, ScopeDep, SessionDep
from tessera.api.network_schemas import (
    FloatingIPAssociate,
    FloatingIPCreate,
    FloatingIPPublic,
    RouterCreate,
    RouterGateway,
    RouterInterfacePublic,
    RouterPublic,
    RuleCreate,
    RulePublic,
    SecurityGroupCreate,
    SecurityGroupPublic,
)
from tessera.api.routes.networks import errors
from tessera.api.schemas import QuotaExceededBody
from tessera.db.rows import FloatingIPRow, RouterRow, SecurityGroupRow, SecurityGroupRuleRow
from tessera.identity.model import Principal
from tessera.network import l3tasks, routing, security
from tessera.network.model import Direction, Ethertype, RuleProtocol
from tessera.network.security import RuleRequest
from tessera.runtime import Runtime

router = APIRouter(prefix="/v1", tags=["networks"])

_LINKED = {"Link": {"description": 'The task applying it: `</v1/tasks/<id>>; rel="monitor"`.'}}


def _applied(
    rt: Runtime,
    response: Response,
    principal: Principal,
    project_id: str | None,
    *router_ids: str | None,
) -> None:
    """Queue the network node's task for the routers a change touched; link it."""
    task = l3tasks.queue_sync(rt, router_ids, requester=principal.user_name, project_id=project_id)
    if task is not None:
        response.headers["Link"] = f'</v1/tasks/{task.id}>; rel="monitor"'


def _applied_204(
    rt: Runtime, principal: Principal, project_id: str | None, *router_ids: str | None
) -> Response:
    """The 204 of a removal that touched routers, linking the task that applies it."""
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    _applied(rt, response, principal, project_id, *router_ids)
    return response


def _linked(*codes: int) -> dict[int | str, dict[str, object]]:
    return {code: {"headers": _LINKED} for code in codes}


def router_public(session: Session, row: RouterRow) -> RouterPublic:
    view = routing.view(session, row)
    return RouterPublic(
        id=row.id,
        name=row.name,
        project_id=row.project_id,
        external_segment_id=row.external_segment_id,
        enable_snat=row.enable_snat,
        gateway_ips=view.gateway_ips,
        interfaces=[
            RouterInterfacePublic(port_id=p, subnet_id=s, ip_address=a)
            for p, s, a in view.interfaces
        ],
        created_at=row.created_at,
    )


@router.get("/routers", response_model=list[RouterPublic])
def list_routers(session: SessionDep, scope: ScopeDep) -> list[RouterPublic]:
    return [router_public(session, row) for row in routing.list_routers(session, scope)]


@router.post(
    "/routers",
    status_code=status.HTTP_201_CREATED,
    response_model=RouterPublic,
    responses={**errors("external segment", 404, 409, 422), **_linked(201)},
)
def create_router(
    body: RouterCreate,
    rt: RuntimeDep,
    session: SessionDep,
    scope: ScopeDep,
    principal: PrincipalDep,
    response: Response,
) -> RouterPublic:
    """A router of the caller's project; with `external_segment_id`, its gateway there.
    Its namespace is made on the network node by the task in `Link`."""
    row = routing.create_router(
        rt,
        body.name,
        external_segment_id=body.external_segment_id,
        enable_snat=body.enable_snat,
        scope=scope,
    )
    _applied(rt, response, principal, row.project_id, row.id)
    return router_public(session, row)


@router.get("/routers/{router_id}", response_model=RouterPublic, responses=errors("router", 404))
def show_router(router_id: str, session: SessionDep, scope: ScopeDep) -> RouterPublic:
    return router_public(session, routing.get_router(session, router_id, scope))


@router.delete(
    "/routers/{router_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**errors("router", 404, 409), **_linked(204)},
)
def delete_router(
    router_id: str, rt: RuntimeDep, session: SessionDep, scope: ScopeDep, principal: PrincipalDep
) -> Response:
    """Refused (409) while it has interfaces or floating IPs go through it."""
    project_id = routing.get_router(session, router_id, scope).project_id
    routing.delete_router(rt, router_id, scope=scope)
    return _applied_204(rt, principal, project_id, router_id)


@router.put(
    "/routers/{router_id}/gateway",
    response_model=RouterPublic,
    responses={**errors("router or segment", 404, 409, 422), **_linked(200)},
)
def set_router_gateway(
    router_id: str,
    body: RouterGateway,
    rt: RuntimeDep,
    session: SessionDep,
    scope: ScopeDep,
    principal: PrincipalDep,
    response: Response,
) -> RouterPublic:
    """Its gateway on an external segment (an address of that segment), SNAT on or off."""
    row = routing.set_gateway(
        rt, router_id, body.segment_id, enable_snat=body.enable_snat, scope=scope
    )
    _applied(rt, response, principal, row.project_id, row.id)
    return router_public(session, session.get(RouterRow, row.id) or row)


@router.delete(
    "/routers/{router_id}/gateway",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**errors("router", 404, 409), **_linked(204)},
)
def clear_router_gateway(
    router_id: str, rt: RuntimeDep, session: SessionDep, scope: ScopeDep, principal: PrincipalDep
) -> Response:
    project_id = routing.get_router(session, router_id, scope).project_id
    routing.clear_gateway(rt, router_id, scope=scope)
    return _applied_204(rt, principal, project_id, router_id)


@router.put(
    "/routers/{router_id}/interfaces/{subnet_id}",
    response_model=RouterPublic,
    responses={**errors("router or subnet", 403, 404, 409, 422), **_linked(200)},
)
def add_router_interface(
    router_id: str,
    subnet_id: str,
    rt: RuntimeDep,
    session: SessionDep,
    scope: ScopeDep,
    principal: PrincipalDep,
    response: Response,
) -> RouterPublic:
    """An interface on a subnet of the caller's, holding the subnet's gateway address."""
    row = routing.add_interface(rt, router_id, subnet_id, scope=scope)
    _applied(rt, response, principal, row.project_id, row.id)
    return router_public(session, row)


@router.delete(
    "/routers/{router_id}/interfaces/{subnet_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**errors("router interface", 404, 409), **_linked(204)},
)
def remove_router_interface(
    router_id: str,
    subnet_id: str,
    rt: RuntimeDep,
    session: SessionDep,
    scope: ScopeDep,
    principal: PrincipalDep,
) -> Response:
    project_id = routing.get_router(session, router_id, scope).project_id
    routing.remove_interface(rt, router_id, subnet_id, scope=scope)
    return _applied_204(rt, principal, project_id, router_id)


# -- floating IPs ------------------------------------------------------------------


def fip_public(row: FloatingIPRow) -> FloatingIPPublic:
    return FloatingIPPublic(
        id=row.id,
        project_id=row.project_id,
        segment_id=row.segment_id,
        subnet_id=row.subnet_id,
        address=row.address,
        port_id=row.port_id,
        fixed_ip=row.fixed_ip,
        router_id=row.router_id,
        created_at=row.created_at,
    )


@router.get("/floating-ips", response_model=list[FloatingIPPublic])
def list_floating_ips(session: SessionDep, scope: ScopeDep) -> list[FloatingIPPublic]:
    return [fip_public(row) for row in routing.list_floating_ips(session, scope)]


@router.post(
    "/floating-ips",
    status_code=status.HTTP_201_CREATED,
    response_model=FloatingIPPublic,
    responses={
        **errors("segment or port", 404, 409, 422),
        403: {"model": QuotaExceededBody, "description": "The floating_ips quota is full."},
        **_linked(201),
    },
)
def create_floating_ip(
    body: FloatingIPCreate,
    rt: RuntimeDep,
    scope: ScopeDep,
    principal: PrincipalDep,
    response: Response,
) -> FloatingIPPublic:
    """An address of an external segment, within the project's `floating_ips` quota;
    with `port_id`, NATed to that port (409 when no router connects the port's segment
    to the external one) by the network node's task in `Link`."""
    row = routing.create_floating_ip(
        rt, body.segment_id, port_id=body.port_id, fixed_ip=body.fixed_ip, scope=scope
    )
    _applied(rt, response, principal, row.project_id, row.router_id)
    return fip_public(row)


@router.get(
    "/floating-ips/{floating_ip_id}",
    response_model=FloatingIPPublic,
    responses=errors("floating IP", 404),
)
def show_floating_ip(floating_ip_id: str, session: SessionDep, scope: ScopeDep) -> FloatingIPPublic:
    return fip_public(routing.get_floating_ip(session, floating_ip_id, scope))


@router.put(
    "/floating-ips/{floating_ip_id}",
    response_model=FloatingIPPublic,
    responses={**errors("floating IP or port", 404, 409, 422), **_linked(200)},
)
def associate_floating_ip(
    floating_ip_id: str,
    body: FloatingIPAssociate,
    rt: RuntimeDep,
    session: SessionDep,
    scope: ScopeDep,
    principal: PrincipalDep,
    response: Response,
) -> FloatingIPPublic:
    """Point it at a port (`port_id` null: at nothing); the routers it leaves and joins
    are applied by the task in `Link`."""
    before = routing.get_floating_ip(session, floating_ip_id, scope).router_id
    row = routing.associate(rt, floating_ip_id, body.port_id, body.fixed_ip, scope=scope)
    _applied(rt, response, principal, row.project_id, before, row.router_id)
    return fip_public(row)


@router.delete(
    "/floating-ips/{floating_ip_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**errors("floating IP", 404), **_linked(204)},
)
def delete_floating_ip(
    floating_ip_id: str,
    rt: RuntimeDep,
    session: SessionDep,
    scope: ScopeDep,
    principal: PrincipalDep,
) -> Response:
    fip = routing.get_floating_ip(session, floating_ip_id, scope)
    project_id, router_id = fip.project_id, fip.router_id
    routing.delete_floating_ip(rt, floating_ip_id, scope=scope)
    return _applied_204(rt, principal, project_id, router_id)


# -- security groups ---------------------------------------------------------------


def rule_public(row: SecurityGroupRuleRow) -> RulePublic:
    return RulePublic(
        id=row.id,
        security_group_id=row.security_group_id,
        direction=Direction(row.direction),
        ethertype=Ethertype(row.ethertype),
        protocol=RuleProtocol(row.protocol) if row.protocol else None,
        port_range_min=row.port_range_min,
        port_range_max=row.port_range_max,
        remote_ip_prefix=row.remote_ip_prefix,
        remote_group_id=row.remote_group_id,
    )


def groups_public(session: Session, rows: list[SecurityGroupRow]) -> list[SecurityGroupPublic]:
    rules = security.rules_of(session, [row.id for row in rows])
    return [
        SecurityGroupPublic(
            id=row.id,
            name=row.name,
            description=row.description,
            project_id=row.project_id,
            rules=[rule_public(rule) for rule in rules[row.id]],
            created_at=row.created_at,
        )
        for row in rows
    ]


@router.get("/security-groups", response_model=list[SecurityGroupPublic])
def list_security_groups(session: SessionDep, scope: ScopeDep) -> list[SecurityGroupPublic]:
    return groups_public(session, security.list_groups(session, scope))


@router.post(
    "/security-groups", status_code=status.HTTP_201_CREATED, response_model=SecurityGroupPublic
)
def create_security_group(
    body: SecurityGroupCreate, rt: RuntimeDep, session: SessionDep, scope: ScopeDep
) -> SecurityGroupPublic:
    row = security.create_group(rt, body.name, body.description, scope=scope)
    return groups_public(session, [row])[0]


@router.get(
    "/security-groups/{security_group_id}",
    response_model=SecurityGroupPublic,
    responses=errors("security group", 404),
)
def show_security_group(
    security_group_id: str, session: SessionDep, scope: ScopeDep
) -> SecurityGroupPublic:
    return groups_public(session, [security.get_group(session, security_group_id, scope)])[0]


@router.delete(
    "/security-groups/{security_group_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors("security group", 404, 409),
)
def delete_security_group(security_group_id: str, rt: RuntimeDep, scope: ScopeDep) -> Response:
    """Refused (409) while ports use it."""
    security.delete_group(rt, security_group_id, scope=scope)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/security-groups/{security_group_id}/rules",
    status_code=status.HTTP_201_CREATED,
    response_model=RulePublic,
    responses=errors("security group", 404, 422),
)
def create_security_group_rule(
    security_group_id: str, body: RuleCreate, rt: RuntimeDep, scope: ScopeDep
) -> RulePublic:
    """Ports only with tcp or udp (1-65535); for icmp they are type and code (0-255)."""
    request = RuleRequest(
        direction=body.direction,
        ethertype=body.ethertype,
        protocol=body.protocol,
        port_range_min=body.port_range_min,
        port_range_max=body.port_range_max,
        remote_ip_prefix=body.remote_ip_prefix,
        remote_group_id=body.remote_group_id,
    )
    return rule_public(security.add_rule(rt, security_group_id, request, scope=scope))


@router.delete(
    "/security-groups/{security_group_id}/rules/{rule_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors("security group or rule", 404),
)
def delete_security_group_rule(
    security_group_id: str, rule_id: str, rt: RuntimeDep, scope: ScopeDep
) -> Response:
    security.delete_rule(rt, security_group_id, rule_id, scope=scope)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
