"""The audit log: one row per mutating API call (tessera.api.audit writes them), read
newest first, filtered and keyset-paged by id as the event log is (tessera.db.paging).

A platform admin reads every entry; a project admin those of their own project, that is
of calls made with a token scoped to it. Entries never hold a request body, a header or
a token, so reading them reveals who did what, never a secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from tessera.db.paging import newest_first, time_window
from tessera.db.rows import AuditRow
from tessera.identity.model import Principal


def outcome_of(status_code: int) -> str:
    """How a call ended, from its status: refused for who the caller is or how often they
    call (401, 403 — a quota too — and 429), refused for what it asked (other 4xx), or
    failed on our side (5xx)."""
    if status_code < 400:
        return "success"
    if status_code in (401, 403, 429):
        return "denied"
    return "invalid" if status_code < 500 else "error"


@dataclass(frozen=True)
class AuditFilter:
    """Every given field narrows the list; `user` is a user id or name, `outcome` one of
    success, denied, invalid, error; `since` is inclusive and `until` exclusive (a time
    without a zone is UTC)."""

    user: str | None = None
    project_id: str | None = None
    action: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _conditions(caller: Principal, flt: AuditFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if not caller.is_admin:
        conditions.append(AuditRow.project_id == caller.project_id)
    if flt.user is not None:
        conditions.append(or_(AuditRow.user_id == flt.user, AuditRow.user_name == flt.user))
    if flt.project_id is not None:
        conditions.append(AuditRow.project_id == flt.project_id)
    if flt.action is not None:
        conditions.append(AuditRow.action == flt.action)
    if flt.outcome is not None:
        conditions.append(AuditRow.outcome == flt.outcome)
    return conditions + time_window(AuditRow.at, flt.since, flt.until)


def list_entries(
    session: Session,
    caller: Principal,
    flt: AuditFilter,
    *,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[AuditRow], str | None]:
    """Newest first; the cursor is None on the last page."""
    stmt = select(AuditRow).where(*_conditions(caller, flt))
    return newest_first(session, stmt, AuditRow.id, cursor=cursor, limit=limit)
