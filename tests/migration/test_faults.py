"""Faults in the middle of a migration's copy: the network to the datastore dropping
(cold and warm) and an operator's cancel (during the copy and during verify). Each time
the plan must stop at that phase with a clear error, the source must be as it was
(power, annotation, snapshots, CBT), nothing of the plan may stay on the target, and
`resume` must then finish the migration with the copy equal to the source.

The datastore's HTTP file traffic, and only it, goes through a loopback proxy
(tests.fixtures.netfault) that cuts or stalls it once the copy's stream has passed a
given number of bytes: the fault lands mid-copy by byte count, not by timing luck. The
vCenter API itself stays reachable, as it would when only the bulk path breaks.
"""

from __future__ import annotations

import dataclasses
import subprocess
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from tessera.lab import labdisk
from tessera.lab.kvm import RunningKvmHost
from tessera.lab.vcsim import RunningVcsim
from tessera.migration import transfer, warm
from tessera.migration.model import DatastoreFile
from tessera.providers.vsphere import export
from tests.fixtures.netfault import CuttingProxy
from tests.migration.test_cold_migration import Lab, _datastore_file, _vm
from tests.migration.test_warm_migration import source_cbt, wait_plan
from tests.tasks.helpers import submitted, wait_task

DISK_SIZE = 256 << 20
# One connection carrying this much is the copy's stream (header reads carry a few MiB).
MID_COPY = 48 << 20
# A warm round 0 reads the guest's 12 MiB of data in ranges over one connection.
MID_ROUND = 6 << 20
# A dropped copy must fail within this, not hang on retries or on a dead connection.
FAIL_WITHIN_S = 90.0
STALL_S = 8.0


@pytest.fixture
def lab(api: TestClient, vcsim_module: RunningVcsim, kvm_host_module: RunningKvmHost) -> Lab:
    return Lab(api, vcsim_module, kvm_host_module)


@pytest.fixture
def proxy(
    cutting_proxy: type[CuttingProxy], vcsim_module: RunningVcsim, monkeypatch: pytest.MonkeyPatch
) -> CuttingProxy:
    """A proxy in front of the lab vCenter that the datastore file URLs point at."""
    parts = urlsplit(vcsim_module.url)
    made = cutting_proxy(parts.hostname or "127.0.0.1", parts.port or 443)
    real = export.datastore_file

    def routed(provider: Any, datacenter: str, ds_path: str) -> DatastoreFile:
        found = real(provider, datacenter, ds_path)
        url = urlsplit(found.url)._replace(netloc=f"127.0.0.1:{made.port}").geturl()
        return dataclasses.replace(found, url=url)

    monkeypatch.setattr(export, "datastore_file", routed)
    return made


def _source(lab: Lab, name: str) -> dict[str, Any]:
    """Everything of the source a failed migration must leave as it was."""
    return {**_vm(lab.vc, name), "cbt_snapshots": source_cbt(lab.vc, name)}


def _assert_clean(lab: Lab, plan: dict[str, Any], vm_name: str, before: dict[str, Any]) -> None:
    assert _source(lab, vm_name) == before
    assert lab.domain(vm_name) is None
    assert not list((lab.kvm.home / "pool").glob(f"mig-{plan['id'][:8]}-*"))


