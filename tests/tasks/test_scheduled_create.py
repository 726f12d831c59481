"""VM creates the scheduler places, against the lab's real KVM host and vCenter: the VM
lands where the dry run said, the task tells where and why, and the placement claim
counts while the task is unfinished and is gone once it ends, however it ends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tessera.cli.main import app
from tessera.config import Settings
from tessera.db.rows import PlacementClaimRow
from tessera.domain.inventory import NetworkKind, PowerState
from tessera.runtime import Runtime
from tests.tasks.helpers import register, submitted, wait_task

GIB = 1 << 30


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Overcommit enough for the lab vCenter's small hosts to take a VM; one task at a
    time per pool, so a task can be held in the queue behind another."""
    return Settings(
        data_dir=tmp_path / "state",
        watch_enabled=False,
        provider_concurrency=1,
        task_retry_interval_s=0.2,
        cpu_allocation_ratio=16.0,
        ram_allocation_ratio=8.0,
    )


def _network(api: TestClient, provider_id: str, kind: str) -> str:
    networks = api.get("/v1/networks", params={"provider_id": provider_id}).json()["items"]
    if kind == "vsphere":
        return str(next(n["id"] for n in networks if n["kind"] == NetworkKind.DVS_PORTGROUP))
    # The lab's tagged network is OVS-backed and cannot start guests: the plain one can.
    return str(next(n["id"] for n in networks if n["vlan_id"] is None))


def _claims(runtime: Runtime) -> list[PlacementClaimRow]:
    with runtime.sessions() as session:
        return list(session.query(PlacementClaimRow))


@pytest.mark.parametrize(
    ("kind", "strategy", "lands_on"),
    [("libvirt", "spread", "host"), ("vsphere", "pack", "cluster")],
)
def test_a_create_without_pool_or_host_lands_where_the_dry_run_said(
    api: TestClient,
    runtime: Runtime,
    kvm_host_module: Any,
    vcsim_module: Any,
    kind: str,
    strategy: str,
    lands_on: str,
) -> None:
    """Both pools are candidates; the NIC's network pins one of them (networks are per
    pool), and packing the lab vCenter picks its DRS cluster over its lone host."""
    pools = {
        "libvirt": register(api, "libvirt", kvm_host_module, "lab-kvm"),
        "vsphere": register(api, "vsphere", vcsim_module, "lab-vc"),
    }
    body = {
        "name": f"placed-{kind}",
        "cpus": 1,
        "memory_mib": 64,
        "disks": [{"size_gib": 1}, {"size_gib": 2}],
        "nics": [{"network_id": _network(api, pools[kind], kind)}],
        "strategy": strategy,
    }
    dry = api.post("/v1/vms/dry-run", json=body)
    assert dry.status_code == 200, dry.text
    chosen, datastore = dry.json()["chosen"], dry.json()["datastore"]
    assert (chosen["provider_id"], chosen["kind"]) == (pools[kind], lands_on)
    assert {r["provider_id"] for r in dry.json()["rejected"]} == {pools[k] for k in pools} - {
        pools[kind]
    }

    task = wait_task(api, submitted(api.post("/v1/vms", json=body)))
    assert task["state"] == "succeeded", task
    placed = task["result"]["placement"]
    assert (placed["candidate_id"], placed["kind"], placed["provider_id"]) == (
        chosen["id"],
        lands_on,
        pools[kind],
    )
    assert (placed["datastore_id"], placed["summary"]) == (datastore["id"], dry.json()["summary"])
    assert task["provider_id"] == pools[kind]

    vm = api.get(f"/v1/vms/{task['result']['vm_id']}").json()
    assert vm["provider_id"] == pools[kind]
    if lands_on == "host":
        assert vm["host_id"] == chosen["id"]
    else:  # DRS chose the host, inside the cluster
        hosts = api.get("/v1/hosts", params={"provider_id": pools[kind]}).json()["items"]
        assert vm["host_id"] in {h["id"] for h in hosts if h["cluster_id"] == chosen["id"]}
    assert sorted(d["size_bytes"] for d in vm["disks"]) == [GIB, 2 * GIB]
    assert {d["datastore_id"] for d in vm["disks"]} == {datastore["id"]}
    assert _claims(runtime) == []


