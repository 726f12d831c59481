"""Who reaches which network object: the tenancy rules of tessera.identity.scope applied
to segments and what hangs off them.

A segment belongs to a project, or to the platform (an admin's). A project reads its own
segments and the shared and external ones; it changes (and puts subnets on) only its
own. Ports, routers, floating IPs and security groups are a project's alone. Anything
out of reach is not found, exactly as a missing id (404).
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from tessera.db.rows import ProjectRow, SegmentRow
from tessera.errors import ForbiddenError, NotFoundError
from tessera.identity.scope import Scope

_R = TypeVar("_R")


def readable_segments(scope: Scope) -> list[ColumnElement[bool]]:
    """WHERE clauses for the segments `scope` reads: its own, shared and external ones."""
    if scope.unrestricted:
        return []
    return [
        or_(
            SegmentRow.shared.is_(True),
            SegmentRow.external.is_(True),
            *scope.owned(SegmentRow.project_id),
        )
    ]


def segment(session: Session, segment_id: str, scope: Scope, *, write: bool = False) -> SegmentRow:
    """A segment in reach (404 otherwise); with `write`, one the caller may change: a
    shared or external segment of the platform reads, but only an admin changes it."""
    row = session.get(SegmentRow, segment_id)
    if row is None or not (scope.sees(row.project_id) or row.shared or row.external):
        raise NotFoundError(f"segment {segment_id} not found")
    if write and not scope.sees(row.project_id):
        raise ForbiddenError(
            f"segment {segment_id} is shared by the platform; only an admin changes it"
        )
    return row


def owned(session: Session, row_type: type[_R], row_id: str, scope: Scope, what: str) -> _R:
    """A project's row (a port, router, floating IP, security group) in reach, or 404."""
    row = session.get(row_type, row_id)
    if row is None or not scope.sees(_project_of(row)):
        raise NotFoundError(f"{what} {row_id} not found")
    return row


def _project_of(row: Any) -> str | None:
    project: str | None = row.project_id
    return project


def owner(session: Session, scope: Scope, project_id: str | None) -> str | None:
    """The project a new object belongs to: the caller's; a platform admin may name
    another (or, unscoped, none: the platform's)."""
    if project_id is None or project_id == scope.project_id:
        return scope.project_id
    if not scope.unrestricted:
        raise ForbiddenError("only a platform admin names the project of a new object")
    if session.get(ProjectRow, project_id) is None:
        raise NotFoundError(f"project {project_id} not found")
    return project_id


def project_names(session: Session) -> dict[str, str]:
    return {pid: name for pid, name in session.execute(select(ProjectRow.id, ProjectRow.name))}
