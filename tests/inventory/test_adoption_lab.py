"""Adoption against the lab vCenter: VMs found in a folder are adopted in place, a
project member then runs day-2 operations on them, changes made behind Tessera's back in
vCenter show up as events of the project, and a release leaves the VMs as they were."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pyVim.task import WaitForTask
from pyVmomi import vim
from sqlalchemy import select

from tessera.config import Settings
from tessera.db.rows import EventRow
from tessera.inventory.watcher import WatchManager
from tessera.runtime import Runtime
from tests.identity.tenants import as_client, ok
from tests.tasks.helpers import register, submitted, wait_task

FOLDER = "/DC0/vm/adopted"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "state", watch_enabled=False, task_retry_interval_s=0.2)


@pytest.fixture
def watchers(runtime: Runtime) -> Iterator[WatchManager]:
    manager = WatchManager(runtime)
    yield manager
    manager.stop_all()


def _vms_in(si: Any, folder_name: str) -> list[Any]:
    """Move the lab's first two VMs into a new folder of DC0's VM folder; them."""
    datacenter = si.RetrieveContent().rootFolder.childEntity[0]
    vms = sorted(
        (vm for vm in datacenter.vmFolder.childEntity if isinstance(vm, vim.VirtualMachine)),
        key=lambda vm: vm.name,
    )
    vms = [vm for vm in vms if not vm.config.template][:2]
    folder = datacenter.vmFolder.CreateFolder(folder_name)
    WaitForTask(folder.MoveIntoFolder_Task(vms))
    return vms


def _done(client: TestClient, response: Any) -> dict[str, Any]:
    task = wait_task(client, submitted(response))
    assert task["state"] == "succeeded", task
    return task


def _config(vm: Any) -> tuple[Any, ...]:
    """What vCenter holds of a VM; changeVersion moves with any reconfiguration."""
    return (
        vm.config.changeVersion,
        vm.name,
        vm.config.hardware.numCPU,
        vm.config.hardware.memoryMB,
        vm.runtime.powerState,
        vm.runtime.host._moId,
        vm.parent._moId,
        vm.config.annotation,
    )


def _wait_for(found: Callable[[], Any], timeout_s: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = found()
        if value:
            return value
        assert time.monotonic() < deadline, "not seen in time"
        time.sleep(0.1)


def _drift(client: TestClient, vm_id: str) -> dict[str, tuple[Any, Any, str]]:
    """Each field the VM's `vm.changed` events show changing: (first value, last value,
    who saw the last change). The client reads only its own project's events."""
    events = ok(client.get(f"/v1/vms/{vm_id}/events", params={"kind": "vm.changed"}))["items"]
    seen: dict[str, tuple[Any, Any, str]] = {}
    for event in reversed(events):  # oldest first
        for field, after in event["after"].items():
            first = seen.get(field, (event["before"][field],))[0]
            seen[field] = (first, after, event["actor"])
    return seen


