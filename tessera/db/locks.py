"""Serialising a read-decide-write across threads and processes, in the database itself.

A placement or a quota reservation reads what is taken, decides, and writes its claim;
two of them interleaving would both see the same room and both take it. Each runs in one
transaction that starts with `serialize`, so the next one's reads see the previous one's
writes.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session


def _lock_key(name: str) -> int:
    """A stable signed 64-bit key for `name` (PostgreSQL's advisory lock space)."""
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def serialize(session: Session, *names: str) -> None:
    """Hold the locks `names` until the session's transaction ends (commit or rollback).

    Call it once, as the first statement of the transaction: reads made before it are
    not covered. PostgreSQL takes a transaction-scoped advisory lock per name, in sorted
    order so that two callers of overlapping names cannot deadlock; only callers of a
    same name wait for each other. SQLite has one writer at a time: the transaction takes
    the write lock at once (BEGIN IMMEDIATE, waiting up to the busy timeout) rather than
    at its first write, so no other writer, whatever its names, commits between its
    first read and its commit; readers are not blocked (WAL).
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        for name in sorted(set(names)):
            session.execute(select(func.pg_advisory_xact_lock(_lock_key(name))))
    elif dialect == "sqlite":
        session.execute(text("BEGIN IMMEDIATE"))
    else:
        raise NotImplementedError(f"no serialisation for the {dialect} database")