def _assert_same_disk(lab: Lab, vm_name: str, before: dict[str, Any], volume: str) -> None:
    flat = _datastore_file(lab.vc, before["disks"][0][0]).with_name(f"{vm_name}-flat.vmdk")
    compared = subprocess.run(
        ["qemu-img", "compare", "-f", "raw", "-F", "qcow2", str(flat),
         str(lab.kvm.home / "pool" / volume)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert compared.returncode == 0, compared.stdout + compared.stderr


def _stopped_at(lab: Lab, plan: dict[str, Any], state: str, phase: str) -> dict[str, Any]:
    shown: dict[str, Any] = lab.api.get(f"/v1/migration-plans/{plan['id']}").json()
    (vm,) = shown["vms"]
    assert (shown["state"], vm["state"], vm["phase"]) == (state, state, phase), shown
    assert set(vm["phases"].values()) == {"pending"} and vm["disks"] == [], vm
    return dict(vm)


def _until(check: Any, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.parametrize("mode", ["cold", "warm"])
def test_a_network_drop_during_the_copy_fails_it_cleanly_and_resume_finishes(
    lab: Lab, proxy: CuttingProxy, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setattr(warm, "ROUND_INTERVAL_S", 0.5)
    monkeypatch.setattr(transfer, "STALL_S", STALL_S)
    vm_name = "DC0_VM00000" if mode == "cold" else "DC0_VM00001"
    labdisk.install_flat_guest(lab.vc, vm_name, DISK_SIZE)
    before = _source(lab, vm_name)
    assert before["power"] == "poweredOn"
    plan = lab.plan(f"drop-{mode}", [vm_name], mode=mode)
    proxy.cut_after(MID_COPY if mode == "cold" else MID_ROUND, per_connection=True)

    started = time.monotonic()
    task = lab.run(plan)
    assert proxy.tripped
    assert time.monotonic() - started < FAIL_WITHIN_S
    assert task["state"] == "failed", task
    assert task["error"]["code"] == "copy_failed", task["error"]
    assert task["error"]["message"].startswith("copy failed: "), task["error"]
    assert "reading" in task["error"]["message"], task["error"]
    vm = _stopped_at(lab, plan, "failed", "copy")
    assert vm["error"] and "reading" in vm["error"], vm
    _assert_clean(lab, plan, vm_name, before)

    proxy.heal()
    again = lab.run(plan, "resume")
    assert again["state"] == "succeeded", again.get("error")
    (vm,) = lab.api.get(f"/v1/migration-plans/{plan['id']}").json()["vms"]
    assert vm["state"] == "migrated"
    _assert_same_disk(lab, vm_name, before, vm["disks"][0]["volume"])
    assert source_cbt(lab.vc, vm_name) == before["cbt_snapshots"]


def test_cancel_during_the_copy_and_during_verify_undoes_it_and_resume_finishes(
    lab: Lab, proxy: CuttingProxy
) -> None:
    vm_name = "DC0_VM00002"
    labdisk.install_flat_guest(lab.vc, vm_name, DISK_SIZE)
    before = _source(lab, vm_name)
    plan = lab.plan("cancel", [vm_name])

    # During the copy: the stream stalls half-way, so the cancel finds qemu-img running.
    proxy.stall_after(MID_COPY)
    task_id = submitted(lab.api.post(f"/v1/migration-plans/{plan['id']}/start"))
    _until(lambda: proxy.tripped)
    shown = lab.api.get(f"/v1/migration-plans/{plan['id']}").json()
    assert shown["vms"][0]["phases"]["copy"] == "running", shown
    assert lab.api.post(f"/v1/migration-plans/{plan['id']}/cancel").status_code == 202
    task = wait_task(lab.api, task_id, 120)
    assert task["state"] == "cancelled", task
    _stopped_at(lab, plan, "cancelled", "copy")
    _assert_clean(lab, plan, vm_name, before)
    proxy.heal()

    # During verify: the migrated VM booted and the guest has not printed its marker yet.
    task_id = submitted(lab.api.post(f"/v1/migration-plans/{plan['id']}/resume"))
    wait_plan(lab.api, plan["id"], lambda p: p["vms"][0]["phases"]["verify"] == "running", 180)
    assert lab.domain(vm_name) is not None
    assert lab.api.post(f"/v1/migration-plans/{plan['id']}/cancel").status_code == 202
    task = wait_task(lab.api, task_id, 120)
    assert task["state"] == "cancelled", task
    _stopped_at(lab, plan, "cancelled", "verify")
    _assert_clean(lab, plan, vm_name, before)

    again = lab.run(plan, "resume")
    assert again["state"] == "succeeded", again.get("error")
    (vm,) = lab.api.get(f"/v1/migration-plans/{plan['id']}").json()["vms"]
    _assert_same_disk(lab, vm_name, before, vm["disks"][0]["volume"])


def test_a_vcenter_drop_during_the_copy_is_waited_out_by_the_rollback(
    api: TestClient,
    vcsim_module: RunningVcsim,
    kvm_host_module: RunningKvmHost,
    cutting_proxy: type[CuttingProxy],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The whole vCenter (API and datastore) goes away mid-copy and comes back a moment
    later: the rollback waits for it, so the source is powered on again and the target
    cleaned, rather than the source left off."""
    monkeypatch.setattr(transfer, "STALL_S", STALL_S)
    parts = urlsplit(vcsim_module.url)
    through = cutting_proxy(parts.hostname or "127.0.0.1", parts.port or 443)
    proxied = dataclasses.replace(vcsim_module, url=f"https://127.0.0.1:{through.port}/sdk")
    lab = Lab(api, proxied, kvm_host_module)  # type: ignore[arg-type]
    lab.vc = vcsim_module  # the test's own checks go straight to vCenter
    vm_name = "DC0_VM00003"
    labdisk.install_flat_guest(lab.vc, vm_name, DISK_SIZE)
    before = _source(lab, vm_name)
    plan = lab.plan("vc-drop", [vm_name])
    through.cut_after(MID_COPY, per_connection=True)

    task_id = submitted(api.post(f"/v1/migration-plans/{plan['id']}/start"))
    wait_plan(api, plan["id"], lambda p: p["vms"][0]["phases"]["copy"] == "failed")
    assert through.tripped
    through.heal()  # while the rollback waits for the source
    task = wait_task(api, task_id, 120)
    assert task["state"] == "failed", task
    assert task["error"]["code"] == "copy_failed", task["error"]
    assert "rollback failed" not in task["error"]["message"], task["error"]
    _stopped_at(lab, plan, "failed", "copy")
    _assert_clean(lab, plan, vm_name, before)