def test_adopt_in_place_run_day2_see_drift_and_release(
    api: TestClient, runtime: Runtime, vcsim_fresh: Any, watchers: WatchManager
) -> None:
    with vcsim_fresh.operator_session() as si:
        moved = _vms_in(si, "adopted")
        names = sorted(vm.name for vm in moved)
        pool = register(api, "vsphere", vcsim_fresh, "lab-vc")

        listed = ok(api.get("/v1/vms/unmanaged", params={"folder": FOLDER}))["items"]
        assert sorted(vm["name"] for vm in listed) == names
        assert {vm["folder"] for vm in listed} == {FOLDER}
        everything = ok(api.get("/v1/vms/unmanaged", params={"limit": 100}))["items"]
        assert {vm["folder"] for vm in everything} == {FOLDER, "/DC0/vm"}

        web = ok(api.post("/v1/projects", json={"name": "web"}), 201)["id"]
        ok(api.put(f"/v1/projects/{web}/grants/provider/{pool}"), 204)
        password = "pw-alice-1234"
        user = ok(api.post("/v1/users", json={"name": "alice", "password": password}), 201)
        ok(api.put(f"/v1/projects/{web}/members/{user['id']}", json={"role": "member"}), 204)
        alice = as_client(
            api,
            ok(api.post("/v1/auth/login", json={"user": "alice", "password": password}))["token"],
        )
        assert ok(alice.get("/v1/vms"))["items"] == []

        body = {"select": {"folder": FOLDER}, "project_id": web, "expected_count": 2}
        _done(api, api.post("/v1/vms/adopt", json=body))
        mine = ok(alice.get("/v1/vms"))["items"]
        assert sorted(vm["name"] for vm in mine) == names

        # day-2 operations by the project's member, on the VMs where they are
        first, second = sorted(mine, key=lambda vm: vm["name"])
        vm_id = first["id"]
        target = next(
            h["id"] for h in ok(alice.get("/v1/hosts"))["items"] if h["id"] != first["host_id"]
        )
        if first["power_state"] == "running":
            _done(alice, alice.post(f"/v1/vms/{vm_id}/power", json={"action": "stop"}))
        _done(alice, alice.post(f"/v1/vms/{vm_id}/rename", json={"name": "web-renamed"}))
        _done(alice, alice.post(f"/v1/vms/{vm_id}/snapshots", json={"name": "before"}))
        _done(alice, alice.post(f"/v1/vms/{vm_id}/migrate", json={"host_id": target}))
        _done(alice, alice.post(f"/v1/vms/{vm_id}/power", json={"action": "start"}))
        shown = ok(alice.get(f"/v1/vms/{vm_id}"))
        assert (shown["name"], shown["host_id"], shown["power_state"]) == (
            "web-renamed",
            target,
            "running",
        )
        assert shown["project_id"] == web
        assert ok(api.get("/v1/vms/unmanaged", params={"folder": FOLDER}))["items"] == []

        # drift: changes made straight in vCenter reach the project as events; the lab's
        # simulator reports a reconfiguration on its change feed as a device change only,
        # so CPU and memory arrive with the next full read (a real vCenter sends them)
        watchers.start(pool)
        time.sleep(1.0)  # the feed's first full read, which finds nothing new
        behind = next(vm for vm in moved if vm.name == second["name"])
        if behind.runtime.powerState == "poweredOn":
            WaitForTask(behind.PowerOffVM_Task())
            flipped = ("running", "stopped", "watch")
        else:
            WaitForTask(behind.PowerOnVM_Task())
            flipped = ("stopped", "running", "watch")
        assert _wait_for(lambda: _drift(alice, second["id"]).get("power_state")) == flipped
        WaitForTask(behind.Rename_Task("renamed-in-vcenter"))
        renamed = _wait_for(lambda: _drift(alice, second["id"]).get("name"))
        assert renamed == (second["name"], "renamed-in-vcenter", "watch")
        WaitForTask(behind.ReconfigVM_Task(vim.vm.ConfigSpec(numCPUs=3, memoryMB=768)))
        _done(api, api.post(f"/v1/providers/{pool}/sync"))
        seen = _drift(alice, second["id"])
        assert seen["cpu_count"] == (second["cpu_count"], 3, "sync")
        assert seen["memory_mib"] == (second["memory_mib"], 768, "sync")
        assert ok(alice.get(f"/v1/vms/{second['id']}"))["name"] == "renamed-in-vcenter"
        with runtime.sessions() as session:
            projects = session.scalars(
                select(EventRow.project_id).where(
                    EventRow.object_id == second["id"], EventRow.kind == "vm.changed"
                )
            )
            assert set(projects) == {web}
        watchers.stop_all()

        # release: back to the platform, nothing sent to vCenter
        before = [_config(vm) for vm in moved]
        release = {"select": {"project_id": web}, "expected_count": 2}
        _done(api, api.post("/v1/vms/release", json=release))
        assert [_config(vm) for vm in moved] == before
        assert ok(alice.get("/v1/vms"))["items"] == []
        back = ok(api.get("/v1/vms/unmanaged", params={"folder": FOLDER}))["items"]
        assert sorted(vm["name"] for vm in back) == ["renamed-in-vcenter", "web-renamed"]
