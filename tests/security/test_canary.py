"""A known vCenter password and API token must never show up in responses, logs or the DB."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tessera.api.app import create_app
from tessera.config import Settings
from tessera.lab.vcsim import RunningVcsim, VcsimSpec, start_vcsim
from tessera.runtime import ensure_admin_token
from tests.fixtures.canary import CANARY_VCENTER_PASSWORD
from tests.tasks.helpers import submitted, wait_task

CANARY_PASSWORD = CANARY_VCENTER_PASSWORD


@pytest.fixture
def canary_vcenter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningVcsim]:
    lab = start_vcsim(VcsimSpec(vms=6), tmp_path_factory.mktemp("canary"))
    yield lab
    lab.stop()


def test_password_and_token_never_leak(
    tmp_path: Path, canary_vcenter: RunningVcsim, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = Settings(data_dir=tmp_path / "state", watch_enabled=True)
    token = ensure_admin_token(settings)
    bodies: list[str] = []
    body = {
        "name": "vc",
        "kind": "vsphere",
        "url": canary_vcenter.url,
        "username": canary_vcenter.username,
        "password": CANARY_PASSWORD,
        "verify_tls": False,
    }
    with TestClient(create_app(settings)) as api:
        api.headers["Authorization"] = f"Bearer {token}"

        def call(method: str, path: str, **kwargs: object) -> int:
            response = api.request(method, path, **kwargs)  # type: ignore[arg-type]
            bodies.append(response.text + str(response.headers))
            return response.status_code

        assert call("POST", "/v1/providers", json=body) == 201
        assert call("POST", "/v1/providers", json=body) == 409
        assert (
            call("POST", "/v1/providers", json={**body, "name": "bad", "url": "file:///x"}) == 422
        )
        assert (
            call("POST", "/v1/providers", json={**body, "name": "x", "username": "nobody"}) == 422
        )
        pid = api.get("/v1/providers").json()[0]["id"]
        for path in (
            "/v1/providers",
            f"/v1/providers/{pid}",
            "/v1/vms?fields=name,nics",
            "/openapi.json",
        ):
            assert call("GET", path) == 200
        synced = wait_task(api, submitted(api.post(f"/v1/providers/{pid}/sync")))
        bodies.append(str(synced))
        assert synced["state"] == "succeeded"
        time.sleep(1.5)  # let the watcher log whatever it logs
        canary_vcenter.stop()
        failed = wait_task(api, submitted(api.post(f"/v1/providers/{pid}/sync")))
        bodies.append(str(failed))
        assert failed["state"] == "failed" and failed["error"]["code"] == "provider_failed"
        time.sleep(1.5)
    logs = "\n".join(f"{r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records)
    db_bytes = b"".join(p.read_bytes() for p in settings.data_dir.glob("tessera.db*"))
    for secret in (CANARY_PASSWORD, token):
        assert all(secret not in b for b in bodies), "a response carries a secret"
        assert secret not in logs, "a log record carries a secret"
        assert secret.encode() not in db_bytes, "the database stores a secret in clear"
    # the failure path did log, so the log check above saw real records
    assert any("sync of provider" in r.getMessage() for r in caplog.records)
