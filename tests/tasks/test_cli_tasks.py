"""`tessera vm create|start|stop|rename|delete` and `tessera task ...` against a live API
and a real KVM host: exit 0 when the task succeeded, 10 when it failed."""

from __future__ import annotations

import json
from typing import Any

import httpx
from typer.testing import CliRunner

from tessera.cli.main import app

runner = CliRunner()


def tessera(*args: str) -> Any:
    return runner.invoke(app, list(args))


def test_vm_lifecycle_through_the_cli(cli_env: dict[str, str], kvm_host_fresh: Any) -> None:
    uri = kvm_host_fresh.uri
    assert tessera("provider", "add", "kvm", "--kind", "libvirt", "--url", uri).exit_code == 0
    assert tessera("provider", "sync", "kvm").exit_code == 0
    headers = {"Authorization": f"Bearer {cli_env['TESSERA_API_TOKEN']}"}
    networks = httpx.get(f"{cli_env['TESSERA_API_URL']}/v1/networks", headers=headers).json()[
        "items"
    ]
    plain = next(n["name"] for n in networks if n["vlan_id"] is None)

    made = tessera(
        "vm", "create", "cli-vm", "--provider", "kvm", "--memory-mib", "64",
        "--disk", "1", "--disk", "2", "--nic", plain, "--nic", f"{plain}=52:54:00:aa:bb:cc",
        "--power-on", "-o", "json",
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    task = json.loads(made.output)
    assert task["state"] == "succeeded" and task["kind"] == "vm.create"
    shown = json.loads(tessera("vm", "show", "cli-vm", "-o", "json").output)
    assert len(shown["disks"]) == 2 and len(shown["nics"]) == 2
    assert "52:54:00:aa:bb:cc" in [n["mac"] for n in shown["nics"]]
    assert shown["power_state"] == "running"

    # libvirt renames stopped VMs only: the task fails, and the CLI says so with exit 10.
    refused = tessera("vm", "rename", "cli-vm", "cli-renamed")
    assert refused.exit_code == 10, refused.output
    assert "failed" in refused.output
    failed_id = json.loads(tessera("task", "list", "--state", "failed", "-o", "json").output)[0][
        "id"
    ]
    assert tessera("task", "show", failed_id).exit_code == 0
    assert tessera("task", "wait", failed_id).exit_code == 10

    assert tessera("vm", "stop", "cli-vm").exit_code == 0
    retried = tessera("task", "retry", failed_id, "-o", "json")
    assert retried.exit_code == 0, retried.output
    assert json.loads(retried.output)["attempt"] == 2
    assert tessera("vm", "start", "cli-renamed", "--no-wait").exit_code == 0
    pending = json.loads(tessera("task", "list", "--kind", "vm.power", "-o", "json").output)[0]
    assert tessera("task", "wait", pending["id"]).exit_code == 0
    assert tessera("task", "cancel", pending["id"]).exit_code == 4  # already finished
    assert tessera("vm", "delete", "cli-renamed").exit_code == 0
    assert tessera("vm", "show", "cli-renamed").exit_code == 3


def test_vm_operations_through_the_cli(cli_env: dict[str, str], kvm_host_module: Any) -> None:
    """Each new command submits its task and waits; a failed task exits 10."""
    uri = kvm_host_module.uri
    assert tessera("provider", "add", "kvm-ops", "--kind", "libvirt", "--url", uri).exit_code == 0
    assert tessera("provider", "sync", "kvm-ops").exit_code == 0
    headers = {"Authorization": f"Bearer {cli_env['TESSERA_API_TOKEN']}"}
    networks = httpx.get(f"{cli_env['TESSERA_API_URL']}/v1/networks", headers=headers).json()[
        "items"
    ]
    plain = next(n["name"] for n in networks if n["vlan_id"] is None)
    made = tessera(
        "vm", "create", "cli-ops", "--provider", "kvm-ops", "--memory-mib", "64", "--disk", "1"
    )
    assert made.exit_code == 0, made.output

    def show() -> Any:
        return json.loads(tessera("vm", "show", "cli-ops", "-o", "json").output)

    assert tessera("vm", "resize", "cli-ops", "--cpus", "2").exit_code == 0
    assert show()["cpu_count"] == 2
    assert (
        tessera("vm", "nic", "add", "cli-ops", plain, "--mac", "52:54:00:0d:0e:0f").exit_code == 0
    )
    (nic,) = show()["nics"]
    assert nic["mac"] == "52:54:00:0d:0e:0f"
    assert tessera("vm", "nic", "remove", "cli-ops", str(nic["id"])).exit_code == 0
    assert show()["nics"] == []
    assert tessera("vm", "disk", "add", "cli-ops", "1").exit_code == 0
    disk = show()["disks"][-1]
    assert tessera("vm", "disk", "grow", "cli-ops", str(disk["id"]), "2").exit_code == 0
    assert tessera("vm", "disk", "remove", "cli-ops", str(disk["id"])).exit_code == 0
    assert len(show()["disks"]) == 1

    assert tessera("vm", "snapshot", "create", "cli-ops", "snap1").exit_code == 0
    listed = tessera("vm", "snapshot", "list", "cli-ops", "-o", "json")
    assert [s["name"] for s in json.loads(listed.output)] == ["snap1"]
    assert tessera("vm", "snapshot", "revert", "cli-ops", "snap1").exit_code == 0
    assert tessera("vm", "snapshot", "revert", "cli-ops", "nope").exit_code == 10
    assert tessera("vm", "snapshot", "delete", "cli-ops", "snap1").exit_code == 0
    assert tessera("vm", "clone", "cli-ops", "cli-ops-copy").exit_code == 0
    assert tessera("vm", "show", "cli-ops-copy").exit_code == 0
    refused = tessera("vm", "template", "cli-ops")
    assert refused.exit_code != 0 and "supports_templates" in refused.output
    for vm in ("cli-ops-copy", "cli-ops"):
        assert tessera("vm", "delete", vm).exit_code == 0
