"""Project quotas, enforced in the transaction that saves a task, on SQLite and PostgreSQL.

The pool is one nobody answers at (loopback port 1), seeded with a host and a datastore:
creates name that host, so no scheduler room interferes, and a task that runs fails at
its first provider call. By default tasks are only queued (`run_tasks=False`), so their
reservations hold for as long as a test looks at them.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, update

from tessera.config import Settings
from tessera.db.rows import HostRow, TaskRow, VMLockRow, VMRow, utcnow
from tessera.domain.inventory import (
    DatastoreInfo,
    DiskInfo,
    HostInfo,
    InventorySnapshot,
    ObjectKind,
    ObjectUpserted,
    PowerState,
    VMInfo,
)
from tessera.domain.tasks import TaskState
from tessera.inventory import pools
from tessera.inventory.reconcile import apply_changes, reconcile
from tessera.runtime import Runtime, ensure_admin_token
from tests.tasks.helpers import register, submitted, wait_task

GIB = 1 << 30
RACERS = 20


@pytest.fixture
def settings(tmp_path: Path, database_url: str, request: pytest.FixtureRequest) -> Settings:
    """Tasks queued only, unless a test asks otherwise (indirect parametrisation)."""
    fields: dict[str, Any] = {
        "run_tasks": False,
        "task_retry_attempts": 1,
        "login_attempts_per_minute": 100,
        **getattr(request, "param", {}),
    }
    return Settings(
        data_dir=tmp_path / "state", database_url=database_url, watch_enabled=False, **fields
    )


class Estate:
    """The fake pool and a project `web` with a member, alice, and the given quota; `api`
    is the admin's client, in-process or over HTTP, and alice gets one of the same kind."""

    def __init__(
        self, api: httpx.Client, rt: Runtime, *, provider: str | None = None, **quota: int
    ) -> None:
        if provider is None:
            spec = pools.ProviderSpec("fake", "libvirt", "qemu+tcp://127.0.0.1:1/system")
            provider = pools.add_provider(rt, spec, test_connection=False).id
            with rt.sessions.begin() as session:
                reconcile(
                    session,
                    provider,
                    InventorySnapshot(
                        hosts=[HostInfo("h1", "fake-host", cpu_cores=8, memory_mib=16384)],
                        datastores=[DatastoreInfo("ds1", "ds", 1000 * GIB, 1000 * GIB)],
                    ),
                )
        self.provider = provider
        with rt.sessions() as session:
            self.host = session.scalars(
                select(HostRow.id).where(HostRow.provider_id == provider)
            ).first()
        self.project = api.post("/v1/projects", json={"name": "web"}).json()["id"]
        user = api.post("/v1/users", json={"name": "alice", "password": "pw-alice-123"})
        member = {"role": "member"}
        assert api.put(f"/v1/projects/{self.project}/members/{user.json()['id']}", json=member)
        grant = f"/v1/projects/{self.project}/grants/provider/{self.provider}"
        assert api.put(grant).status_code == 204
        assert api.put(f"/v1/projects/{self.project}/quota", json=quota).status_code == 200
        login = {"user": "alice", "password": "pw-alice-123"}
        self.token = api.post("/v1/auth/login", json=login).json()["token"]
        headers = {"Authorization": f"Bearer {self.token}"}
        self.alice = (
            TestClient(api.app, headers=headers)
            if isinstance(api, TestClient)
            else httpx.Client(base_url=api.base_url, headers=headers, timeout=60)
        )

    def create(self, name: str, **body: Any) -> dict[str, Any]:
        """A create body on the pool's host: 1 vCPU, 256 MiB, one 1 GiB disk unless told."""
        return {
            "provider_id": self.provider,
            "host_id": self.host,
            "name": name,
            "cpus": 1,
            "memory_mib": 256,
            "disks": [{"size_gib": 1}],
            **body,
        }

    def usage(self) -> dict[str, dict[str, Any]]:
        response = self.alice.get(f"/v1/projects/{self.project}/usage")
        assert response.status_code == 200, response.text
        return {q["quota"]: q for q in response.json()["quotas"]}

    def adopt(self, rt: Runtime, task_id: str, info: VMInfo) -> str:
        """What a create's first step does: record its VM for the project, note its id."""
        with rt.sessions.begin() as session:
            apply_changes(session, self.provider, [ObjectUpserted(ObjectKind.VM, info)])
            vm_id = session.scalars(select(VMRow.id).where(VMRow.native_id == info.native_id))
            found = vm_id.one()
            session.execute(update(VMRow).where(VMRow.id == found).values(project_id=self.project))
            session.execute(update(TaskRow).where(TaskRow.id == task_id).values(vm_id=found))
        return found


