"""`tessera audit list`: who changed what, from where, and how it ended; newest first,
filtered on the server. A platform admin sees every entry, a project admin their
project's."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from tessera.cli.client import ApiClient
from tessera.cli.errors import reports_errors
from tessera.cli.events import parse_time
from tessera.cli.output import Output, OutputFormat, emit, err_console
from tessera.config import Settings

audit_app = typer.Typer(help="The audit log of mutating API calls.", no_args_is_help=True)

AUDIT_COLUMNS = (
    "at",
    "user_name",
    "project",
    "source_ip",
    "action",
    "path",
    "status_code",
    "outcome",
    "task_id",
    "id",
)


def _project(client: ApiClient, name_or_id: str) -> str:
    """A project's id by name; anything else is taken as an id (a deleted project's
    entries stay readable)."""
    for item in client.get("/v1/projects"):
        if name_or_id == item["name"]:
            return str(item["id"])
    return name_or_id


def _row(entry: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    at = datetime.fromisoformat(entry["at"]).astimezone(UTC)
    project = entry["project_id"]
    return {
        **entry,
        "at": at.strftime("%Y-%m-%d %H:%M:%S"),
        "project": names.get(project, project) if project else "",
    }


@audit_app.command("list")
@reports_errors
def audit_list(
    user: Annotated[str | None, typer.Option(help="User name or id.")] = None,
    project: Annotated[str | None, typer.Option(help="Project name or id.")] = None,
    action: Annotated[
        str | None, typer.Option(help="Route name: create_vm, login, set_quota, ...")
    ] = None,
    outcome: Annotated[str | None, typer.Option(help="success, denied, invalid or error.")] = None,
    since: Annotated[
        str | None, typer.Option(help="ISO 8601 time, or a duration ago: 15m, 2h, 7d.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="ISO 8601 time, or a duration ago.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Entries to show.")] = 50,
    output: Output = OutputFormat.TABLE,
) -> None:
    """List audit entries, newest first."""
    client = ApiClient(Settings())
    now = datetime.now(UTC)
    page = client.get(
        "/v1/audit",
        user=user,
        project_id=_project(client, project) if project else None,
        action=action,
        outcome=outcome,
        since=parse_time("--since", since, now) if since else None,
        until=parse_time("--until", until, now) if until else None,
        limit=limit,
    )
    if output is not OutputFormat.TABLE:
        emit(page["items"], output)
        return
    names = {p["id"]: p["name"] for p in client.get("/v1/projects")}
    emit([_row(entry, names) for entry in page["items"]], output, AUDIT_COLUMNS)
    if page["next_cursor"]:
        err_console.print("[dim]more entries: raise --limit (up to 1000) or narrow the filters[/]")
