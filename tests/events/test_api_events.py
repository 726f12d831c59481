"""GET /v1/events and /v1/vms/{id}/events: filters, keyset paging, and 4xx for bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tessera.db.rows import EventRow, TaskRow
from tessera.runtime import Runtime

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
VM_A, VM_B, TASK_A = "vm-a-id", "vm-b-id", "task-a-id"


def _event(minute: int, kind: str, **fields: Any) -> EventRow:
    defaults: dict[str, Any] = {
        "actor": "sync",
        "object_kind": kind.partition(".")[0],
        "object_name": "",
        "provider_id": "p1",
        "message": "",
    }
    return EventRow(at=T0 + timedelta(minutes=minute), kind=kind, **(defaults | fields))


@pytest.fixture
def seeded(runtime: Runtime) -> list[int]:
    """Eight events a minute apart (ids in that order), about two VMs and a task on VM A."""
    rows = [
        _event(0, "provider.discovered", object_id="p1", after={"vm": 2}),
        _event(1, "task.queued", actor="alice", object_id=TASK_A, task_id=TASK_A),
        _event(2, "task.running", actor="alice", object_id=TASK_A, task_id=TASK_A),
        _event(
            3,
            "vm.changed",
            actor="alice",
            object_id=VM_A,
            object_name="web-a",
            task_id=TASK_A,
            before={"power_state": "running"},
            after={"power_state": "stopped"},
        ),
        _event(4, "task.succeeded", actor="alice", object_id=TASK_A, task_id=TASK_A),
        _event(5, "vm.changed", actor="watch", object_id=VM_B, object_name="web-b"),
        _event(6, "host.changed", actor="watch", object_id="host-1", provider_id="p2"),
        _event(7, "vm.removed", object_id=VM_B, object_name="web-b"),
    ]
    with runtime.sessions.begin() as session:
        session.add(
            TaskRow(
                id=TASK_A,
                kind="vm.power",
                state="succeeded",
                requester="alice",
                vm_id=VM_A,
                workflow_id=f"{TASK_A}:1",
            )
        )
        for row in rows:
            session.add(row)
            session.flush()  # ids in the order above
        return [row.id for row in rows]


def _list(api: TestClient, path: str = "/v1/events", **params: Any) -> list[dict[str, Any]]:
    response = api.get(path, params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _kinds(items: list[dict[str, Any]]) -> list[str]:
    return [item["kind"] for item in items]


def test_newest_first_with_every_field(api: TestClient, seeded: list[int]) -> None:
    items = _list(api)
    assert [item["id"] for item in items] == seeded[::-1]
    change = next(item for item in items if item["id"] == seeded[3])
    assert change == {
        "id": seeded[3],
        "at": "2026-01-01T12:03:00Z",
        "kind": "vm.changed",
        "actor": "alice",
        "object_kind": "vm",
        "object_id": VM_A,
        "object_name": "web-a",
        "provider_id": "p1",
        "task_id": TASK_A,
        "message": "",
        "before": {"power_state": "running"},
        "after": {"power_state": "stopped"},
    }


def test_cursor_pages_cover_everything_once(api: TestClient, seeded: list[int]) -> None:
    seen: list[int] = []
    params: dict[str, Any] = {"limit": 3}
    pages = 0
    while True:
        body = api.get("/v1/events", params=params).json()
        seen += [item["id"] for item in body["items"]]
        pages += 1
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert seen == seeded[::-1]
    assert pages == 3


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"kind": "vm.changed"}, ["vm.changed", "vm.changed"]),
        ({"kind": "vm."}, ["vm.removed", "vm.changed", "vm.changed"]),
        ({"kind": "task."}, ["task.succeeded", "task.running", "task.queued"]),
        ({"provider_id": "p2"}, ["host.changed"]),
        ({"actor": "watch"}, ["host.changed", "vm.changed"]),
        ({"task_id": TASK_A}, ["task.succeeded", "vm.changed", "task.running", "task.queued"]),
        ({"object_id": VM_B}, ["vm.removed", "vm.changed"]),
        # a VM's events include those of the tasks run on it
        ({"vm_id": VM_A}, ["task.succeeded", "vm.changed", "task.running", "task.queued"]),
        ({"since": "2026-01-01T12:06:00Z"}, ["vm.removed", "host.changed"]),
        ({"until": "2026-01-01T12:01:00Z"}, ["provider.discovered"]),
        # another zone is converted: 14:05+02:00 is 12:05 UTC
        ({"since": "2026-01-01T14:05:00+02:00", "until": "2026-01-01T14:07:00+02:00"},
         ["host.changed", "vm.changed"]),
        ({"kind": "vm.", "actor": "watch"}, ["vm.changed"]),
    ],
)  # fmt: skip
def test_filters(
    api: TestClient, seeded: list[int], params: dict[str, Any], expected: list[str]
) -> None:
    assert _kinds(_list(api, **params)) == expected


def test_events_of_a_vm(api: TestClient, seeded: list[int]) -> None:
    assert _kinds(_list(api, f"/v1/vms/{VM_A}/events")) == [
        "task.succeeded",
        "vm.changed",
        "task.running",
        "task.queued",
    ]
    # VM B is gone from the inventory, its history is not
    assert _kinds(_list(api, f"/v1/vms/{VM_B}/events", kind="vm.removed")) == ["vm.removed"]
    missing = api.get("/v1/vms/never-existed/events")
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"


@pytest.mark.parametrize(
    ("params", "status", "says"),
    [
        ({"kind": "vm.exploded"}, 422, "unknown event kind 'vm.exploded'"),
        ({"kind": "vm"}, 422, "a prefix such as 'vm.'"),
        ({"kind": "nothing."}, 422, "unknown event kind"),
        ({"cursor": "garbage"}, 422, "cursor is not one this API issued"),
        ({"cursor": "eyJiZWZvcmUiOiJ4In0"}, 422, "cursor is not one this API issued"),
        ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, 422, "is after"),
        ({"since": "yesterday"}, 422, "since"),
        ({"limit": 0}, 422, "limit"),
        ({"limit": 1001}, 422, "limit"),
    ],
)
def test_bad_input_is_a_clear_4xx(
    api: TestClient, seeded: list[int], params: dict[str, Any], status: int, says: str
) -> None:
    for path in ("/v1/events", f"/v1/vms/{VM_A}/events"):
        response = api.get(path, params=params)
        assert response.status_code == status, response.text
        body = response.json()
        assert body["code"] == "invalid_input"
        assert says in body["message"]


def test_events_need_the_token(api: TestClient) -> None:
    response = api.get("/v1/events", headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401
