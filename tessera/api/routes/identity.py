"""Identity: log in, tokens, and (for admins) domains, projects, users, roles, grants and
quotas. Every route's rule is in tessera.identity.policy."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, Request, Response, status

from tessera.api.audit import LOGIN_USER
from tessera.api.deps import PrincipalDep, RuntimeDep, SessionDep
from tessera.api.schemas import (
    DomainCreate,
    DomainPublic,
    ErrorBody,
    GrantPublic,
    LoginRequest,
    LoginResult,
    MemberPublic,
    Preferences,
    PreferencesUpdate,
    PrincipalPublic,
    ProjectCreate,
    ProjectPublic,
    ProjectUsage,
    Quota,
    QuotaUsagePublic,
    RoleAssign,
    TokenCreate,
    TokenIssued,
    TokenPublic,
    UserCreate,
    UserPublic,
    UserUpdate,
    WhoAmI,
)
from tessera.db.rows import TokenRow, UserRow
from tessera.identity import policy, service
from tessera.identity.model import Principal, Role
from tessera.identity.tokens import TokenCache

router = APIRouter(prefix="/v1", tags=["identity"])

_404: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorBody, "description": "No such object, or not one of yours."},
}
_409: dict[int | str, dict[str, object]] = {
    409: {"model": ErrorBody, "description": "The name is taken."},
}
GrantKind = Literal["provider", "zone", "network"]


def _principal(p: Principal) -> PrincipalPublic:
    return PrincipalPublic(
        user_id=p.user_id,
        user_name=p.user_name,
        domain_id=p.domain_id,
        is_admin=p.is_admin,
        project_id=p.project_id,
        role=p.role.value if p.role else None,
        token_id=p.token_id,
    )


def _token(row: TokenRow) -> TokenPublic:
    return TokenPublic(
        id=row.id,
        name=row.name,
        kind=row.kind,  # type: ignore[arg-type]
        project_id=row.project_id,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


def _user(row: UserRow) -> UserPublic:
    locked_until = row.locked_until
    if locked_until is not None and locked_until.tzinfo is None:
        locked_until = locked_until.replace(tzinfo=UTC)
    return UserPublic(
        id=row.id,
        domain_id=row.domain_id,
        name=row.name,
        display_name=row.display_name,
        email=row.email,
        source=row.source,
        is_admin=row.is_admin,
        enabled=row.enabled,
        locked=locked_until is not None and locked_until > datetime.now(UTC),
        locale=row.locale,
        created_at=row.created_at,
    )


@router.post(
    "/auth/login",
    response_model=LoginResult,
    responses={
        401: {"model": ErrorBody, "description": "Wrong user name or password."},
        403: {"model": ErrorBody, "description": "No role in the project asked for."},
        429: {"model": ErrorBody, "description": "Too many attempts, or account locked."},
        503: {"model": ErrorBody, "description": "The user directory (LDAP) is unreachable."},
    },
)
def login(body: LoginRequest, rt: RuntimeDep, request: Request) -> LoginResult:
    """A short-lived session token for a user name and password (the portal's login)."""
    source = request.client.host if request.client else "unknown"
    setattr(request.state, LOGIN_USER, body.user)  # the audit names who tried, not how
    request.app.state.login_throttle.check(source)
    opened = service.login(
        rt,
        domain=body.domain,
        user=body.user,
        password=body.password.get_secret_value(),
        project=body.project,
    )
    request.state.principal = opened.principal
    return LoginResult(
        token=opened.token, expires_at=opened.expires_at, principal=_principal(opened.principal)
    )


def _locale(value: str) -> Literal["en", "zh-CN"] | None:
    return value if value in ("en", "zh-CN") else None  # type: ignore[return-value]


@router.get("/auth/whoami", response_model=WhoAmI)
def whoami(principal: PrincipalDep, session: SessionDep) -> WhoAmI:
    """The caller, the operations their token may call (the portal hides the others) and
    the portal language they chose."""
    user = session.get(UserRow, principal.user_id)
    return WhoAmI(
        **_principal(principal).model_dump(),
        permissions=policy.permitted(principal),
        locale=_locale(user.locale) if user else None,
    )


@router.put("/auth/preferences", response_model=Preferences)
def update_preferences(
    body: PreferencesUpdate, principal: PrincipalDep, rt: RuntimeDep
) -> Preferences:
    """The caller's own portal language; whoever calls, only their own user changes."""
    row = service.update_user(rt, principal, principal.user_id, locale=body.locale)
    return Preferences(locale=_locale(row.locale))


@router.get("/auth/tokens", response_model=list[TokenPublic])
def list_tokens(principal: PrincipalDep, session: SessionDep) -> list[TokenPublic]:
    """The caller's own tokens (never their secrets)."""
    return [_token(row) for row in service.list_tokens(session, principal)]


@router.post(
    "/auth/tokens",
    status_code=status.HTTP_201_CREATED,
    response_model=TokenIssued,
    responses={403: {"model": ErrorBody, "description": "No role in that project."}},
)
def create_token(body: TokenCreate, principal: PrincipalDep, rt: RuntimeDep) -> TokenIssued:
    """An API token for scripts, scoped to one project and expiring; its secret is shown
    in this answer only."""
    row, secret = service.create_api_token(
        rt, principal, name=body.name, project=body.project, days=body.expires_in_days
    )
    return TokenIssued(**_token(row).model_dump(), secret=secret)


@router.delete("/auth/tokens/{token_id}", status_code=204, responses=_404)
def revoke_token(
    token_id: str, principal: PrincipalDep, rt: RuntimeDep, request: Request
) -> Response:
    service.revoke_token(rt, principal, token_id)
    cache: TokenCache = request.app.state.token_cache
    cache.forget_token(token_id)
    return Response(status_code=204)


@router.get("/domains", response_model=list[DomainPublic])
def list_domains(session: SessionDep) -> list[DomainPublic]:
    return [
        DomainPublic.model_validate(r, from_attributes=True) for r in service.list_domains(session)
    ]


@router.post("/domains", status_code=201, response_model=DomainPublic, responses=_409)
def create_domain(body: DomainCreate, rt: RuntimeDep) -> DomainPublic:
    row = service.create_domain(rt, body.name, body.description)
    return DomainPublic.model_validate(row, from_attributes=True)


@router.get("/projects", response_model=list[ProjectPublic])
def list_projects(principal: PrincipalDep, session: SessionDep) -> list[ProjectPublic]:
    """All projects for an admin; otherwise those the caller has a role in."""
    rows = service.list_projects(session, principal)
    return [ProjectPublic.model_validate(r, from_attributes=True) for r in rows]


@router.post("/projects", status_code=201, response_model=ProjectPublic, responses={**_404, **_409})
def create_project(body: ProjectCreate, rt: RuntimeDep) -> ProjectPublic:
    row = service.create_project(
        rt, domain=body.domain, name=body.name, description=body.description
    )
    return ProjectPublic.model_validate(row, from_attributes=True)


@router.get("/projects/{project_id}", response_model=ProjectPublic, responses=_404)
def show_project(project_id: str, principal: PrincipalDep, session: SessionDep) -> ProjectPublic:
    row = service.get_project(session, principal, project_id)
    return ProjectPublic.model_validate(row, from_attributes=True)


@router.delete("/projects/{project_id}", status_code=204, responses=_404)
def delete_project(project_id: str, rt: RuntimeDep) -> Response:
    service.delete_project(rt, project_id)
    return Response(status_code=204)


@router.get("/users", response_model=list[UserPublic])
def list_users(principal: PrincipalDep, session: SessionDep) -> list[UserPublic]:
    """All users for an admin; a project admin sees their project's members."""
    return [_user(r) for r in service.list_users(session, principal)]


@router.post("/users", status_code=201, response_model=UserPublic, responses={**_404, **_409})
def create_user(body: UserCreate, rt: RuntimeDep) -> UserPublic:
    row = service.create_user(
        rt,
        domain=body.domain,
        name=body.name,
        password=body.password.get_secret_value() if body.password else None,
        display_name=body.display_name,
        email=body.email,
        is_admin=body.is_admin,
        source=body.source,
    )
    return _user(row)


@router.get("/users/{user_id}", response_model=UserPublic, responses=_404)
def show_user(user_id: str, principal: PrincipalDep, session: SessionDep) -> UserPublic:
    return _user(service.get_user(session, principal, user_id))


@router.patch(
    "/users/{user_id}",
    response_model=UserPublic,
    responses={
        **_404,
        403: {"model": ErrorBody, "description": "Not yours, or a wrong current password."},
        422: {"model": ErrorBody, "description": "Your own new password without the current one."},
    },
)
def update_user(
    user_id: str, body: UserUpdate, principal: PrincipalDep, rt: RuntimeDep, request: Request
) -> UserPublic:
    """Change a password (your own, with `current_password`; an admin resets another's
    without) or the portal language (your own), or enable/disable (an admin). A new
    password ends the user's other login sessions."""
    current = body.current_password
    row = service.update_user(
        rt,
        principal,
        user_id,
        password=body.password.get_secret_value() if body.password else None,
        current_password=current.get_secret_value() if current else None,
        enabled=body.enabled,
        locale=body.locale,
    )
    if body.enabled is False or body.password is not None:
        cache: TokenCache = request.app.state.token_cache
        cache.forget_user(user_id)
    return _user(row)


@router.delete("/users/{user_id}", status_code=204, responses={**_404, 409: _409[409]})
def delete_user(
    user_id: str, principal: PrincipalDep, rt: RuntimeDep, request: Request
) -> Response:
    service.delete_user(rt, principal, user_id)
    cache: TokenCache = request.app.state.token_cache
    cache.forget_user(user_id)
    return Response(status_code=204)


@router.get("/projects/{project_id}/members", response_model=list[MemberPublic], responses=_404)
def list_members(
    project_id: str, principal: PrincipalDep, session: SessionDep
) -> list[MemberPublic]:
    return [
        MemberPublic(user_id=user.id, user_name=user.name, role=a.role)  # type: ignore[arg-type]
        for a, user in service.list_members(session, principal, project_id)
    ]


@router.put("/projects/{project_id}/members/{user_id}", status_code=204, responses=_404)
def assign_role(
    project_id: str, user_id: str, body: RoleAssign, principal: PrincipalDep, rt: RuntimeDep
) -> Response:
    """Give a user of the project's domain a role in it (replacing any other)."""
    service.assign_role(rt, principal, project_id, user_id, Role(body.role))
    return Response(status_code=204)


@router.delete("/projects/{project_id}/members/{user_id}", status_code=204, responses=_404)
def unassign_role(
    project_id: str, user_id: str, principal: PrincipalDep, rt: RuntimeDep
) -> Response:
    service.unassign_role(rt, principal, project_id, user_id)
    return Response(status_code=204)


@router.get("/projects/{project_id}/grants", response_model=list[GrantPublic], responses=_404)
def list_grants(project_id: str, principal: PrincipalDep, session: SessionDep) -> list[GrantPublic]:
    """The pools, zones and networks the project may use."""
    return [
        GrantPublic(kind=g.target_kind, target_id=g.target_id, created_at=g.created_at)  # type: ignore[arg-type]
        for g in service.list_grants(session, principal, project_id)
    ]


@router.put("/projects/{project_id}/grants/{kind}/{target_id}", status_code=204, responses=_404)
def add_grant(
    project_id: str, kind: GrantKind, target_id: str, principal: PrincipalDep, rt: RuntimeDep
) -> Response:
    service.grant(rt, principal, project_id, kind, target_id)
    return Response(status_code=204)


@router.delete("/projects/{project_id}/grants/{kind}/{target_id}", status_code=204, responses=_404)
def remove_grant(
    project_id: str, kind: GrantKind, target_id: str, principal: PrincipalDep, rt: RuntimeDep
) -> Response:
    service.revoke_grant(rt, principal, project_id, kind, target_id)
    return Response(status_code=204)


@router.get("/projects/{project_id}/quota", response_model=Quota, responses=_404)
def show_quota(project_id: str, principal: PrincipalDep, session: SessionDep) -> Quota:
    return Quota(**service.get_quota(session, principal, project_id))


@router.get("/projects/{project_id}/usage", response_model=ProjectUsage, responses=_404)
def show_usage(project_id: str, principal: PrincipalDep, session: SessionDep) -> ProjectUsage:
    """Per quota: the limit, what the project's VMs use, what its unfinished tasks have
    reserved, and what is free. Snapshots count those Tessera made; floating IPs are 0."""
    return ProjectUsage(
        project_id=project_id,
        quotas=[
            QuotaUsagePublic(
                quota=u.quota,
                limit=u.limit,
                in_use=u.in_use,
                reserved=u.reserved,
                free=u.free,
            )
            for u in service.get_usage(session, principal, project_id)
        ],
    )


@router.put("/projects/{project_id}/quota", response_model=Quota, responses=_404)
def set_quota(project_id: str, body: Quota, rt: RuntimeDep) -> Quota:
    """Set the limits given in the body (fields left out keep their value)."""
    limits = body.model_dump(exclude_unset=True)
    return Quota(**service.set_quota(rt, project_id, limits))
