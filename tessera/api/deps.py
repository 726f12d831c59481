"""Typed dependencies for routes: the runtime, a DB session, the caller.

They are async because none of them blocks: a sync dependency costs a worker-thread
round trip per request, which dominated the list endpoints' latency.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from tessera.runtime import Runtime

_bearer = HTTPBearer(auto_error=False, description="The admin token printed at start-up.")


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


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Every API route needs the bearer token; the comparison is constant-time."""
    expected: bytes = request.app.state.token_digest
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    given = hashlib.sha256(credentials.credentials.encode()).digest()
    if not hmac.compare_digest(given, expected):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "invalid bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
