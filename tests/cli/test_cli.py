"""The CLI as a script would use it: output formats and exit codes, against a live API."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from tessera.cli.main import app

runner = CliRunner()


def tessera(*args: str, stdin: str | None = None) -> Any:
    return runner.invoke(app, list(args), input=stdin)


def test_add_sync_list_show_a_kvm_pool(cli_env: dict[str, str], kvm_host: Any) -> None:
    added = tessera(
        "provider", "add", "kvm", "--kind", "libvirt", "--url", kvm_host.uri, "-o", "json"
    )
    assert added.exit_code == 0, added.output
    assert json.loads(added.output)["status"] == "ok"

    synced = tessera("provider", "sync", "kvm", "-o", "json")
    assert synced.exit_code == 0, synced.output
    assert json.loads(synced.output)[0]["vms"] == 3

    listed = tessera("vm", "list", "--provider", "kvm", "-o", "json")
    assert listed.exit_code == 0
    names = sorted(vm["name"] for vm in json.loads(listed.output))
    assert names == [f"{kvm_host.name}-vm-{i}" for i in (1, 2, 3)]

    running = tessera("vm", "list", "--power-state", "running", "-o", "yaml")
    assert [vm["name"] for vm in yaml.safe_load(running.output)] == [f"{kvm_host.name}-vm-1"]

    shown = tessera("vm", "show", f"{kvm_host.name}-vm-2", "-o", "json")
    assert shown.exit_code == 0, shown.output
    detail = json.loads(shown.output)
    assert detail["nics"] and detail["nics"][0]["mac"].startswith("52:54:00")
    assert detail["disks"][0]["format"] == "qcow2"

    paged = tessera("vm", "list", "--all", "--limit", "1", "--fields", "name", "-o", "json")
    assert paged.exit_code == 0
    assert sorted(vm["name"] for vm in json.loads(paged.output)) == names
    table = tessera("vm", "list")
    assert table.exit_code == 0 and table.output.count("│ running") == 1


def test_exit_codes_scripts_can_trust(cli_env: dict[str, str], kvm_host: Any) -> None:
    assert (
        tessera("provider", "add", "kvm", "--kind", "libvirt", "--url", kvm_host.uri).exit_code == 0
    )
    again = tessera("provider", "add", "kvm", "--kind", "libvirt", "--url", kvm_host.uri)
    assert again.exit_code == 4 and "already exists" in again.output
    dead = tessera(
        "provider", "add", "dead", "--kind", "libvirt", "--url", "qemu+tcp://127.0.0.1:1/system"
    )
    assert dead.exit_code == 5 and "connection test failed" in dead.output
    assert tessera("vm", "show", "no-such-vm").exit_code == 3
    assert tessera("provider", "sync", "no-such-pool").exit_code == 3
    assert tessera("vm", "list", "--power-state", "exploded").exit_code == 5
    assert "Traceback" not in dead.output + again.output


def test_password_comes_from_stdin(cli_env: dict[str, str], vcsim: Any) -> None:
    result = tessera(
        "provider",
        "add",
        "vc",
        "--kind",
        "vsphere",
        "--url",
        vcsim.url,
        "--username",
        vcsim.username,
        "--insecure",
        "--password-stdin",
        "-o",
        "json",
        stdin=vcsim.password + "\n",
    )
    assert result.exit_code == 0, result.output
    assert vcsim.password not in result.output
    wrong = tessera(
        "provider",
        "add",
        "vc2",
        "--kind",
        "vsphere",
        "--url",
        vcsim.url,
        "--username",
        vcsim.username,
        "--insecure",
        "--password-stdin",
        stdin="nope\n",
    )
    assert wrong.exit_code == 5 and "auth_failed" in wrong.output


def test_unreachable_api_and_bad_token(
    cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TESSERA_API_TOKEN", "tsr_wrong")
    assert tessera("vm", "list").exit_code == 7
    monkeypatch.setenv("TESSERA_API_URL", "http://127.0.0.1:1")
    down = tessera("vm", "list")
    assert down.exit_code == 8 and "cannot reach the Tessera API" in down.output