def _kvm_host(api: TestClient, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The KVM host as the dry run of `body` sees it, and the chosen datastore's room."""
    decision = api.post("/v1/vms/dry-run", json=body).json()
    return decision["chosen"], decision["datastore"]["free_bytes"]


def test_a_claim_counts_until_its_task_ends_however_it_ends(
    api: TestClient, runtime: Runtime, kvm_host_fresh: Any
) -> None:
    provider_id = register(api, "libvirt", kvm_host_fresh, "lab-kvm")
    vms = api.get("/v1/vms", params={"provider_id": provider_id}).json()["items"]
    running = next(vm for vm in vms if vm["power_state"] == PowerState.RUNNING)
    networks = api.get("/v1/networks", params={"provider_id": provider_id}).json()["items"]
    tagged = next(n["id"] for n in networks if n["vlan_id"] is not None)
    probe = {"name": "probe", "cpus": 1, "memory_mib": 16, "disks": [{"size_gib": 1}]}
    before, free_before = _kvm_host(api, probe)

    # The lab guests ignore ACPI: this stop holds the pool's one task slot for 15 s (long
    # enough on a loaded CI machine), so the creates behind it stay queued while we look.
    slow_stop = {"action": "stop", "graceful_timeout_s": 15}
    stop_id = submitted(api.post(f"/v1/vms/{running['id']}/power", json=slow_stop))
    made = {"cpus": 1, "memory_mib": 96, "disks": [{"size_gib": 1}]}
    ok_id = submitted(api.post("/v1/vms", json={**made, "name": "claim-ok"}))
    cancelled_id = submitted(
        api.post("/v1/vms", json={"name": "claim-cancelled", "cpus": 2, "memory_mib": 80})
    )
    failing = {**made, "name": "claim-fails", "nics": [{"network_id": tagged}], "power_on": True}
    failing_id = submitted(api.post("/v1/vms", json=failing))
    assert api.post(f"/v1/tasks/{cancelled_id}/cancel").status_code == 202

    queued, free_queued = _kvm_host(api, probe)
    assert api.get(f"/v1/tasks/{ok_id}").json()["state"] == "queued"
    assert queued["vcpus_used"] == before["vcpus_used"] + 1 + 2 + 1
    assert queued["memory_mib_used"] == before["memory_mib_used"] + 96 + 80 + 96
    assert free_queued == free_before - 2 * GIB

    assert wait_task(api, stop_id)["state"] == "succeeded"
    assert wait_task(api, ok_id)["state"] == "succeeded"
    assert wait_task(api, cancelled_id)["state"] == "cancelled"
    failed = wait_task(api, failing_id)
    assert failed["state"] == "failed", failed
    assert failed["result"]["placement"]["candidate_id"] == before["id"]
    assert "the VM it had made was deleted" in failed["error"]["message"]

    # Only the VM that exists counts now, through its own inventory row.
    after, free_after = _kvm_host(api, probe)
    assert after["vcpus_used"] == before["vcpus_used"] + 1
    assert after["memory_mib_used"] == before["memory_mib_used"] + 96
    assert free_after == free_before
    assert _claims(runtime) == []


runner = CliRunner()


def tessera(*args: str) -> Any:
    return runner.invoke(app, list(args))


def test_vm_create_through_the_cli_without_a_pool(
    cli_env: dict[str, str], kvm_host_module: Any
) -> None:
    uri = kvm_host_module.uri
    assert tessera("provider", "add", "kvm-cli", "--kind", "libvirt", "--url", uri).exit_code == 0
    assert tessera("provider", "sync", "kvm-cli").exit_code == 0
    args = ("vm", "create", "cli-placed", "--memory-mib", "64", "--disk", "1", "--strategy", "pack")

    dry = tessera(*args, "--dry-run", "-o", "json")
    assert dry.exit_code == 0, dry.output
    decision = json.loads(dry.output)
    assert decision["chosen"]["provider_name"] == "kvm-cli"
    table = tessera(*args, "--dry-run")
    assert table.exit_code == 0, table.output
    assert "fit (1, best first)" in table.output and "rejected (0)" in table.output
    creates = ("task", "list", "--kind", "vm.create", "-o", "json")
    assert json.loads(tessera(*creates).output) == []  # a dry run makes nothing

    made = tessera(*args, "-o", "json")
    assert made.exit_code == 0, made.output
    task = json.loads(made.output)
    assert task["state"] == "succeeded"
    assert task["result"]["placement"]["candidate_id"] == decision["chosen"]["id"]
    shown = json.loads(tessera("task", "show", task["id"], "-o", "json").output)
    assert shown["result"]["placement"]["summary"] == decision["summary"]

    assert tessera("vm", "create", "x", "--zone", "nowhere").exit_code == 5
    too_big = tessera("vm", "create", "x", "--cpus", "256")
    assert too_big.exit_code == 4
    assert "no candidate fits: 1 considered, rejected 1 by cpu" in too_big.output
