"""`tessera host|cluster|datastore|network list`: the pools' objects, as an operator's
tables show them, filtered and sorted on the server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from tessera.cli.client import ApiClient, find_provider_id
from tessera.cli.errors import reports_errors
from tessera.cli.output import Output, OutputFormat, emit
from tessera.config import Settings

GIB = 1 << 30

# (command group, API path, help, table columns, sort fields)
KINDS: tuple[tuple[str, str, str, tuple[str, ...], str], ...] = (
    (
        "host",
        "/v1/hosts",
        "Hosts of the pools: state, CPU, memory, VMs.",
        (
            "name",
            "provider_name",
            "cluster_name",
            "state",
            "cpu_cores",
            "cpu_ghz",
            "memory_mib",
            "vcpus_used",
            "memory_mib_used",
            "vm_count",
            "id",
        ),
        "name, cpu_cores, memory_mib",
    ),
    (
        "cluster",
        "/v1/clusters",
        "Clusters (vSphere) with their hosts' totals.",
        (
            "name",
            "provider_name",
            "host_count",
            "cpu_cores",
            "cpu_ghz",
            "memory_mib",
            "vcpus_used",
            "vm_count",
            "id",
        ),
        "name",
    ),
    (
        "datastore",
        "/v1/datastores",
        "Datastores and storage pools: capacity and free space.",
        ("name", "provider_name", "kind", "capacity_gib", "free_gib", "host_count", "id"),
        "name, capacity_bytes, free_bytes",
    ),
    (
        "network",
        "/v1/networks",
        "Networks and port groups: kind and VLAN.",
        ("name", "provider_name", "kind", "vlan_id", "host_count", "id"),
        "name",
    ),
)


def _gib(row: dict[str, Any]) -> dict[str, Any]:
    """Sizes a table can show: a datastore's bytes as GiB (JSON and YAML keep bytes)."""
    if "capacity_bytes" not in row:
        return row
    return {
        **row,
        "capacity_gib": round(row["capacity_bytes"] / GIB, 1),
        "free_gib": round(row["free_bytes"] / GIB, 1),
    }


def _list_command(path: str, columns: tuple[str, ...]) -> Callable[..., None]:
    @reports_errors
    def list_objects(
        provider: Annotated[str | None, typer.Option(help="Pool name or id.")] = None,
        name: Annotated[str | None, typer.Option(help="Name contains.")] = None,
        sort: Annotated[str, typer.Option(help="Field, '-' prefix for descending.")] = "name",
        limit: Annotated[int, typer.Option(min=1, max=1000, help="Page size.")] = 50,
        all_pages: Annotated[bool, typer.Option("--all", help="Follow every page.")] = False,
        output: Output = OutputFormat.TABLE,
    ) -> None:
        client = ApiClient(Settings())
        params: dict[str, Any] = {
            "provider_id": find_provider_id(client, provider) if provider else None,
            "name": name,
            "sort": sort,
            "limit": limit,
        }
        items: list[dict[str, Any]] = []
        while True:
            page = client.get(path, **params)
            items += page["items"]
            if not all_pages or not page["next_cursor"]:
                break
            params["cursor"] = page["next_cursor"]
        if output is OutputFormat.TABLE:
            items = [_gib(item) for item in items]
        emit(items, output, columns)

    return list_objects


def register(app: typer.Typer) -> None:
    """Add a command group with a `list` command per kind of object."""
    for group, path, help_text, columns, sorts in KINDS:
        sub = typer.Typer(help=help_text, no_args_is_help=True)
        sub.command("list", help=f"List the {group}s of the pools you may see; sort by {sorts}.")(
            _list_command(path, columns)
        )
        app.add_typer(sub, name=group)
