"""`tessera event list` against a live API: a readable table, JSON, filters, and one clear
line with exit code 5 for bad input."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from tessera.cli.main import app
from tessera.db.rows import EventRow, TaskRow, utcnow
from tessera.runtime import Runtime

runner = CliRunner()
VM_ID, TASK_ID = "0d9ec7a4-vm", "5b1f2c3d-task"


def tessera(*args: str) -> Any:
    return runner.invoke(app, list(args))


@pytest.fixture
def seeded(runtime: Runtime, cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A stop of one VM by alice an hour ago, and a change seen by the watch two days ago."""
    monkeypatch.setenv("COLUMNS", "250")  # one table row per event
    hour_ago, days_ago = utcnow() - timedelta(hours=1), utcnow() - timedelta(days=2)
    common: dict[str, Any] = {"provider_id": "p1", "message": ""}
    task: dict[str, Any] = {"object_kind": "task", "object_name": "vm.power", "task_id": TASK_ID}
    rows = [
        EventRow(at=days_ago, kind="host.changed", actor="watch", object_kind="host",
                 object_id="h1", object_name="esx-1", before={"in_maintenance": False},
                 after={"in_maintenance": True}, **common),
        EventRow(at=hour_ago, kind="task.queued", actor="alice", object_id=TASK_ID,
                 after={"state": "queued"}, **task, **common),
        EventRow(at=hour_ago, kind="vm.changed", actor="alice", object_kind="vm",
                 object_id=VM_ID, object_name="web-1", task_id=TASK_ID,
                 before={"power_state": "running"}, after={"power_state": "stopped"}, **common),
    ]  # fmt: skip
    with runtime.sessions.begin() as session:
        session.add(
            TaskRow(
                id=TASK_ID,
                kind="vm.power",
                state="succeeded",
                requester="alice",
                vm_id=VM_ID,
                workflow_id=f"{TASK_ID}:1",
            )
        )
        for row in rows:
            session.add(row)
            session.flush()


def test_table_shows_who_did_what(seeded: None) -> None:
    result = tessera("event", "list")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    change = next(line for line in lines if "vm.changed" in line)
    assert "alice" in change and "vm web-1" in change and TASK_ID in change
    assert "power_state: running → stopped" in change
    host = next(line for line in lines if "host.changed" in line)
    assert "watch" in host and "in_maintenance: false → true" in host
    # newest first
    assert lines.index(change) < lines.index(host)


def test_json_and_filters(seeded: None) -> None:
    def kinds(*args: str) -> list[str]:
        result = tessera("event", "list", *args)
        assert result.exit_code == 0, result.output
        return [event["kind"] for event in json.loads(result.output)]

    assert kinds("--json") == ["vm.changed", "task.queued", "host.changed"]
    assert kinds("-o", "json", "--kind", "task.") == ["task.queued"]
    assert kinds("--json", "--vm", VM_ID) == ["vm.changed", "task.queued"]
    assert kinds("--json", "--task", TASK_ID, "--kind", "vm.changed") == ["vm.changed"]
    assert kinds("--json", "--actor", "watch") == ["host.changed"]
    assert kinds("--json", "--since", "1d") == ["vm.changed", "task.queued"]
    assert kinds("--json", "--until", "1d") == ["host.changed"]
    assert kinds("--json", "--provider", "p2") == []
    assert kinds("--json", "--limit", "1") == ["vm.changed"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--kind", "vm.exploded"), "unknown event kind 'vm.exploded'"),
        (("--since", "last tuesday"), "--since 'last tuesday': give an ISO 8601 time"),
        (("--since", "2026-01-02T00:00:00", "--until", "2026-01-01T00:00:00"), "is after"),
    ],
)
def test_bad_input_exits_5_with_one_line(seeded: None, args: tuple[str, ...], says: str) -> None:
    result = tessera("event", "list", *args)
    assert result.exit_code == 5, result.output
    assert says in result.output
    assert "Traceback" not in result.output
