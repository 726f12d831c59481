"""The identity CLI as the README shows it, against a live API: the admin's first login,
a project, a user, a role and grants, then that user's login, whoami and logout."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from tessera.cli.main import app
from tessera.db.rows import TokenRow
from tessera.runtime import Runtime
from tests.identity.tenants import one_host_pool

runner = CliRunner()


def tessera(*args: str, stdin: str | None = None) -> Any:
    return runner.invoke(app, list(args), input=stdin)


def ok(*args: str, stdin: str | None = None) -> Any:
    """The command's JSON output, after checking it exited 0."""
    result = tessera(*args, "-o", "json", stdin=stdin)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def logged_out(cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The CLI's environment without TESSERA_API_TOKEN, so that a login is what counts."""
    monkeypatch.delenv("TESSERA_API_TOKEN")
    return cli_env


def _whoami(url: str, token: str) -> httpx.Response:
    return httpx.get(f"{url}/v1/auth/whoami", headers={"Authorization": f"Bearer {token}"})


def test_first_login_a_tenant_and_its_user(
    logged_out: dict[str, str], runtime: Runtime, kvm_host: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = runtime.settings
    assert tessera("login", "--password", "x").exit_code == 2  # never on the command line
    admin_password = settings.admin_password_file.read_text().strip()
    me = ok("login", "--password-stdin", stdin=admin_password + "\n")
    assert me["user"] == "admin" and me["platform_admin"] is True and me["expires_at"]
    assert oct(settings.session_token_file.stat().st_mode & 0o777) == "0o600"
    assert ok("whoami")["token_from"] == "session"

    assert (
        tessera("provider", "add", "kvm", "--kind", "libvirt", "--url", kvm_host.uri).exit_code == 0
    )
    assert tessera("provider", "sync", "kvm").exit_code == 0
    project = ok("project", "create", "web", "--description", "The web team")
    assert ok("project", "show", project["id"])["name"] == "web"
    made = ok("user", "create", "alice", "--email", "alice@example.org", stdin="pw-alice-1\n" * 2)
    assert made["source"] == "local" and "password" not in json.dumps(made)
    added = tessera("role", "assign", "alice", "--project", "web", "--role", "member")
    assert added.exit_code == 0, added.output
    assert ok("role", "list", "--project", "web") == [
        {"user_id": made["id"], "user_name": "alice", "role": "member"}
    ]
    assert tessera("role", "assign", "nobody", "-p", "web", "--role", "reader").exit_code == 3
    for target in (
        ("--provider", "kvm"),
        ("--zone", "default/default"),
        ("--network", f"{kvm_host.name}-vlan42"),
    ):
        granted = tessera("grant", "add", "--project", "web", *target)
        assert granted.exit_code == 0, granted.output
    grants = {g["kind"]: g["name"] for g in ok("grant", "list", "--project", "web")}
    assert grants == {
        "provider": "kvm",
        "zone": "default/default",
        "network": f"{kvm_host.name}-vlan42",
    }
    assert (
        tessera("grant", "remove", "-p", "web", "--network", f"{kvm_host.name}-vlan42").exit_code
        == 0
    )
    assert tessera("grant", "add", "-p", "web", "--provider", "kvm", "--zone", "x").exit_code == 2
    assert ok("quota", "set", "-p", "web", "--vms", "10", "--vcpus", "40")["vms"] == 10
    assert ok("quota", "set", "-p", "web", "--vms", "unlimited")["vms"] is None
    assert ok("quota", "show", "-p", "web")["vcpus"] == 40
    assert tessera("quota", "set", "-p", "web", "--vms", "lots").exit_code == 2

    # alice logs in; her password from the environment this time
    monkeypatch.setenv("TESSERA_PASSWORD", "pw-alice-1")
    alice = ok("login", "--user", "alice")
    monkeypatch.delenv("TESSERA_PASSWORD")
    assert (alice["user"], alice["project"], alice["role"]) == ("alice", "web", "member")
    whoami = ok("whoami")
    assert (whoami["user"], whoami["project"], whoami["role"]) == ("alice", "web", "member")
    assert [p["name"] for p in ok("provider", "list")] == ["kvm"]
    assert tessera("project", "create", "mine").exit_code == 7  # not an admin
    assert ok("quota", "show")["vcpus"] == 40  # her token's project by default

    # an API token for her scripts: shown once, then revoked
    issued = ok("token", "create", "ci", "--days", "7")
    assert issued["secret"].startswith("tsr_") and issued["project_id"] == project["id"]
    assert {t["name"] for t in ok("token", "list")} == {"login", "ci"}
    assert "secret" not in json.dumps(ok("token", "list"))
    url = logged_out["TESSERA_API_URL"]
    assert _whoami(url, issued["secret"]).json()["user_name"] == "alice"
    assert tessera("token", "revoke", "ci").exit_code == 0
    assert _whoami(url, issued["secret"]).status_code == 401

    session = settings.session_token_file.read_text().strip()
    out = tessera("logout")
    assert out.exit_code == 0 and "logged out alice" in out.output
    assert not settings.session_token_file.exists()
    assert _whoami(url, session).status_code == 401
    assert tessera("logout").output.strip() == "not logged in"
    # without a session, the CLI falls back on this machine's admin token file
    assert ok("whoami")["token_from"] == "admin token file"


def test_user_lifecycle(logged_out: dict[str, str], runtime: Runtime) -> None:
    admin_password = runtime.settings.admin_password_file.read_text().strip()
    ok("login", "--password-stdin", stdin=admin_password + "\n")
    ok("project", "create", "db")
    bob = ok("user", "create", "bob", "--password-stdin", stdin="pw-bob-12\n")
    assert tessera("role", "assign", bob["id"], "-p", "db", "--role", "reader").exit_code == 0
    assert [u["name"] for u in ok("user", "list")] == ["admin", "bob"]
    assert ok("user", "show", "bob")["enabled"] is True

    assert tessera("user", "disable", "bob").exit_code == 0
    assert ok("user", "show", "bob")["enabled"] is False
    refused = tessera("login", "--user", "bob", "--password-stdin", stdin="pw-bob-12\n")
    assert refused.exit_code == 7
    assert tessera("user", "enable", "bob").exit_code == 0
    assert tessera("user", "passwd", "bob", "--password-stdin", stdin="pw-bob-34\n").exit_code == 0
    assert tessera("user", "passwd", "bob", stdin="short\nshort\n").exit_code == 5  # too short
    assert tessera("role", "unassign", "bob", "-p", "db").exit_code == 0
    assert ok("role", "list", "-p", "db") == []
    assert tessera("user", "delete", "bob").exit_code == 0
    assert tessera("user", "show", "bob").exit_code == 3
    assert tessera("project", "delete", "db").exit_code == 0
    assert ok("project", "list") == []
    assert tessera("user", "create", "carol", "--ldap").exit_code == 0
    assert ok("user", "show", "carol")["source"] == "ldap"

    # a user changes their own password (the current one first, then the new one
    # twice) and logs in with it
    ok("project", "create", "web")
    assert (
        tessera("user", "create", "dave", "--password-stdin", stdin="pw-dave-12\n").exit_code == 0
    )
    assert tessera("role", "assign", "dave", "-p", "web", "--role", "project-admin").exit_code == 0
    ok("login", "--user", "dave", "--password-stdin", stdin="pw-dave-12\n")
    wrong = tessera("user", "passwd", stdin="pw-dave-00\npw-dave-34\npw-dave-34\n")
    assert wrong.exit_code == 7 and "current password is wrong" in wrong.output
    changed = tessera("user", "passwd", stdin="pw-dave-12\npw-dave-34\npw-dave-34\n")
    assert changed.exit_code == 0, changed.output
    assert "Current password" in changed.output
    assert ok("login", "--user", "dave", "--password-stdin", stdin="pw-dave-34\n")["role"] == (
        "project-admin"
    )
    assert [m["user_name"] for m in ok("role", "list")] == ["dave"]


def test_an_expired_session_says_to_log_in_again(
    logged_out: dict[str, str], runtime: Runtime
) -> None:
    admin_password = runtime.settings.admin_password_file.read_text().strip()
    me = ok("login", "--password-stdin", stdin=admin_password + "\n")
    with runtime.sessions.begin() as s:
        token = s.get(TokenRow, me["token_id"])
        assert token is not None and token.expires_at is not None
        token.expires_at = token.created_at
    over = tessera("project", "list")
    assert over.exit_code == 7
    assert "run `tessera login` again" in " ".join(over.output.split())
    assert "the session was already over" in tessera("logout").output
    assert not runtime.settings.session_token_file.exists()


def test_a_quota_refusal_has_its_own_exit_code(
    cli_env: dict[str, str], runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A quota is no missing right: it exits 11 saying which quota, not 7."""
    one_host_pool(runtime, "pool")
    ok("project", "create", "web")
    for name, role in (("erin", "member"), ("rita", "reader")):
        ok("user", "create", name, "--password-stdin", stdin=f"pw-{name}-12\n")
        assert tessera("role", "assign", name, "-p", "web", "--role", role).exit_code == 0
    assert tessera("grant", "add", "-p", "web", "--provider", "pool").exit_code == 0
    assert ok("quota", "set", "-p", "web", "--vms", "0")["vms"] == 0

    create = ("vm", "create", "web-1", "--cpus", "1", "--memory-mib", "64", "--no-wait")
    for name, code, said in (("erin", 11, "quota exceeded for vms"), ("rita", 7, "403")):
        login = {"user": name, "password": f"pw-{name}-12"}
        token = httpx.post(f"{cli_env['TESSERA_API_URL']}/v1/auth/login", json=login)
        monkeypatch.setenv("TESSERA_API_TOKEN", token.json()["token"])
        refused = tessera(*create)
        assert refused.exit_code == code, refused.output
        assert said in refused.output
