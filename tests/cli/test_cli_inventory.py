"""`tessera host|cluster|datastore|network list` as an operator reads them, against a live
API over a seeded inventory."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner

from tessera.cli.main import app
from tessera.runtime import Runtime
from tests.api.test_overview import _seed

runner = CliRunner()


def tessera(*args: str) -> Any:
    return runner.invoke(app, list(args))


def test_pool_objects_are_listed_by_pool_paged_and_sorted(
    cli_env: dict[str, str], runtime: Runtime
) -> None:
    _seed(runtime)
    hosts = tessera("host", "list", "--provider", "vc", "--sort", "-cpu_cores", "-o", "json")
    assert hosts.exit_code == 0, hosts.output
    assert [(h["name"], h["state"]) for h in json.loads(hosts.output)] == [
        ("h1", "connected"),
        ("h2", "maintenance"),
        ("h3", "disconnected"),
    ]
    paged = tessera("host", "list", "--all", "--limit", "1", "-o", "json")
    assert sorted(h["name"] for h in json.loads(paged.output)) == ["h1", "h2", "h3", "k1"]

    table = tessera("datastore", "list", "--name", "ds1")
    assert table.exit_code == 0, table.output
    assert "ds1" in table.output and "100.0" in table.output and "40.0" in table.output
    clusters = json.loads(tessera("cluster", "list", "-o", "json").output)
    assert [(c["name"], c["host_count"]) for c in clusters] == [("c1", 2)]
    networks = json.loads(tessera("network", "list", "--provider", "vc", "-o", "json").output)
    assert [n["vlan_id"] for n in networks] == [None, 10]

    unknown = tessera("network", "list", "--provider", "nowhere")
    assert unknown.exit_code == 3, unknown.output
    bad = tessera("host", "list", "--sort", "colour")
    assert bad.exit_code == 5, bad.output
