"""`tessera task ...` and the VM changes of `tessera vm ...`: submit a task, then (unless
--no-wait) follow it with a progress bar; the exit code says how it ended."""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from tessera.cli.client import ApiClient, find_provider_id, find_vm_id
from tessera.cli.errors import (
    EXIT_CONFLICT,
    EXIT_INVALID,
    EXIT_NOT_FOUND,
    EXIT_TASK_FAILED,
    CliError,
    reports_errors,
)
from tessera.cli.output import Output, OutputFormat, emit, err_console
from tessera.cli.placement import StrategyOption, show_decision
from tessera.config import Settings

task_app = typer.Typer(
    help="Durable tasks: every change to a VM runs as one.", no_args_is_help=True
)

TASK_COLUMNS = ("kind", "state", "progress", "vm_id", "created_at", "id")
FINISHED = frozenset({"succeeded", "failed", "cancelled"})
NoWait = Annotated[bool, typer.Option("--no-wait", help="Print the task and return at once.")]
Timeout = Annotated[float, typer.Option(min=1, help="Seconds to wait at most.")]


@dataclass(frozen=True)
class Follow:
    """How a command follows the task it submits: wait for it (at most `timeout_s`)
    unless `no_wait`, then print it as `output`."""

    no_wait: bool = False
    timeout_s: float = 3600.0
    output: Output = OutputFormat.TABLE


_FOLLOW_OPTIONS = [
    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=kind)
    for name, kind, default in (
        ("no_wait", NoWait, Follow.no_wait),
        ("timeout", Timeout, Follow.timeout_s),
        ("output", Output, Follow.output),
    )
]


def follows_task(command: Callable[..., None]) -> Callable[..., None]:
    """Give a command that submits a task the options --no-wait, --timeout and -o; it
    receives them as one keyword argument, `follow`. (Typer reads a command's options
    from its signature, so the wrapper shows them there.)"""
    signature = inspect.signature(command, eval_str=True)
    own = [p for p in signature.parameters.values() if p.name != "follow"]

    @functools.wraps(command)
    def run(*args: Any, no_wait: bool, timeout: float, output: Output, **kwargs: Any) -> None:
        command(*args, follow=Follow(no_wait, timeout, output), **kwargs)

    shown = signature.replace(parameters=[*own, *_FOLLOW_OPTIONS])
    run.__signature__ = shown  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in shown.parameters.values()}
    return run


def _client() -> ApiClient:
    return ApiClient(Settings())


def wait_for(client: ApiClient, task_id: str, timeout_s: float, *, quiet: bool = False) -> Any:
    """Follow a task to its end with a progress bar (on stderr); the final task."""
    deadline = time.monotonic() + timeout_s
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console, transient=True, disable=quiet) as progress:
        bar = progress.add_task("queued", total=100)
        while True:
            task = client.get(f"/v1/tasks/{task_id}")
            running = next((s["name"] for s in task["steps"] if s["state"] == "running"), "")
            label = f"{task['kind']} {task['state']}" + (f": {running}" if running else "")
            progress.update(bar, completed=task["progress"], description=label)
            if task["state"] in FINISHED:
                return task
            if time.monotonic() >= deadline:
                raise CliError(f"task {task_id} still {task['state']} after {timeout_s:g}s", 1)
            time.sleep(0.5)


def finish(client: ApiClient, task: Any, follow: Follow) -> None:
    """Print the task (after waiting, unless told not to); a failure exits non-zero."""
    if not follow.no_wait:
        task = wait_for(client, task["id"], follow.timeout_s)
    output = follow.output
    emit(task, output, () if output is not OutputFormat.TABLE else TASK_COLUMNS)
    if task["state"] in {"failed", "cancelled"}:
        error = task.get("error") or {}
        raise CliError(
            f"task {task['id']} {task['state']}: {error.get('message', '')}", EXIT_TASK_FAILED
        )


