"""Scheduled creates over the seeded estate, on SQLite and PostgreSQL, with the task
engine off (`run_tasks=False`): tasks stay queued, so their placement claims hold.

The estate (tests/scheduler/helpers.py): zone az2 has one KVM host, kvm1-host, with
16384 MiB of which db-1 uses 4096, so exactly three 4096 MiB VMs fit there.
"""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tessera.config import Settings
from tessera.db.locks import serialize
from tessera.db.rows import PlacementClaimRow, TaskRow, new_id, utcnow
from tessera.domain.tasks import TaskKind, TaskState
from tessera.errors import NoValidPlacementError
from tessera.runtime import Runtime, ensure_admin_token
from tessera.tasks import service
from tessera.tasks.engine import TaskEngine
from tests.scheduler.helpers import seed_estate

GIB = 1 << 30
IN_AZ2 = {"cpus": 1, "memory_mib": 4096, "disks": [{"size_gib": 20}], "zone": "az2"}


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "state",
        database_url=database_url,
        watch_enabled=False,
        run_tasks=False,
    )


@pytest.fixture
def estate(runtime: Runtime) -> None:
    seed_estate(runtime)


def _create(api: TestClient, name: str, **body: Any) -> httpx.Response:
    return api.post("/v1/vms", json={**IN_AZ2, "name": name, **body})


def _candidate(api: TestClient, name: str) -> dict[str, Any]:
    """The candidate `name` as a dry run of a small create sees it now."""
    decision = api.post("/v1/vms/dry-run", json={"name": "probe", "cpus": 1, "memory_mib": 16})
    assert decision.status_code == 200, decision.text
    found = decision.json()["ranked"] + decision.json()["rejected"]
    return next(c for c in found if c["name"] == name)


def test_a_create_is_placed_where_its_dry_run_says_and_claims_the_room(
    api: TestClient, estate: None
) -> None:
    dry = api.post("/v1/vms/dry-run", json={**IN_AZ2, "name": "web-1"})
    assert dry.status_code == 200, dry.text
    assert dry.json()["chosen"]["name"] == "kvm1-host"
    assert dry.json()["datastore"]["name"] == "default"

    response = _create(api, "web-1")
    assert response.status_code == 202, response.text
    task = response.json()
    placed = task["result"]["placement"]
    assert task["state"] == "queued" and task["provider_id"] == dry.json()["chosen"]["provider_id"]
    assert (placed["kind"], placed["candidate_id"]) == ("host", dry.json()["chosen"]["id"])
    assert (placed["provider_name"], placed["zone"]) == ("kvm1", "az2")
    assert (placed["datastore_id"], placed["datastore_name"]) == (
        dry.json()["datastore"]["id"],
        "default",
    )
    assert placed["summary"] == dry.json()["summary"]
    assert placed["summary"].startswith("host kvm1-host in pool kvm1 on datastore default")
    assert api.get(f"/v1/tasks/{task['id']}").json()["result"] == task["result"]

    # The queued task's claim is used capacity for everyone else: vCPUs, RAM and disk.
    host = _candidate(api, "kvm1-host")
    assert (host["vcpus_used"], host["memory_mib_used"]) == (2 + 1, 4096 + 4096)
    after = api.post("/v1/vms/dry-run", json={**IN_AZ2, "name": "web-2"}).json()
    assert after["datastore"]["free_bytes"] == dry.json()["datastore"]["free_bytes"] - 20 * GIB


