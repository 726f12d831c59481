"""Input no route may take, whatever its schema says.

NUL characters: PostgreSQL refuses them in text (SQLite stores them), so a NUL in an id,
a filter or a name reached the database and came back as a 500 there, and was kept on
SQLite. No name, id or filter here has a use for one: every route refuses them with a
422 before it runs, on either database.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from tessera.errors import InvalidInputError

_NUL = "\x00"


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return _NUL in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


async def reject_nul_characters(request: Request) -> None:
    """Applied to every router by the app: 422 for a NUL in the path, the query or a JSON body."""
    if _NUL in request.scope["path"]:
        raise InvalidInputError("the path contains a NUL character")
    for name, value in request.query_params.multi_items():
        if _NUL in name or _NUL in value:
            raise InvalidInputError(f"query parameter {name!r} contains a NUL character")
    if request.method not in {"POST", "PUT", "PATCH"}:
        return
    # FastAPI has read (and parsed) the body before dependencies run; both are cached.
    # Only a body with the escape in it is parsed and walked: a string may hold a
    # backslash followed by `u0000`, which is no NUL.
    if b"\\u0000" not in await request.body():
        return
    try:
        body = await request.json()
    except ValueError:  # not JSON: the body's own validation says so
        return
    if _has_nul(body):
        raise InvalidInputError("the body contains a NUL character in a string")
