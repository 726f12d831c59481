"""`tessera lab`: simulated vCenters and KVM hosts on this machine."""

from __future__ import annotations

from typing import Annotated

import typer

from tessera.cli.errors import reports_errors
from tessera.cli.output import OutputFormat, console, emit
from tessera.config import Settings
from tessera.lab import vcsim
from tessera.lab.manager import LabSpec, LabState, lab_down, lab_up, pid_alive

app = typer.Typer(help="The local lab of simulated pools.", no_args_is_help=True)


@app.command()
@reports_errors
def build(force: Annotated[bool, typer.Option(help="Rebuild even if current.")] = False) -> None:
    """Build the lab vCenter simulator (Go, from Debian's govmomi)."""
    console.print(f"vCenter simulator: {vcsim.build_vcsim(force=force)}")


@app.command()
@reports_errors
def up(
    vcenters: int = 1,
    datacenters: int = 1,
    clusters: int = 2,
    hosts_per_cluster: int = 2,
    vms: Annotated[int, typer.Option(min=0, help="VMs per vCenter.")] = 40,
    kvm_hosts: Annotated[int, typer.Option(min=0)] = 2,
    kvm_demo_vms: Annotated[int, typer.Option(min=0)] = 3,
    test_hosts: Annotated[int, typer.Option(min=0, help="libvirt test-driver hosts.")] = 0,
    test_domains: Annotated[int, typer.Option(min=0)] = 1000,
) -> None:
    """Start the lab members that are not running yet."""
    spec = LabSpec(
        vcenters=vcenters,
        datacenters=datacenters,
        clusters=clusters,
        hosts_per_cluster=hosts_per_cluster,
        vms=vms,
        kvm_hosts=kvm_hosts,
        kvm_demo_vms=kvm_demo_vms,
        test_hosts=test_hosts,
        test_domains=test_domains,
    )
    with console.status("starting the lab"):
        state = lab_up(spec, Settings().lab_dir)
    _print_state(state, OutputFormat.TABLE)


@app.command()
@reports_errors
def down() -> None:
    """Stop every lab member."""
    state = lab_down(Settings().lab_dir)
    console.print(f"stopped {len(state.vcenters)} vCenter(s), {len(state.kvm_hosts)} KVM host(s)")


@app.command()
def status(
    output: Annotated[OutputFormat, typer.Option("--output", "-o")] = OutputFormat.TABLE,
) -> None:
    """Show the lab members and whether each is running."""
    _print_state(LabState.load(Settings().lab_dir), output)


def _print_state(state: LabState, output: OutputFormat) -> None:
    rows = [
        {"name": v.name, "kind": "vcenter", "endpoint": v.url, "running": pid_alive(v.pid)}
        for v in state.vcenters
    ] + [
        {
            "name": h.name,
            "kind": f"kvm ({h.driver})",
            "endpoint": h.uri,
            "running": pid_alive(h.pid),
        }
        for h in state.kvm_hosts
    ]
    emit(rows, output, ("name", "kind", "endpoint", "running"))
