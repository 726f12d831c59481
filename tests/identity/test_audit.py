"""The audit log: every mutating call with who, from where and how it ended; never a
secret; readable by an admin in full and by a project admin for their project."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from tessera.cli.main import app
from tessera.config import Settings
from tessera.inventory import pools
from tessera.runtime import Runtime


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "state",
        database_url=database_url,
        watch_enabled=False,
        run_tasks=False,
        login_attempts_per_minute=100,
    )


def _login(api: TestClient, user: str, password: str) -> Any:
    return TestClient(api.app).post("/v1/auth/login", json={"user": user, "password": password})


def _as(api: TestClient, user: str) -> TestClient:
    logged = _login(api, user, f"pw-{user}-123")
    assert logged.status_code == 200, logged.text
    client = TestClient(api.app)
    client.headers["Authorization"] = f"Bearer {logged.json()['token']}"
    return client


def _project_with(api: TestClient, project: str, **users: str) -> str:
    pid = api.post("/v1/projects", json={"name": project}).json()["id"]
    for name, role in users.items():
        uid = api.post("/v1/users", json={"name": name, "password": f"pw-{name}-123"}).json()["id"]
        assert api.put(f"/v1/projects/{pid}/members/{uid}", json={"role": role}).status_code == 204
    return str(pid)


def _audit(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/v1/audit", params={"limit": 1000, **params})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_a_members_call_is_recorded_with_who_where_and_how(api: TestClient) -> None:
    pid = _project_with(api, "web", alice="member")
    alice = _as(api, "alice")
    before = len(_audit(api))
    made = alice.post(
        "/v1/placement-groups",
        json={"name": "web", "policy": "anti-affinity"},
        headers={"X-Request-Id": "req-alice-1"},
    )
    assert made.status_code == 201, made.text
    assert alice.get("/v1/placement-groups").status_code == 200  # reads are not audited
    entries = _audit(api)
    assert len(entries) == before + 1
    entry = entries[0]
    me = alice.get("/v1/auth/whoami").json()
    assert entry["request_id"] == "req-alice-1" == made.headers["x-request-id"]
    assert (entry["user_id"], entry["user_name"], entry["project_id"]) == (
        me["user_id"],
        "alice",
        pid,
    )
    assert (entry["method"], entry["path"], entry["action"]) == (
        "POST",
        "/v1/placement-groups",
        "create_placement_group",
    )
    assert (entry["status_code"], entry["outcome"]) == (201, "success")
    assert entry["source_ip"] == "testclient"
    assert entry["target_id"] is None and entry["task_id"] is None
    assert datetime.fromisoformat(entry["at"]) > datetime.now(UTC) - timedelta(minutes=1)

    group = made.json()["id"]
    assert alice.delete(f"/v1/placement-groups/{group}").status_code == 204
    deleted = _audit(api, action="delete_placement_group")[0]
    assert (deleted["target_id"], deleted["outcome"]) == (group, "success")


def test_a_task_call_names_its_task(api: TestClient, runtime: Runtime) -> None:
    spec = pools.ProviderSpec("fake", "libvirt", "qemu+tcp://127.0.0.1:1/system")
    provider = pools.add_provider(runtime, spec, test_connection=False).id
    queued = api.post(f"/v1/providers/{provider}/sync")
    assert queued.status_code == 202, queued.text
    entry = _audit(api, action="sync_provider")[0]
    assert (entry["task_id"], entry["target_id"]) == (queued.json()["id"], provider)
    assert (entry["user_name"], entry["project_id"]) == ("admin", None)


def test_refused_calls_are_recorded_as_denied_or_invalid(api: TestClient) -> None:
    _project_with(api, "web", bob="reader")
    bob = _as(api, "bob")
    refused = bob.post("/v1/placement-groups", json={"name": "g", "policy": "affinity"})
    assert refused.status_code == 403
    denied = _audit(api, user="bob", outcome="denied")
    assert [(e["action"], e["status_code"]) for e in denied] == [("create_placement_group", 403)]

    anonymous = TestClient(api.app).post("/v1/projects", json={"name": "x"})
    assert anonymous.status_code == 401
    entry = _audit(api, action="create_project")[0]
    assert (entry["user_id"], entry["user_name"], entry["outcome"]) == (None, "", "denied")

    bad = api.post("/v1/projects", json={"name": "no spaces allowed"})
    assert bad.status_code == 422
    assert _audit(api, action="create_project", outcome="invalid")[0]["status_code"] == 422
    missing = api.delete("/v1/projects/nope")
    assert missing.status_code == 404
    entry = _audit(api, action="delete_project")[0]
    assert (entry["outcome"], entry["target_id"]) == ("invalid", "nope")

    # a NUL, which PostgreSQL cannot store, does not keep a call out of the log
    hidden = api.post("/v1/vms/x%00y/power", json={"action": "stop"})
    assert hidden.status_code == 422
    entry = _audit(api, action="power_vm")[0]
    assert (entry["path"], entry["target_id"]) == ("/v1/vms/x\ufffdy/power", "x\ufffdy")


def test_a_wrong_password_is_recorded_but_never_the_password(
    api: TestClient, runtime: Runtime
) -> None:
    _project_with(api, "web", dave="member")
    secret = "Corr3ct-Horse-Battery-Staple-9"
    assert _login(api, "dave", secret).status_code == 401
    good = _login(api, "dave", "pw-dave-123")
    assert good.status_code == 200
    token = good.json()["token"]
    logins = _audit(api, action="login")
    assert [(e["user_name"], e["outcome"], e["status_code"]) for e in logins] == [
        ("dave", "success", 200),
        ("dave", "denied", 401),
    ]
    assert logins[0]["user_id"] == good.json()["principal"]["user_id"]
    assert logins[1]["user_id"] is None
    with runtime.engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM audit_log")).all()
    raw = repr(rows)
    assert "dave" in raw
    for leak in (secret, "pw-dave-123", token):
        assert leak not in raw


def test_filters_and_paging(api: TestClient) -> None:
    _project_with(api, "web", erin="member")
    erin = _as(api, "erin")
    for n in range(5):
        assert erin.post("/v1/placement-groups", json={"name": f"g{n}", "policy": "affinity"})
    everything = _audit(api)
    seen, cursor = [], None
    while True:
        page = api.get("/v1/audit", params={"limit": 2, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200
        seen += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert [e["id"] for e in seen] == [e["id"] for e in everything]
    assert [e["id"] for e in everything] == sorted((e["id"] for e in everything), reverse=True)

    mine = _audit(api, user="erin", action="create_placement_group")
    assert len(mine) == 5 and {e["outcome"] for e in mine} == {"success"}
    assert _audit(api, user=mine[0]["user_id"]) == _audit(api, user="erin")
    middle, erins = mine[2]["at"], {"user": "erin", "action": "create_placement_group"}
    assert [e["id"] for e in _audit(api, **erins, until=middle)] == [e["id"] for e in mine[3:]]
    assert [e["id"] for e in _audit(api, **erins, since=middle)] == [e["id"] for e in mine[:3]]
    assert api.get("/v1/audit", params={"outcome": "maybe"}).status_code == 422
    assert api.get("/v1/audit", params={"cursor": "junk"}).status_code == 422


def test_a_project_admin_reads_their_projects_entries_only(api: TestClient) -> None:
    web = _project_with(api, "web", carol="project-admin", frank="member")
    db = _project_with(api, "db", gina="member")
    frank, gina = _as(api, "frank"), _as(api, "gina")
    assert frank.post("/v1/placement-groups", json={"name": "f", "policy": "affinity"})
    assert gina.post("/v1/placement-groups", json={"name": "g", "policy": "affinity"})
    carol = _as(api, "carol")
    entries = _audit(carol)
    assert {e["project_id"] for e in entries} == {web}
    assert "frank" in {e["user_name"] for e in entries}
    assert _audit(carol, project_id=db) == []
    assert frank.get("/v1/audit").status_code == 403
    assert {e["project_id"] for e in _audit(api)} >= {web, db, None}


def test_a_failed_audit_write_does_not_fail_the_call(
    api: TestClient, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    with runtime.engine.begin() as conn:
        conn.execute(text("DROP TABLE audit_log"))
    with caplog.at_level(logging.ERROR, logger="tessera.api.audit"):
        made = api.post("/v1/projects", json={"name": "still-works"})
    assert made.status_code == 201, made.text
    assert "audit entry of POST /v1/projects" in caplog.text


def test_the_cli_lists_and_filters_entries(
    cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # one table row per entry
    headers = {"Authorization": f"Bearer {cli_env['TESSERA_API_TOKEN']}"}
    with httpx.Client(base_url=cli_env["TESSERA_API_URL"], headers=headers) as client:
        assert client.post("/v1/projects", json={"name": "web"}).status_code == 201
        assert client.post("/v1/projects", json={"name": "web"}).status_code == 409
    runner = CliRunner()
    deadline = time.monotonic() + 10
    while True:  # over HTTP an entry is written just after its response is sent
        listed = runner.invoke(app, ["audit", "list", "-o", "json"])
        assert listed.exit_code == 0, listed.output
        entries = json.loads(listed.output)
        if len(entries) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert [(e["action"], e["status_code"]) for e in entries] == [
        ("create_project", 409),
        ("create_project", 201),
    ]
    table = runner.invoke(app, ["audit", "list", "--outcome", "invalid", "--since", "1h"])
    assert table.exit_code == 0, table.output
    assert "create_project" in table.output and "409" in table.output
    assert "201" not in table.output
    assert runner.invoke(app, ["audit", "list", "--user", "nobody"]).output.strip() == "(none)"
    bad = runner.invoke(app, ["audit", "list", "--since", "yesterday"])
    assert bad.exit_code == 5 and "--since 'yesterday'" in bad.output
