"""LDAP as an identity backend, against a real slapd: directory users log in with the
directory's password (found by DN template or by search), wrong ones count toward the
lockout, and local users are untouched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tessera.config import Settings
from tessera.db.rows import UserRow
from tessera.runtime import Runtime
from tests.fixtures.ldap import Directory


@pytest.fixture(params=["template", "search"])
def settings(request: pytest.FixtureRequest, tmp_path: Path, slapd: Directory) -> Settings:
    """The directory found by a DN template, or by a search as a service account."""
    found_by: dict[str, Any] = (
        {"ldap_user_dn_template": slapd.user_dn_template}
        if request.param == "template"
        else {
            "ldap_search_base": slapd.search_base,
            "ldap_bind_dn": slapd.bind_dn,
            "ldap_bind_password": slapd.bind_password,
            "ldap_user_filter": "(objectClass=inetOrgPerson)",
        }
    )
    return Settings(
        data_dir=tmp_path / "state",
        watch_enabled=False,
        login_max_failures=3,
        login_lockout_s=60,
        login_attempts_per_minute=100,
        ldap_url=slapd.url,
        **found_by,
    )


def _login(api: TestClient, user: str, password: str) -> Any:
    return TestClient(api.app).post("/v1/auth/login", json={"user": user, "password": password})


def _member_of_new_project(api: TestClient, user_id: str) -> str:
    pid = str(api.post("/v1/projects", json={"name": "web"}).json()["id"])
    assigned = api.put(f"/v1/projects/{pid}/members/{user_id}", json={"role": "member"})
    assert assigned.status_code == 204
    return pid


def test_a_directory_user_logs_in_with_the_directory_password(
    api: TestClient, slapd: Directory, runtime: Runtime
) -> None:
    made = api.post("/v1/users", json={"name": "lena", "source": "ldap"})
    assert made.status_code == 201, made.text
    assert made.json()["source"] == "ldap"
    pid = _member_of_new_project(api, made.json()["id"])

    logged = _login(api, "lena", slapd.password("lena"))
    assert logged.status_code == 200, logged.text
    assert logged.json()["principal"]["project_id"] == pid
    assert logged.json()["principal"]["role"] == "member"
    assert _login(api, "lena", "not-the-directory-pw").status_code == 401
    with runtime.sessions() as s:
        assert s.query(UserRow).filter_by(name="lena").one().password_hash is None

    # The directory holds the password: none is set here, at creation or later.
    given = api.post("/v1/users", json={"name": "lena2", "source": "ldap", "password": "x" * 12})
    assert given.status_code == 422
    changed = api.patch(f"/v1/users/{made.json()['id']}", json={"password": "y" * 12})
    assert changed.status_code == 422 and "directory" in changed.json()["message"]


def test_the_first_login_makes_the_local_user_without_roles(
    api: TestClient, slapd: Directory
) -> None:
    first = _login(api, "omar", slapd.password("omar"))
    assert first.status_code == 403 and "no role" in first.json()["message"]
    omar = next(u for u in api.get("/v1/users").json() if u["name"] == "omar")
    assert omar["source"] == "ldap"
    assert (omar["display_name"], omar["email"]) == ("Omar Haddad", "omar@example.org")

    _member_of_new_project(api, omar["id"])
    assert _login(api, "omar", slapd.password("omar")).status_code == 200
    # The directory matches names regardless of case: one person, one local user.
    assert _login(api, "OMAR", slapd.password("omar")).status_code == 200
    assert [u["name"] for u in api.get("/v1/users").json()].count("omar") == 1
    assert not any(u["name"] == "OMAR" for u in api.get("/v1/users").json())
    # Names are escaped into the DN and the search filter: a wildcard finds no one.
    assert _login(api, "*", slapd.password("omar")).status_code == 401
    assert _login(api, "omar,ou=people", slapd.password("omar")).status_code == 401
    # Unknown to the directory and here: the same answer as a wrong password.
    nobody = _login(api, "nobody", "whatever-pw")
    assert nobody.status_code == 401
    assert nobody.json()["message"] == _login(api, "omar", "wrong-pw").json()["message"]


def test_wrong_directory_passwords_count_toward_the_lockout(
    api: TestClient, slapd: Directory
) -> None:
    uid = api.post("/v1/users", json={"name": "lena", "source": "ldap"}).json()["id"]
    _member_of_new_project(api, uid)
    for _ in range(2):
        assert _login(api, "lena", "wrong-pw").status_code == 401
    assert _login(api, "LENA", "wrong-pw").status_code == 401  # same account
    locked = _login(api, "lena", slapd.password("lena"))
    assert locked.status_code == 429, locked.text
    assert _login(api, "Lena", slapd.password("lena")).status_code == 429
    assert api.get(f"/v1/users/{uid}").json()["locked"] is True


def test_local_users_are_unaffected(api: TestClient, slapd: Directory, runtime: Runtime) -> None:
    """A local user's password is checked here, even when the directory knows the name."""
    made = api.post("/v1/users", json={"name": "nina", "password": "nina-local-pw"})
    _member_of_new_project(api, made.json()["id"])
    assert _login(api, "nina", "nina-local-pw").status_code == 200
    assert _login(api, "nina", slapd.password("nina")).status_code == 401
    admin_password = runtime.settings.admin_password_file.read_text().strip()
    assert _login(api, "admin", admin_password).status_code == 200


def test_an_unreachable_directory_is_503_and_counts_nothing(
    api: TestClient, slapd: Directory, runtime: Runtime
) -> None:
    uid = api.post("/v1/users", json={"name": "lena", "source": "ldap"}).json()["id"]
    api.post("/v1/users", json={"name": "dave", "password": "dave-local-pw"})
    _member_of_new_project(api, uid)
    runtime.settings = runtime.settings.model_copy(
        update={"ldap_url": "ldap://127.0.0.1:1", "ldap_timeout_s": 2}
    )
    for _ in range(4):
        down = _login(api, "lena", slapd.password("lena"))
        assert down.status_code == 503, down.text
        assert down.json()["code"] == "unavailable" and "Retry-After" in down.headers
    assert api.get(f"/v1/users/{uid}").json()["locked"] is False
    refused = _login(api, "dave", "dave-local-pw")
    assert refused.status_code == 403  # the local password was right; dave has no role
