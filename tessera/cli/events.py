"""`tessera event list`: what happened (task transitions, inventory changes), newest first,
filtered on the server."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from tessera.cli.client import ApiClient, find_vm_id
from tessera.cli.errors import EXIT_INVALID, CliError, reports_errors
from tessera.cli.output import Output, OutputFormat, emit, err_console
from tessera.config import Settings

event_app = typer.Typer(
    help="The event log: task transitions and inventory changes.", no_args_is_help=True
)

EVENT_COLUMNS = ("at", "kind", "actor", "object", "change", "task_id", "id")
_AGO = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_time(option: str, value: str, now: datetime) -> str:
    """A duration before `now` (15m, 2h, 7d) or an ISO 8601 time, as ISO 8601 for the API;
    checked here so a typo is one clear line rather than the server's validation detail."""
    ago = _AGO.match(value)
    if ago:
        return (now - timedelta(**{_UNITS[ago[2]]: int(ago[1])})).isoformat()
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise CliError(
            f"{option} {value!r}: give an ISO 8601 time or a duration such as 15m, 2h, 7d",
            EXIT_INVALID,
        ) from None
    return value


def _provider(client: ApiClient, name_or_id: str) -> str:
    """A registered pool's id by name; anything else is taken as an id, as the events of
    a pool outlive its registration."""
    for item in client.get("/v1/providers"):
        if name_or_id == item["name"]:
            return str(item["id"])
    return name_or_id


def _shown(value: Any) -> str:
    """A field's value in one cell: text as is, a list (disks, NICs) by its length, the
    rest as the API writes it (true, null)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return f"{len(value)} item(s)"
    return json.dumps(value)


def change_of(event: dict[str, Any]) -> str:
    """One line on what changed: the message, else each changed field old → new."""
    if event["message"]:
        return str(event["message"])
    before, after = event["before"] or {}, event["after"] or {}
    if event["kind"].endswith(".changed") or event["kind"].startswith("task."):
        return "; ".join(
            f"{name}: {_shown(before[name])} → {_shown(after.get(name))}" for name in before
        )
    return ""


def _row(event: dict[str, Any]) -> dict[str, Any]:
    at = datetime.fromisoformat(event["at"]).astimezone(UTC)
    return {
        **event,
        "at": at.strftime("%Y-%m-%d %H:%M:%S"),
        "object": f"{event['object_kind']} {event['object_name']}".strip(),
        "change": change_of(event),
    }


@event_app.command("list")
@reports_errors
def event_list(
    vm: Annotated[
        str | None, typer.Option(help="VM name or id: its changes and the tasks on it.")
    ] = None,
    provider: Annotated[str | None, typer.Option(help="Pool name or id.")] = None,
    task: Annotated[str | None, typer.Option(help="Task id.")] = None,
    kind: Annotated[
        str | None, typer.Option(help="vm.changed, task.failed, ... or a prefix: vm., task.")
    ] = None,
    actor: Annotated[str | None, typer.Option(help="A user, or sync / watch.")] = None,
    since: Annotated[
        str | None, typer.Option(help="ISO 8601 time, or a duration ago: 15m, 2h, 7d.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="ISO 8601 time, or a duration ago.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Events to show.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Same as -o json.")] = False,
    output: Output = OutputFormat.TABLE,
) -> None:
    """List events, newest first."""
    client = ApiClient(Settings())
    now = datetime.now(UTC)
    page = client.get(
        "/v1/events",
        vm_id=find_vm_id(client, vm) if vm else None,
        provider_id=_provider(client, provider) if provider else None,
        task_id=task,
        kind=kind,
        actor=actor,
        since=parse_time("--since", since, now) if since else None,
        until=parse_time("--until", until, now) if until else None,
        limit=limit,
    )
    fmt = OutputFormat.JSON if as_json else output
    if fmt is not OutputFormat.TABLE:
        emit(page["items"], fmt)
        return
    emit([_row(event) for event in page["items"]], fmt, EVENT_COLUMNS)
    if page["next_cursor"]:
        err_console.print("[dim]more events: raise --limit (up to 1000) or narrow the filters[/]")
