"""A plan migrating its VMs in parallel: with parallelism 2, two lab VMs copy at the same
time (their copy phases overlap in the recorded phase events); one VM whose disk is
corrupt fails, is rolled back and leaves its source as it was, while the other still
migrates; `resume`, once the disk is fixed, migrates only the failed VM. The readiness
estimate then uses the copy speeds measured on the way. A cancel reaches every VM in
flight.
"""

from __future__ import annotations

import statistics
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tessera.lab.guest import install_guest
from tessera.lab.kvm import RunningKvmHost
from tessera.lab.vcsim import RunningVcsim
from tessera.migration.model import PHASES
from tests.migration.test_cold_migration import Lab, _vm, corrupt_disk
from tests.migration.test_warm_migration import wait_plan
from tests.tasks.helpers import submitted, wait_task

GOOD, BAD = "DC0_VM00000", "DC0_VM00001"


@pytest.fixture
def lab(api: TestClient, vcsim_module: RunningVcsim, kvm_host_module: RunningKvmHost) -> Lab:
    return Lab(api, vcsim_module, kvm_host_module)


def _phase_events(api: TestClient, plan_id: str) -> list[dict[str, Any]]:
    found = api.get(
        "/v1/events", params={"object_id": plan_id, "kind": "migration.phase.", "limit": 500}
    )
    assert found.status_code == 200, found.text
    return list(found.json()["items"])


def _copy_window(events: list[dict[str, Any]], vm_name: str) -> tuple[datetime, datetime]:
    """When the VM's copy phase started and when it ended (done or failed)."""
    mine = [e for e in events if e["after"]["vm"] == vm_name and e["after"]["phase"] == "copy"]
    started = min(datetime.fromisoformat(e["at"]) for e in mine if e["after"]["state"] == "running")
    ended = max(
        datetime.fromisoformat(e["at"]) for e in mine if e["after"]["state"] in ("done", "failed")
    )
    return started, ended


def test_parallel_plan_carries_on_past_a_failed_vm_and_resume_migrates_only_it(
    lab: Lab, tmp_path: Path
) -> None:
    install_guest(lab.vc, GOOD, tmp_path / "good")
    corrupt_disk(lab, BAD, tmp_path)
    bad_before = _vm(lab.vc, BAD)
    assert bad_before["power"] == "poweredOn"
    plan = lab.plan("wave", [GOOD, BAD], parallelism=2)
    assert plan["parallelism"] == 2
    report = lab.api.post(f"/v1/migration-plans/{plan['id']}/readiness").json()
    assert report["ready"], report
    assert (report["estimate_basis"], report["estimate_copies"]) == ("default", 0)

    task = lab.run(plan)
    assert task["state"] == "failed", task
    message = task["error"]["message"]
    assert message.startswith("1 of 2 VMs migrated, 1 failed or cancelled: "), message
    assert f"{BAD}: copy failed" in message and GOOD not in message
    shown = lab.api.get(f"/v1/migration-plans/{plan['id']}").json()
    assert shown["state"] == "failed"
    good, bad = shown["vms"]
    assert good["state"] == "migrated" and {good["phases"][p] for p in PHASES} == {"done"}, good
    assert (bad["state"], bad["phase"]) == ("failed", "copy") and bad["error"], bad
    assert {bad["phases"][p] for p in PHASES} == {"pending"} and bad["disks"] == [], bad

    # Both copies ran at the same time.
    good_copy, bad_copy = (_copy_window(_phase_events(lab.api, plan["id"]), n) for n in (GOOD, BAD))
    assert max(good_copy[0], bad_copy[0]) < min(good_copy[1], bad_copy[1]), (good_copy, bad_copy)

    # The failed VM: its source as it was, nothing of it on the target; the other stays.
    assert _vm(lab.vc, BAD) == bad_before
    assert lab.domain(BAD) is None
    pool = lab.kvm.home / "pool"
    assert not list(pool.glob(f"mig-{plan['id'][:8]}-1-*"))
    assert lab.domain(GOOD) is not None and (pool / good["disks"][0]["volume"]).exists()

    # Fixed, the plan resumes with the failed VM only.
    install_guest(lab.vc, BAD, tmp_path / "fixed")
    again = lab.run(plan, "resume")
    assert again["state"] == "succeeded", again.get("error")
    shown = lab.api.get(f"/v1/migration-plans/{plan['id']}").json()
    assert shown["state"] == "succeeded"
    assert [v["state"] for v in shown["vms"]] == ["migrated", "migrated"]
    assert shown["vms"][0]["target_native_id"] == good["target_native_id"]
    resumed = [e for e in _phase_events(lab.api, plan["id"]) if e["task_id"] == again["id"]]
    assert resumed and {e["after"]["vm"] for e in resumed} == {BAD}
    assert lab.domain(BAD) is not None

    # The estimate now assumes the speed the two copies measured.
    speeds = [d["mib_s"] for v in shown["vms"] for d in v["disks"]]
    assert len(speeds) == 2 and min(speeds) > 0
    other = lab.plan("next-wave", ["DC0_VM00002"])
    report = lab.api.post(f"/v1/migration-plans/{other['id']}/readiness").json()
    assert report["estimate_basis"] == "measured over 2 copies", report
    assert report["estimate_mib_s"] == pytest.approx(statistics.median(speeds), abs=0.1)
    (vm,) = report["vms"]
    assert vm["estimate_s"] == pytest.approx(
        vm["transfer_bytes"] / (report["estimate_mib_s"] * (1 << 20)), abs=0.1
    )


