"""Faults of a running migration: the control plane SIGKILLed in the middle of a warm
copy (a new process resumes the plan after the last completed round and finishes it with
equal digests), and the target KVM host going down during the copy (the plan fails
cleanly: the source as it was, nothing left on the target).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tessera.lab import labdisk
from tessera.lab.kvm import RunningKvmHost
from tessera.lab.vcsim import RunningVcsim
from tessera.migration import warm
from tests.migration.test_cold_migration import Lab, _datastore_file, _vm
from tests.migration.test_warm_migration import WRITES, rounds_of, source_cbt, wait_plan
from tests.tasks.helpers import submitted, wait_task
from tests.tasks.test_crash_recovery import Server

DISK_SIZE = 256 << 20


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    data_dir = tmp_path / "cp"
    data_dir.mkdir()
    srv = Server(data_dir, f"sqlite:///{tmp_path / 'tessera.db'}")
    yield srv
    srv.kill()


def test_a_warm_migration_killed_mid_copy_resumes_after_the_last_round(
    server: Server, vcsim_module: RunningVcsim, kvm_host_module: RunningKvmHost
) -> None:
    vm_name = "DC0_VM00002"
    disk = labdisk.install_flat_guest(vcsim_module, vm_name, DISK_SIZE)
    before = _vm(vcsim_module, vm_name)
    lab = Lab(server.start(), vcsim_module, kvm_host_module)  # type: ignore[arg-type]
    plan = lab.plan("warm-crash", [vm_name], mode="warm")
    task_id = submitted(lab.api.post(f"/v1/migration-plans/{plan['id']}/start"))
    full_copy = rounds_of(wait_plan(lab.api, plan["id"], lambda p: len(rounds_of(p)) >= 1))[0]
    for offset, length in WRITES:
        labdisk.write(vcsim_module, disk, offset, b"\x5a" * length)
    assert lab.api.get(f"/v1/tasks/{task_id}").json()["state"] == "running"
    server.kill()  # while the next round waits: the full copy is done and checkpointed

    lab.api = server.start()  # type: ignore[assignment]
    task = wait_task(lab.api, task_id, 300)
    assert task["state"] == "succeeded", task
    shown = lab.api.get(f"/v1/migration-plans/{plan['id']}").json()
    (copied,) = shown["vms"][0]["disks"]
    rounds = copied["rounds"]
    # Resumed after the last completed round: the full copy ran once, no round twice.
    assert rounds[0] == full_copy and rounds[0]["bytes"] > 0, rounds
    assert [r["round"] for r in rounds] == list(range(len(rounds))), rounds
    assert sum(r["bytes"] for r in rounds[1:]) == sum(length for _, length in WRITES)

    flat = _datastore_file(vcsim_module, before["disks"][0][0]).with_name(f"{vm_name}-flat.vmdk")
    target_file = kvm_host_module.home / "pool" / copied["volume"]
    compared = subprocess.run(
        ["qemu-img", "compare", "-f", "raw", "-F", "qcow2", str(flat), str(target_file)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert compared.returncode == 0, compared.stdout + compared.stderr
    assert source_cbt(vcsim_module, vm_name) == (False, 0)
    after = _vm(vcsim_module, vm_name)
    assert {k: v for k, v in after.items() if k not in ("power", "annotation")} == {
        k: v for k, v in before.items() if k not in ("power", "annotation")
    }


def test_the_target_host_going_down_fails_the_plan_cleanly(
    api: TestClient,
    vcsim_module: RunningVcsim,
    kvm_host_fresh: RunningKvmHost,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(warm, "ROUND_INTERVAL_S", 2.0)
    vm_name = "DC0_VM00003"
    labdisk.install_flat_guest(vcsim_module, vm_name, DISK_SIZE)
    before = _vm(vcsim_module, vm_name)
    assert before["power"] == "poweredOn"
    lab = Lab(api, vcsim_module, kvm_host_fresh)
    plan = lab.plan("warm-host-down", [vm_name], mode="warm")
    task_id = submitted(api.post(f"/v1/migration-plans/{plan['id']}/start"))
    wait_plan(api, plan["id"], lambda p: len(rounds_of(p)) >= 1)
    staging = kvm_host_fresh.home / "pool" / warm.staging_name(plan["id"], 0, 0, "qcow2")
    assert staging.exists()
    kvm_host_fresh.stop()

    task = wait_task(api, task_id, 120)
    assert task["state"] == "failed", task
    assert task["error"]["code"] == "provider_failed", task["error"]
    assert "reaching provider mig-kvm failed (unreachable)" in task["error"]["message"]
    shown = api.get(f"/v1/migration-plans/{plan['id']}").json()
    (vm,) = shown["vms"]
    # The first phase that needs the target fails: a copy round, or, when the last round
    # finished before the host went, the power-off that checks the target first.
    assert shown["state"] == "failed" and vm["state"] == "failed"
    assert vm["phase"] in ("copy", "power_off"), vm
    # The source as it was: running, its CBT off again, no snapshot, no annotation.
    assert _vm(vcsim_module, vm_name) == before
    assert source_cbt(vcsim_module, vm_name) == (False, 0)
    # The target: the staging volume the worker wrote is gone.
    assert not staging.exists()
