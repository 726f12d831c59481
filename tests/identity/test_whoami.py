"""What the portal learns of its user: the operations their token may call (from the policy
table, in their project's role) and the language they chose, which they set themselves."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tessera.identity.policy import RULES
from tests.identity.tenants import as_client, ok


def _user_in_project(api: TestClient, project: str, name: str, role: str) -> TestClient:
    password = f"pw-{name}-long"
    user = ok(api.post("/v1/users", json={"name": name, "password": password}), 201)
    ok(api.put(f"/v1/projects/{project}/members/{user['id']}", json={"role": role}), 204)
    login = ok(api.post("/v1/auth/login", json={"user": name, "password": password}))
    return as_client(api, login["token"])


def test_whoami_lists_what_the_role_may_call(api: TestClient) -> None:
    project = ok(api.post("/v1/projects", json={"name": "web"}), 201)["id"]
    reader = ok(_user_in_project(api, project, "rita", "reader").get("/v1/auth/whoami"))
    member = ok(_user_in_project(api, project, "max", "member").get("/v1/auth/whoami"))
    admin = ok(api.get("/v1/auth/whoami"))
    spec = api.app.openapi()  # type: ignore[attr-defined]
    operations = {op["operationId"] for path in spec["paths"].values() for op in path.values()}

    for who in (reader, member, admin):
        assert who["permissions"] == sorted(who["permissions"])
        assert set(who["permissions"]) <= operations
    assert admin["permissions"] == sorted(RULES)
    assert (reader["role"], reader["project_id"]) == ("reader", project)
    can_read = {"list_vms", "show_overview", "stream_tasks", "list_hosts", "update_preferences"}
    assert can_read <= set(reader["permissions"])
    assert not {"create_vm", "power_vm", "list_users", "add_provider"} & set(reader["permissions"])
    assert set(member["permissions"]) - set(reader["permissions"]) >= {"create_vm", "power_vm"}
    assert not {"list_users", "add_provider", "list_audit"} & set(member["permissions"])


def test_users_choose_their_own_portal_language(api: TestClient) -> None:
    project = ok(api.post("/v1/projects", json={"name": "web"}), 201)["id"]
    alice = _user_in_project(api, project, "alice", "reader")
    me = ok(alice.get("/v1/auth/whoami"))
    assert me["locale"] is None  # not chosen yet: the portal follows the browser

    assert ok(alice.put("/v1/auth/preferences", json={"locale": "zh-CN"})) == {"locale": "zh-CN"}
    assert ok(alice.get("/v1/auth/whoami"))["locale"] == "zh-CN"
    assert ok(api.get(f"/v1/users/{me['user_id']}"))["locale"] == "zh-CN"
    assert ok(api.get("/v1/auth/whoami"))["locale"] is None  # the admin's own is untouched

    ok(api.put("/v1/auth/preferences", json={"locale": "en"}))
    assert ok(api.get("/v1/auth/whoami"))["locale"] == "en"
    assert ok(alice.get("/v1/auth/whoami"))["locale"] == "zh-CN"

    for body in ({"locale": "fr"}, {"locale": "zh-cn"}, {}, {"locale": "en", "user_id": "x"}):
        answer = alice.put("/v1/auth/preferences", json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["code"] == "invalid_input"
    assert ok(alice.get("/v1/auth/whoami"))["locale"] == "zh-CN"
    assert TestClient(api.app).put("/v1/auth/preferences", json={"locale": "en"}).status_code == 401