def test_a_cancel_reaches_every_running_vm(lab: Lab, tmp_path: Path) -> None:
    names = ["DC0_VM00004", "DC0_VM00005"]
    for name in names:
        install_guest(lab.vc, name, tmp_path / name)
    before = {name: _vm(lab.vc, name) for name in names}
    plan = lab.plan("cancel-wave", names, parallelism=2)
    task_id = submitted(lab.api.post(f"/v1/migration-plans/{plan['id']}/start"))
    # Both migrated VMs booting at once, their guests not done yet.
    wait_plan(
        lab.api,
        plan["id"],
        lambda p: all(v["phases"]["verify"] == "running" for v in p["vms"]),
        180,
    )
    assert lab.api.post(f"/v1/migration-plans/{plan['id']}/cancel").status_code == 202

    task = wait_task(lab.api, task_id, 120)
    assert (task["state"], task["error"]["code"]) == ("cancelled", "cancelled"), task
    assert task["error"]["message"].startswith("0 of 2 VMs migrated, 2 failed or cancelled")
    shown = lab.api.get(f"/v1/migration-plans/{plan['id']}").json()
    assert shown["state"] == "cancelled"
    assert [(v["state"], v["phase"]) for v in shown["vms"]] == [("cancelled", "verify")] * 2
    for name in names:
        assert _vm(lab.vc, name) == before[name]
        assert lab.domain(name) is None
    assert not list((lab.kvm.home / "pool").glob(f"mig-{plan['id'][:8]}-*"))


def test_parallelism_is_1_to_8_and_editable_while_draft(lab: Lab) -> None:
    for wrong in (0, 9):
        body = {**_body(lab, f"p{wrong}"), "parallelism": wrong}
        answer = lab.api.post("/v1/migration-plans", json=body)
        assert answer.status_code == 422, answer.text
    plan = lab.plan("knob", ["DC0_VM00003"])
    assert plan["parallelism"] == 1
    url = f"/v1/migration-plans/{plan['id']}"
    assert lab.api.patch(url, json={"parallelism": 9}).status_code == 422
    edited = lab.api.patch(url, json={"parallelism": 4})
    assert edited.status_code == 200 and edited.json()["parallelism"] == 4
    assert lab.api.get(url).json()["parallelism"] == 4


def _body(lab: Lab, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "source_provider_id": lab.source,
        "target_provider_id": lab.target,
        "vm_ids": [lab.vm_id("DC0_VM00003")],
    }
