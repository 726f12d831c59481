"""`tessera vm unmanaged|adopt|release` against the API served over loopback."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner

from tessera.cli.main import app
from tessera.runtime import Runtime
from tests.inventory.test_adoption import _seed


def test_list_adopt_and_release_from_the_cli(cli_env: dict[str, str], runtime: Runtime) -> None:
    _seed(runtime)
    runner = CliRunner()

    def tessera(*args: str, stdin: str | None = None) -> Any:
        return runner.invoke(app, list(args), input=stdin)

    listed = tessera(
        "vm", "unmanaged", "--folder", "/DC0/vm/web", "--cluster", "cluster-1", "-o", "json"
    )
    assert listed.exit_code == 0, listed.output
    assert sorted(vm["name"] for vm in json.loads(listed.stdout)) == ["web-1", "web-2", "web-3"]
    assert tessera("project", "create", "web").exit_code == 0

    refused = tessera("vm", "adopt", "--project", "web")
    assert refused.exit_code == 5 and "at least one filter" in refused.output
    declined = tessera("vm", "adopt", "--project", "web", "--name", "web-", stdin="n\n")
    assert declined.exit_code != 0 and "3 VM(s): web-1, web-2, web-3" in declined.output
    unknown = tessera("vm", "adopt", "--project", "nope", "--name", "web-", "--yes")
    assert unknown.exit_code == 3 and "project nope not found" in unknown.output

    adopted = tessera(
        "vm", "adopt", "--project", "web", "--folder", "/DC0/vm/web", "--yes", "-o", "json"
    )
    assert adopted.exit_code == 0, adopted.output
    task = json.loads(adopted.stdout)
    assert (task["kind"], task["state"], task["result"]["succeeded"]) == (
        "vm.adopt",
        "succeeded",
        3,
    )
    left = json.loads(tessera("vm", "unmanaged", "-o", "json").stdout)
    assert sorted(vm["name"] for vm in left) == ["db-1", "site-1"]

    one = tessera("vm", "release", "--project", "web", "--name", "web-3", "-y", "-o", "json")
    assert one.exit_code == 0 and json.loads(one.stdout)["kind"] == "vm.release", one.output
    rest = tessera("vm", "release", "--project", "web", "-y", "--no-wait", "-o", "json")
    assert rest.exit_code == 0 and json.loads(rest.stdout)["state"] == "queued", rest.output
    assert tessera("task", "wait", json.loads(rest.stdout)["id"]).exit_code == 0
    assert len(json.loads(tessera("vm", "unmanaged", "-o", "json").stdout)) == 5
