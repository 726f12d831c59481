"""Login, tokens and roles through the API, as an operator and their users meet them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tessera.config import Settings
from tessera.db.rows import TokenRow, UserRow
from tessera.identity import tokens
from tessera.runtime import Runtime


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "state",
        watch_enabled=False,
        login_max_failures=3,
        login_lockout_s=60,
        login_attempts_per_minute=50,
    )


def _login(api: TestClient, user: str, password: str, **extra: Any) -> Any:
    return TestClient(api.app).post(
        "/v1/auth/login", json={"user": user, "password": password, **extra}
    )


def _as(api: TestClient, token: str) -> TestClient:
    client = TestClient(api.app)
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def _project_with(api: TestClient, project: str, **users: str) -> str:
    """A project with the given users (name → role), each with password 'pw-<name>-123'."""
    pid = api.post("/v1/projects", json={"name": project}).json()["id"]
    for name, role in users.items():
        made = api.post("/v1/users", json={"name": name, "password": f"pw-{name}-123"})
        assert made.status_code == 201, made.text
        uid = made.json()["id"]
        assert api.put(f"/v1/projects/{pid}/members/{uid}", json={"role": role}).status_code == 204
    return str(pid)


def test_first_login_as_admin_with_the_bootstrap_password(
    api: TestClient, runtime: Runtime
) -> None:
    password = runtime.settings.admin_password_file.read_text().strip()
    assert oct(runtime.settings.admin_password_file.stat().st_mode & 0o777) == "0o600"
    logged = _login(api, "admin", password)
    assert logged.status_code == 200, logged.text
    body = logged.json()
    assert body["principal"]["is_admin"] is True and body["principal"]["project_id"] is None
    me = _as(api, body["token"]).get("/v1/auth/whoami").json()
    assert me["user_name"] == "admin"
    with runtime.sessions() as s:
        stored = s.query(UserRow).filter_by(name="admin").one().password_hash or ""
    assert stored.startswith("$argon2id$") and password not in stored


def test_roles_decide_what_a_project_token_may_do(api: TestClient) -> None:
    pid = _project_with(api, "web", alice="member", bob="reader", carol="project-admin")
    reader = _as(api, _login(api, "bob", "pw-bob-123").json()["token"])
    assert reader.get("/v1/vms").status_code == 200
    assert reader.get("/v1/tasks").status_code == 200
    refused = reader.post("/v1/vms/bulk/preview", json={"select": {"name": "x"}})
    assert refused.status_code == 403 and "project:member" in refused.json()["message"]
    assert reader.post("/v1/projects", json={"name": "mine"}).status_code == 403
    assert reader.get("/v1/domains").status_code == 403

    member = _as(api, _login(api, "alice", "pw-alice-123").json()["token"])
    assert member.post("/v1/vms/bulk/preview", json={"select": {"name": "x"}}).status_code == 200
    users = {u["name"]: u["id"] for u in api.get("/v1/users").json()}
    assert (
        member.put(
            f"/v1/projects/{pid}/members/{users['bob']}", json={"role": "member"}
        ).status_code
        == 403
    )

    owner = _as(api, _login(api, "carol", "pw-carol-123").json()["token"])
    assert (
        owner.put(f"/v1/projects/{pid}/members/{users['bob']}", json={"role": "member"}).status_code
        == 204
    )
    names = sorted(m["user_name"] for m in owner.get(f"/v1/projects/{pid}/members").json())
    assert names == ["alice", "bob", "carol"]
    # another project is not carol's to see: 404, not 403
    other = api.post("/v1/projects", json={"name": "db"}).json()["id"]
    assert owner.get(f"/v1/projects/{other}/members").status_code == 404
    assert owner.get(f"/v1/projects/{other}").status_code == 404
    assert [p["name"] for p in owner.get("/v1/projects").json()] == ["web"]


def test_wrong_passwords_lock_the_account_and_never_say_which_part_was_wrong(
    api: TestClient,
) -> None:
    _project_with(api, "web", dave="member")
    unknown = _login(api, "nobody", "whatever")
    wrong = _login(api, "dave", "not-it")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json()["message"] == wrong.json()["message"]
    for _ in range(2):
        assert _login(api, "dave", "not-it").status_code == 401
    locked = _login(api, "dave", "pw-dave-123")
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
    uid = next(u["id"] for u in api.get("/v1/users").json() if u["name"] == "dave")
    assert api.get(f"/v1/users/{uid}").json()["locked"] is True
    reset = api.patch(f"/v1/users/{uid}", json={"password": "a-new-password"})
    assert reset.status_code == 200 and reset.json()["locked"] is False
    assert _login(api, "dave", "a-new-password").status_code == 200


def test_login_attempts_per_address_are_limited(api: TestClient, runtime: Runtime) -> None:
    api.app.state.login_throttle.per_minute = 3
    codes = [_login(api, "nobody", "x").status_code for _ in range(5)]
    assert codes == [401, 401, 401, 429, 429]


def test_api_tokens_are_scoped_expire_and_can_be_revoked(api: TestClient, runtime: Runtime) -> None:
    pid = _project_with(api, "web", erin="member")
    session = _as(api, _login(api, "erin", "pw-erin-123").json()["token"])
    issued = session.post("/v1/auth/tokens", json={"name": "ci", "expires_in_days": 30})
    assert issued.status_code == 201, issued.text
    token = issued.json()
    assert token["project_id"] == pid and token["secret"].startswith("tsr_")
    listed = session.get("/v1/auth/tokens").json()
    assert {t["name"] for t in listed} == {"login", "ci"}
    assert all("secret" not in t for t in listed)
    script = _as(api, token["secret"])
    assert script.get("/v1/auth/whoami").json()["role"] == "member"
    with runtime.sessions() as s:
        assert s.query(TokenRow).filter_by(digest=tokens.digest_of(token["secret"])).count() == 1
        assert s.query(TokenRow).filter_by(digest=token["secret"]).count() == 0

    assert session.delete(f"/v1/auth/tokens/{token['id']}").status_code == 204
    revoked = script.get("/v1/auth/whoami")
    assert revoked.status_code == 401 and "revoked" in revoked.json()["message"]
    too_long = session.post("/v1/auth/tokens", json={"name": "x", "expires_in_days": 3000})
    assert too_long.status_code == 422

    other = api.post("/v1/projects", json={"name": "other"}).json()["id"]
    refused = session.post("/v1/auth/tokens", json={"name": "y", "project": other})
    assert refused.status_code == 403


def test_an_expired_session_token_is_refused(api: TestClient, runtime: Runtime) -> None:
    _project_with(api, "web", finn="reader")
    token = _login(api, "finn", "pw-finn-123").json()["token"]
    with runtime.sessions.begin() as s:
        row = s.query(TokenRow).filter_by(digest=tokens.digest_of(token)).one()
        row.expires_at = row.created_at
    expired = _as(api, token).get("/v1/vms")
    assert expired.status_code == 401


def test_disabling_a_user_ends_their_sessions(api: TestClient) -> None:
    _project_with(api, "web", gus="member")
    client = _as(api, _login(api, "gus", "pw-gus-123").json()["token"])
    assert client.get("/v1/vms").status_code == 200
    uid = next(u["id"] for u in api.get("/v1/users").json() if u["name"] == "gus")
    assert api.patch(f"/v1/users/{uid}", json={"enabled": False}).status_code == 200
    assert client.get("/v1/vms").status_code == 401
    assert _login(api, "gus", "pw-gus-123").status_code == 401


def test_changing_ones_own_password_takes_the_current_one_and_ends_other_sessions(
    api: TestClient,
) -> None:
    _project_with(api, "web", hal="member", ivy="member")
    first = _as(api, _login(api, "hal", "pw-hal-123").json()["token"])
    second = _as(api, _login(api, "hal", "pw-hal-123").json()["token"])
    made = first.post("/v1/auth/tokens", json={"name": "ci", "expires_in_days": 1})
    script = _as(api, made.json()["secret"])
    uid = first.get("/v1/auth/whoami").json()["user_id"]
    assert second.get("/v1/auth/whoami").status_code == 200  # resolved, and cached

    missing = first.patch(f"/v1/users/{uid}", json={"password": "pw-hal-456"})
    assert missing.status_code == 422 and "current one" in missing.json()["message"]
    wrong = first.patch(
        f"/v1/users/{uid}", json={"password": "pw-hal-456", "current_password": "pw-hal-000"}
    )
    assert wrong.status_code == 403 and wrong.json()["message"] == "the current password is wrong"
    changed = first.patch(
        f"/v1/users/{uid}", json={"password": "pw-hal-456", "current_password": "pw-hal-123"}
    )
    assert changed.status_code == 200, changed.text
    assert first.get("/v1/auth/whoami").status_code == 200  # the session that changed it
    assert second.get("/v1/auth/whoami").status_code == 401  # every other one is over
    assert script.get("/v1/auth/whoami").status_code == 200  # API tokens are not sessions
    assert _login(api, "hal", "pw-hal-123").status_code == 401
    assert _login(api, "hal", "pw-hal-456").status_code == 200

    # an admin resets another's password without knowing it, ending their sessions
    reset = api.patch(f"/v1/users/{uid}", json={"password": "pw-hal-789"})
    assert reset.status_code == 200, reset.text
    assert first.get("/v1/auth/whoami").status_code == 401

    # wrong current passwords count toward the lockout, as wrong logins do
    ivy = _as(api, _login(api, "ivy", "pw-ivy-123").json()["token"])
    ivy_id = ivy.get("/v1/auth/whoami").json()["user_id"]
    guesses = [
        ivy.patch(
            f"/v1/users/{ivy_id}", json={"password": "pw-ivy-456", "current_password": guess}
        ).status_code
        for guess in ("a", "b", "c", "pw-ivy-123")
    ]
    assert guesses == [403, 403, 403, 429]
    assert _login(api, "ivy", "pw-ivy-123").status_code == 429
