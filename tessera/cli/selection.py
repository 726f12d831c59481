"""What `tessera vm bulk …`, `vm adopt` and `vm release` share: the options that select
VMs, and the preview-then-ask step that turns a selection into the count the API is
given as `expected_count` (so a selection that changed in between is refused)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tessera.cli.client import ApiClient
from tessera.cli.errors import EXIT_INVALID, CliError
from tessera.cli.output import err_console

Provider = Annotated[str | None, typer.Option("--provider", help="Pool name or id.")]
Name = Annotated[str | None, typer.Option("--name", help="Name contains.")]
State = Annotated[str | None, typer.Option("--state", help="running, stopped, suspended.")]
Ids = Annotated[list[str] | None, typer.Option("--id", help="A VM id; repeatable.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
PREVIEW_SHOWN = 10


def confirm_preview(
    client: ApiClient, preview_path: str, select: dict[str, Any], what: str, yes: bool
) -> int:
    """Preview the selection at `preview_path`, show the first VMs' names and ask (unless
    `yes`); the previewed count, for the submit's `expected_count`."""
    preview = client.post(preview_path, {"select": select})
    count: int = preview["count"]
    if count == 0:
        raise CliError("no VM matches the selection", EXIT_INVALID)
    names = ", ".join(vm["name"] for vm in preview["vms"][:PREVIEW_SHOWN])
    more = f" and {count - PREVIEW_SHOWN} more" if count > PREVIEW_SHOWN else ""
    err_console.print(f"{count} VM(s): {names}{more}")
    if not yes and not typer.confirm(f"{what} {count} VM(s)?", err=True):
        raise typer.Abort()
    return count
