"""A task's events are written once even when the control plane is SIGKILLed after a step
wrote its change and before the step was checkpointed, so that the step runs again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tessera.lab.kvm import RunningKvmHost
from tests.tasks.helpers import register, submitted, wait_task
from tests.tasks.test_crash_recovery import Server, _wait_for


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[Server]:
    data_dir = tmp_path / "cp"
    data_dir.mkdir()
    srv = Server(data_dir, database_url)
    yield srv
    srv.kill()


@pytest.mark.slow
def test_a_step_run_again_after_a_crash_writes_no_event_twice(
    server: Server, kvm_host_fresh: RunningKvmHost
) -> None:
    api: Any = server.start(pause_after="refresh")
    provider_id = register(api, "libvirt", kvm_host_fresh, "crash-kvm")
    # the pool was read in by a sync task: one summary event, naming that task
    params = {"provider_id": provider_id, "kind": "provider.discovered"}
    (discovered,) = api.get("/v1/events", params=params).json()["items"]
    sync = api.get(f"/v1/tasks/{discovered['task_id']}").json()
    assert (sync["kind"], discovered["after"]["vm"]) == ("provider.sync", 3)
    vms = api.get("/v1/vms", params={"provider_id": provider_id}).json()["items"]
    vm_id = next(vm["id"] for vm in vms if vm["name"] == f"{kvm_host_fresh.name}-vm-1")

    task_id = submitted(api.post(f"/v1/vms/{vm_id}/power", json={"action": "stop"}))
    _wait_for(server.data_dir / f"paused-{task_id}-refresh", server)  # its write is done
    server.kill()

    api = server.start()
    assert wait_task(api, task_id)["state"] == "succeeded"
    events = api.get("/v1/events", params={"task_id": task_id}).json()["items"][::-1]
    assert [e["kind"] for e in events] == [
        "task.queued",
        "task.running",
        "vm.changed",
        "task.succeeded",
    ]
    assert events[2]["after"] == {"power_state": "stopped"}
