"""The task stream as the portal reads it: a task's transitions arrive in order, each as
`GET /v1/tasks/{id}` shows it; the stream ends at `max_seconds`, when the client goes
away or when its token is revoked; a project hears of its own tasks only."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tessera.api.routes import stream
from tessera.config import Settings
from tessera.runtime import Runtime, ensure_admin_token
from tests.api.test_api_inventory import _seed
from tests.identity.tenants import build, ok

ORDER = {"queued": 0, "running": 1, "succeeded": 2, "failed": 2, "cancelled": 2}
STREAM_LOG = "tessera.api.routes.stream"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """A pool nobody answers at makes a step retry twice (0.4 s, then 0.8 s) before its
    task fails: long enough running for a look to see it."""
    return Settings(
        data_dir=tmp_path / "state",
        database_url=database_url,
        watch_enabled=False,
        task_retry_attempts=3,
        task_retry_interval_s=0.4,
        login_attempts_per_minute=1000,
    )


def tasks_in(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The task of each `event: task` frame of an event stream, as it arrives."""
    event = None
    for line in lines:
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: ") and event == "task":
            yield json.loads(line.removeprefix("data: "))
        elif not line:
            event = None


def _follow(frames: Iterator[dict[str, Any]], task_id: str) -> list[dict[str, Any]]:
    """The frames of one task, up to the one where it finished."""
    seen = []
    for task in frames:
        if task["id"] == task_id:
            seen.append(task)
            if ORDER[task["state"]] == 2:
                return seen
    raise AssertionError(f"the stream ended before task {task_id} finished: {seen}")


def _in_order(seen: list[dict[str, Any]]) -> None:
    ranks = [ORDER[t["state"]] for t in seen]
    assert ranks == sorted(ranks), [t["state"] for t in seen]
    progress = [t["progress"] for t in seen]
    assert progress == sorted(progress), progress
    assert len({json.dumps(t, sort_keys=True) for t in seen}) == len(seen), "a frame repeats"


def test_a_task_is_followed_to_success_in_order(api: TestClient, runtime: Runtime) -> None:
    pid = _seed(runtime, 30)
    with api.stream("GET", "/v1/tasks/stream", params={"max_seconds": 60}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        body = {"select": {"provider_id": pid}, "action": {"kind": "tag", "add": ["seen"]}}
        task = ok(api.post("/v1/vms/bulk", json=body), 202)
        seen = _follow(tasks_in(response.iter_lines()), task["id"])
    _in_order(seen)
    assert seen[-1]["state"] == "succeeded" and seen[-1]["progress"] == 100
    assert seen[-1] == ok(api.get(f"/v1/tasks/{task['id']}"))


def test_a_task_is_seen_running_then_failing(api: TestClient, runtime: Runtime) -> None:
    _seed(runtime, 1)
    (vm,) = ok(api.get("/v1/vms"))["items"]
    task = ok(api.post(f"/v1/vms/{vm['id']}/power", json={"action": "start"}), 202)
    query = {"task_id": task["id"], "max_seconds": 60}
    with api.stream("GET", "/v1/tasks/stream", params=query) as response:
        seen = _follow(tasks_in(response.iter_lines()), task["id"])
    _in_order(seen)
    assert [t["state"] for t in seen][-2:] == ["running", "failed"]
    assert seen[-1]["error"]["code"]
    assert seen[-1] == ok(api.get(f"/v1/tasks/{task['id']}"))


def test_the_stream_ends_at_max_seconds(api: TestClient, runtime: Runtime) -> None:
    pid = _seed(runtime, 1)
    first = ok(api.post(f"/v1/providers/{pid}/sync"), 202)
    tag = {"select": {"provider_id": pid}, "action": {"kind": "tag", "add": ["x"]}}
    newest = ok(api.post("/v1/vms/bulk", json=tag), 202)

    started = time.monotonic()
    at_once = api.get("/v1/tasks/stream", params={"max_seconds": 0})
    assert time.monotonic() - started < 5
    assert [t["id"] for t in tasks_in(at_once.text.splitlines())] == [first["id"], newest["id"]]
    latest = api.get("/v1/tasks/stream", params={"max_seconds": 0, "limit": 1})
    assert [t["id"] for t in tasks_in(latest.text.splitlines())] == [newest["id"]]

    started = time.monotonic()
    assert api.get("/v1/tasks/stream", params={"max_seconds": 2}).status_code == 200
    assert 2 <= time.monotonic() - started < 15


def test_bad_parameters_are_a_clear_422_and_a_token_in_the_url_is_not_taken(
    api: TestClient, runtime: Runtime
) -> None:
    for query in (
        "max_seconds=-1",
        "max_seconds=3601",
        "max_seconds=soon",
        "limit=0",
        "limit=1001",
        "task_id=",
        f"parent_id={'x' * 65}",
    ):
        response = api.get(f"/v1/tasks/stream?{query}")
        assert response.status_code == 422, (query, response.text)
        assert response.headers["content-type"] == "application/json"
        assert response.json()["code"] == "invalid_input"
    token = ensure_admin_token(runtime.settings)
    bare = TestClient(api.app)
    for name in ("token", "access_token", "authorization"):
        answer = bare.get("/v1/tasks/stream", params={name: token, "max_seconds": 0})
        assert answer.status_code == 401, (name, answer.text)


def test_the_stream_ends_when_the_client_goes_away(
    live_api: str, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=STREAM_LOG)
    headers = {"Authorization": f"Bearer {ensure_admin_token(runtime.settings)}"}
    url = f"{live_api}/v1/tasks/stream"
    with httpx.stream("GET", url, headers=headers, params={"max_seconds": 600}) as response:
        assert response.status_code == 200
    deadline = time.monotonic() + 10
    while not any("client went away" in r.getMessage() for r in caplog.records):
        assert time.monotonic() < deadline, "the stream outlived its client"
        time.sleep(0.1)


def test_the_stream_ends_when_its_token_is_revoked(
    api: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(stream, "RECHECK_S", 0.5)
    caplog.set_level(logging.DEBUG, logger=STREAM_LOG)
    made = ok(api.post("/v1/auth/tokens", json={"name": "watcher", "expires_in_days": 1}), 201)
    watcher = TestClient(api.app)
    watcher.headers["Authorization"] = f"Bearer {made['secret']}"
    started = time.monotonic()
    with watcher.stream("GET", "/v1/tasks/stream", params={"max_seconds": 60}) as response:
        assert response.status_code == 200
        ok(api.delete(f"/v1/auth/tokens/{made['id']}"), 204)
        response.read()
    assert time.monotonic() - started < 30
    assert any("no longer valid" in r.getMessage() for r in caplog.records)


def test_a_project_hears_of_its_own_tasks_only(api: TestClient, runtime: Runtime) -> None:
    world = build(api, runtime)
    alpha, beta = world.tenants["alpha"], world.tenants["beta"]
    reader = alpha.clients["reader"]
    theirs = {t["id"] for t in ok(api.get("/v1/tasks", params={"limit": 1000}))["items"]}
    heard = reader.get("/v1/tasks/stream", params={"max_seconds": 0, "limit": 1000})
    tasks = list(tasks_in(heard.text.splitlines()))
    assert {alpha.task, alpha.bulk_task} <= {t["id"] for t in tasks} < theirs
    assert {t["project_id"] for t in tasks} == {alpha.project}
    for query in ({"task_id": beta.task}, {"parent_id": beta.bulk_task}):
        answer = reader.get("/v1/tasks/stream", params={**query, "max_seconds": 0})
        assert answer.status_code == 200 and list(tasks_in(answer.text.splitlines())) == []
