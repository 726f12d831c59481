"""`tessera placement`: scheduler dry runs and affinity / anti-affinity groups, via the API."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import quote

import typer

from tessera.cli.client import ApiClient, find_vm_id
from tessera.cli.errors import reports_errors
from tessera.cli.output import Output, OutputFormat, console, emit
from tessera.config import Settings

app = typer.Typer(
    help="Where VMs go: scheduler dry runs and placement groups.", no_args_is_help=True
)
group_app = typer.Typer(help="Affinity and anti-affinity groups of VMs.", no_args_is_help=True)
app.add_typer(group_app, name="group")


class StrategyOption(StrEnum):
    SPREAD = "spread"
    PACK = "pack"


class PolicyOption(StrEnum):
    AFFINITY = "affinity"
    ANTI_AFFINITY = "anti-affinity"


RANKED_COLUMNS = ("score", "name", "kind", "provider_name", "zone", "vcpus", "memory", "id")
REJECTED_COLUMNS = ("name", "kind", "provider_name", "zone", "reasons", "id")
GROUP_COLUMNS = ("name", "policy", "members", "id")


def _client() -> ApiClient:
    return ApiClient(Settings())


def _usage(candidate: dict[str, Any]) -> dict[str, Any]:
    return {
        **candidate,
        "vcpus": f"{candidate['vcpus_used']}/{candidate['cpu_cores']} cores",
        "memory": f"{candidate['memory_mib_used']}/{candidate['memory_mib']} MiB",
    }


@app.command("dry-run")
@reports_errors
def dry_run(
    cpus: Annotated[int, typer.Option(min=1, help="vCPUs.")],
    memory_mib: Annotated[int, typer.Option(min=1, help="RAM in MiB.")],
    disk_gib: Annotated[float, typer.Option(min=0, help="Disk in GiB.")] = 0,
    zone: Annotated[str | None, typer.Option(help="Zone name, region/zone, or id.")] = None,
    provider: Annotated[str | None, typer.Option(help="Pool name or id.")] = None,
    capability: Annotated[
        list[str] | None, typer.Option(help="Required capability flag; repeatable.")
    ] = None,
    network: Annotated[list[str] | None, typer.Option(help="Network id; repeatable.")] = None,
    group: Annotated[str | None, typer.Option(help="Placement group name or id.")] = None,
    strategy: StrategyOption = StrategyOption.SPREAD,
    output: Output = OutputFormat.TABLE,
) -> None:
    """Where a VM would go now, the candidates ranked, and why the others cannot take it."""
    body = {
        "vcpus": cpus,
        "memory_mib": memory_mib,
        "disk_gib": disk_gib,
        "zone": zone,
        "provider": provider,
        "capabilities": capability or [],
        "networks": network or [],
        "group": group,
        "strategy": strategy.value,
    }
    show_decision(_client().post("/v1/placement/dry-run", body), output)


def show_decision(decision: dict[str, Any], output: OutputFormat) -> None:
    """A dry run's decision: the choice, the candidates that fit, and why the others do
    not (`placement dry-run` and `vm create --dry-run` alike)."""
    if output is not OutputFormat.TABLE:
        emit(decision, output)
        return
    console.print(f"[bold]placement:[/] {decision['summary']}")
    console.print(f"[bold]fit[/] ({len(decision['ranked'])}, best first)")
    emit([_usage(c) for c in decision["ranked"]], output, RANKED_COLUMNS)
    console.print(f"[bold]rejected[/] ({len(decision['rejected'])})")
    rejected = [
        {**c, "reasons": "; ".join(f"{r['filter']}: {r['reason']}" for r in c["reasons"])}
        for c in decision["rejected"]
    ]
    emit(rejected, output, REJECTED_COLUMNS)


def _member_path(client: ApiClient, group: str, vm: str) -> str:
    return f"{_group_path(group)}/members/{quote(find_vm_id(client, vm), safe='')}"


def _group_path(group: str) -> str:
    return f"/v1/placement-groups/{quote(group, safe='')}"


def _group_row(group: dict[str, Any]) -> dict[str, Any]:
    return {**group, "members": len(group["members"])}


@group_app.command("create")
@reports_errors
def group_create(
    name: str,
    policy: Annotated[PolicyOption, typer.Option(help="affinity or anti-affinity.")],
    output: Output = OutputFormat.TABLE,
) -> None:
    """Create an empty group; add VMs with add-member."""
    emit(_client().post("/v1/placement-groups", {"name": name, "policy": policy.value}), output)


@group_app.command("list")
@reports_errors
def group_list(output: Output = OutputFormat.TABLE) -> None:
    """Groups with their policy and member count (the VM ids with -o json or yaml)."""
    groups = _client().get("/v1/placement-groups")
    if output is OutputFormat.TABLE:
        groups = [_group_row(g) for g in groups]
    emit(groups, output, GROUP_COLUMNS)


@group_app.command("delete")
@reports_errors
def group_delete(name: str) -> None:
    """Delete a group; its VMs stay where they are."""
    _client().delete(_group_path(name))
    console.print(f"deleted placement group {name}")


@group_app.command("add-member")
@reports_errors
def group_add_member(group: str, vm: str, output: Output = OutputFormat.TABLE) -> None:
    """Put a VM (id, or exact name when unique) in a group."""
    client = _client()
    emit(client.put(_member_path(client, group, vm)), output)


@group_app.command("remove-member")
@reports_errors
def group_remove_member(group: str, vm: str) -> None:
    """Take a VM out of a group."""
    client = _client()
    client.delete(_member_path(client, group, vm))
    console.print(f"removed {vm} from placement group {group}")
