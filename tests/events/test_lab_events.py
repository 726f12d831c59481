"""Events against the lab's real backends, read through the API: a change made on a pool
arrives through its watch feed; a task's transitions and the change it made are in the
log in order, under the task's requester."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest
from fastapi.testclient import TestClient
from pyVim.task import WaitForTask
from pyVmomi import vim

from tessera.config import Settings
from tessera.inventory import pools
from tessera.inventory.watcher import WatchManager
from tessera.runtime import Runtime
from tests.tasks.helpers import submitted, wait_task


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """One task at a time per pool, so a second task deterministically waits."""
    return Settings(
        data_dir=tmp_path / "state",
        watch_enabled=False,
        provider_concurrency=1,
        task_retry_interval_s=0.2,
    )


@pytest.fixture
def watchers(runtime: Runtime) -> Iterator[WatchManager]:
    manager = WatchManager(runtime)
    yield manager
    manager.stop_all()


def _events(api: TestClient, path: str = "/v1/events", **params: Any) -> list[dict[str, Any]]:
    response = api.get(path, params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _eventually(read: Callable[[], list[dict[str, Any]]], timeout_s: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (found := read()):
        assert time.monotonic() < deadline, "no such event in time"
        time.sleep(0.1)
    return found


def _spec(kind: str, member: Any) -> pools.ProviderSpec:
    if kind == "vsphere":
        return pools.ProviderSpec(
            name="lab-vc",
            kind=kind,
            url=member.url,
            username=member.username,
            password=member.password,
            verify_tls=False,
        )
    return pools.ProviderSpec(name="lab-kvm", kind=kind, url=member.uri)


def _vm_id(api: TestClient, provider_id: str, name: str) -> str:
    items = api.get("/v1/vms", params={"provider_id": provider_id, "name": name}).json()["items"]
    (vm,) = [item for item in items if item["name"] == name]
    return str(vm["id"])


def _power_off_on_the_pool(kind: str, member: Any) -> str:
    """Power a running VM off behind Tessera's back, as an operator would; its name."""
    if kind == "libvirt":
        conn = libvirt.open(member.uri)
        try:
            domain = conn.lookupByName(f"{member.name}-vm-1")
            domain.destroy()
            return str(domain.name())
        finally:
            conn.close()
    with member.operator_session() as si:
        content = si.RetrieveContent()
        view = content.viewManager.CreateContainerView(
            content.rootFolder, [vim.VirtualMachine], True
        )
        vm = next(v for v in view.view if v.runtime.powerState == "poweredOn")
        WaitForTask(vm.PowerOffVM_Task())
        name = str(vm.name)
        view.Destroy()
        return name


@pytest.mark.parametrize(
    ("kind", "lab"), [("libvirt", "kvm_host_fresh"), ("vsphere", "vcsim_fresh")]
)
def test_a_change_on_the_pool_is_a_watch_event(
    api: TestClient,
    runtime: Runtime,
    watchers: WatchManager,
    kind: str,
    lab: str,
    request: pytest.FixtureRequest,
) -> None:
    member = request.getfixturevalue(lab)
    provider_id = pools.add_provider(runtime, _spec(kind, member)).id
    watchers.start(provider_id)
    # the watcher's first full sync: one summary, no event per object
    (discovered,) = _eventually(lambda: _events(api, provider_id=provider_id))
    assert (discovered["kind"], discovered["actor"]) == ("provider.discovered", "sync")
    assert discovered["after"]["vm"] > 0

    name = _power_off_on_the_pool(kind, member)
    vm_id = _vm_id(api, provider_id, name)
    (changed,) = _eventually(
        lambda: _events(api, f"/v1/vms/{vm_id}/events", kind="vm.changed", actor="watch")
    )
    assert (changed["object_id"], changed["object_name"]) == (vm_id, name)
    assert (changed["provider_id"], changed["task_id"]) == (provider_id, None)
    assert changed["before"] == {"power_state": "running"}
    assert changed["after"] == {"power_state": "stopped"}


def _register(runtime: Runtime, member: Any) -> str:
    provider_id = pools.add_provider(runtime, _spec("libvirt", member)).id
    pools.sync_provider(runtime, provider_id)
    return provider_id


def _in_order(api: TestClient, task_id: str) -> list[dict[str, Any]]:
    return _events(api, task_id=task_id)[::-1]


