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
from tessera.cli.output import Output, OutputFormat, console, emit
from tessera.cli.selection import Ids, Name, Provider, State, Yes, confirm_preview
from tessera.cli.tasks import Follow, finish, follows_task
from tessera.config import Settings

bulk_app = typer.Typer(
    help="One action over many VMs: a parent task with an item per VM.", no_args_is_help=True
)

Host = Annotated[str | None, typer.Option("--host", help="Host id.")]
Tag = Annotated[str | None, typer.Option("--tag", help="Has this tag.")]
ITEM_COLUMNS = ("position", "vm_name", "state", "error", "child_task_id", "vm_id")


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
    follow: Follow,
) -> None:
    client = _client()
    count = confirm_preview(client, "/v1/vms/bulk/preview", selection, what, yes)
    body = {"select": selection, "action": action, "expected_count": count}
    task = client.post("/v1/vms/bulk", body)
    try:
        finish(client, task, follow)
    finally:
        if not follow.no_wait and follow.output is OutputFormat.TABLE:
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
@follows_task
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
    *,
    follow: Follow,
) -> None:
    """Start, stop, reboot or suspend every selected VM."""
    selection = _selection(_client(), provider, state, name, host, tag, vm_id)
    body = {"kind": "power", "action": action, "graceful_timeout_s": graceful_timeout}
    _run(f"{action.capitalize()}", selection, body, yes, follow)


@bulk_app.command("delete")
@reports_errors
@follows_task
def bulk_delete(
    provider: Provider = None,
    state: State = None,
    name: Name = None,
    host: Host = None,
    tag: Tag = None,
    vm_id: Ids = None,
    yes: Yes = False,
    *,
    follow: Follow,
) -> None:
    """Delete every selected VM with its disks."""
    selection = _selection(_client(), provider, state, name, host, tag, vm_id)
    _run("Delete", selection, {"kind": "delete"}, yes, follow)


@bulk_app.command("tag")
@reports_errors
@follows_task
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
    *,
    follow: Follow,
) -> None:
    """Add and remove tags on every selected VM."""
    selection = _selection(_client(), provider, state, name, host, tag, vm_id)
    body = {"kind": "tag", "add": add or [], "remove": remove or []}
    _run("Tag", selection, body, yes, follow)


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
