"""`tessera vm bulk power|delete|tag`, `tessera vm tag` and `tessera task items`.

A bulk command first previews what it would touch, asks before going on (unless --yes),
then submits with the previewed count as `expected_count`, so a selection that changed in
between is refused rather than acted on.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tessera.cli.client import ApiClient, find_provider_id, find_vm_id
from tessera.cli.errors import EXIT_INVALID, CliError, reports_errors
from tessera.cli.output import Output, OutputFormat, console, emit, err_console
from tessera.cli.tasks import NoWait, Timeout, finish
from tessera.config import Settings

bulk_app = typer.Typer(
    help="One action over many VMs: a parent task with an item per VM.", no_args_is_help=True
)

Provider = Annotated[str | None, typer.Option("--provider", help="Pool name or id.")]
State = Annotated[str | None, typer.Option("--state", help="running, stopped, suspended.")]
Name = Annotated[str | None, typer.Option("--name", help="Name contains.")]
Host = Annotated[str | None, typer.Option("--host", help="Host id.")]
Tag = Annotated[str | None, typer.Option("--tag", help="Has this tag.")]
Ids = Annotated[list[str] | None, typer.Option("--id", help="A VM id; repeatable.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
ITEM_COLUMNS = ("position", "vm_name", "state", "error", "child_task_id", "vm_id")
PREVIEW_SHOWN = 10


def _client() -> ApiClient:
    return ApiClient(Settings())


def _selection(
    client: ApiClient,
    provider: str | None,
    state: str | None,
    name: str | None,
    host: str | None,
    tag: str | None,
    ids: list[str] | None,
) -> dict[str, Any]:
    selection: dict[str, Any] = {
        "vm_ids": ids or [],
        "provider_id": find_provider_id(client, provider) if provider else None,
        "power_state": state,
        "name": name,
        "host_id": host,
        "tag": tag,
    }
    if not ids and not any(v for k, v in selection.items() if k != "vm_ids"):
        raise CliError("select VMs with --id or at least one filter", EXIT_INVALID)
    return selection


def _run(
    what: str,
    selection: dict[str, Any],
    action: dict[str, Any],
    yes: bool,
    no_wait: bool,
    timeout: float,
    output: Output,
) -> None:
    client = _client()
    preview = client.post("/v1/vms/bulk/preview", {"select": selection})
    count = preview["count"]
    if count == 0:
        raise CliError("no VM matches the selection", EXIT_INVALID)
    names = ", ".join(vm["name"] for vm in preview["vms"][:PREVIEW_SHOWN])
    more = f" and {count - PREVIEW_SHOWN} more" if count > PREVIEW_SHOWN else ""
    err_console.print(f"{count} VM(s): {names}{more}")
    if not yes and not typer.confirm(f"{what} {count} VM(s)?", err=True):
        raise typer.Abort()
    body = {"select": selection, "action": action, "expected_count": count}
    task = client.post("/v1/vms/bulk", body)
    try:
        finish(client, task, no_wait, timeout, output)
    finally:
        if not no_wait and output is OutputFormat.TABLE:
            _print_failures(client, task["id"])


def _print_failures(client: ApiClient, task_id: str) -> None:
    failed = client.get(f"/v1/tasks/{task_id}/items", state="failed", limit=50)
    if failed["total"]:
        console.print(f"{failed['total']} VM(s) failed:")
        emit([_item_row(item) for item in failed["items"]], OutputFormat.TABLE, ITEM_COLUMNS)


def _item_row(item: dict[str, Any]) -> dict[str, Any]:
    error = item.get("error") or {}
    return {**item, "error": error.get("message")}


@bulk_app.command("power")
@reports_errors
def bulk_power(
    action: Annotated[str, typer.Argument(help="start, stop, reboot or suspend.")],
    provider: Provider = None,
    state: State = None,
    name: Name = None,
    host: Host = None,
    tag: Tag = None,
    vm_id: Ids = None,
    graceful_timeout: Annotated[
        float, typer.Option(min=0, max=600, help="stop: seconds of guest shutdown first.")
    ] = 0.0,
    yes: Yes = False,
    no_wait: NoWait = False,
    timeout: Timeout = 3600.0,
    output: Output = OutputFormat.TABLE,
) -> None:
    """Start, stop, reboot or suspend every selected VM."""
    selection = _selection(_client(), provider, state, name, host, tag, vm_id)
    body = {"kind": "power", "action": action, "graceful_timeout_s": graceful_timeout}
    _run(f"{action.capitalize()}", selection, body, yes, no_wait, timeout, output)


@bulk_app.command("delete")
@reports_errors
def bulk_delete(
    provider: Provider = None,
    state: State = None,
    name: Name = None,
    host: Host = None,
    tag: Tag = None,
    vm_id: Ids = None,
    yes: Yes = False,
    no_wait: NoWait = False,
    timeout: Timeout = 3600.0,
    output: Output = OutputFormat.TABLE,
) -> None:
    """Delete every selected VM with its disks."""
    selection = _selection(_client(), provider, state, name, host, tag, vm_id)
    _run("Delete", selection, {"kind": "delete"}, yes, no_wait, timeout, output)


@bulk_app.command("tag")
@reports_errors
def bulk_tag(
    add: Annotated[list[str] | None, typer.Option("--add", help="Tag to add; repeatable.")] = None,
    remove: Annotated[
        list[str] | None, typer.Option("--remove", help="Tag to remove; repeatable.")
    ] = None,
    provider: Provider = None,
    state: State = None,
    name: Name = None,
    host: Host = None,
    tag: Tag = None,
    vm_id: Ids = None,
    yes: Yes = False,
    no_wait: NoWait = False,
    timeout: Timeout = 3600.0,
    output: Output = OutputFormat.TABLE,
) -> None:
    """Add and remove tags on every selected VM."""
    selection = _selection(_client(), provider, state, name, host, tag, vm_id)
    body = {"kind": "tag", "add": add or [], "remove": remove or []}
    _run("Tag", selection, body, yes, no_wait, timeout, output)


@reports_errors
def vm_tag(
    vm: str,
    add: Annotated[list[str] | None, typer.Option("--add", help="Tag to add; repeatable.")] = None,
    remove: Annotated[
        list[str] | None, typer.Option("--remove", help="Tag to remove; repeatable.")
    ] = None,
    output: Output = OutputFormat.TABLE,
) -> None:
    """Add and remove tags of one VM (Tessera's labels; the pool is not touched)."""
    client = _client()
    body = {"add": add or [], "remove": remove or []}
    emit(client.request("PATCH", f"/v1/vms/{find_vm_id(client, vm)}/tags", json=body), output)


@reports_errors
def task_items(
    task_id: str,
    state: Annotated[str | None, typer.Option(help="pending, running, succeeded, ...")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    output: Output = OutputFormat.TABLE,
) -> None:
    """The VMs of a bulk task, each with its outcome."""
    page = _client().get(f"/v1/tasks/{task_id}/items", state=state, limit=limit, offset=offset)
    if output is OutputFormat.TABLE:
        emit([_item_row(item) for item in page["items"]], output, ITEM_COLUMNS)
        console.print(f"{page['total']} item(s)")
    else:
        emit(page, output)


def register(vm_app: typer.Typer, task_app: typer.Typer) -> None:
    vm_app.add_typer(bulk_app, name="bulk")
    vm_app.command("tag")(vm_tag)
    task_app.command("items")(task_items)
