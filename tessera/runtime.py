"""The process-wide objects every service needs, built once from Settings."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from threading import Lock

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tessera.config import Settings
from tessera.db.engine import make_engine, make_session_factory
from tessera.db.migrate import upgrade
from tessera.security.secrets import SecretBox


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    secrets: SecretBox
    _provider_locks: dict[str, Lock] = field(default_factory=dict)
    _locks_guard: Lock = field(default_factory=Lock)

    @classmethod
    def open(cls, settings: Settings, *, migrate: bool = True) -> Runtime:
        """Connect to the database (migrating it unless told not to) and load the keys."""
        settings.ensure_data_dir()
        engine = make_engine(settings.resolved_database_url)
        if migrate:
            upgrade(engine)
        if settings.secret_keys:
            box = SecretBox.parse(settings.secret_keys)
        else:
            box = SecretBox.from_file(settings.key_file, create=True)
        return cls(settings, engine, make_session_factory(engine), box)

    def provider_lock(self, provider_id: str) -> Lock:
        """Serialises writers of one provider's inventory (full sync vs. watch batches)."""
        with self._locks_guard:
            return self._provider_locks.setdefault(provider_id, Lock())

    def close(self) -> None:
        self.engine.dispose()


def ensure_admin_token(settings: Settings) -> str:
    """The platform admin's API token, created on first use in a 0600 file."""
    path = settings.token_file
    if path.exists():
        return path.read_text().strip()
    settings.ensure_data_dir()
    token = "tsr_" + secrets.token_urlsafe(32)
    path.touch(mode=0o600)
    path.write_text(token + "\n")
    return token
