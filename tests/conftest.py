"""Shared fixtures: a fresh database per test, the API over it, and the lab plugins."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tessera.api.app import create_app
from tessera.config import Settings
from tessera.runtime import Runtime, ensure_admin_token

pytest_plugins = [
    "tests.fixtures.vcsim",
    "tests.fixtures.kvm",
    "tests.fixtures.netfault",
    "tests.fixtures.ldap",
    "tests.fixtures.canary",
    "tests.fixtures.netns",
]

POSTGRES_ADMIN_URL = os.environ.get(
    "TESSERA_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _postgres_database() -> Iterator[str]:
    """A throw-away PostgreSQL database, or a skip naming what is missing."""
    import sqlalchemy as sa

    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"tessera_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {exc.orig}")
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        from tests.fixtures.canary import scan_postgres

        database = sa.create_engine(POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
        with database.connect() as conn:
            scan_postgres(conn)
        database.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test using this runs on SQLite (the default) and on PostgreSQL (scale-out)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tessera.db'}"
    else:
        yield from _postgres_database()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "state", watch_enabled=False)


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = Runtime.open(settings)
    yield rt
    rt.close()


@pytest.fixture
def api(runtime: Runtime) -> Iterator[TestClient]:
    """The API over `runtime`, authenticated as the platform admin; no watchers."""
    token = ensure_admin_token(runtime.settings)
    with TestClient(create_app(runtime=runtime, watch=False)) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


@pytest.fixture
def live_api(runtime: Runtime) -> Iterator[str]:
    """The API served over real HTTP on a free loopback port (for the CLI and load tests)."""
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(runtime=runtime, watch=False),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "API did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def cli_env(live_api: str, runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The CLI's environment pointing at `live_api` with the admin token."""
    env = {
        "TESSERA_API_URL": live_api,
        "TESSERA_API_TOKEN": ensure_admin_token(runtime.settings),
        "TESSERA_DATA_DIR": str(runtime.settings.data_dir),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env
