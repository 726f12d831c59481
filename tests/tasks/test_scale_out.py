"""Scale-out on PostgreSQL: a stateless API (tasks off) in front of two `tessera worker`
processes, each with its own data dir and executor id, sharing the database and keys.

A worker SIGKILLed mid-step must be noticed by the other's sweeper (heartbeats), its
workflow resumed there on the original queue, the task finished exactly once, and the
dead worker, restarted with its old id, must not run it again.
"""

from __future__ import annotations

import base64
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
from tessera.db.rows import TaskRow, VMLockRow, WorkerRow
from tessera.lab.kvm import RunningKvmHost, free_port
from tessera.providers.base import Endpoint
from tessera.providers.libvirt.driver import LibvirtProvider
from tessera.runtime import Runtime, ensure_admin_token
from tests.conftest import _postgres_database
from tests.tasks.helpers import create_body, register, submitted, wait_task

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

TIMEOUT_S = 3.0


class Proc:
    """A `tessera` subcommand as a child of its own session, so SIGKILL is exact."""

    def __init__(self, data_dir: Path, argv: list[str], env: dict[str, str]) -> None:
        data_dir.mkdir(exist_ok=True)
        self.data_dir, self.argv, self.env = data_dir, argv, env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, **extra: str) -> None:
        env = {**os.environ, **self.env, "TESSERA_DATA_DIR": str(self.data_dir), **extra}
        if "TESSERA_TASK_PAUSE_AFTER_STEP" not in extra:
            env.pop("TESSERA_TASK_PAUSE_AFTER_STEP", None)
        log = (self.data_dir / "process.log").open("ab")
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "tessera"), *self.argv],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return (self.data_dir / "process.log").read_text(errors="replace")

    def kill(self) -> None:
        if self.alive():
            assert self.proc is not None
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


class Cluster:
    """The API and the workers of one test, over one throw-away PostgreSQL database."""

    def __init__(self, root: Path, database_url: str) -> None:
        self.root, self.database_url = root, database_url
        key = base64.b64encode(os.urandom(32)).decode()
        self.env = {
            "TESSERA_DATABASE_URL": database_url,
            "TESSERA_SECRET_KEYS": f"k1:{key}",
            "TESSERA_WATCH_ENABLED": "false",
            "TESSERA_WORKER_HEARTBEAT_S": "0.5",
            "TESSERA_WORKER_TIMEOUT_S": str(TIMEOUT_S),
        }
        self.procs: list[Proc] = []

    def api(self) -> httpx.Client:
        port = free_port()
        proc = Proc(self.root / "api", ["serve", "--no-worker"], self.env)
        self.procs.append(proc)
        proc.start(TESSERA_API_PORT=str(port))
        token = ensure_admin_token(Settings(data_dir=proc.data_dir))
        client = httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        deadline = time.monotonic() + 60
        while True:
            assert proc.alive(), proc.log()
            try:
                if client.get("/healthz").status_code == 200:
                    return client
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the API did not start"
            time.sleep(0.2)

    def worker(self, name: str, **extra: str) -> Proc:
        proc = Proc(self.root / name, ["worker"], {**self.env, "TESSERA_EXECUTOR_ID": name})
        self.procs.append(proc)
        proc.start(**extra)
        return proc

    def rows(self) -> Runtime:
        return Runtime.open(
            Settings(data_dir=self.root / "check", database_url=self.database_url), migrate=False
        )

    def stop(self) -> None:
        for proc in self.procs:
            proc.kill()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    for database_url in _postgres_database():
        cl = Cluster(tmp_path, database_url)
        try:
            yield cl
        finally:
            cl.stop()


def _wait_for(path: Path, worker: Proc, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert worker.alive(), worker.log()
        assert time.monotonic() < deadline, f"never reached {path.name}"
        time.sleep(0.1)


def _vms(host: RunningKvmHost, name: str) -> list[Any]:
    with LibvirtProvider(Endpoint(host.uri)) as provider:
        return [vm for vm in provider.list_inventory().vms if vm.name == name]


def _assert_built_once(host: RunningKvmHost, name: str) -> None:
    made = _vms(host, name)
    assert len(made) == 1, made
    (vm,) = made
    assert sorted(d.size_bytes for d in vm.disks) == [1 << 30, 2 << 30]
    assert len(vm.nics) == 2 and len({n.mac for n in vm.nics}) == 2


def test_a_killed_workers_task_finishes_once_on_the_other(
    cluster: Cluster, kvm_host_fresh: RunningKvmHost
) -> None:
    api: Any = cluster.api()
    worker_a = cluster.worker("worker-a", TESSERA_TASK_PAUSE_AFTER_STEP="disk-1")
    provider_id = register(api, "libvirt", kvm_host_fresh, "scale-kvm")
    task_id = submitted(api.post("/v1/vms", json=create_body(api, "libvirt", provider_id, "sv")))
    _wait_for(worker_a.data_dir / f"paused-{task_id}-disk-1", worker_a)

    worker_b = cluster.worker("worker-b")
    worker_a.kill()
    task = wait_task(api, task_id, timeout_s=60)
    assert task["state"] == "succeeded", task
    assert task["executor_id"] == "worker-b"
    assert all(s["state"] == "succeeded" for s in task["steps"]), task["steps"]
    ran_by = {s["name"]: s["executor"] for s in task["steps"]}
    assert ran_by["create"] == ran_by["disk-0"] == "worker-a"
    assert ran_by["disk-1"] == ran_by["refresh"] == "worker-b"
    _assert_built_once(kvm_host_fresh, "sv")

    # The dead worker comes back under its old id: nothing is left for it to run.
    worker_a.start()
    time.sleep(3 * 0.5 + 2)
    assert worker_a.alive() and worker_b.alive(), worker_a.log() + worker_b.log()
    assert api.get(f"/v1/tasks/{task_id}").json() == task
    _assert_built_once(kvm_host_fresh, "sv")
    rt = cluster.rows()
    try:
        with rt.sessions() as session:
            assert session.query(VMLockRow).count() == 0
            assert session.query(TaskRow).filter(TaskRow.kind == "vm.create").count() == 1
            assert {w.executor_id for w in session.query(WorkerRow)} == {"worker-a", "worker-b"}
    finally:
        rt.close()


def test_two_live_workers_never_run_one_task_twice(
    cluster: Cluster, kvm_host_fresh: RunningKvmHost
) -> None:
    api: Any = cluster.api()
    workers = [cluster.worker("worker-a"), cluster.worker("worker-b")]
    provider_id = register(api, "libvirt", kvm_host_fresh, "scale-kvm")
    names = [f"sv-{i}" for i in range(4)]
    task_ids = [
        submitted(api.post("/v1/vms", json=create_body(api, "libvirt", provider_id, name)))
        for name in names
    ]
    for task_id in task_ids:
        task = wait_task(api, task_id, timeout_s=60)
        assert task["state"] == "succeeded", task
        # One worker ran every step of it, and no takeover happened between live workers.
        assert {s["executor"] for s in task["steps"]} == {task["executor_id"]}, task["steps"]
    for name in names:
        _assert_built_once(kvm_host_fresh, name)
    assert all(w.alive() for w in workers)
