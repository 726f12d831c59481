"""`tessera migration plan ...` as an operator types it, against a live API, the lab's
vCenter and a real KVM host: names instead of ids, the exit codes scripts trust (2 usage,
3 not found, 4 conflict or not ready, 10 a task failed or was cancelled), the readiness
report, start without waiting, cancel, resume with progress bars, rollback, delete."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import Result
from pyVmomi import vim
from typer.testing import CliRunner

from tessera.cli.main import app
from tessera.config import Settings
from tessera.lab.guest import install_guest
from tessera.lab.kvm import RunningKvmHost
from tessera.lab.vcsim import RunningVcsim

runner = CliRunner()
VM = "DC0_VM00001"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "state", watch_enabled=False, task_retry_interval_s=0.2)


def tessera(*args: str) -> Result:
    return runner.invoke(app, list(args))


def ok(*args: str) -> str:
    result = tessera(*args)
    assert result.exit_code == 0, f"{args}: {result.output}"
    return result.output


def _power(lab: RunningVcsim, name: str) -> str:
    with lab.operator_session() as si:
        view = si.content.viewManager.CreateContainerView(
            si.content.rootFolder, [vim.VirtualMachine], True
        )
        try:
            return str(next(v for v in view.view if v.name == name).runtime.powerState)
        finally:
            view.DestroyView()


def _names(env: dict[str, str], path: str, provider_id: str) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {env['TESSERA_API_TOKEN']}"}
    found = httpx.get(
        f"{env['TESSERA_API_URL']}{path}", params={"provider_id": provider_id}, headers=headers
    )
    return list(found.json()["items"])


def test_an_operator_plans_checks_runs_cancels_resumes_and_rolls_back(
    cli_env: dict[str, str],
    vcsim_module: RunningVcsim,
    kvm_host_module: RunningKvmHost,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    vc, kvm = vcsim_module, kvm_host_module
    monkeypatch.setenv("TESSERA_PROVIDER_PASSWORD", vc.password)
    ok("provider", "add", "vc", "--kind", "vsphere", "--url", vc.url,
       "--username", vc.username, "--insecure")  # fmt: skip
    ok("provider", "add", "kvm", "--kind", "libvirt", "--url", kvm.uri)
    ok("provider", "sync", "vc")
    ok("provider", "sync", "kvm")
    providers = {p["name"]: p["id"] for p in json.loads(ok("provider", "list", "-o", "json"))}
    plain = next(n for n in _names(cli_env, "/v1/networks", providers["kvm"]) if not n["vlan_id"])
    pool = _names(cli_env, "/v1/datastores", providers["kvm"])[0]["name"]
    networks = sorted({n["name"] for n in _names(cli_env, "/v1/networks", providers["vc"])})
    stores = sorted({d["name"] for d in _names(cli_env, "/v1/datastores", providers["vc"])})
    install_guest(vc, VM, tmp_path)
    assert _power(vc, VM) == "poweredOn"
    base = ("migration", "plan")

    # Mistakes are refused before anything is stored.
    bad_map = tessera(*base, "create", "move", "--source", "vc", "--target", "kvm",
                      "--vm", VM, "--network", "no-equals-sign")  # fmt: skip
    assert bad_map.exit_code == 2 and "SOURCE=TARGET" in bad_map.output
    no_net = tessera(*base, "create", "move", "--source", "vc", "--target", "kvm",
                     "--vm", VM, "--network", f"no-such-portgroup={plain['name']}")  # fmt: skip
    assert no_net.exit_code == 3 and "no-such-portgroup" in no_net.output
    no_vm = tessera(*base, "create", "move", "--source", "vc", "--target", "kvm",
                    "--vm", "no-such-vm")  # fmt: skip
    assert no_vm.exit_code == 3, no_vm.output
    assert tessera(*base, "show", "move").exit_code == 3

    # A draft whose networks are not mapped yet: readiness says what blocks it (exit 4),
    # and start refuses the same way.
    storage = [arg for name in stores for arg in ("--storage", f"{name}={pool}")]
    made = json.loads(ok(*base, "create", "move", "--source", "vc", "--target", "kvm",
                         "--vm", VM, *storage, "-o", "json"))  # fmt: skip
    assert (made["state"], made["target_format"], made["mode"]) == ("draft", "qcow2", "cold")
    assert made["parallelism"] == 1
    again = tessera(*base, "create", "move", "--source", "vc", "--target", "kvm", "--vm", VM)
    assert again.exit_code == 4 and "exists" in again.output
    assert "move" in ok(*base, "list") and "draft" in ok(*base, "list")
    blocked = tessera(*base, "readiness", "move")
    assert blocked.exit_code == 4 and "unmapped_network" in blocked.output
    assert "NOT ready" in blocked.output
    refused = tessera(*base, "start", "move")
    assert refused.exit_code == 4 and "network map" in refused.output
    assert tessera(*base, "edit", "move").exit_code == 2  # nothing to change

    network = [arg for name in networks for arg in ("--network", f"{name}={plain['name']}")]
    too_many = tessera(*base, "update", "move", "--parallelism", "9")
    assert too_many.exit_code == 5 and "parallelism" in too_many.output, too_many.output
    edited = json.loads(ok(*base, "update", "move", "--target-format", "raw", *network,
                           "--parallelism", "2", "-o", "json"))  # fmt: skip
    assert edited["target_format"] == "raw" and edited["network_map"]
    assert edited["parallelism"] == 2
    assert set(edited["network_map"].values()) == {plain["id"]}
    ready = ok(*base, "readiness", "move")
    assert "ready:" in ready and "NOT" not in ready

    # Start without waiting, cancel: the task ends cancelled (exit 10 for `task wait`),
    # the VM is rolled back and its source powered on again.
    started = ok(*base, "start", "move", "--no-wait")
    task_id = re.search(r"task (\S+)", started)
    assert task_id is not None, started
    ok(*base, "cancel", "move")
    waited = tessera("task", "wait", task_id.group(1))
    assert waited.exit_code == 10, waited.output
    shown = json.loads(ok(*base, "show", "move", "-o", "json"))
    assert shown["state"] == "cancelled"
    # Cancelled mid-way, or before its turn came (then nothing of it ran).
    (vm,) = shown["vms"]
    untouched = vm["state"] == "pending" and set(vm["phases"].values()) <= {"pending"}
    assert vm["state"] == "cancelled" or untouched, vm
    assert _power(vc, VM) == "poweredOn"
    assert tessera(*base, "cancel", "move").exit_code == 4  # nothing running
    assert tessera(*base, "edit", "move", "--target-format", "qcow2").exit_code == 4
    assert not list((kvm.home / "pool").glob(f"mig-{shown['id'][:8]}-*"))

    # Resume and wait: a progress bar per disk, the plan's outcome, exit 0.
    resumed = ok(*base, "resume", "move")
    assert f"{VM} disk 0" in resumed and "plan move: succeeded" in resumed, resumed
    table = ok(*base, "show", "move")
    assert "migrated" in table and "cutover" in table
    assert _power(vc, VM) == "poweredOff"
    # The migrated VM now has its name on the KVM side too: --vm still means the source's.
    ok("provider", "sync", "kvm")
    ok(*base, "create", "again", "--source", "vc", "--target", "kvm", "--vm", VM, *storage)
    second = json.loads(ok(*base, "show", "again", "-o", "json"))
    assert second["vms"][0]["vm_id"] == shown["vms"][0]["vm_id"]
    ok(*base, "delete", "again")

    # Rollback: the source on again, the target gone; then the plan is forgotten.
    assert "plan move: rolled_back" in ok(*base, "rollback", "move")
    assert _power(vc, VM) == "poweredOn"
    assert not list((kvm.home / "pool").glob(f"mig-{shown['id'][:8]}-*"))
    ok(*base, "delete", "move")
    assert tessera(*base, "show", "move").exit_code == 3
