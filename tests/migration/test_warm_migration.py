"""Warm migration of a running lab VM carrying the lab guest on a flat (VMFS-like) disk:
a full copy while it runs, delta rounds from the lab vCenter's CBT with writes made
between them, then power-off, the last delta and cutover. The copy must equal the source
(qemu-img compare), the delta rounds must read only what was written, the migrated VM
must boot and show the source's MACs, and the source must keep its CBT setting and have
no snapshot left.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pyVmomi import vim

from tessera.lab import labdisk
from tessera.lab.guest import GUEST_SIZE, MARKER, NIC_PREFIX
from tessera.lab.kvm import RunningKvmHost
from tessera.lab.vcsim import RunningVcsim
from tessera.migration import warm
from tests.migration.test_cold_migration import Lab, _datastore_file, _vm
from tests.tasks.helpers import submitted, wait_task

DISK_SIZE = 256 << 20
# Areas the "guest" writes while the first delta round waits: (offset, bytes).
WRITES = [(GUEST_SIZE + (1 << 20), 64 << 10), (100 << 20, 4096), ((200 << 20) + 512, 12345)]


@pytest.fixture
def lab(api: TestClient, vcsim_module: RunningVcsim, kvm_host_module: RunningKvmHost) -> Lab:
    return Lab(api, vcsim_module, kvm_host_module)


def source_cbt(vc: RunningVcsim, name: str) -> tuple[bool, int]:
    """The source's CBT setting and how many snapshots it has, as vCenter has them."""
    with vc.operator_session() as si:
        view = si.content.viewManager.CreateContainerView(
            si.content.rootFolder, [vim.VirtualMachine], True
        )
        vm = next(v for v in view.view if v.name == name)
        tree = list(vm.snapshot.rootSnapshotList) if vm.snapshot else []
        view.DestroyView()
        return bool(vm.config.changeTrackingEnabled), len(tree)


def wait_plan(api: Any, plan_id: str, done: Any, timeout_s: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        shown: dict[str, Any] = api.get(f"/v1/migration-plans/{plan_id}").json()
        if done(shown):
            return shown
        assert shown["state"] in ("draft", "running"), shown
        assert time.monotonic() < deadline, shown
        time.sleep(0.1)


def rounds_of(shown: dict[str, Any]) -> list[dict[str, Any]]:
    disks = shown["vms"][0]["disks"]
    return list(disks[0]["rounds"]) if disks else []


@pytest.mark.parametrize("fmt", ["qcow2"])
def test_warm_migration_copies_changes_in_rounds_and_cuts_over(
    lab: Lab, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    monkeypatch.setattr(warm, "ROUND_INTERVAL_S", 3.0)
    vm_name = "DC0_VM00000"
    disk = labdisk.install_flat_guest(lab.vc, vm_name, DISK_SIZE)
    before = _vm(lab.vc, vm_name)
    assert before["power"] == "poweredOn"
    assert source_cbt(lab.vc, vm_name) == (False, 0)

    plan = lab.plan(f"warm-{fmt}", [vm_name], fmt, mode="warm")
    report = lab.api.post(f"/v1/migration-plans/{plan['id']}/readiness").json()
    assert report["ready"], report
    task_id = submitted(lab.api.post(f"/v1/migration-plans/{plan['id']}/start"))

    # The full copy is done while the VM runs; the guest then writes some areas.
    wait_plan(lab.api, plan["id"], lambda p: len(rounds_of(p)) >= 1)
    assert _vm(lab.vc, vm_name)["power"] == "poweredOn"
    assert source_cbt(lab.vc, vm_name)[0] is True
    for offset, length in WRITES:
        labdisk.write(lab.vc, disk, offset, bytes([offset % 251 or 1]) * length)

    task = wait_task(lab.api, task_id, 300)
    assert task["state"] == "succeeded", task.get("error")
    shown = lab.api.get(f"/v1/migration-plans/{plan['id']}").json()
    (vm,) = shown["vms"]
    assert vm["state"] == "migrated" and vm["phases"]["final_sync"] == "done"
    (copied,) = vm["disks"]
    assert copied["state"] == "done" and copied["identical"] is True

    # Round 0 read the allocated areas only (the guest, not the whole disk); the delta
    # rounds together read exactly the areas written, each once.
    rounds = copied["rounds"]
    assert [r["round"] for r in rounds] == list(range(len(rounds))) and len(rounds) >= 3
    assert 0 < rounds[0]["bytes"] <= GUEST_SIZE < DISK_SIZE
    assert sum(r["bytes"] for r in rounds[1:]) == sum(length for _, length in WRITES)
    assert rounds[-1]["bytes"] == 0  # the final delta, after power-off: nothing new

    # Digest: the guest sees the same bytes in the target as in the source.
    flat = _datastore_file(lab.vc, before["disks"][0][0]).with_name(f"{vm_name}-flat.vmdk")
    target_file = lab.kvm.home / "pool" / copied["volume"]
    compared = subprocess.run(
        ["qemu-img", "compare", "-f", "raw", "-F", fmt, str(flat), str(target_file)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert compared.returncode == 0, compared.stdout + compared.stderr
    assert not list((lab.kvm.home / "pool").glob("*.warm.img")), "the staging volume stays"

    # The migrated VM booted and printed the marker and the source's MACs in order.
    dom = lab.domain(vm_name)
    assert dom is not None
    serial = Path(dom.find("devices/serial/source").get("path")).read_text(errors="replace")
    assert MARKER in serial
    assert [ln.split()[-1] for ln in serial.splitlines() if ln.startswith(NIC_PREFIX)] == (
        before["macs"]
    )

    # The source: CBT back off, no snapshot of ours, powered off by the cutover.
    assert source_cbt(lab.vc, vm_name) == (False, 0)
    after = _vm(lab.vc, vm_name)
    assert after["power"] == "poweredOff"
    assert {k: v for k, v in after.items() if k not in ("power", "annotation")} == {
        k: v for k, v in before.items() if k not in ("power", "annotation")
    }
    events = lab.api.get("/v1/events", params={"object_id": plan["id"]}).json()["items"]
    round_events = [e for e in events if e["kind"] == "migration.phase.round"]
    assert len(round_events) == len(rounds) - 1  # the final delta is final_sync's

    undone = lab.run(plan, "rollback")
    assert undone["state"] == "succeeded", undone
    assert _vm(lab.vc, vm_name)["power"] == "poweredOn"
    assert lab.domain(vm_name) is None and not target_file.exists()


def test_warm_mode_refuses_a_sparse_disk(lab: Lab, tmp_path: Path) -> None:
    from tessera.lab.guest import install_guest

    install_guest(lab.vc, "DC0_VM00001", tmp_path)
    plan = lab.plan("warm-sparse", ["DC0_VM00001"], mode="warm")
    report = lab.api.post(f"/v1/migration-plans/{plan['id']}/readiness").json()
    codes = {f["code"] for f in report["vms"][0]["findings"] if f["severity"] == "blocking"}
    assert codes == {"warm_needs_flat_disk"}, report
    assert lab.api.post(f"/v1/migration-plans/{plan['id']}/start").status_code == 409