def test_parallel_creates_take_only_the_room_there_is(
    live_api: str, runtime: Runtime, estate: None
) -> None:
    """Eight creates at once through the API, room for three: three tasks, five 409s."""
    headers = {"Authorization": f"Bearer {ensure_admin_token(runtime.settings)}"}
    start = threading.Barrier(8)
    responses: dict[str, httpx.Response] = {}

    def submit(name: str) -> None:
        with httpx.Client(base_url=live_api, headers=headers, timeout=60) as client:
            start.wait()
            responses[name] = client.post("/v1/vms", json={**IN_AZ2, "name": name})

    threads = [threading.Thread(target=submit, args=(f"race-{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    statuses = sorted(r.status_code for r in responses.values())
    assert statuses == [202] * 3 + [409] * 5, [r.text for r in responses.values()]
    for refused in (r.json() for r in responses.values() if r.status_code == 409):
        assert refused["code"] == "no_valid_placement"
        assert refused["rejected_by"] == {"zone": 2, "ram": 1}
        assert refused["message"].startswith(
            "no candidate fits: 3 considered, rejected 2 by zone, 1 by ram"
        )
        assert (
            "kvm1-host: needs 4096 MiB RAM, 0 MiB free after 1x overcommit" in (refused["message"])
        )
    with httpx.Client(base_url=live_api, headers=headers) as client:
        queued = client.get("/v1/tasks", params={"kind": "vm.create"}).json()["items"]
    assert len(queued) == 3
    assert {t["result"]["placement"]["candidate_name"] for t in queued} == {"kvm1-host"}


def _submit_in_a_process(settings: Settings, name: str, start: Any, out: Any) -> None:
    """One create from a process of its own, as a second API process would."""
    rt = Runtime.open(settings, migrate=False)
    request = service.VMCreateRequest(
        provider_id=None,
        name=name,
        cpus=1,
        memory_mib=4096,
        disks=[service.DiskRequest(20)],
        zone="az2",
    )
    start.wait()
    try:
        out.put((name, service.submit_create(rt, request).id))
    except NoValidPlacementError as exc:
        out.put((name, exc.code))
    finally:
        rt.close()


def test_placement_is_serialised_across_processes(runtime: Runtime, estate: None) -> None:
    spawn = multiprocessing.get_context("spawn")
    start, out = spawn.Barrier(5), spawn.Queue()
    procs = [
        spawn.Process(target=_submit_in_a_process, args=(runtime.settings, f"p-{n}", start, out))
        for n in range(5)
    ]
    for proc in procs:
        proc.start()
    outcomes = dict(out.get(timeout=120) for _ in procs)
    for proc in procs:
        proc.join(30)
    refused = [name for name, outcome in outcomes.items() if outcome == "no_valid_placement"]
    assert len(refused) == 2, outcomes
    with runtime.sessions() as session:
        claims = list(session.scalars(select(PlacementClaimRow)))
    assert sorted(c.task_id for c in claims) == sorted(
        outcome for name, outcome in outcomes.items() if name not in refused
    )
    assert sum(c.memory_mib for c in claims) == 3 * 4096


def test_claims_of_finished_tasks_do_not_count_and_are_swept(
    api: TestClient, runtime: Runtime, estate: None
) -> None:
    task = _create(api, "done-1").json()
    with runtime.sessions.begin() as session:
        row = session.get(TaskRow, task["id"])
        assert row is not None
        row.state = TaskState.SUCCEEDED.value  # as if its claim had outlived it
    assert _candidate(api, "kvm1-host")["memory_mib_used"] == 4096
    TaskEngine(runtime).sweep()
    with runtime.sessions() as session:
        assert session.scalars(select(PlacementClaimRow)).all() == []


def test_a_placement_group_holds_across_creates_in_flight(api: TestClient, estate: None) -> None:
    """Anti-affinity holds between creates whose VMs do not exist yet: each one's claim
    counts as a member of the group."""
    created = api.post("/v1/placement-groups", json={"name": "web", "policy": "anti-affinity"})
    assert created.status_code == 201
    small = {"cpus": 1, "memory_mib": 512, "disks": [], "zone": None, "group": "web"}
    places = []
    for n in range(3):
        response = _create(api, f"apart-{n}", **small)
        assert response.status_code == 202, response.text
        places.append(response.json()["result"]["placement"]["candidate_name"])
    assert sorted(places) == ["cl-a", "esx-9", "kvm1-host"]
    refused = _create(api, "apart-3", **small)
    assert refused.status_code == 409
    assert refused.json()["rejected_by"] == {"group": 3}
    assert "anti-affinity group web already has a member here" in refused.json()["message"]


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"zone": "nowhere"}, 422, "no zone 'nowhere'"),
        ({"group": "ghosts"}, 422, "placement group 'ghosts' not found"),
        ({"strategy": "random"}, 422, "strategy"),
        ({"nics": [{"network_id": "net-x"}]}, 422, "no network net-x"),
        ({"provider_id": "nope"}, 404, "provider nope not found"),
        ({"datastore_id": "nope"}, 404, "datastore nope not found"),
        (
            {"memory_mib": 40000},
            409,
            "no candidate fits: 3 considered, rejected 2 by zone, 2 by ram "
            "(e.g. cl-a: in zone az1, not the one requested; esx-9: needs 40000 MiB RAM, "
            "30720 MiB free after 1x overcommit)",
        ),
        (
            {"memory_mib": 70000, "zone": None},
            409,
            "no candidate fits: 3 considered, rejected 3 by ram (e.g. cl-a: needs 70000 MiB RAM",
        ),
    ],
)
def test_bad_or_impossible_creates_are_a_clear_4xx(
    api: TestClient, estate: None, body: dict[str, Any], status: int, fragment: str
) -> None:
    response = _create(api, "x", **body)
    assert response.status_code == status, response.text
    assert fragment in response.json()["message"]
    assert api.get("/v1/tasks").json()["items"] == []
    dry = api.post("/v1/vms/dry-run", json={**IN_AZ2, "name": "x", **body})
    if status == 409:  # the dry run explains rather than refuses
        assert dry.status_code == 200 and dry.json()["chosen"] is None
        assert response.json()["message"].startswith(dry.json()["summary"])
    else:
        assert dry.status_code == status and fragment in dry.json()["message"]


