"""`tessera lab up/status/down` as an operator runs it: members start, show, and stop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tessera.cli.main import app
from tessera.lab.manager import LabState, pid_alive

runner = CliRunner()


def test_lab_up_status_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESSERA_DATA_DIR", str(tmp_path))
    up = runner.invoke(app, ["lab", "up", "--vms", "5", "--kvm-hosts", "1", "--kvm-demo-vms", "1"])
    assert up.exit_code == 0, up.output
    state = LabState.load(tmp_path / "lab")
    try:
        assert len(state.vcenters) == 1 and len(state.kvm_hosts) == 1
        assert all(pid_alive(m.pid) for m in [*state.vcenters, *state.kvm_hosts])
        # up again keeps the running members as they are
        again = runner.invoke(app, ["lab", "up", "--vms", "5", "--kvm-hosts", "1"])
        assert again.exit_code == 0
        assert LabState.load(tmp_path / "lab").vcenters[0].pid == state.vcenters[0].pid
        status = runner.invoke(app, ["lab", "status", "-o", "json"])
        rows = json.loads(status.output)
        assert {r["kind"] for r in rows} == {"vcenter", "kvm (qemu)"}
        assert all(r["running"] for r in rows)
    finally:
        down = runner.invoke(app, ["lab", "down"])
    assert down.exit_code == 0
    assert not any(pid_alive(m.pid) for m in [*state.vcenters, *state.kvm_hosts])
    assert json.loads(runner.invoke(app, ["lab", "status", "-o", "json"]).output) == []
