"""The audit log of mutating calls, newest first: all of it for a platform admin, their
project's for a project admin."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from tessera.api.deps import PrincipalDep, SessionDep
from tessera.api.schemas import AuditEntryPublic, AuditPage, ErrorBody
from tessera.db.paging import MAX_LIMIT
from tessera.db.rows import AuditRow
from tessera.identity import audit

router = APIRouter(prefix="/v1", tags=["audit"])


def _public(row: AuditRow) -> AuditEntryPublic:
    at = row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC)  # SQLite keeps no zone
    return AuditEntryPublic.model_validate(
        {**{c: getattr(row, c) for c in AuditEntryPublic.model_fields}, "at": at}
    )


@router.get(
    "/audit",
    response_model=AuditPage,
    responses={422: {"model": ErrorBody, "description": "Bad cursor, or since after until."}},
)
def list_audit(
    principal: PrincipalDep,
    session: SessionDep,
    user: Annotated[
        str | None, Query(min_length=1, max_length=128, description="User id or name.")
    ] = None,
    project_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    action: Annotated[
        str | None, Query(min_length=1, max_length=64, description="Route name: create_vm, ...")
    ] = None,
    outcome: Literal["success", "denied", "invalid", "error"] | None = None,
    since: Annotated[
        datetime | None, Query(description="ISO 8601, inclusive; UTC without a zone.")
    ] = None,
    until: Annotated[datetime | None, Query(description="ISO 8601, exclusive.")] = None,
    cursor: Annotated[
        str | None, Query(max_length=512, description="next_cursor of the previous page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")] = 50,
) -> AuditPage:
    """Every mutating call, refused ones too, newest first."""
    flt = audit.AuditFilter(
        user=user, project_id=project_id, action=action, outcome=outcome, since=since, until=until
    )
    rows, next_cursor = audit.list_entries(session, principal, flt, cursor=cursor, limit=limit)
    return AuditPage(items=[_public(r) for r in rows], next_cursor=next_cursor)
