"""Paging the append-only logs (events, the audit log): newest first, keyset-paged by id,
within a time window.

The cursor is the last id shown, opaque to clients. Ids rise with the order rows were
written, so a page is an indexed range scan however deep: `(filter column, id)` indexes
serve the filtered lists the same way.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from sqlalchemy import ColumnElement, Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from tessera.errors import InvalidInputError

MAX_LIMIT = 1000
_CURSOR_ERROR = "cursor is not one this API issued"
_Row = TypeVar("_Row")


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"before": last_id})).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        value = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise InvalidInputError(_CURSOR_ERROR) from exc
    last_id = value.get("before") if isinstance(value, dict) else None
    if type(last_id) is not int or last_id < 1:
        raise InvalidInputError(_CURSOR_ERROR)
    return last_id


def newest_first(
    session: Session,
    stmt: Select[_Row],
    id_column: InstrumentedAttribute[int],
    *,
    cursor: str | None,
    limit: int,
) -> tuple[list[_Row], str | None]:
    """One page of the rows `stmt` selects, newest first, after `cursor`; the next
    page's cursor, None on the last page."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInputError(f"limit must be between 1 and {MAX_LIMIT}")
    if cursor:
        stmt = stmt.where(id_column < decode_cursor(cursor))
    rows = list(session.scalars(stmt.order_by(id_column.desc()).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    last: Any = rows[limit - 1]
    return rows[:limit], encode_cursor(getattr(last, id_column.key))


def as_utc(moment: datetime) -> datetime:
    """A time in UTC; one without a zone is taken as UTC (SQLite stores UTC text)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def time_window(
    column: InstrumentedAttribute[datetime], since: datetime | None, until: datetime | None
) -> list[ColumnElement[bool]]:
    """The WHERE clauses keeping `column` in [since, until) (either may be open)."""
    start = as_utc(since) if since else None
    end = as_utc(until) if until else None
    if start and end and start > end:
        raise InvalidInputError(f"since ({start.isoformat()}) is after until ({end.isoformat()})")
    return [
        *([column >= start] if start else []),
        *([column < end] if end else []),
    ]