def _vm(name: str, cpus: int = 1, mib: int = 256, disks: tuple[int, ...] = ()) -> VMInfo:
    return VMInfo(
        native_id=name,
        name=name,
        power_state=PowerState.STOPPED,
        cpu_count=cpus,
        memory_mib=mib,
        host_native_id="h1",
        disks=tuple(
            DiskInfo(f"d{i}", size * GIB, datastore_native_id="ds1") for i, size in enumerate(disks)
        ),
    )


def _finish_tasks(rt: Runtime) -> None:
    """As if the queued tasks had all succeeded just now (and freed their VMs)."""
    with rt.sessions.begin() as session:
        session.execute(
            update(TaskRow)
            .where(TaskRow.state == TaskState.QUEUED.value)
            .values(state=TaskState.SUCCEEDED.value, finished_at=utcnow())
        )
        session.execute(delete(VMLockRow))


def test_twenty_parallel_creates_against_a_quota_of_five(runtime: Runtime, live_api: str) -> None:
    admin = {"Authorization": f"Bearer {ensure_admin_token(runtime.settings)}"}
    with httpx.Client(base_url=live_api, headers=admin, timeout=60) as api:
        estate = Estate(api, runtime, vms=5)
    headers = {"Authorization": f"Bearer {estate.token}"}
    start = threading.Barrier(RACERS)
    responses: dict[str, httpx.Response] = {}

    def submit(name: str) -> None:
        with httpx.Client(base_url=live_api, headers=headers, timeout=120) as client:
            start.wait()
            responses[name] = client.post("/v1/vms", json=estate.create(name))

    threads = [threading.Thread(target=submit, args=(f"q-{n}",)) for n in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    statuses = sorted(r.status_code for r in responses.values())
    assert statuses == [202] * 5 + [403] * 15, [r.text for r in responses.values()]
    for refused in (r.json() for r in responses.values() if r.status_code == 403):
        assert refused["code"] == "quota_exceeded"
        assert (refused["quota"], refused["limit"], refused["in_use"], refused["requested"]) == (
            "vms",
            5,
            5,
            1,
        )
        assert refused["message"] == (
            "quota exceeded for vms: limit 5, 0 in use and 5 reserved by unfinished tasks,"
            " 1 requested"
        )
    accepted = {r.json()["id"] for r in responses.values() if r.status_code == 202}
    with runtime.sessions() as session:
        tasks = list(session.scalars(select(TaskRow)))
    assert {t.id for t in tasks} == accepted
    assert {t.project_id for t in tasks} == {estate.project}

    usage = estate.usage()
    assert usage["vms"] == {"quota": "vms", "limit": 5, "in_use": 0, "reserved": 5, "free": 0}
    assert (usage["vcpus"]["reserved"], usage["ram_mib"]["reserved"]) == (5, 5 * 256)
    assert (usage["disk_gib"]["reserved"], usage["disk_gib"]["limit"]) == (5, None)
    assert usage["floating_ips"] == {
        "quota": "floating_ips",
        "limit": None,
        "in_use": 0,
        "reserved": 0,
        "free": None,
    }


@pytest.mark.parametrize("settings", [{"run_tasks": True}], indirect=True)
def test_a_failed_create_gives_its_reservation_back(api: TestClient, runtime: Runtime) -> None:
    estate = Estate(api, runtime, vms=1)
    first = estate.alice.post("/v1/vms", json=estate.create("doomed"))
    assert first.status_code == 202, first.text
    task = wait_task(estate.alice, first.json()["id"], timeout_s=60)
    assert task["state"] == "failed" and task["vm_id"] is None, task
    usage = estate.usage()["vms"]
    assert (usage["in_use"], usage["reserved"], usage["free"]) == (0, 0, 1)
    again = estate.alice.post("/v1/vms", json=estate.create("doomed-again"))
    assert again.status_code == 202, again.text


def test_a_retry_reserves_again(api: TestClient, runtime: Runtime) -> None:
    estate = Estate(api, runtime, vms=1)
    first = estate.alice.post("/v1/vms", json=estate.create("first")).json()["id"]
    with runtime.sessions.begin() as session:  # as if it had failed
        session.execute(
            update(TaskRow).where(TaskRow.id == first).values(state=TaskState.FAILED.value)
        )
        session.execute(delete(VMLockRow))
    assert estate.alice.post("/v1/vms", json=estate.create("second")).status_code == 202
    retried = estate.alice.post(f"/v1/tasks/{first}/retry")
    assert retried.status_code == 403 and retried.json()["quota"] == "vms", retried.text


def test_a_recorded_vm_counts_once_and_its_unmade_disks_stay_reserved(
    api: TestClient, runtime: Runtime
) -> None:
    estate = Estate(api, runtime, vms=2, vcpus=4, disk_gib=5)
    first = estate.alice.post("/v1/vms", json=estate.create("one", cpus=2, disks=[{"size_gib": 3}]))
    assert first.status_code == 202, first.text
    estate.adopt(runtime, first.json()["id"], _vm("one", cpus=2))  # bare: no disk yet
    usage = estate.usage()
    assert (usage["vms"]["in_use"], usage["vms"]["reserved"]) == (1, 0)
    assert (usage["vcpus"]["in_use"], usage["vcpus"]["reserved"]) == (2, 0)
    assert (usage["disk_gib"]["in_use"], usage["disk_gib"]["reserved"]) == (0, 3)

    too_big = estate.alice.post("/v1/vms", json=estate.create("two", disks=[{"size_gib": 3}]))
    assert too_big.status_code == 403
    body = too_big.json()
    assert (body["quota"], body["limit"], body["in_use"], body["requested"]) == (
        "disk_gib",
        5,
        3,
        3,
    )
    assert estate.alice.post("/v1/vms", json=estate.create("two", cpus=2)).status_code == 202
    third = estate.alice.post("/v1/vms", json=estate.create("three", disks=[]))
    assert third.status_code == 403 and third.json()["quota"] == "vms"

    # the disks recorded: in use now, no longer reserved
    estate.adopt(runtime, first.json()["id"], _vm("one", cpus=2, disks=(3,)))
    usage = estate.usage()
    assert (usage["disk_gib"]["in_use"], usage["disk_gib"]["reserved"]) == (3, 1)


def test_resize_disks_and_snapshots_count_against_their_quotas(
    api: TestClient, runtime: Runtime
) -> None:
    estate = Estate(api, runtime, vcpus=3, ram_mib=1024, disk_gib=4, snapshots=1)
    vms = {}
    for name in ("a", "b"):
        made = estate.alice.post("/v1/vms", json=estate.create(name))
        vms[name] = estate.adopt(runtime, made.json()["id"], _vm(name, disks=(1,)))
    _finish_tasks(runtime)  # the creates are done

    def post(vm: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return estate.alice.post(f"/v1/vms/{vms[vm]}{path}", json=body)

    assert post("a", "/resize", {"cpu_count": 2}).status_code == 202
    refused = post("b", "/resize", {"cpu_count": 2})
    assert refused.status_code == 403 and refused.json()["quota"] == "vcpus"
    assert (refused.json()["in_use"], refused.json()["requested"]) == (3, 1)
    assert post("b", "/resize", {"cpu_count": 1, "memory_mib": 512}).status_code == 202
    assert estate.usage()["ram_mib"]["reserved"] == 256

    disk = api.get(f"/v1/vms/{vms['a']}").json()["disks"][0]["id"]
    estate_disk = estate.usage()["disk_gib"]
    assert (estate_disk["in_use"], estate_disk["reserved"]) == (2, 0)
    _finish_tasks(runtime)  # a's and b's resizes are done
    grown = post("a", f"/disks/{disk}/grow", {"size_gib": 4})
    assert grown.status_code == 403 and grown.json()["quota"] == "disk_gib"
    assert grown.json()["requested"] == 3
    assert post("a", f"/disks/{disk}/grow", {"size_gib": 2}).status_code == 202
    added = post("b", "/disks", {"size_gib": 2})
    assert added.status_code == 403 and added.json()["in_use"] == 3

    _finish_tasks(runtime)
    assert post("b", "/snapshots", {"name": "s1"}).status_code == 202
    second = post("a", "/snapshots", {"name": "s2"})
    assert second.status_code == 403 and second.json()["quota"] == "snapshots"
    _finish_tasks(runtime)
    snapshots = estate.usage()["snapshots"]
    assert (snapshots["in_use"], snapshots["reserved"]) == (1, 0)
    assert post("a", "/snapshots", {"name": "s2"}).status_code == 403
    gone = estate.alice.delete(f"/v1/vms/{vms['b']}/snapshots/s1")
    assert gone.status_code == 202
    _finish_tasks(runtime)
    assert estate.usage()["snapshots"]["in_use"] == 0
    assert post("a", "/snapshots", {"name": "s2"}).status_code == 202


def test_usage_is_the_projects_own(api: TestClient, runtime: Runtime) -> None:
    estate = Estate(api, runtime, vms=3)
    other = api.post("/v1/projects", json={"name": "other"}).json()["id"]
    assert estate.alice.get(f"/v1/projects/{other}/usage").status_code == 404
    assert api.get(f"/v1/projects/{other}/usage").json()["quotas"][0]["limit"] is None
    assert api.get(f"/v1/projects/{estate.project}/usage").json()["quotas"][0]["limit"] == 3


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("settings", [{"run_tasks": True}], indirect=True)
def test_a_made_vm_moves_from_reserved_to_in_use(
    api: TestClient, runtime: Runtime, kvm_host_module: Any
) -> None:
    """End to end on a real KVM host: the member's VM belongs to the project, and once
    made it counts in use, no longer reserved; deleted, it counts no more."""
    pool = register(api, "libvirt", kvm_host_module, "lab-kvm")
    estate = Estate(api, runtime, provider=pool, vms=1, disk_gib=1)
    made = estate.alice.post("/v1/vms", json=estate.create("quota-real", memory_mib=64))
    task = wait_task(estate.alice, submitted(made))
    assert task["state"] == "succeeded", task
    vm = estate.alice.get(f"/v1/vms/{task['vm_id']}").json()
    assert vm["name"] == "quota-real"
    usage = estate.usage()
    assert {q: (u["in_use"], u["reserved"]) for q, u in usage.items()} == {
        "vms": (1, 0),
        "vcpus": (1, 0),
        "ram_mib": (64, 0),
        "disk_gib": (1, 0),
        "floating_ips": (0, 0),
        "snapshots": (0, 0),
    }
    refused = estate.alice.post("/v1/vms", json=estate.create("one-too-many", disks=[]))
    assert refused.status_code == 403 and refused.json()["quota"] == "vms"
    gone = wait_task(estate.alice, submitted(estate.alice.delete(f"/v1/vms/{vm['id']}")))
    assert gone["state"] == "succeeded", gone
    assert estate.usage()["vms"]["in_use"] == 0