def test_a_task_run_is_logged_in_order_with_the_change_it_made(
    api: TestClient, runtime: Runtime, kvm_host_fresh: Any
) -> None:
    provider_id = _register(runtime, kvm_host_fresh)
    vm_id = _vm_id(api, provider_id, f"{kvm_host_fresh.name}-vm-1")
    task_id = submitted(api.post(f"/v1/vms/{vm_id}/power", json={"action": "stop"}))
    assert wait_task(api, task_id)["state"] == "succeeded"

    events = _in_order(api, task_id)
    assert [e["kind"] for e in events] == [
        "task.queued",
        "task.running",
        "vm.changed",
        "task.succeeded",
    ]
    assert {e["actor"] for e in events} == {"admin"}
    assert {e["provider_id"] for e in events} == {provider_id}
    queued, running, changed, succeeded = events
    assert (queued["object_kind"], queued["object_id"], queued["object_name"]) == (
        "task",
        task_id,
        "vm.power",
    )
    assert queued["after"]["vm_id"] == vm_id
    assert (running["before"], running["after"]["state"]) == ({"state": "queued"}, "running")
    assert (succeeded["before"], succeeded["after"]["state"]) == ({"state": "running"}, "succeeded")
    assert (changed["object_kind"], changed["object_id"]) == ("vm", vm_id)
    assert changed["before"] == {"power_state": "running"}
    assert changed["after"] == {"power_state": "stopped"}
    # from the VM, the same story
    assert [e["id"] for e in _events(api, f"/v1/vms/{vm_id}/events")][:4] == [
        e["id"] for e in events[::-1]
    ]


def test_cancel_retry_and_failure_are_logged(
    api: TestClient, runtime: Runtime, kvm_host_fresh: Any
) -> None:
    provider_id = _register(runtime, kvm_host_fresh)
    running = _vm_id(api, provider_id, f"{kvm_host_fresh.name}-vm-1")
    stopped = _vm_id(api, provider_id, f"{kvm_host_fresh.name}-vm-2")
    # The lab guests ignore ACPI: this stop holds the pool's one slot for its whole wait,
    # so the rename behind it is cancelled before it starts.
    slow_stop = {"action": "stop", "graceful_timeout_s": 4}
    stop_id = submitted(api.post(f"/v1/vms/{running}/power", json=slow_stop))
    rename_id = submitted(api.post(f"/v1/vms/{stopped}/rename", json={"name": "renamed"}))
    assert api.post(f"/v1/tasks/{rename_id}/cancel").status_code == 202
    assert wait_task(api, rename_id)["state"] == "cancelled"
    assert wait_task(api, stop_id)["state"] == "succeeded"
    cancelled = _in_order(api, rename_id)
    assert [e["kind"] for e in cancelled] == [
        "task.queued",
        "task.cancel_requested",
        "task.running",
        "task.cancelled",
    ]
    assert cancelled[1]["before"] == {"cancel_requested": False}
    assert cancelled[-1]["message"] == "cancelled: cancelled before step rename"
    assert cancelled[-1]["after"]["error_code"] == "cancelled"

    assert api.post(f"/v1/tasks/{rename_id}/retry").status_code == 202
    assert wait_task(api, rename_id)["state"] == "succeeded"
    again = _in_order(api, rename_id)[len(cancelled) :]
    assert [e["kind"] for e in again] == [
        "task.retried",
        "task.queued",
        "task.running",
        "vm.changed",
        "task.succeeded",
    ]
    assert again[0]["before"] == {"state": "cancelled", "attempt": 1}
    assert again[0]["after"]["attempt"] == again[1]["after"]["attempt"] == 2
    assert (again[3]["before"], again[3]["after"]) == (
        {"name": f"{kvm_host_fresh.name}-vm-2"},
        {"name": "renamed"},
    )

    revert = api.post(f"/v1/vms/{stopped}/snapshots/no-such-snapshot/revert")
    failed_id = submitted(revert)
    assert wait_task(api, failed_id)["state"] == "failed"
    (failed,) = _events(api, task_id=failed_id, kind="task.failed")
    assert "no-such-snapshot" in failed["message"]
    assert failed["after"]["error_code"] == failed["message"].split(":")[0]
    assert failed["before"] == {"state": "running"}
    # the VM's history holds both tasks run on it, not the stop of the other VM
    on_vm = {e["task_id"] for e in _events(api, f"/v1/vms/{stopped}/events", kind="task.")}
    assert on_vm == {rename_id, failed_id}
