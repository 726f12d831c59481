"""Adopting unmanaged VMs in bulk, and releasing them, over an inventory read in from a
made-up snapshot of a pool nobody answers at: adoption never calls a pool, so its tasks
succeed all the same (tests/inventory/test_adoption_lab.py does it against the lab)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tessera.config import Settings
from tessera.db.rows import (
    DomainRow,
    EventRow,
    ProjectRow,
    QuotaRow,
    TaskItemRow,
    VMLockRow,
    VMRow,
)
from tessera.domain.inventory import (
    ClusterInfo,
    DiskInfo,
    HostInfo,
    InventorySnapshot,
    PowerState,
    VMInfo,
)
from tessera.domain.tasks import TaskKind
from tessera.inventory import adoption, pools
from tessera.inventory.adoption import AdoptionFilter, AdoptionRequest
from tessera.inventory.reconcile import reconcile
from tessera.runtime import Runtime
from tests.identity.tenants import as_client, ok
from tests.tasks.helpers import submitted, wait_task

GIB = 1 << 30
# name: (folder, host, power state, guest OS, vCPUs)
VMS: dict[str, tuple[str, str, PowerState, str, int]] = {
    "web-1": ("/DC0/vm/web", "h1", PowerState.RUNNING, "Ubuntu Linux (64-bit)", 2),
    "web-2": ("/DC0/vm/web", "h1", PowerState.STOPPED, "Ubuntu Linux (64-bit)", 2),
    "web-3": ("/DC0/vm/web/front", "h2", PowerState.RUNNING, "Ubuntu Linux (64-bit)", 1),
    "site-1": ("/DC0/vm/website", "h2", PowerState.RUNNING, "Microsoft Windows Server 2019", 4),
    "db-1": ("/DC0/vm", "h3", PowerState.STOPPED, "Red Hat Enterprise Linux 9", 8),
}


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "state", database_url=database_url, watch_enabled=False)


def _seed(rt: Runtime) -> str:
    spec = pools.ProviderSpec("vc", "libvirt", "qemu+tcp://127.0.0.1:1/system")
    pid = pools.add_provider(rt, spec, test_connection=False).id
    snapshot = InventorySnapshot(
        clusters=[ClusterInfo("c1", "cluster-1", "DC0")],
        hosts=[
            HostInfo("h1", "esx-1", "c1"),
            HostInfo("h2", "esx-2", "c1"),
            HostInfo("h3", "esx-3"),
        ],
        vms=[
            VMInfo(
                native_id=name,
                name=name,
                power_state=power,
                cpu_count=cpus,
                memory_mib=1024,
                guest_os=guest,
                host_native_id=host,
                disks=(DiskInfo("2000", 10 * GIB),),
                folder=folder,
            )
            for name, (folder, host, power, guest, cpus) in VMS.items()
        ],
    )
    with rt.sessions.begin() as session:
        reconcile(session, pid, snapshot)
    return pid


@pytest.fixture
def world(api: TestClient, runtime: Runtime) -> dict[str, Any]:
    pid = _seed(runtime)
    project = ok(api.post("/v1/projects", json={"name": "web"}), 201)["id"]
    ids = {vm["name"]: vm["id"] for vm in ok(api.get("/v1/vms"))["items"]}
    return {"provider": pid, "project": project, "ids": ids}


def _user(api: TestClient, project: str, name: str, role: str = "member") -> TestClient:
    password = f"pw-{name}-1234"
    user = ok(api.post("/v1/users", json={"name": name, "password": password}), 201)
    ok(api.put(f"/v1/projects/{project}/members/{user['id']}", json={"role": role}), 204)
    return as_client(
        api, ok(api.post("/v1/auth/login", json={"user": name, "password": password}))["token"]
    )


def _unmanaged(api: TestClient, **params: Any) -> list[str]:
    return sorted(vm["name"] for vm in ok(api.get("/v1/vms/unmanaged", params=params))["items"])


def test_unmanaged_vms_are_listed_by_pool_cluster_folder_and_more(
    api: TestClient, world: dict[str, Any]
) -> None:
    assert _unmanaged(api) == sorted(VMS)
    cluster = ok(api.get("/v1/clusters"))["items"][0]["id"]
    assert _unmanaged(api, cluster_id=cluster) == ["site-1", "web-1", "web-2", "web-3"]
    # a folder takes its subfolders, never a sibling whose name starts the same
    assert _unmanaged(api, folder="/DC0/vm/web") == ["web-1", "web-2", "web-3"]
    assert _unmanaged(api, folder="/DC0/vm/web/") == ["web-1", "web-2", "web-3"]
    assert _unmanaged(api, folder="/DC0/vm/web/front") == ["web-3"]
    assert _unmanaged(api, folder="/DC0/vm/WEB") == []
    assert _unmanaged(api, folder="/DC0/vm") == sorted(VMS)
    assert _unmanaged(api, guest_os="ubuntu", power_state="running") == ["web-1", "web-3"]
    assert _unmanaged(api, name="site", provider_id=world["provider"]) == ["site-1"]
    first = ok(api.get("/v1/vms/unmanaged", params={"sort": "-cpu_count", "limit": 2}))
    assert [vm["name"] for vm in first["items"]] == ["db-1", "site-1"]
    assert first["items"][0]["folder"] == "/DC0/vm" and first["items"][0]["cluster_id"] is None
    assert first["items"][1]["cluster_id"] == cluster
    rest = ok(
        api.get("/v1/vms/unmanaged", params={"sort": "-cpu_count", "cursor": first["next_cursor"]})
    )
    assert len(rest["items"]) == 3 and rest["next_cursor"] is None
    for bad in ({"folder": "no-slash"}, {"sort": "tags"}, {"cursor": "x"}, {"limit": 0}):
        answer = api.get("/v1/vms/unmanaged", params=bad)
        assert answer.status_code == 422, (bad, answer.text)


def test_adopt_a_folder_then_release_it(
    api: TestClient, runtime: Runtime, world: dict[str, Any]
) -> None:
    project, ids = world["project"], world["ids"]
    select_web = {"folder": "/DC0/vm/web"}
    preview = ok(api.post("/v1/vms/adopt/preview", json={"select": select_web}))
    assert preview["count"] == 3 and [v["name"] for v in preview["vms"]] == [
        "web-1",
        "web-2",
        "web-3",
    ]
    body = {"select": select_web, "project_id": project, "expected_count": 3}
    task = wait_task(api, submitted(api.post("/v1/vms/adopt", json=body)))
    assert task["state"] == "succeeded", task
    assert task["kind"] == "vm.adopt" and task["progress"] == 100
    assert task["result"] == {"total": 3, "succeeded": 3, "failed": 0, "cancelled": 0}
    assert [s["name"] for s in task["steps"]] == ["adopt"]
    items = ok(api.get(f"/v1/tasks/{task['id']}/items"))
    assert [(i["vm_name"], i["state"]) for i in items["items"]] == [
        ("web-1", "succeeded"),
        ("web-2", "succeeded"),
        ("web-3", "succeeded"),
    ]
    assert _unmanaged(api) == ["db-1", "site-1"]
    assert ok(api.get(f"/v1/vms/{ids['web-3']}"))["project_id"] == project

    # the project's users see their VMs and the adoption in each one's history
    member = _user(api, project, "alice")
    assert sorted(vm["name"] for vm in ok(member.get("/v1/vms"))["items"]) == [
        "web-1",
        "web-2",
        "web-3",
    ]
    (adopted,) = ok(member.get(f"/v1/vms/{ids['web-1']}/events", params={"kind": "vm.adopted"}))[
        "items"
    ]
    assert adopted["actor"] == "admin" and adopted["task_id"] == task["id"]
    assert (adopted["before"], adopted["after"]) == ({"project_id": None}, {"project_id": project})

    again = api.post(
        "/v1/vms/adopt", json={"select": {"vm_ids": [ids["web-1"]]}, "project_id": project}
    )
    assert again.status_code == 409 and "already in a project" in again.text

    release = {"select": {"project_id": project, "name": "web-"}, "expected_count": 3}
    assert ok(api.post("/v1/vms/release/preview", json={"select": release["select"]}))["count"] == 3
    released = wait_task(api, submitted(api.post("/v1/vms/release", json=release)))
    assert released["state"] == "succeeded", released
    assert _unmanaged(api) == sorted(VMS)
    assert ok(member.get("/v1/vms"))["items"] == []
    with runtime.sessions() as session:
        events = session.execute(
            select(EventRow.object_name, EventRow.project_id, EventRow.before, EventRow.after)
            .where(EventRow.kind == "vm.released")
            .order_by(EventRow.object_name)
        ).all()
    assert [tuple(e) for e in events] == [
        (name, project, {"project_id": project}, {"project_id": None})
        for name in ("web-1", "web-2", "web-3")
    ]


def test_adoption_counts_against_the_projects_quotas(
    api: TestClient, runtime: Runtime, world: dict[str, Any]
) -> None:
    project, ids = world["project"], world["ids"]
    ok(api.put(f"/v1/projects/{project}/quota", json={"vms": 4, "vcpus": 8, "disk_gib": 40}))
    adopt = {"select": {"folder": "/DC0/vm/web"}, "project_id": project}
    assert wait_task(api, submitted(api.post("/v1/vms/adopt", json=adopt)))["state"] == "succeeded"
    usage = {q["quota"]: q for q in ok(api.get(f"/v1/projects/{project}/usage"))["quotas"]}
    assert (usage["vms"]["in_use"], usage["vcpus"]["in_use"], usage["disk_gib"]["in_use"]) == (
        3,
        5,
        30,
    )

    # site-1 has 4 vCPUs: 5 + 4 > 8, refused before any task exists
    refused = api.post("/v1/vms/adopt", json={"select": {"name": "site"}, "project_id": project})
    assert refused.status_code == 403, refused.text
    error = refused.json()
    assert (error["code"], error["quota"], error["limit"]) == ("quota_exceeded", "vcpus", 8)
    assert (error["in_use"], error["requested"]) == (5, 4)
    assert ok(api.get("/v1/tasks", params={"kind": "vm.adopt"}))["items"][1:] == []
    assert ok(api.get(f"/v1/vms/{ids['site-1']}"))["project_id"] is None


def test_the_step_checks_quotas_again_and_a_rerun_does_nothing_twice(runtime: Runtime) -> None:
    """No task engine here: the step runs by hand, after the quota shrank under it."""
    _seed(runtime)
    with runtime.sessions.begin() as session:
        domain = DomainRow(name="default")
        session.add(domain)
        session.flush()
        project = ProjectRow(domain_id=domain.id, name="web")
        session.add(project)
        session.flush()
        project_id = project.id
    request = AdoptionRequest(
        kind=TaskKind.VM_ADOPT, flt=AdoptionFilter(folder="/DC0/vm/web"), project_id=project_id
    )
    task = adoption.submit(runtime, request)  # queuing fails (no engine): it stays queued
    with runtime.sessions.begin() as session:
        session.add(QuotaRow(project_id=project_id, vms=2))
    tally = adoption.run(runtime, task.id)
    assert (tally.succeeded, tally.failed) == (2, 1)
    with runtime.sessions() as session:
        failed = session.scalars(
            select(TaskItemRow).where(TaskItemRow.task_id == task.id, TaskItemRow.state == "failed")
        ).one()
        assert failed.vm_name == "web-3" and failed.error_code == "quota_exceeded"
        adopted = session.scalar(select(func.count()).where(VMRow.project_id == project_id))
        events = session.scalar(select(func.count()).where(EventRow.kind == "vm.adopted"))
    assert (adopted, events) == (2, 2)
    assert adoption.run(runtime, task.id) == tally  # nothing pending: nothing written
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).where(EventRow.kind == "vm.adopted")) == 2


def test_release_spares_a_vm_a_task_is_changing(
    api: TestClient, runtime: Runtime, world: dict[str, Any]
) -> None:
    project, ids = world["project"], world["ids"]
    adopt = {"select": {"name": "web-"}, "project_id": project}
    assert wait_task(api, submitted(api.post("/v1/vms/adopt", json=adopt)))["state"] == "succeeded"
    held = wait_task(
        api, submitted(api.post(f"/v1/vms/{ids['web-2']}/power", json={"action": "start"}))
    )
    with runtime.sessions.begin() as session:  # as if that task were still running
        session.add(VMLockRow(key=ids["web-2"], task_id=held["id"]))
    release = {"select": {"vm_ids": [ids["web-1"], ids["web-2"]]}}
    task = wait_task(api, submitted(api.post("/v1/vms/release", json=release)))
    assert task["state"] == "failed" and task["error"]["code"] == "items_failed"
    items = {i["vm_name"]: i for i in ok(api.get(f"/v1/tasks/{task['id']}/items"))["items"]}
    assert items["web-1"]["state"] == "succeeded"
    assert (
        items["web-2"]["error"]["code"] == "locked"
        and held["id"] in items["web-2"]["error"]["message"]
    )
    assert ok(api.get(f"/v1/vms/{ids['web-2']}"))["project_id"] == project


@pytest.mark.parametrize(
    ("path", "body", "status", "fragment"),
    [
        ("/v1/vms/adopt", {"select": {}, "project_id": "{project}"}, 422, "at least one filter"),
        (
            "/v1/vms/adopt",
            {"select": {"name": "nope"}, "project_id": "{project}"},
            422,
            "matches no VM",
        ),
        ("/v1/vms/adopt", {"select": {"name": "web"}, "project_id": "nope"}, 404, "project nope"),
        ("/v1/vms/adopt", {"select": {"vm_ids": ["nope"]}, "project_id": "{project}"}, 404, "nope"),
        (
            "/v1/vms/adopt",
            {"select": {"name": "web"}, "project_id": "{project}", "expected_count": 9},
            409,
            "not the 9 expected",
        ),
        ("/v1/vms/adopt", {"select": {"name": "web"}}, 422, "project_id"),
        ("/v1/vms/adopt", {"select": {"folder": "web"}, "project_id": "{project}"}, 422, "folder"),
        ("/v1/vms/adopt/preview", {"select": {"color": "red"}}, 422, "color"),
        ("/v1/vms/release", {"select": {"name": "web"}}, 422, "matches no VM"),
        ("/v1/vms/release", {"select": {"vm_ids": ["{web-1}"]}}, 409, "in no project"),
        ("/v1/vms/release/preview", {"select": {}}, 422, "at least one filter"),
    ],
)
def test_bad_requests_are_refused_before_any_task(
    api: TestClient,
    world: dict[str, Any],
    path: str,
    body: dict[str, Any],
    status: int,
    fragment: str,
) -> None:
    names = {"{project}": world["project"], "{web-1}": world["ids"]["web-1"]}

    def filled(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: filled(item) for key, item in value.items()}
        if isinstance(value, list):
            return [filled(item) for item in value]
        return names.get(value, value)

    answer = api.post(path, json=filled(body))
    assert answer.status_code == status, answer.text
    assert fragment in answer.text
    assert ok(api.get("/v1/tasks"))["items"] == []


def test_only_platform_admins_adopt(api: TestClient, world: dict[str, Any]) -> None:
    alice = _user(api, world["project"], "alice", role="project-admin")
    for method, path in (
        ("GET", "/v1/vms/unmanaged"),
        ("POST", "/v1/vms/adopt/preview"),
        ("POST", "/v1/vms/adopt"),
        ("POST", "/v1/vms/release/preview"),
        ("POST", "/v1/vms/release"),
    ):
        body = (
            {"select": {"name": "web"}, "project_id": world["project"]}
            if method == "POST"
            else None
        )
        assert alice.request(method, path, json=body).status_code == 403, path
