"""`tessera vm unmanaged|adopt|release`: the VMs no project owns, taken into a project
as they are and given back. Adopt and release preview what they would take, ask (unless
--yes), then submit with the previewed count, so a selection that changed in between is
refused rather than acted on. Nothing of this reaches a pool."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tessera.cli.client import ApiClient, find_provider_id
from tessera.cli.errors import EXIT_INVALID, CliError, reports_errors
from tessera.cli.output import Output, OutputFormat, emit
from tessera.cli.selection import Ids, Name, Provider, State, Yes, confirm_preview
from tessera.cli.tasks import Follow, finish, follows_task
from tessera.config import Settings

Cluster = Annotated[str | None, typer.Option("--cluster", help="Cluster name or id.")]
Folder = Annotated[
    str | None, typer.Option("--folder", help='A folder and those below it: "/DC0/vm/web".')
]
GuestOs = Annotated[str | None, typer.Option("--guest-os", help="Guest OS contains.")]
COLUMNS = ("name", "power_state", "cpu_count", "memory_mib", "folder", "guest_os", "id")


def _client() -> ApiClient:
    return ApiClient(Settings())


def _named(client: ApiClient, path: str, name_or_id: str, what: str) -> str:
    """An object's id by its exact name; anything else is passed on as an id."""
    named = client.get(path, name=name_or_id, limit=1000)["items"]
    exact = {i["id"] for i in named if i["name"] == name_or_id}
    if len(exact) > 1:
        raise CliError(f"{len(exact)} {what}s are named {name_or_id!r}; give the id", EXIT_INVALID)
    return exact.pop() if exact else name_or_id


def _project_id(client: ApiClient, name_or_id: str) -> str:
    for item in client.get("/v1/projects"):
        if name_or_id in (item["id"], item["name"]):
            return str(item["id"])
    return name_or_id  # the API says it is not found


def _filters(
    client: ApiClient,
    provider: str | None,
    cluster: str | None,
    folder: str | None,
    name: str | None,
    state: str | None,
    guest_os: str | None,
) -> dict[str, Any]:
    return {
        "provider_id": find_provider_id(client, provider) if provider else None,
        "cluster_id": _named(client, "/v1/clusters", cluster, "cluster") if cluster else None,
        "folder": folder,
        "name": name,
        "power_state": state,
        "guest_os": guest_os,
    }


def _selection(filters: dict[str, Any], ids: list[str] | None) -> dict[str, Any]:
    if ids:
        return {"vm_ids": ids}
    chosen = {k: v for k, v in filters.items() if v is not None}
    if not chosen:
        raise CliError("select VMs with --id or at least one filter", EXIT_INVALID)
    return chosen


@reports_errors
def vm_unmanaged(
    provider: Provider = None,
    cluster: Cluster = None,
    folder: Folder = None,
    name: Name = None,
    state: State = None,
    guest_os: GuestOs = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="Show at most this many.")] = 1000,
    output: Output = OutputFormat.TABLE,
) -> None:
    """The VMs no project owns (platform admins): what `tessera vm adopt` can take."""
    client = _client()
    params = _filters(client, provider, cluster, folder, name, state, guest_os)
    rows: list[dict[str, Any]] = []
    cursor = None
    while len(rows) < limit:
        page = client.get(
            "/v1/vms/unmanaged", **params, cursor=cursor, limit=min(1000, limit - len(rows))
        )
        rows += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    emit(rows, output, COLUMNS)


@reports_errors
@follows_task
def vm_adopt(
    project: Annotated[str, typer.Option("--project", help="Project name or id to own them.")],
    provider: Provider = None,
    cluster: Cluster = None,
    folder: Folder = None,
    name: Name = None,
    state: State = None,
    guest_os: GuestOs = None,
    vm_id: Ids = None,
    yes: Yes = False,
    *,
    follow: Follow,
) -> None:
    """Adopt unmanaged VMs into a project as they are (one task; the pools are untouched).
    They count against the project's quotas."""
    client = _client()
    filters = _filters(client, provider, cluster, folder, name, state, guest_os)
    select = _selection(filters, vm_id)
    count = confirm_preview(client, "/v1/vms/adopt/preview", select, "Adopt", yes)
    body = {"select": select, "project_id": _project_id(client, project), "expected_count": count}
    finish(client, client.post("/v1/vms/adopt", body), follow)


@reports_errors
@follows_task
def vm_release(
    project: Annotated[
        str | None, typer.Option("--project", help="The VMs of this project (name or id).")
    ] = None,
    provider: Provider = None,
    cluster: Cluster = None,
    folder: Folder = None,
    name: Name = None,
    state: State = None,
    guest_os: GuestOs = None,
    vm_id: Ids = None,
    yes: Yes = False,
    *,
    follow: Follow,
) -> None:
    """Give adopted VMs back to the platform, unmanaged again; nothing changes on the pools."""
    client = _client()
    filters = _filters(client, provider, cluster, folder, name, state, guest_os)
    filters["project_id"] = _project_id(client, project) if project else None
    select = _selection(filters, vm_id)
    count = confirm_preview(client, "/v1/vms/release/preview", select, "Release", yes)
    body = {"select": select, "expected_count": count}
    finish(client, client.post("/v1/vms/release", body), follow)


def register(vm_app: typer.Typer) -> None:
    vm_app.command("unmanaged")(vm_unmanaged)
    vm_app.command("adopt")(vm_adopt)
    vm_app.command("release")(vm_release)
