"""What one tenant's names and locks say about another's: placement group names are
unique within a project (and among the platform's own groups), so no name is ever taken
by another project; a 409 about a resource held by another project's task names no task."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from tessera.config import Settings
from tessera.db.rows import DomainRow, PlacementGroupRow, ProjectRow, VMLockRow
from tessera.runtime import Runtime
from tests.identity.tenants import one_host_pool


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "state",
        database_url=database_url,
        watch_enabled=False,
        run_tasks=False,
        login_attempts_per_minute=100,
    )


def _member_of(api: TestClient, project: str, user: str) -> tuple[str, TestClient]:
    """A new project with `user` as its member, and that user's client."""
    pid = api.post("/v1/projects", json={"name": project}).json()["id"]
    made = api.post("/v1/users", json={"name": user, "password": f"pw-{user}-123"})
    assert made.status_code == 201, made.text
    role = {"role": "member"}
    assert api.put(f"/v1/projects/{pid}/members/{made.json()['id']}", json=role).status_code == 204
    login = {"user": user, "password": f"pw-{user}-123"}
    client = TestClient(api.app)
    token = client.post("/v1/auth/login", json=login).json()["token"]
    client.headers["Authorization"] = f"Bearer {token}"
    return str(pid), client


def _group(client: TestClient, name: str) -> Any:
    return client.post("/v1/placement-groups", json={"name": name, "policy": "affinity"})


def test_group_names_are_unique_per_project_and_resolved_in_the_callers(
    api: TestClient,
) -> None:
    _, alpha = _member_of(api, "alpha", "ann")
    _, beta = _member_of(api, "beta", "ben")
    mine = _group(alpha, "web")
    assert mine.status_code == 201, mine.text
    theirs = _group(beta, "web")  # the same name in another project is no conflict
    assert theirs.status_code == 201, theirs.text
    platform = _group(api, "web")  # nor among the platform's own groups
    assert platform.status_code == 201, platform.text
    again = _group(alpha, "web")
    assert again.status_code == 409 and "already exists" in again.json()["message"]
    assert _group(api, "web").status_code == 409

    # a name means the group of the caller's project; an admin's unscoped token, the
    # platform's; an id reaches any group the caller sees
    assert alpha.get("/v1/placement-groups/web").json()["id"] == mine.json()["id"]
    assert beta.get("/v1/placement-groups/web").json()["id"] == theirs.json()["id"]
    assert api.get("/v1/placement-groups/web").json()["id"] == platform.json()["id"]
    assert api.get(f"/v1/placement-groups/{mine.json()['id']}").status_code == 200
    assert alpha.delete("/v1/placement-groups/web").status_code == 204
    assert beta.get("/v1/placement-groups/web").json()["id"] == theirs.json()["id"]
    assert api.get("/v1/placement-groups/web").json()["id"] == platform.json()["id"]
    assert {g["id"] for g in api.get("/v1/placement-groups").json()} == {
        theirs.json()["id"],
        platform.json()["id"],
    }


def test_the_database_enforces_group_names_per_project_and_for_the_platform(
    runtime: Runtime,
) -> None:
    """NULLs are distinct in a unique constraint on SQLite and PostgreSQL alike, so the
    platform's groups (no project) need an index of their own: two of one name fail."""
    with runtime.sessions.begin() as session:
        domain = DomainRow(name="d")
        session.add(domain)
        session.flush()
        projects = [ProjectRow(domain_id=domain.id, name=name) for name in ("p1", "p2")]
        session.add_all(projects)
        session.flush()
        ids = [p.id for p in projects]
        rows = [{"name": "db", "policy": "affinity", "project_id": pid} for pid in ids]
        session.execute(insert(PlacementGroupRow), [*rows, {**rows[0], "project_id": None}])
    for project_id in (ids[0], None):
        row = {"name": "db", "policy": "affinity", "project_id": project_id}
        with pytest.raises(IntegrityError), runtime.sessions.begin() as session:
            session.execute(insert(PlacementGroupRow), [row])


def test_a_lock_held_by_another_projects_task_is_not_named(
    api: TestClient, runtime: Runtime
) -> None:
    """Two projects create a VM of one name on one host: the second is refused (409),
    and is not told which task, of which project, holds the name."""
    pid, host = one_host_pool(runtime, "shared")
    alpha_id, alpha = _member_of(api, "alpha", "ann")
    beta_id, beta = _member_of(api, "beta", "ben")
    for project in (alpha_id, beta_id):
        assert api.put(f"/v1/projects/{project}/grants/provider/{pid}").status_code == 204
    body = {"provider_id": pid, "host_id": host, "name": "web-1", "cpus": 1, "memory_mib": 64}
    first = alpha.post("/v1/vms", json=body)
    assert first.status_code == 202, first.text
    holder = first.json()["id"]

    refused = beta.post("/v1/vms", json=body)
    assert refused.status_code == 409, refused.text
    answer = refused.json()
    assert holder not in refused.text and "vm.create" not in answer["message"]
    assert "holder_task_id" not in answer
    assert "another operation" in answer["message"]

    # the task's own project, and the platform's admin, are told which task it is
    own = alpha.post("/v1/vms", json=body)
    assert own.status_code == 409 and own.json()["holder_task_id"] == holder
    admin = api.post("/v1/vms", json={**body, "project_id": beta_id})
    assert admin.status_code == 409 and admin.json()["holder_task_id"] == holder
    with runtime.sessions() as session:
        assert session.get(VMLockRow, f"new:{pid}:web-1") is not None
