"""SIGKILL the control plane in the middle of a create, restart it, and check on the real
libvirt host that the task finished exactly once.

The kill lands after a step's side effect and before its checkpoint (the worst moment):
the server is told to hang there (TESSERA_TASK_PAUSE_AFTER_STEP), which only picks the
moment; the restarted server runs without the hook and must redo that step harmlessly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tessera.config import Settings
from tessera.db.rows import TaskRow, VMLockRow
from tessera.lab.kvm import RunningKvmHost, free_port
from tessera.providers.base import Endpoint
from tessera.providers.libvirt.driver import LibvirtProvider
from tessera.runtime import Runtime, ensure_admin_token
from tests.tasks.helpers import create_body, register, submitted, wait_task


class Server:
    """`tessera serve` as a child process of its own session, so SIGKILL is exact."""

    def __init__(self, data_dir: Path, database_url: str) -> None:
        self.data_dir = data_dir
        self.database_url = database_url
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self, pause_after: str | None = None) -> httpx.Client:
        env = {
            **os.environ,
            "TESSERA_DATA_DIR": str(self.data_dir),
            "TESSERA_DATABASE_URL": self.database_url,
            "TESSERA_API_PORT": str(self.port),
            "TESSERA_WATCH_ENABLED": "false",
        }
        env.pop("TESSERA_TASK_PAUSE_AFTER_STEP", None)
        if pause_after:
            env["TESSERA_TASK_PAUSE_AFTER_STEP"] = pause_after
        log = (self.data_dir / "server.log").open("ab")
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "tessera"), "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        token = ensure_admin_token(Settings(data_dir=self.data_dir))
        client = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, (self.data_dir / "server.log").read_text()
            try:
                if client.get("/healthz").status_code == 200:
                    return client
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[Server]:
    data_dir = tmp_path / "cp"
    data_dir.mkdir()
    srv = Server(data_dir, database_url)
    yield srv
    srv.kill()


def _wait_for(path: Path, server: Server, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert server.proc is not None and server.proc.poll() is None, "server died"
        assert time.monotonic() < deadline, f"never reached {path.name}"
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.parametrize("step", ["create", "disk-1", "nic-0"])
def test_a_create_killed_mid_step_finishes_exactly_once(
    server: Server, kvm_host_fresh: RunningKvmHost, step: str
) -> None:
    api: Any = server.start(pause_after=step)
    provider_id = register(api, "libvirt", kvm_host_fresh, "crash-kvm")
    body = create_body(api, "libvirt", provider_id, "crash-vm")
    task_id = submitted(api.post("/v1/vms", json=body))
    _wait_for(server.data_dir / f"paused-{task_id}-{step}", server)
    server.kill()

    api = server.start()
    task = wait_task(api, task_id)
    assert task["state"] == "succeeded", task
    assert task["attempt"] == 1 and task["error"] is None
    assert all(s["state"] == "succeeded" for s in task["steps"]), task["steps"]

    with LibvirtProvider(Endpoint(kvm_host_fresh.uri)) as provider:
        made = [vm for vm in provider.list_inventory().vms if vm.name == "crash-vm"]
    assert len(made) == 1, made
    (vm,) = made
    assert sorted(d.size_bytes for d in vm.disks) == [1 << 30, 2 << 30]
    assert len(vm.nics) == 2
    assert len({n.mac for n in vm.nics}) == 2
    shown = api.get(f"/v1/vms/{task['result']['vm_id']}").json()
    assert (len(shown["disks"]), len(shown["nics"])) == (2, 2)
    server.kill()

    rt = Runtime.open(Settings(data_dir=server.data_dir, database_url=server.database_url))
    try:
        with rt.sessions() as session:
            assert session.query(VMLockRow).count() == 0
            assert session.query(TaskRow).filter(TaskRow.kind == "vm.create").count() == 1
    finally:
        rt.close()


@pytest.mark.slow
def test_a_bulk_task_killed_after_fanning_out_makes_each_child_once(
    server: Server, kvm_host_fresh: RunningKvmHost
) -> None:
    api: Any = server.start(pause_after="fan-out")
    provider_id = register(api, "libvirt", kvm_host_fresh, "crash-kvm")
    body = {"select": {"provider_id": provider_id}, "action": {"kind": "power", "action": "start"}}
    task_id = submitted(api.post("/v1/vms/bulk", json=body))
    _wait_for(server.data_dir / f"paused-{task_id}-fan-out", server)
    server.kill()

    api = server.start()
    task = wait_task(api, task_id)
    assert task["state"] == "succeeded", task
    assert task["result"] == {"total": 3, "succeeded": 3, "failed": 0, "cancelled": 0}
    children = api.get("/v1/tasks", params={"parent_id": task_id}).json()["items"]
    assert len(children) == 3 and all(c["state"] == "succeeded" for c in children)
    items = api.get(f"/v1/tasks/{task_id}/items").json()["items"]
    assert {i["child_task_id"] for i in items} == {c["id"] for c in children}
    with LibvirtProvider(Endpoint(kvm_host_fresh.uri)) as provider:
        states = {vm.name: vm.power_state.value for vm in provider.list_inventory().vms}
    assert set(states.values()) == {"running"}, states
