"""What a project's member makes on a real pool (the lab's KVM host) is the project's: the
VM a create makes, the copy a clone makes, their events; a full sync keeps it so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tessera.config import Settings
from tests.identity.tenants import as_client, ok
from tests.tasks.helpers import register, submitted, wait_task


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "state", watch_enabled=False, task_retry_interval_s=0.2)


def _member_of(api: TestClient, project: str, name: str) -> TestClient:
    password = f"pw-{name}-123"
    user = ok(api.post("/v1/users", json={"name": name, "password": password}), 201)
    ok(api.put(f"/v1/projects/{project}/members/{user['id']}", json={"role": "member"}), 204)
    login = ok(api.post("/v1/auth/login", json={"user": name, "password": password}))
    return as_client(api, login["token"])


def _done(client: TestClient, response: Any) -> dict[str, Any]:
    task = wait_task(client, submitted(response))
    assert task["state"] == "succeeded", task
    return task


def test_what_a_member_makes_on_a_pool_belongs_to_their_project(
    api: TestClient, kvm_host_fresh: Any
) -> None:
    pool = register(api, "libvirt", kvm_host_fresh, "lab-kvm")
    web = ok(api.post("/v1/projects", json={"name": "web"}), 201)["id"]
    db = ok(api.post("/v1/projects", json={"name": "db"}), 201)["id"]
    for project in (web, db):
        ok(api.put(f"/v1/projects/{project}/grants/provider/{pool}"), 204)
    alice, bob = _member_of(api, web, "alice"), _member_of(api, db, "bob")
    assert ok(alice.get("/v1/vms"))["items"] == []  # the pool's own VMs are nobody's yet

    host = ok(alice.get("/v1/hosts"))["items"][0]["id"]
    body = {"provider_id": pool, "host_id": host, "name": "web-1", "cpus": 1, "memory_mib": 64}
    made = _done(alice, alice.post("/v1/vms", json=body))
    assert made["project_id"] == web
    vm_id = made["result"]["vm_id"]
    cloned = _done(alice, alice.post(f"/v1/vms/{vm_id}/clone", json={"name": "web-2"}))
    copy_id = cloned["result"]["clone_vm_id"]
    _done(api, api.post(f"/v1/providers/{pool}/sync"))  # a full read keeps the owners

    mine = {vm["id"]: vm["project_id"] for vm in ok(alice.get("/v1/vms"))["items"]}
    assert mine == {vm_id: web, copy_id: web}
    assert ok(bob.get("/v1/vms"))["items"] == []
    assert bob.get(f"/v1/vms/{vm_id}").status_code == 404
    history = ok(alice.get(f"/v1/vms/{copy_id}/events"))["items"]
    assert "vm.added" in {e["kind"] for e in history}

    _done(alice, alice.delete(f"/v1/vms/{copy_id}"))
    gone = ok(alice.get("/v1/events", params={"kind": "vm.removed"}))["items"]
    assert [e["object_id"] for e in gone] == [copy_id]
    assert ok(bob.get("/v1/events", params={"kind": "vm."}))["items"] == []
