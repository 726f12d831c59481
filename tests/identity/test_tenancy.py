"""Tenancy as a project's users meet it: their VMs, tasks, events and groups and nobody
else's; the pools, networks and placements their grants give them; what they make is
theirs. The isolation matrix (test_isolation_matrix.py) covers every route; these follow
the stories through."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tessera.config import Settings
from tessera.db.rows import DomainRow, EventRow, ProjectRow, VMRow
from tessera.domain.inventory import (
    InventorySnapshot,
    ObjectKind,
    ObjectRemoved,
    ObjectUpdated,
    ObjectUpserted,
    PowerState,
    VMInfo,
)
from tessera.inventory import pools
from tessera.inventory.reconcile import apply_changes, reconcile
from tessera.runtime import Runtime
from tests.identity.tenants import World, build, ok
from tests.tasks.helpers import wait_task


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "state",
        database_url=database_url,
        watch_enabled=False,
        task_retry_attempts=1,
        login_attempts_per_minute=1000,
    )


@pytest.fixture
def world(api: TestClient, runtime: Runtime) -> World:
    return build(api, runtime)


def _ids(response: Any) -> set[str]:
    payload = ok(response)
    items = payload["items"] if isinstance(payload, dict) else payload
    return {item["id"] for item in items}


def _missing_alike(
    client: TestClient, method: str, path: str, foreign: str, body: Any = None
) -> None:
    """The answer about a foreign object (in the path or the body) is the answer about
    one that does not exist."""
    absent = str(uuid.uuid4())
    seen = client.request(method, path, json=body)
    none = client.request(
        method,
        path.replace(foreign, absent),
        json=json.loads(json.dumps(body).replace(foreign, absent)),
    )
    assert seen.status_code == none.status_code == 404, seen.text
    assert seen.json()["message"].replace(foreign, absent) == none.json()["message"]


def test_a_foreign_vm_is_not_found_and_never_listed_or_selected(world: World) -> None:
    alpha, beta = world.tenants["alpha"], world.tenants["beta"]
    member = beta.clients["member"]
    assert _ids(member.get("/v1/vms")) == set(beta.vms)
    assert _ids(world.api.get("/v1/vms")) == set(alpha.vms + beta.vms + world.unadopted)
    theirs = alpha.vms[1]  # the one alpha's power task ran on
    _missing_alike(member, "GET", f"/v1/vms/{theirs}", theirs)
    _missing_alike(member, "POST", f"/v1/vms/{theirs}/power", theirs, {"action": "stop"})
    _missing_alike(member, "GET", f"/v1/vms/{theirs}/events", theirs)
    _missing_alike(member, "PATCH", f"/v1/vms/{theirs}/tags", theirs, {"add": ["x"]})
    assert ok(member.get("/v1/events", params={"vm_id": theirs}))["items"] == []
    mine = ok(alpha.clients["reader"].get(f"/v1/vms/{theirs}/events"))["items"]
    assert {e["kind"] for e in mine} >= {"task.queued", "task.failed"}

    # "-" is in every VM's name: the selection still only ever holds beta's
    preview = ok(member.post("/v1/vms/bulk/preview", json={"select": {"name": "-"}}))
    assert preview["count"] == 3 and {vm["id"] for vm in preview["vms"]} == set(beta.vms)
    refused = member.post("/v1/vms/bulk/preview", json={"select": {"vm_ids": [theirs]}})
    assert refused.status_code == 404 and theirs in refused.json()["message"]
    tag = {"select": {"name": "-"}, "action": {"kind": "tag", "add": ["beta-only"]}}
    task = ok(member.post("/v1/vms/bulk", json=tag), 202)
    items = ok(member.get(f"/v1/tasks/{task['id']}/items"))["items"]
    assert {item["vm_id"] for item in items} == set(beta.vms)
    assert wait_task(member, task["id"])["state"] == "succeeded"
    tagged = ok(world.api.get("/v1/vms", params={"tag": "beta-only", "limit": 100}))["items"]
    assert {vm["id"] for vm in tagged} == set(beta.vms)
    # a power over every VM of the project: its children are the project's tasks too
    power = {"select": {"name": "-"}, "action": {"kind": "power", "action": "stop"}}
    parent = ok(member.post("/v1/vms/bulk", json=power), 202)
    assert wait_task(member, parent["id"])["state"] == "failed"  # the pool never answers
    children = ok(member.get("/v1/tasks", params={"parent_id": parent["id"]}))["items"]
    assert len(children) == 3 and {c["project_id"] for c in children} == {beta.project}
    assert ok(alpha.clients["reader"].get("/v1/tasks", params={"parent_id": parent["id"]})) == {
        "items": [],
        "next_cursor": None,
    }


def test_pools_networks_and_placements_come_from_grants(world: World) -> None:
    alpha, beta = world.tenants["alpha"], world.tenants["beta"]
    reader = alpha.clients["reader"]
    seen = ok(reader.get("/v1/providers"))
    assert [p["id"] for p in seen] == [alpha.pool.id]
    assert (seen[0]["url"], seen[0]["username"], seen[0]["status_message"]) == (None, None, None)
    assert [p["id"] for p in ok(beta.clients["reader"].get("/v1/providers"))] == [beta.pool.id]
    admin_view = {p["id"]: p for p in ok(world.api.get("/v1/providers"))}
    assert set(admin_view) == {alpha.pool.id, beta.pool.id}
    assert admin_view[alpha.pool.id]["url"].startswith("qemu+tcp://")
    _missing_alike(reader, "GET", f"/v1/providers/{beta.pool.id}", beta.pool.id)

    # alpha has a network grant in its pool: that network only; beta (a zone grant) both
    assert _ids(reader.get("/v1/networks")) == {alpha.pool.networks[0]}
    assert _ids(beta.clients["reader"].get("/v1/networks")) == set(beta.pool.networks)
    assert _ids(reader.get("/v1/hosts")) == {alpha.pool.host}
    assert _ids(reader.get("/v1/datastores")) == {alpha.pool.datastore}

    member = alpha.clients["member"]
    body = {"name": "web-1", "cpus": 1, "memory_mib": 64}
    planned = ok(member.post("/v1/vms/dry-run", json=body))
    assert planned["chosen"]["provider_id"] == alpha.pool.id
    considered = planned["ranked"] + planned["rejected"]
    assert {c["provider_id"] for c in considered} == {alpha.pool.id}
    on_beta = {**body, "provider_id": beta.pool.id}
    _missing_alike(member, "POST", "/v1/vms", beta.pool.id, on_beta)
    _missing_alike(member, "POST", "/v1/vms/dry-run", beta.pool.id, on_beta)
    on_their_host = {**body, "host_id": beta.pool.host}
    _missing_alike(member, "POST", "/v1/vms", beta.pool.host, on_their_host)
    ungranted = alpha.pool.networks[1]
    with_nic = {**body, "host_id": alpha.pool.host, "nics": [{"network_id": ungranted}]}
    _missing_alike(member, "POST", "/v1/vms", ungranted, with_nic)
    nic = {"network_id": ungranted}
    _missing_alike(member, "POST", f"/v1/vms/{alpha.vms[0]}/nics", ungranted, nic)
    scheduled = {**body, "nics": [{"network_id": ungranted}]}
    nowhere = member.post("/v1/vms/dry-run", json=scheduled)
    assert nowhere.status_code == 422 and "no network" in nowhere.json()["message"]
    for asked in ({"provider": beta.pool.id}, {"networks": [beta.pool.networks[0]]}):
        spec = {"vcpus": 1, "memory_mib": 64, **asked}
        refused = member.post("/v1/placement/dry-run", json=spec)
        assert refused.status_code == 422, refused.text
    # the placement of a real create: within the grants too
    task = ok(member.post("/v1/vms", json=body), 202)
    assert task["result"]["placement"]["provider_id"] == alpha.pool.id
    assert task["project_id"] == alpha.project


def test_what_a_project_makes_is_its_own(world: World) -> None:
    alpha, beta = world.tenants["alpha"], world.tenants["beta"]
    member = alpha.clients["member"]
    body = {"host_id": alpha.pool.host, "cpus": 1, "memory_mib": 64}
    made = ok(member.post("/v1/vms", json={**body, "name": "mine-1"}), 202)
    assert made["project_id"] == alpha.project
    assert made["id"] in _ids(member.get("/v1/tasks"))
    assert made["id"] not in _ids(beta.clients["member"].get("/v1/tasks"))
    events = ok(member.get("/v1/events", params={"task_id": made["id"]}))["items"]
    assert events and events[-1]["kind"] == "task.queued"
    assert ok(beta.clients["reader"].get("/v1/events", params={"task_id": made["id"]})) == {
        "items": [],
        "next_cursor": None,
    }
    theirs = {**body, "name": "mine-2", "project_id": beta.project}
    assert member.post("/v1/vms", json=theirs).status_code == 403
    own = ok(
        member.post("/v1/vms", json={**body, "name": "mine-3", "project_id": alpha.project}), 202
    )
    assert own["project_id"] == alpha.project
    for_alpha = ok(world.api.post("/v1/vms", json={**theirs, "project_id": alpha.project}), 202)
    assert for_alpha["project_id"] == alpha.project
    platform = ok(world.api.post("/v1/vms", json={**body, "name": "plat-1"}), 202)
    assert platform["project_id"] is None
    nobody = world.api.post("/v1/vms", json={**body, "name": "x", "project_id": str(uuid.uuid4())})
    assert nobody.status_code == 404

    # groups: only one's own, with one's own VMs
    group = alpha.group
    assert _ids(beta.clients["reader"].get("/v1/placement-groups")) == {beta.group}
    by_name = beta.clients["reader"].get("/v1/placement-groups/alpha-group")
    assert by_name.status_code == 404
    joined = beta.clients["member"].put(f"/v1/placement-groups/{beta.group}/members/{alpha.vms[0]}")
    assert joined.status_code == 404
    mixed = member.put(f"/v1/placement-groups/{group}/members/{beta.vms[0]}")
    assert mixed.status_code == 404
    assert ok(member.get(f"/v1/placement-groups/{group}"))["members"] == [alpha.vms[0]]

    # a VM no project owns: the admins' until one adopts it into a project
    stray = world.unadopted[0]
    assert member.get(f"/v1/vms/{stray}").status_code == 404
    ok(world.api.put(f"/v1/vms/{stray}/project", json={"project_id": alpha.project}))
    assert ok(member.get(f"/v1/vms/{stray}"))["project_id"] == alpha.project
    moved = ok(member.get(f"/v1/vms/{stray}/events"))["items"]
    assert moved[0]["kind"] == "vm.changed" and moved[0]["after"] == {"project_id": alpha.project}
    ok(world.api.put(f"/v1/vms/{stray}/project", json={"project_id": None}))
    assert member.get(f"/v1/vms/{stray}").status_code == 404
    assert (
        member.put(f"/v1/vms/{stray}/project", json={"project_id": alpha.project}).status_code
        == 403
    )


def test_vm_events_belong_to_the_vms_project(runtime: Runtime) -> None:
    """A VM a task adds belongs to the task's project, and so do its events; changes the
    feeds see keep to the VM's project; a pool's own objects are the platform's."""
    spec = pools.ProviderSpec("p", "libvirt", "qemu+tcp://127.0.0.1:1/system")
    pid = pools.add_provider(runtime, spec, test_connection=False).id
    with runtime.sessions.begin() as session:
        reconcile(session, pid, InventorySnapshot())
    with runtime.sessions.begin() as session:
        domain = DomainRow(name="d")
        session.add(domain)
        session.flush()
        row = ProjectRow(domain_id=domain.id, name="web")
        session.add(row)
        session.flush()
        project = row.id
    vm = VMInfo(native_id="v1", name="v1", power_state=PowerState.RUNNING)
    with runtime.sessions.begin() as session:
        apply_changes(session, pid, [ObjectUpserted(ObjectKind.VM, vm)], project_id=project)
    with runtime.sessions.begin() as session:
        changed = ObjectUpdated(ObjectKind.VM, "v1", {"power_state": PowerState.STOPPED})
        apply_changes(session, pid, [changed])
        apply_changes(session, pid, [ObjectRemoved(ObjectKind.VM, "v1")])
    with runtime.sessions() as session:
        assert session.scalar(select(VMRow.id).where(VMRow.native_id == "v1")) is None
        events = [
            (e.kind, e.project_id)
            for e in session.scalars(select(EventRow).where(EventRow.kind.like("vm.%")))
        ]
    assert events == [("vm.added", project), ("vm.changed", project), ("vm.removed", project)]
