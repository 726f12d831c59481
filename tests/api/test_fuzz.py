"""Schemathesis over the whole OpenAPI, as the admin: no 5xx, and every response matches
the status codes, content types and bodies the schema declares.

One app per database (SQLite, and PostgreSQL, which refuses NUL bytes that SQLite takes)
serves every operation; a small inventory on an unreachable libvirt pool gives the fuzzer
real ids to hit besides made-up ones. Tasks it starts fail against that pool, which is
fine: only server errors and answers that break the schema count.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck
from hypothesis import strategies as st
from schemathesis.python.asgi import ASGIClient
from sqlalchemy import func, select

from tessera.api.app import create_app
from tessera.config import Settings
from tessera.db.rows import (
    DatastoreRow,
    HostRow,
    NetworkRow,
    PlacementGroupRow,
    ProviderRow,
    TaskRow,
    VMDiskRow,
    VMNicRow,
    VMRow,
)
from tessera.domain.inventory import (
    DatastoreInfo,
    DiskInfo,
    HostInfo,
    InventorySnapshot,
    NetworkInfo,
    NetworkKind,
    NicInfo,
    PowerState,
    VMInfo,
)
from tessera.domain.tasks import TaskKind, TaskState
from tessera.inventory import pools, queries
from tessera.inventory.reconcile import reconcile
from tessera.runtime import Runtime, ensure_admin_token
from tessera.scheduler import service as placement
from tessera.scheduler.model import GroupPolicy
from tessera.tasks import bulk
from tessera.tasks import service as tasks
from tests.conftest import _postgres_database

# Schemathesis itself draws from the `random` module while generating (its dictionaries);
# Hypothesis seeds that module per example, so runs stay reproducible.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies"
    ":hypothesis.errors.HypothesisDeprecationWarning"
)

BASE_URL = "http://testserver"
MAX_EXAMPLES = 20

# The document does not depend on the database or the runtime; only the lifespan does.
schema = schemathesis.openapi.from_dict(
    create_app(Settings(watch_enabled=False), watch=False).openapi(),
    config=schemathesis.Config.from_dict(
        {
            "generation": {"mode": "all", "database": "none"},
            # The schema has no examples; coverage: boundary values of every parameter
            # (deterministic); fuzzing: up to `MAX_EXAMPLES` cases per operation.
            "phases": {"examples": {"enabled": False}, "stateful": {"enabled": False}},
        }
    ),
)

CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.response_schema_conformance,
]


@dataclasses.dataclass
class Targets:
    """Ids of real objects, by the names the API gives them in paths, queries and bodies."""

    ids: dict[str, list[Any]] = dataclasses.field(default_factory=dict)


TARGETS = Targets()


# Values that break storage layers: NUL (PostgreSQL refuses it in text; schemathesis
# never puts it in a path), LIKE wildcards, quotes, overlong text, integers past BIGINT.
HOSTILE_STRINGS = ["\x00", "a\x00b", "%", "_", "'", "\\", "..", "x" * 5000]
HOSTILE_INTEGERS = [2**31, 2**63, -(2**63) - 1, 2**64, 10**30]


def _leaf(value: Any, key: str | None, hostile_pct: int) -> st.SearchStrategy[Any]:
    """`value` as generated; or, for a key naming ids we hold, often a real one; or, in
    `hostile_pct` percent of cases, a hostile value of its type."""
    real = TARGETS.ids.get(key or "", [])
    hostile: list[Any] = []
    if isinstance(value, str):
        hostile = HOSTILE_STRINGS
    elif isinstance(value, int) and not isinstance(value, bool):
        hostile = HOSTILE_INTEGERS

    def pick(n: int) -> st.SearchStrategy[Any]:
        if real and n < 40:
            return st.sampled_from(real)
        if hostile and n >= 100 - hostile_pct:
            return st.sampled_from(hostile)
        return st.just(value)

    return st.integers(0, 99).flatmap(pick)


def _with_real_ids(value: Any, hostile_pct: int, key: str | None = None) -> st.SearchStrategy[Any]:
    if isinstance(value, dict):
        return st.fixed_dictionaries(
            {k: _with_real_ids(v, hostile_pct, k) for k, v in value.items()}
        )
    vm_ids = TARGETS.ids.get("vm_id")
    if isinstance(value, list) and key == "vm_ids" and vm_ids:
        return st.one_of(st.just(value), st.lists(st.sampled_from(vm_ids), max_size=3))
    if isinstance(value, list):
        return st.tuples(*(_with_real_ids(v, hostile_pct) for v in value)).map(list)
    return _leaf(value, key, hostile_pct)


@schema.hook
def flatmap_path_parameters(
    ctx: schemathesis.HookContext, path_parameters: dict[str, Any]
) -> st.SearchStrategy[dict[str, Any]]:
    return _with_real_ids(path_parameters, hostile_pct=30)


@schema.hook
def flatmap_query(ctx: schemathesis.HookContext, query: dict[str, Any]) -> st.SearchStrategy[Any]:
    return _with_real_ids(query, hostile_pct=10)


@schema.hook
def flatmap_body(ctx: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
    return _with_real_ids(body, hostile_pct=5)


def _seed_pool(rt: Runtime) -> str:
    pid = pools.add_provider(
        rt,
        pools.ProviderSpec(name="fuzz", kind="libvirt", url="qemu+tcp://127.0.0.1:1/system"),
        test_connection=False,
    ).id
    vms = [
        VMInfo(
            native_id=f"vm-{i}",
            name=f"fuzz-{i}",
            power_state=PowerState.STOPPED if i % 2 else PowerState.RUNNING,
            cpu_count=1,
            memory_mib=256,
            host_native_id="h1",
            disks=(DiskInfo(key="vda", size_bytes=1 << 30, datastore_native_id="ds1"),),
            nics=(
                NicInfo(key="n0", mac=f"52:54:00:00:02:{i:02x}", order=0, network_native_id="n1"),
            ),
        )
        for i in range(3)
    ]
    snapshot = InventorySnapshot(
        hosts=[HostInfo(native_id="h1", name="kvm1", cpu_cores=8, memory_mib=16384)],
        datastores=[
            DatastoreInfo(
                native_id="ds1", name="default", capacity_bytes=1 << 40, free_bytes=1 << 39
            )
        ],
        networks=[NetworkInfo(native_id="n1", name="default", kind=NetworkKind.BRIDGE)],
        vms=vms,
    )
    with rt.sessions.begin() as session:
        reconcile(session, pid, snapshot)
    tasks.submit_sync(rt, pid, requester="admin")
    bulk.submit(
        rt,
        bulk.BulkRequest(
            kind=TaskKind.VM_BULK_TAG,
            vm_ids=[],
            flt=queries.VMFilter(provider_id=pid),
            requester="admin",
            add_tags=["fuzz"],
        ),
    )
    return pid


def _ensure_seed(rt: Runtime) -> None:
    """(Re)create what the fuzzer may have deleted (the pool, the group), and note the ids
    of everything it may aim at."""
    with rt.sessions() as session:
        if session.scalar(select(ProviderRow.id).where(ProviderRow.name == "fuzz")) is None:
            _seed_pool(rt)
        if session.scalar(select(PlacementGroupRow.id)) is None:
            placement.create_group(rt, "fuzz-group", GroupPolicy.AFFINITY)
    with rt.sessions() as session:

        def ids(column: Any) -> list[Any]:
            return list(session.scalars(select(column).order_by(column)))

        vm_ids, task_ids = ids(VMRow.id), ids(TaskRow.id)
        TARGETS.ids = {
            "provider_id": ids(ProviderRow.id),
            "vm_id": vm_ids,
            "vm_ids": vm_ids,
            "object_id": vm_ids,
            "nic_id": ids(VMNicRow.id),
            "disk_id": ids(VMDiskRow.id),
            "task_id": task_ids,
            "parent_id": task_ids,
            "group_id": ids(PlacementGroupRow.id),
            "host_id": ids(HostRow.id),
            "datastore_id": ids(DatastoreRow.id),
            "network_id": ids(NetworkRow.id),
        }


def _wait_for_tasks(rt: Runtime, timeout_s: float = 60) -> None:
    """Let the tasks the fuzzer started end (they fail fast against the dead pool), so
    stopping the engine leaves no workflow running."""
    unfinished = [TaskState.QUEUED.value, TaskState.RUNNING.value]
    deadline = time.monotonic() + timeout_s
    while True:
        with rt.sessions() as session:
            left = session.scalar(
                select(func.count()).select_from(TaskRow).where(TaskRow.state.in_(unfinished))
            )
        if not left:
            return
        assert time.monotonic() < deadline, f"{left} tasks still unfinished"
        time.sleep(0.2)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def fuzz_app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Runtime, ASGIClient, dict[str, str]]]:
    """The API with its lifespan (and task engine) running, for every operation of a module."""
    root: Path = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    if request.param == "sqlite":
        urls: Iterator[str] = iter([f"sqlite:///{root / 'tessera.db'}"])
    else:
        urls = _postgres_database()
    url = next(urls)
    settings = Settings(
        data_dir=root / "state",
        database_url=url,
        watch_enabled=False,
        task_retry_attempts=1,  # the pool never answers: fail its tasks at once
    )
    rt = Runtime.open(settings)
    app = create_app(runtime=rt, watch=False)
    try:
        with TestClient(app):  # runs the lifespan: task engine up, then down at the end
            # Schemathesis' own ASGI client, never entered: entering it would run the
            # lifespan a second time (and keep it until the interpreter exits).
            client = ASGIClient(app, base_url=BASE_URL)
            yield rt, client, {"Authorization": f"Bearer {ensure_admin_token(settings)}"}
            _wait_for_tasks(rt)
    finally:
        rt.close()
        for _ in urls:  # drops the PostgreSQL database
            pass


@pytest.fixture
def seeded(fuzz_app: tuple[Runtime, ASGIClient, dict[str, str]]) -> None:
    """Before each operation: the seed is whole again, and the hooks know its ids."""
    _ensure_seed(fuzz_app[0])


@schema.parametrize()
@hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(
    case: schemathesis.Case, fuzz_app: tuple[Runtime, ASGIClient, dict[str, str]], seeded: None
) -> None:
    _, client, auth = fuzz_app
    if case.operation.label == "GET /v1/tasks/stream":
        _end_at_once(case)
    response = case.call(base_url=BASE_URL, session=client, headers=auth)
    checks = CHECKS
    if case.operation.label == "GET /v1/vms/{vm_id}/snapshots" and _pool_unreachable(response):
        # The one read that goes to the pool: the seeded pool never answers, so a real VM's
        # snapshots are the documented 503 + Retry-After (the status check still runs).
        checks = [c for c in CHECKS if c is not schemathesis.checks.not_a_server_error]
    case.validate_response(response, checks=checks, headers=auth)


def _end_at_once(case: schemathesis.Case) -> None:
    """A task stream the API would accept (`max_seconds` left out, or up to an hour) ends
    after its first burst, so every case takes no longer than any other call; bad values
    stay, for their 422."""
    query = case.query if case.query is not None else {}
    given = str(query.get("max_seconds", "0"))
    if given.isdigit() and int(given) <= 3600:
        query["max_seconds"] = 0
    case.query = query


def _pool_unreachable(response: schemathesis.Response) -> bool:
    if response.status_code != 503 or "retry-after" not in response.headers:
        return False
    body = response.json()
    return body.get("code") == "provider_failed" and body.get("provider_code") == "unreachable"


def test_what_the_fuzzer_found_stays_fixed(
    fuzz_app: tuple[Runtime, ASGIClient, dict[str, str]], seeded: None
) -> None:
    """NUL characters (PostgreSQL refuses them) and ids past INTEGER are a 422 before any
    query; times carry their zone on SQLite too."""
    _, client, auth = fuzz_app
    vm_id = TARGETS.ids["vm_id"][0]
    for method, path, body in [
        ("GET", "/v1/vms/%00", None),
        ("GET", "/v1/providers/a%00b", None),
        ("GET", "/v1/vms?name=a%00b", None),
        ("GET", "/v1/events?actor=%00", None),
        ("POST", "/v1/placement/dry-run", {"vcpus": 1, "memory_mib": 1, "zone": "\x00"}),
        ("POST", "/v1/vms/bulk/preview", {"select": {"vm_ids": ["a\x00"]}}),
        ("DELETE", f"/v1/vms/{vm_id}/nics/2147483648", None),
        ("POST", f"/v1/vms/{vm_id}/disks/9223372036854775808/grow", {"size_gib": 2}),
    ]:
        response = client.request(method, path, json=body, headers=auth)
        assert response.status_code == 422, (method, path, response.text)
        assert response.json()["code"] == "invalid_input"
    # A backslash followed by `u0000` is no NUL.
    literal = {"select": {"name": "\\u0000"}}
    assert client.post("/v1/vms/bulk/preview", json=literal, headers=auth).status_code == 200
    task = client.get("/v1/tasks", headers=auth).json()["items"][0]
    assert task["created_at"].endswith(("Z", "+00:00")), task["created_at"]
