"""`tessera placement` against a live API: output formats and exit codes."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from tessera.cli.main import app
from tessera.runtime import Runtime, ensure_admin_token
from tests.scheduler.helpers import seed_estate

runner = CliRunner()


@pytest.fixture
def cli_env(live_api: str, runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESSERA_API_URL", live_api)
    monkeypatch.setenv("TESSERA_API_TOKEN", ensure_admin_token(runtime.settings))
    monkeypatch.setenv("TESSERA_DATA_DIR", str(runtime.settings.data_dir))
    seed_estate(runtime)


def tessera(*args: str) -> Any:
    return runner.invoke(app, list(args))


def test_dry_run_output(cli_env: None) -> None:
    table = tessera(
        "placement",
        "dry-run",
        "--cpus",
        "2",
        "--memory-mib",
        "40000",
        "--disk-gib",
        "20",
        "--capability",
        "supports_snapshots",
    )
    assert table.exit_code == 0, table.output
    assert "placement: cluster cl-a in pool vc1 on datastore ds-big" in table.output
    assert "rejected (2)" in table.output
    assert table.output.count("ram: needs 40000") == 2  # esx-9 and kvm1-host, wrapped after
    assert "12288/65" in table.output  # cl-a's RAM in use, of 65536 MiB

    as_json = tessera(
        "placement", "dry-run", "--cpus", "2", "--memory-mib", "4096", "--zone", "az2", "-o", "json"
    )
    assert as_json.exit_code == 0, as_json.output
    decision = json.loads(as_json.output)
    assert decision["chosen"]["name"] == "kvm1-host"
    assert {c["name"] for c in decision["rejected"]} == {"cl-a", "esx-9"}

    as_yaml = tessera(
        "placement",
        "dry-run",
        "--cpus",
        "1",
        "--memory-mib",
        "512",
        "--strategy",
        "pack",
        "--provider",
        "vc1",
        "-o",
        "yaml",
    )
    assert as_yaml.exit_code == 0, as_yaml.output
    assert yaml.safe_load(as_yaml.output)["chosen"]["name"] == "cl-a"


def test_groups_from_the_command_line(cli_env: None) -> None:
    created = tessera(
        "placement", "group", "create", "web", "--policy", "anti-affinity", "-o", "json"
    )
    assert created.exit_code == 0, created.output
    assert json.loads(created.output)["policy"] == "anti-affinity"
    added = tessera("placement", "group", "add-member", "web", "lone", "-o", "json")
    assert added.exit_code == 0, added.output
    assert len(json.loads(added.output)["members"]) == 1

    apart = tessera(
        "placement", "dry-run", "--cpus", "1", "--memory-mib", "512", "--group", "web", "-o", "json"
    )
    assert json.loads(apart.output)["chosen"]["name"] == "cl-a"

    listed = tessera("placement", "group", "list")
    assert listed.exit_code == 0 and "anti-affinity" in listed.output
    assert tessera("placement", "group", "remove-member", "web", "lone").exit_code == 0
    groups = json.loads(tessera("placement", "group", "list", "-o", "json").output)
    assert groups[0]["members"] == []
    assert tessera("placement", "group", "delete", "web").exit_code == 0
    assert json.loads(tessera("placement", "group", "list", "-o", "json").output) == []


def test_exit_codes(cli_env: None) -> None:
    assert tessera("placement", "group", "create", "g", "--policy", "affinity").exit_code == 0
    again = tessera("placement", "group", "create", "g", "--policy", "affinity")
    assert again.exit_code == 4 and "already exists" in again.output
    assert tessera("placement", "group", "delete", "nope").exit_code == 3
    assert tessera("placement", "group", "add-member", "g", "no-such-vm").exit_code == 3
    assert tessera("placement", "group", "remove-member", "g", "lone").exit_code == 3
    unknown = tessera(
        "placement", "dry-run", "--cpus", "1", "--memory-mib", "1", "--capability", "teleport"
    )
    assert unknown.exit_code == 5 and "unknown capability teleport" in unknown.output
    assert (
        tessera("placement", "dry-run", "--cpus", "1", "--memory-mib", "1", "--zone", "x").exit_code
        == 5
    )
    assert tessera("placement", "dry-run", "--cpus", "0", "--memory-mib", "1").exit_code == 2
    assert tessera("placement", "group", "create", "h", "--policy", "friendly").exit_code == 2
    assert "Traceback" not in unknown.output + again.output