def test_an_explicit_host_skips_the_scheduler(api: TestClient, estate: None) -> None:
    """As before: no placement, no claim, even where the scheduler would say no."""
    host = api.get("/v1/hosts", params={"name": "kvm1-host"}).json()["items"][0]
    big = {"cpus": 1, "memory_mib": 40000, "disks": [], "zone": None, "host_id": host["id"]}
    response = _create(api, "pinned", **big)
    assert response.status_code == 202, response.text
    assert response.json()["provider_id"] == host["provider_id"]
    assert response.json()["result"] is None
    assert _candidate(api, "kvm1-host")["memory_mib_used"] == 4096
    refused = api.post("/v1/vms/dry-run", json={**IN_AZ2, **big, "name": "pinned-2"})
    assert refused.status_code == 422
    assert "the scheduler has nothing to choose" in refused.json()["message"]
    grouped = _create(api, "pinned-3", **big, group="web")
    assert grouped.status_code == 422 and "not with a host" in grouped.json()["message"]


def test_a_datastore_pins_the_pool(api: TestClient, estate: None) -> None:
    small = api.get("/v1/datastores", params={"name": "ds-small"}).json()["items"][0]
    body = {"zone": None, "datastore_id": small["id"], "disks": [{"size_gib": 50}]}
    response = _create(api, "on-small", **body)
    assert response.status_code == 202, response.text
    placed = response.json()["result"]["placement"]
    assert (placed["provider_name"], placed["datastore_name"]) == ("vc1", "ds-small")


def test_serialize_makes_a_second_transaction_wait(runtime: Runtime) -> None:
    """The helper itself: while one transaction holds the name, another waits for it and
    then reads what the first wrote."""
    held, seen = threading.Event(), []
    task_id = new_id()

    def second() -> None:
        held.wait()
        with runtime.sessions.begin() as session:
            serialize(session, "test")
            seen.append(session.get(TaskRow, task_id) is not None)

    waiter = threading.Thread(target=second)
    waiter.start()
    with runtime.sessions.begin() as session:
        serialize(session, "test")
        held.set()
        waiter.join(0.5)
        assert waiter.is_alive()  # still waiting for our lock
        now = utcnow()
        session.add(
            TaskRow(
                id=task_id,
                kind=TaskKind.VM_CREATE.value,
                state=TaskState.QUEUED.value,
                requester="test",
                workflow_id=f"{task_id}:1",
                created_at=now,
                updated_at=now,
            )
        )
    waiter.join(30)
    assert seen == [True]
