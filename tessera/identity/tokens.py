"""Bearer tokens: issued once in clear, kept as a SHA-256 digest, resolved to a principal.

Resolving a token costs a query, and every request carries one; so resolutions are kept
for a few seconds per process. Revoking through this process forgets the token at once;
another API process stops accepting it within `CACHE_TTL_S`.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from tessera.db.rows import RoleAssignmentRow, TokenRow, UserRow, utcnow
from tessera.identity.model import Principal, Role, TokenKind

PREFIX = "tsr_"
CACHE_TTL_S = 5.0


def digest_of(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def issue(
    session: Session,
    user: UserRow,
    *,
    kind: TokenKind,
    project_id: str | None,
    ttl: timedelta | None,
    name: str = "",
    secret: str | None = None,
) -> tuple[TokenRow, str]:
    """A new token row (added to `session`) and its secret, which is never stored."""
    secret = secret or new_secret()
    row = TokenRow(
        digest=digest_of(secret),
        user_id=user.id,
        project_id=project_id,
        kind=kind.value,
        name=name,
        created_at=utcnow(),
        expires_at=utcnow() + ttl if ttl is not None else None,
    )
    session.add(row)
    session.flush()
    return row, secret


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def resolve(session: Session, secret: str) -> Principal | None:
    """The principal of a live token (not expired, not revoked, its user enabled and, for
    a project token, still holding a role there); None otherwise."""
    found = session.execute(
        select(TokenRow, UserRow)
        .join(UserRow, UserRow.id == TokenRow.user_id)
        .where(TokenRow.digest == digest_of(secret))
    ).one_or_none()
    if found is None:
        return None
    token, user = found
    now = datetime.now(UTC)
    if token.revoked_at is not None or not user.enabled:
        return None
    if token.expires_at is not None and _aware(token.expires_at) <= now:
        return None
    role: Role | None = None
    if token.project_id is not None:
        held = session.scalar(
            select(RoleAssignmentRow.role).where(
                RoleAssignmentRow.user_id == user.id,
                RoleAssignmentRow.project_id == token.project_id,
            )
        )
        if held is None and not user.is_admin:
            return None
        role = Role(held) if held is not None else None
    return Principal(
        user_id=user.id,
        user_name=user.name,
        domain_id=user.domain_id,
        is_admin=user.is_admin,
        project_id=token.project_id,
        role=role,
        token_id=token.id,
    )


class TokenCache:
    """Resolved tokens of this process, each for at most CACHE_TTL_S."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def get(self, secret: str) -> Principal | None:
        with self._lock:
            entry = self._entries.get(digest_of(secret))
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, secret: str, principal: Principal) -> None:
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[digest_of(secret)] = (time.monotonic() + CACHE_TTL_S, principal)

    def forget_token(self, token_id: str) -> None:
        with self._lock:
            for key in [k for k, (_, p) in self._entries.items() if p.token_id == token_id]:
                del self._entries[key]

    def forget_user(self, user_id: str) -> None:
        with self._lock:
            for key in [k for k, (_, p) in self._entries.items() if p.user_id == user_id]:
                del self._entries[key]
