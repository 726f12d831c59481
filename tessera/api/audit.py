"""Audit of every mutating call (POST, PUT, PATCH, DELETE), refused ones included.

Plain ASGI middleware: reads (GET, HEAD) pass straight through at the cost of one
comparison. A mutating call is recorded once its response has been sent, from what the
request left in its scope: the request id (RequestIdMiddleware), the caller (the auth
dependency's `principal`, or the user name a login tried), the route and its first path
parameter, the status and, for a 202, the id of the task in the answer. Never a body,
a header value or a token. A failed write is logged and the call is not affected.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tessera.db.rows import AuditRow, utcnow
from tessera.identity.audit import outcome_of
from tessera.identity.model import Principal
from tessera.runtime import Runtime

log = logging.getLogger(__name__)

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The login route names the user it tried here, so a failed login is attributed too.
LOGIN_USER = "audit_user_name"
_TASK_BODY_MAX = 64 * 1024
_ID_MAX = 36


class AuditMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in MUTATING:
            await self.app(scope, receive, send)
            return
        status: list[int] = []
        body = bytearray()

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            elif status == [202] and len(body) < _TASK_BODY_MAX:
                body.extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            entry = _entry(scope, status[0] if status else 500, bytes(body))
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_write, scope, entry)


def _entry(scope: Scope, status: int, body: bytes) -> AuditRow:
    state: dict[str, Any] = scope.get("state", {})
    principal = state.get("principal")
    route_name = state.get("route_name") or getattr(scope.get("route"), "name", "")
    client = scope.get("client")
    entry = AuditRow(
        at=utcnow(),
        request_id=_text(state.get("request_id", ""), 64),
        user_id=None,
        user_name=_text(state.get(LOGIN_USER, ""), 128),
        project_id=None,
        source_ip=_text(client[0], 64) if client else "",
        method=scope["method"],
        path=_text(scope["path"], 512),
        action=_text(route_name, 64),
        status_code=status,
        outcome=outcome_of(status),
        target_id=_short(next(iter(scope.get("path_params", {}).values()), None)),
        task_id=_task_id(body) if status == 202 else None,
    )
    if isinstance(principal, Principal):
        entry.user_id, entry.user_name = principal.user_id, principal.user_name
        entry.project_id = principal.project_id
    return entry


def _text(value: object, limit: int) -> str:
    """Storable on either database: no NUL (PostgreSQL refuses it, and a call must not
    escape the log by putting one in its path) and valid UTF-8."""
    text = str(value).replace("\x00", "\ufffd")
    return text.encode("utf-8", "replace").decode("utf-8")[:limit]


def _short(value: object) -> str | None:
    """An id fit for the column; a longer value is not one of our ids."""
    return _text(value, _ID_MAX) if isinstance(value, str) and len(value) <= _ID_MAX else None


def _task_id(body: bytes) -> str | None:
    """The id of the task a 202 answers with."""
    try:
        task = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return _short(task.get("id")) if isinstance(task, dict) else None


def _write(scope: Scope, entry: AuditRow) -> None:
    try:
        rt: Runtime = scope["app"].state.runtime
        with rt.sessions.begin() as session:
            session.add(entry)
    except Exception:
        log.exception(
            "audit entry of %s %s (request %s) could not be written",
            entry.method,
            entry.path,
            entry.request_id,
        )
