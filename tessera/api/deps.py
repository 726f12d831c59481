"""Typed dependencies for routes: the runtime, a DB session, the caller and its rights.

They are async because none of them blocks: a sync dependency costs a worker-thread
round trip per request, which dominated the list endpoints' latency.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from tessera.errors import ForbiddenError
from tessera.identity import tokens
from tessera.identity.model import Principal, Rule
from tessera.identity.policy import RULES
from tessera.identity.scope import Scope
from tessera.identity.tokens import TokenCache
from tessera.runtime import Runtime

_bearer = HTTPBearer(
    auto_error=False, description="An API token, or a session token from /v1/auth/login."
)


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_session(rt: RuntimeDep) -> AsyncIterator[Session]:
    """A session per request. Opening one does no I/O and closing it only returns the
    connection to the pool, so this runs on the event loop rather than a worker thread."""
    with rt.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


async def authorize(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal | None:
    """Apply the route's rule from the policy table to the caller of its bearer token.

    No rule for the route: refused to all (fail closed). A token is resolved through the
    process's short cache, so most requests cost no query for it."""
    route = request.scope.get("route")
    name = getattr(route, "name", "")
    rule = RULES.get(name)
    if rule is None:
        raise ForbiddenError(f"no policy covers {name or 'this route'}; refused")
    request.state.route_name = name
    if rule is Rule.PUBLIC:
        return None
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    cache: TokenCache = request.app.state.token_cache
    principal = cache.get(credentials.credentials)
    if principal is None:
        rt: Runtime = request.app.state.runtime
        with rt.sessions() as session:
            principal = tokens.resolve(session, credentials.credentials)
        if principal is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "invalid, expired or revoked bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )
        cache.put(credentials.credentials, principal)
    request.state.principal = principal
    if not principal.allows(rule):
        held = "platform admin" if principal.is_admin else (principal.role or "no role")
        raise ForbiddenError(f"{name} needs {rule.value}; your token has {held}")
    return principal


async def require_principal(
    principal: Annotated[Principal | None, Depends(authorize)],
) -> Principal:
    if principal is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing bearer token")
    return principal


PrincipalDep = Annotated[Principal, Depends(require_principal)]


async def get_scope(principal: PrincipalDep) -> Scope:
    """The rows the caller reaches (tessera.identity.scope); computing it costs no I/O."""
    return Scope.of(principal)


ScopeDep = Annotated[Scope, Depends(get_scope)]