@task_app.command("list")
@reports_errors
def task_list(
    state: Annotated[str | None, typer.Option(help="queued, running, succeeded, ...")] = None,
    kind: Annotated[str | None, typer.Option(help="vm.create, vm.power, ...")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    output: Output = OutputFormat.TABLE,
) -> None:
    """List tasks, newest first."""
    page = _client().get("/v1/tasks", state=state, kind=kind, limit=limit)
    emit(page["items"], output, TASK_COLUMNS)


@task_app.command("show")
@reports_errors
def task_show(task_id: str, output: Output = OutputFormat.TABLE) -> None:
    """Show a task with its steps, error and result."""
    emit(_client().get(f"/v1/tasks/{task_id}"), output)


@task_app.command("wait")
@reports_errors
def task_wait(task_id: str, timeout: Timeout = 3600.0, output: Output = OutputFormat.TABLE) -> None:
    """Wait for a task with a progress bar; exit 0 when it succeeded, 10 otherwise."""
    finish(_client(), {"id": task_id}, Follow(False, timeout, output))


@task_app.command("cancel")
@reports_errors
def task_cancel(task_id: str, output: Output = OutputFormat.TABLE) -> None:
    """Ask a task to stop before its next step (a create removes the VM it made)."""
    emit(_client().post(f"/v1/tasks/{task_id}/cancel"), output, TASK_COLUMNS)


@task_app.command("retry")
@reports_errors
@follows_task
def task_retry(task_id: str, *, follow: Follow) -> None:
    """Run a failed or cancelled task again."""
    client = _client()
    finish(client, client.post(f"/v1/tasks/{task_id}/retry"), follow)


def _object_id(client: ApiClient, path: str, provider_id: str | None, name_or_id: str) -> str:
    """An inventory object by id or exact name, of the provider when given; without one,
    a name found in several pools must be given as an id."""
    items = client.get(path, provider_id=provider_id, limit=1000)["items"]
    found = [str(i["id"]) for i in items if name_or_id in (i["id"], i["name"])]
    what = path.rsplit("/", 1)[-1][:-1]
    if not found:
        raise CliError(f"{what} {name_or_id!r} not found", EXIT_NOT_FOUND)
    if len(found) > 1 and provider_id is None:
        raise CliError(
            f"{len(found)} {what}s are named {name_or_id!r}; give the id or --provider",
            EXIT_CONFLICT,
        )
    return found[0]


def _split(value: str, sep: str) -> tuple[str, str | None]:
    head, _, tail = value.partition(sep)
    return head, tail or None


def _segment_nic(client: ApiClient, segment: str | None, port: str | None) -> dict[str, Any]:
    """A NIC on a Tessera segment (SEGMENT or SEGMENT=MAC; a port is made for it) or on
    a port of the caller's, by name or id."""
    from tessera.cli.network import _find  # that module builds on this one

    if port is not None:
        return {"port_id": _find(client, "/v1/ports", "port", port)}
    name, mac = _split(str(segment), "=")
    return {"network_id": _find(client, "/v1/segments", "segment", name), "mac": mac}


@follows_task
def vm_create(
    name: str,
    provider: Annotated[
        str | None, typer.Option(help="Pool name or id; else the scheduler chooses one.")
    ] = None,
    cpus: Annotated[int, typer.Option(min=1)] = 1,
    memory_mib: Annotated[int, typer.Option(min=16)] = 1024,
    disk: Annotated[
        list[str] | None, typer.Option(help="SIZE_GIB or SIZE_GIB@DATASTORE; repeatable.")
    ] = None,
    nic: Annotated[
        list[str] | None, typer.Option(help="NETWORK or NETWORK=MAC; repeatable.")
    ] = None,
    nic_network: Annotated[
        list[str] | None,
        typer.Option(help="A Tessera segment: SEGMENT or SEGMENT=MAC; repeatable."),
    ] = None,
    nic_port: Annotated[
        list[str] | None, typer.Option(help="An unbound port (its MAC); repeatable.")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Host name or id.")] = None,
    cluster: Annotated[
        str | None, typer.Option(help="Cluster name or id (DRS picks the host).")
    ] = None,
    datastore: Annotated[str | None, typer.Option(help="Datastore for the VM's files.")] = None,
    power_on: Annotated[bool, typer.Option("--power-on", help="Start it once built.")] = False,
    zone: Annotated[str | None, typer.Option(help="Zone name, region/zone, or id.")] = None,
    group: Annotated[
        str | None, typer.Option(help="Placement group name or id; the VM joins it.")
    ] = None,
    strategy: StrategyOption = StrategyOption.SPREAD,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show where it would go and why; create nothing.")
    ] = False,
    *,
    follow: Follow,
) -> None:
    """Create a VM with its disks and NICs (one durable task). Without --host or --cluster
    the scheduler chooses the pool (within --provider's), host or cluster, and datastore."""
    client = _client()
    pid = find_provider_id(client, provider) if provider else None
    disks: list[dict[str, Any]] = []
    for spec in disk or []:
        size, where = _split(spec, "@")
        if not size.isdigit():
            raise CliError(f"--disk {spec!r}: the size is whole GiB", EXIT_INVALID)
        ds = _object_id(client, "/v1/datastores", pid, where) if where else None
        disks.append({"size_gib": int(size), "datastore_id": ds})
    nics = []
    for spec in nic or []:
        network, mac = _split(spec, "=")
        nics.append({"network_id": _object_id(client, "/v1/networks", pid, network), "mac": mac})
    nics += [_segment_nic(client, segment, None) for segment in nic_network or []]
    nics += [_segment_nic(client, None, port) for port in nic_port or []]
    body = {
        "provider_id": pid,
        "name": name,
        "cpus": cpus,
        "memory_mib": memory_mib,
        "disks": disks,
        "nics": nics,
        "host_id": _object_id(client, "/v1/hosts", pid, host) if host else None,
        "cluster_id": _object_id(client, "/v1/clusters", pid, cluster) if cluster else None,
        "datastore_id": _object_id(client, "/v1/datastores", pid, datastore) if datastore else None,
        "power_on": power_on,
        "zone": zone,
        "group": group,
        "strategy": strategy.value,
    }
    if dry_run:
        show_decision(client.post("/v1/vms/dry-run", body), follow.output)
        return
    task = client.post("/v1/vms", body)
    placed = (task.get("result") or {}).get("placement")
    if placed and follow.output is OutputFormat.TABLE:
        err_console.print(f"[bold]placement:[/] {placed['summary']}")
    finish(client, task, follow)


@follows_task
def vm_delete(vm: str, *, follow: Follow) -> None:
    """Delete a VM with its disks."""
    client = _client()
    finish(client, client.delete(f"/v1/vms/{find_vm_id(client, vm)}"), follow)


def _power(action: str, vm: str, follow: Follow, **extra: Any) -> None:
    client = _client()
    task = client.post(f"/v1/vms/{find_vm_id(client, vm)}/power", {"action": action, **extra})
    finish(client, task, follow)


@follows_task
def vm_start(vm: str, *, follow: Follow) -> None:
    """Power a VM on (a suspended one resumes)."""
    _power("start", vm, follow)


@follows_task
def vm_stop(
    vm: str,
    graceful_timeout: Annotated[
        float, typer.Option(min=0, max=600, help="Seconds to ask the guest before forcing.")
    ] = 0.0,
    *,
    follow: Follow,
) -> None:
    """Power a VM off."""
    _power("stop", vm, follow, graceful_timeout_s=graceful_timeout)


@follows_task
def vm_rename(
    vm: str,
    new_name: str,
    stop_if_running: Annotated[
        bool, typer.Option("--stop-if-running", help="Where renaming needs a stopped VM.")
    ] = False,
    *,
    follow: Follow,
) -> None:
    """Rename a VM."""
    client = _client()
    body = {"name": new_name, "stop_if_running": stop_if_running}
    task = client.post(f"/v1/vms/{find_vm_id(client, vm)}/rename", body)
    finish(client, task, follow)


def _submit(method: str, vm: str, path: str, body: Any, follow: Follow) -> None:
    """Send one change of a VM (by name or id) and follow its task like the others."""
    client = _client()
    url = f"/v1/vms/{find_vm_id(client, vm)}{path}"
    task = client.post(url, body) if method == "POST" else client.delete(url)
    finish(client, task, follow)


def _vm_provider(client: ApiClient, vm: str) -> str:
    return str(client.get(f"/v1/vms/{find_vm_id(client, vm)}")["provider_id"])


@follows_task
def vm_resize(
    vm: str,
    cpus: Annotated[int | None, typer.Option(min=1, help="New CPU count.")] = None,
    memory_mib: Annotated[int | None, typer.Option(min=16, help="New memory.")] = None,
    *,
    follow: Follow,
) -> None:
    """Set a VM's CPU count and/or memory."""
    body = {"cpu_count": cpus, "memory_mib": memory_mib}
    _submit("POST", vm, "/resize", body, follow)


@follows_task
def vm_nic_add(
    vm: str,
    network: Annotated[
        str | None, typer.Argument(help="A network of the VM's pool, by name or id.")
    ] = None,
    mac: Annotated[
        str | None, typer.Option(help="Fixed MAC; the provider picks otherwise.")
    ] = None,
    segment: Annotated[
        str | None, typer.Option(help="A Tessera segment instead (a port is made for it).")
    ] = None,
    port: Annotated[str | None, typer.Option(help="An unbound port instead (its MAC).")] = None,
    *,
    follow: Follow,
) -> None:
    """Add a NIC on a network of the VM's pool, a Tessera segment or a port."""
    if [network, segment, port].count(None) != 2:
        raise CliError("give one of NETWORK, --segment and --port", EXIT_INVALID)
    client = _client()
    if network is not None:
        network_id = _object_id(client, "/v1/networks", _vm_provider(client, vm), network)
        body = {"network_id": network_id, "mac": mac}
    else:
        body = _segment_nic(client, segment, port) | ({"mac": mac} if mac else {})
    _submit("POST", vm, "/nics", body, follow)


@follows_task
def vm_nic_remove(
    vm: str,
    nic_id: Annotated[int, typer.Argument(help="The NIC's id, as `vm show` lists it.")],
    *,
    follow: Follow,
) -> None:
    """Remove a NIC."""
    _submit("DELETE", vm, f"/nics/{nic_id}", None, follow)


@follows_task
def vm_disk_add(
    vm: str,
    size_gib: Annotated[int, typer.Argument(min=1)],
    datastore: Annotated[str | None, typer.Option(help="Datastore name or id.")] = None,
    *,
    follow: Follow,
) -> None:
    """Add an empty disk."""
    client = _client()
    ds = (
        _object_id(client, "/v1/datastores", _vm_provider(client, vm), datastore)
        if datastore
        else None
    )
    body = {"size_gib": size_gib, "datastore_id": ds}
    _submit("POST", vm, "/disks", body, follow)


@follows_task
def vm_disk_grow(
    vm: str,
    disk_id: Annotated[int, typer.Argument(help="The disk's id, as `vm show` lists it.")],
    size_gib: Annotated[int, typer.Argument(min=1, help="The new size.")],
    *,
    follow: Follow,
) -> None:
    """Grow a disk (never shrinks)."""
    body = {"size_gib": size_gib}
    _submit("POST", vm, f"/disks/{disk_id}/grow", body, follow)


@follows_task
def vm_disk_remove(
    vm: str,
    disk_id: Annotated[int, typer.Argument(help="The disk's id, as `vm show` lists it.")],
    *,
    follow: Follow,
) -> None:
    """Detach a disk and delete its storage."""
    _submit("DELETE", vm, f"/disks/{disk_id}", None, follow)


@follows_task
def vm_snapshot_create(vm: str, name: str, *, follow: Follow) -> None:
    """Snapshot a VM."""
    _submit("POST", vm, "/snapshots", {"name": name}, follow)


def vm_snapshot_list(vm: str, output: Output = OutputFormat.TABLE) -> None:
    """A VM's snapshots, read from its pool."""
    client = _client()
    snapshots = client.get(f"/v1/vms/{find_vm_id(client, vm)}/snapshots")
    emit(snapshots, output, ("name", "created_at", "is_current", "parent_id", "id"))


@follows_task
def vm_snapshot_revert(vm: str, name: str, *, follow: Follow) -> None:
    """Return a VM to a snapshot."""
    _submit("POST", vm, f"/snapshots/{name}/revert", None, follow)


@follows_task
def vm_snapshot_delete(vm: str, name: str, *, follow: Follow) -> None:
    """Delete a snapshot, keeping the VM's current state."""
    _submit("DELETE", vm, f"/snapshots/{name}", None, follow)


@follows_task
def vm_clone(
    vm: str,
    name: str,
    host: Annotated[str | None, typer.Option(help="Host name or id.")] = None,
    datastore: Annotated[str | None, typer.Option(help="Datastore name or id.")] = None,
    *,
    follow: Follow,
) -> None:
    """Make a full copy of a stopped VM; the task's result names the copy."""
    client = _client()
    pid = _vm_provider(client, vm) if host or datastore else ""
    body = {
        "name": name,
        "host_id": _object_id(client, "/v1/hosts", pid, host) if host else None,
        "datastore_id": _object_id(client, "/v1/datastores", pid, datastore) if datastore else None,
    }
    _submit("POST", vm, "/clone", body, follow)


@follows_task
def vm_template(vm: str, *, follow: Follow) -> None:
    """Turn a stopped VM into a template."""
    _submit("POST", vm, "/template", None, follow)


@follows_task
def vm_untemplate(vm: str, *, follow: Follow) -> None:
    """Turn a template back into a VM."""
    _submit("DELETE", vm, "/template", None, follow)


@follows_task
def vm_migrate(
    vm: str, host: Annotated[str, typer.Argument(help="Target host name or id.")], *, follow: Follow
) -> None:
    """Move a VM to another host of its pool."""
    client = _client()
    host_id = _object_id(client, "/v1/hosts", _vm_provider(client, vm), host)
    _submit("POST", vm, "/migrate", {"host_id": host_id}, follow)


def register_vm_commands(vm_app: typer.Typer) -> None:
    """Add the task-backed VM commands to `tessera vm`, devices and snapshots grouped."""
    for name, command in (
        ("create", vm_create),
        ("delete", vm_delete),
        ("start", vm_start),
        ("stop", vm_stop),
        ("rename", vm_rename),
        ("resize", vm_resize),
        ("clone", vm_clone),
        ("template", vm_template),
        ("untemplate", vm_untemplate),
        ("migrate", vm_migrate),
    ):
        vm_app.command(name)(reports_errors(command))
    groups: dict[str, tuple[str, tuple[tuple[str, Any], ...]]] = {
        "nic": ("A VM's NICs.", (("add", vm_nic_add), ("remove", vm_nic_remove))),
        "disk": (
            "A VM's disks.",
            (("add", vm_disk_add), ("grow", vm_disk_grow), ("remove", vm_disk_remove)),
        ),
        "snapshot": (
            "A VM's snapshots.",
            (
                ("create", vm_snapshot_create),
                ("list", vm_snapshot_list),
                ("revert", vm_snapshot_revert),
                ("delete", vm_snapshot_delete),
            ),
        ),
    }
    for group, (help_text, commands) in groups.items():
        sub = typer.Typer(help=help_text, no_args_is_help=True)
        for name, command in commands:
            sub.command(name)(reports_errors(command))
        vm_app.add_typer(sub, name=group)
