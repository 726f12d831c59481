"""Bulk power, delete and tag over a selection: one parent task, an item per VM with its
own outcome, children that are ordinary tasks; against the lab's real backends."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tessera.cli.main import app
from tessera.config import Settings
from tessera.domain.inventory import PowerState
from tests.tasks.helpers import register, submitted, wait_task


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "state",
        watch_enabled=False,
        provider_concurrency=2,
        task_retry_interval_s=0.2,
    )


def _vms(api: TestClient, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = api.get("/v1/vms", params=params).json()["items"]
    return items


def _items(api: TestClient, task_id: str, **params: Any) -> list[dict[str, Any]]:
    page = api.get(f"/v1/tasks/{task_id}/items", params=params).json()
    items: list[dict[str, Any]] = page["items"]
    return items


def test_bulk_power_with_one_vm_locked_then_retry(api: TestClient, kvm_host_fresh: Any) -> None:
    pid = register(api, "libvirt", kvm_host_fresh, "lab-kvm")
    vms = _vms(api, provider_id=pid)
    assert len(vms) == 3
    select = {"provider_id": pid}

    start = {"select": select, "action": {"kind": "power", "action": "start"}}
    started = wait_task(api, submitted(api.post("/v1/vms/bulk", json=start)))
    assert started["state"] == "succeeded", started
    assert started["result"] == {"total": 3, "succeeded": 3, "failed": 0, "cancelled": 0}
    assert all(v["power_state"] == PowerState.RUNNING for v in _vms(api, provider_id=pid))

    # One VM is held by another task (the lab guests ignore ACPI, so a graceful stop
    # holds it for the whole wait): its item fails on its own, the others go ahead.
    held = vms[1]
    slow = {"action": "stop", "graceful_timeout_s": 4}
    holder = submitted(api.post(f"/v1/vms/{held['id']}/power", json=slow))
    preview = api.post("/v1/vms/bulk/preview", json={"select": select}).json()
    assert preview["count"] == 3
    assert [v["name"] for v in preview["vms"]] == sorted(v["name"] for v in vms)
    stop = {
        "select": select,
        "action": {"kind": "power", "action": "stop"},
        "expected_count": 3,
    }
    parent = wait_task(api, submitted(api.post("/v1/vms/bulk", json=stop)))
    assert parent["state"] == "failed", parent
    assert parent["error"]["code"] == "items_failed"
    assert "1 of 3 VMs" in parent["error"]["message"]
    assert parent["result"] == {"total": 3, "succeeded": 2, "failed": 1, "cancelled": 0}
    assert parent["progress"] == 100
    items = _items(api, parent["id"])
    assert [i["vm_name"] for i in items] == sorted(v["name"] for v in vms)
    (failed,) = [i for i in items if i["state"] == "failed"]
    assert failed["vm_id"] == held["id"] and failed["child_task_id"] is None
    assert failed["error"]["code"] == "locked" and holder in failed["error"]["message"]
    children = api.get("/v1/tasks", params={"parent_id": parent["id"]}).json()["items"]
    assert len(children) == 2
    assert {c["id"] for c in children} == {i["child_task_id"] for i in items if i["child_task_id"]}
    assert all(c["kind"] == "vm.power" and c["state"] == "succeeded" for c in children)
    assert all(c["parent_id"] == parent["id"] for c in children)
    assert len(_items(api, parent["id"], state="succeeded")) == 2

    assert wait_task(api, holder)["state"] == "succeeded"
    retried = api.post(f"/v1/tasks/{parent['id']}/retry")
    assert retried.status_code == 202 and retried.json()["attempt"] == 2
    again = wait_task(api, parent["id"])
    assert again["state"] == "succeeded", again
    assert again["result"]["succeeded"] == 3
    assert all(v["power_state"] == PowerState.STOPPED for v in _vms(api, provider_id=pid))
    assert len(api.get("/v1/tasks", params={"parent_id": parent["id"]}).json()["items"]) == 3


def test_bulk_tags_are_tessera_labels_that_syncs_keep(api: TestClient, kvm_host: Any) -> None:
    pid = register(api, "libvirt", kvm_host, "lab-kvm")
    vms = _vms(api, provider_id=pid)
    named = sorted(v["name"] for v in vms)[:2]
    select = {"provider_id": pid, "name": named[0][:-1]}  # matches every demo VM
    body = {"select": select, "action": {"kind": "tag", "add": ["team:web", "prod"]}}
    task = wait_task(api, submitted(api.post("/v1/vms/bulk", json=body)))
    assert task["state"] == "succeeded", task
    assert [s["name"] for s in task["steps"]] == ["tag"]
    tagged = _vms(api, tag="team:web")
    assert sorted(v["name"] for v in tagged) == sorted(v["name"] for v in vms)
    assert all(v["tags"] == ["prod", "team:web"] for v in tagged)
    events = api.get(f"/v1/vms/{vms[0]['id']}/events", params={"kind": "vm.changed"}).json()
    (tag_event,) = events["items"]
    assert (tag_event["before"], tag_event["after"]) == (
        {"tags": []},
        {"tags": ["prod", "team:web"]},
    )
    assert tag_event["task_id"] == task["id"] and tag_event["actor"] == "admin"

    one = api.patch(f"/v1/vms/{vms[0]['id']}/tags", json={"add": ["db"], "remove": ["prod"]})
    assert one.status_code == 200 and one.json()["tags"] == ["db", "team:web"]
    sync = wait_task(api, submitted(api.post(f"/v1/providers/{pid}/sync")))
    assert sync["state"] == "succeeded" and sync["kind"] == "provider.sync"
    assert sync["result"]["unchanged"]["vm"] == 3
    assert api.get(f"/v1/vms/{vms[0]['id']}").json()["tags"] == ["db", "team:web"]
    assert len(_vms(api, tag="prod")) == 2

    untag = {"select": {"tag": "prod"}, "action": {"kind": "tag", "remove": ["prod"]}}
    assert wait_task(api, submitted(api.post("/v1/vms/bulk", json=untag)))["state"] == "succeeded"
    assert _vms(api, tag="prod") == []


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"select": {}, "action": {"kind": "delete"}}, 422, "at least one filter"),
        ({"select": {"name": "no-such-vm"}, "action": {"kind": "delete"}}, 422, "matches no VM"),
        ({"select": {"vm_ids": ["nope"]}, "action": {"kind": "delete"}}, 404, "nope"),
        (
            {"select": {"name": "vm-"}, "action": {"kind": "delete"}, "expected_count": 99},
            409,
            "not the 99 expected",
        ),
        ({"select": {"name": "vm-"}, "action": {"kind": "tag"}}, 422, "tags to add"),
        (
            {"select": {"name": "vm-"}, "action": {"kind": "tag", "add": ["bad tag"]}},
            422,
            "add",
        ),
        (
            {"select": {"name": "vm-"}, "action": {"kind": "tag", "add": ["a"], "remove": ["a"]}},
            422,
            "both added and removed",
        ),
        ({"select": {"name": "vm-"}, "action": {"kind": "reboot"}}, 422, "kind"),
        ({"select": {"name": "vm-"}, "action": {"kind": "power", "action": "melt"}}, 422, "action"),
    ],
)
def test_bulk_bad_requests_are_refused_before_any_task(
    api: TestClient, kvm_host: Any, body: dict[str, Any], status: int, fragment: str
) -> None:
    register(api, "libvirt", kvm_host, "lab-kvm")
    response = api.post("/v1/vms/bulk", json=body)
    assert response.status_code == status, response.text
    assert fragment in response.text
    assert api.get("/v1/tasks", params={"kind": "vm.bulk.delete"}).json()["items"] == []
    assert api.get("/v1/tasks", params={"kind": "vm.bulk.tag"}).json()["items"] == []


def test_cancel_a_bulk_stop_cancels_what_has_not_run(
    api: TestClient, kvm_host_fresh: Any, runtime: Any
) -> None:
    runtime.settings.provider_concurrency = 1
    pid = register(api, "libvirt", kvm_host_fresh, "lab-kvm")
    start = {"select": {"provider_id": pid}, "action": {"kind": "power", "action": "start"}}
    assert wait_task(api, submitted(api.post("/v1/vms/bulk", json=start)))["state"] == "succeeded"
    slow = {"kind": "power", "action": "stop", "graceful_timeout_s": 3}
    parent_id = submitted(
        api.post("/v1/vms/bulk", json={"select": {"provider_id": pid}, "action": slow})
    )
    for _ in range(100):
        if any(i["state"] == "running" for i in _items(api, parent_id)):
            break
        time.sleep(0.1)
    assert api.post(f"/v1/tasks/{parent_id}/cancel").status_code == 202
    parent = wait_task(api, parent_id)
    assert parent["state"] == "cancelled", parent
    result = parent["result"]
    assert result["total"] == 3 and result["cancelled"] >= 1
    assert result["succeeded"] + result["cancelled"] == 3
    states = {i["state"] for i in _items(api, parent_id)}
    assert states <= {"succeeded", "cancelled"}
    stopped = [v for v in _vms(api, provider_id=pid) if v["power_state"] == PowerState.STOPPED]
    assert len(stopped) == result["succeeded"]


def test_bulk_through_the_cli(cli_env: dict[str, str], kvm_host: Any) -> None:
    runner = CliRunner()

    def tessera(*args: str) -> Any:
        return runner.invoke(app, list(args))

    url = kvm_host.uri
    assert tessera("provider", "add", "kvm", "--kind", "libvirt", "--url", url).exit_code == 0
    synced = tessera("provider", "sync", "kvm", "-o", "json")
    assert synced.exit_code == 0, synced.output
    assert json.loads(synced.output)[0]["vms"] == 3
    refused = tessera("vm", "bulk", "tag", "--add", "x")
    assert refused.exit_code == 5 and "at least one filter" in refused.output
    declined = runner.invoke(app, ["vm", "bulk", "tag", "--name", "vm-", "--add", "x"], input="n\n")
    assert declined.exit_code != 0 and "3 VM(s)" in declined.output
    tagged = tessera(
        "vm", "bulk", "tag", "--provider", "kvm", "--add", "cli", "--yes", "-o", "json"
    )
    assert tagged.exit_code == 0, tagged.output
    task = json.loads(tagged.stdout)
    assert task["state"] == "succeeded" and task["kind"] == "vm.bulk.tag"
    items = tessera("task", "items", task["id"], "-o", "json")
    assert [i["state"] for i in json.loads(items.output)["items"]] == ["succeeded"] * 3
    shown = json.loads(tessera("vm", "list", "--tag", "cli", "-o", "json").output)
    assert len(shown) == 3
    one = tessera("vm", "tag", shown[0]["name"], "--remove", "cli", "-o", "json")
    assert one.exit_code == 0 and json.loads(one.output)["tags"] == []
