"""The README's commands for a VLAN network on the lab vCenter, as an operator types them:
a segment realised as a DVS portgroup, a subnet, a port, a router and a floating IP; the
overlap report's exit code."""

from __future__ import annotations

import json
from typing import Any

import httpx
from pyVmomi import vim
from typer.testing import CliRunner

from tessera.cli.main import app
from tessera.lab.vcsim import RunningVcsim
from tessera.runtime import Runtime

runner = CliRunner()


def tessera(*args: str) -> Any:
    return runner.invoke(app, list(args))


def _register(cli_env: dict[str, str], lab: RunningVcsim) -> None:
    headers = {"Authorization": f"Bearer {cli_env['TESSERA_API_TOKEN']}"}
    with httpx.Client(base_url=cli_env["TESSERA_API_URL"], headers=headers, timeout=120) as api:
        body = {
            "name": "lab-vc",
            "kind": "vsphere",
            "url": lab.url,
            "username": lab.username,
            "password": lab.password,
            "verify_tls": False,
        }
        assert api.post("/v1/providers", json=body).status_code == 201


def _vlan_of(lab: RunningVcsim, name: str) -> int | None:
    with lab.operator_session() as si:
        view = si.content.viewManager.CreateContainerView(
            si.content.rootFolder, [vim.dvs.DistributedVirtualPortgroup], True
        )
        for portgroup in view.view:
            if portgroup.name == name:
                return int(portgroup.config.defaultPortConfig.vlan.vlanId)
    return None


def test_a_vlan_network_on_the_lab_vcenter_from_the_cli(
    cli_env: dict[str, str], runtime: Runtime, vcsim_fresh: RunningVcsim
) -> None:
    _register(cli_env, vcsim_fresh)
    made = tessera("segment", "create", "web-net", "--vlan", "120", "--provider", "lab-vc")
    assert made.exit_code == 0, made.output
    shown = json.loads(tessera("segment", "show", "web-net", "-o", "json").output)
    assert shown["status"] == "active"
    portgroup = shown["realisations"][0]["native_name"]
    assert _vlan_of(vcsim_fresh, portgroup) == 120

    public = tessera("segment", "create", "public", "--type", "flat", "--external")
    assert public.exit_code == 0, public.output
    for args in (
        ("subnet", "create", "public", "203.0.113.0/24", "--name", "public-v4"),
        ("subnet", "create", "web-net", "10.12.0.0/24", "--name", "web-v4", "--dns", "10.12.0.53"),
        ("router", "create", "edge", "--external", "public"),
        ("router", "add-interface", "edge", "web-v4"),
        ("port", "create", "web-net", "--name", "web-1", "--ip", "web-v4=10.12.0.10"),
        ("floating-ip", "create", "public", "--port", "web-1", "-o", "json"),
    ):
        result = tessera(*args)
        assert result.exit_code == 0, (args, result.output)
    fip = json.loads(result.output)
    assert (fip["fixed_ip"], fip["address"]) == ("10.12.0.10", "203.0.113.3")

    clash = tessera("subnet", "create", "web-net", "10.12.0.128/25")
    assert clash.exit_code == 4, clash.output
    said = " ".join(clash.output.split())  # Rich wraps long lines
    assert "overlaps 10.12.0.0/24 (subnet 'web-v4' of segment 'web-net'" in said, said
    assert tessera("network", "overlaps").exit_code == 0
    recorded = tessera(
        "network", "range-add", "old-dc", "--kind", "migration-target", "--cidr", "10.12.0.0/16"
    )
    assert recorded.exit_code == 0, recorded.output
    report = tessera("network", "overlaps")
    assert report.exit_code == 4 and "old-dc" in report.output, report.output

    retag = tessera("segment", "set", "web-net", "--vlan", "121")
    assert retag.exit_code == 0, retag.output
    assert _vlan_of(vcsim_fresh, portgroup) == 121
