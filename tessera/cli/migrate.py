"""`tessera migration plan ...`: VMware to KVM migration plans via the API, with a Rich
progress bar per disk (bytes, MiB/s, ETA) while a plan runs."""

from __future__ import annotations

import time
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from tessera.cli.client import ApiClient, find_provider_id
from tessera.cli.errors import (
    EXIT_CONFLICT,
    EXIT_NOT_FOUND,
    EXIT_TASK_FAILED,
    CliError,
    reports_errors,
)
from tessera.cli.output import Output, OutputFormat, console, emit

app = typer.Typer(help="Migrate VMware VMs to KVM.", no_args_is_help=True)
plan_app = typer.Typer(help="Migration plans: create, check, run.", no_args_is_help=True)
app.add_typer(plan_app, name="plan")

PLAN_COLUMNS = ("name", "state", "target_format", "mode", "parallelism", "vms", "task_id", "id")
_PARALLELISM_HELP = "How many VMs migrate at once (1-8); a failed VM does not stop the others."
_BASE = "/v1/migration-plans"


def _client() -> ApiClient:
    from tessera.config import Settings

    return ApiClient(Settings())


def _pairs(values: list[str] | None, what: str) -> dict[str, str]:
    """`SRC=DST` options as a map; bad ones are a usage error."""
    found = {}
    for value in values or []:
        src, sep, dst = value.partition("=")
        if not sep or not src or not dst:
            raise typer.BadParameter(f"{what} wants SOURCE=TARGET, not {value!r}")
        found[src] = dst
    return found


def _network_ids(client: ApiClient, provider: str, names: dict[str, str], target: str) -> Any:
    def find(provider_id: str, name: str) -> str:
        items = client.get("/v1/networks", provider_id=provider_id, name=name)["items"]
        exact = [n for n in items if n["name"] == name or n["id"] == name]
        if not exact:
            raise CliError(f"no network {name!r} on that provider", EXIT_NOT_FOUND)
        return str(exact[0]["id"])

    return {find(provider, s): find(target, d) for s, d in names.items()}


def _datastore_ids(client: ApiClient, provider: str, names: dict[str, str], target: str) -> Any:
    def find(provider_id: str, name: str) -> str:
        items = client.get("/v1/datastores", provider_id=provider_id, name=name)["items"]
        exact = [d for d in items if d["name"] == name or d["id"] == name]
        if not exact:
            raise CliError(f"no datastore or pool {name!r} on that provider", EXIT_NOT_FOUND)
        return str(exact[0]["id"])

    return {find(provider, s): find(target, d) for s, d in names.items()}


def _vm_ids(client: ApiClient, provider_id: str, names: list[str]) -> list[str]:
    """Source VMs by exact name (or id) on the source pool only: once migrated, a VM's
    name is also on the KVM side."""
    found = []
    for name in names:
        items = client.get("/v1/vms", provider_id=provider_id, name=name, limit=1000)["items"]
        exact = [v for v in items if v["name"] == name] or [v for v in items if v["id"] == name]
        if len(exact) > 1:
            raise CliError(f"{len(exact)} VMs are named {name!r}; give the id", EXIT_CONFLICT)
        found.append(str(exact[0]["id"]) if exact else name)
    return found


def _plan(client: ApiClient, name_or_id: str) -> dict[str, Any]:
    """A plan by its name or id (the API takes either)."""
    return dict(client.get(f"{_BASE}/{quote(name_or_id, safe='')}"))


def _row(plan: dict[str, Any]) -> dict[str, Any]:
    return {**plan, "vms": ", ".join(f"{v['name']}:{v['state']}" for v in plan["vms"])}


@plan_app.command("create")
@reports_errors
def create(
    name: str,
    source: Annotated[str, typer.Option(help="The vCenter (name or id).")],
    target: Annotated[str, typer.Option(help="The KVM host (name or id).")],
    vm: Annotated[list[str], typer.Option(help="A source VM (name or id); repeatable.")],
    network: Annotated[
        list[str] | None, typer.Option(help="PORTGROUP=KVM_NETWORK; repeatable.")
    ] = None,
    storage: Annotated[list[str] | None, typer.Option(help="DATASTORE=POOL; repeatable.")] = None,
    target_format: Annotated[str, typer.Option(help="qcow2 or raw.")] = "qcow2",
    mode: Annotated[str, typer.Option(help="cold or warm.")] = "cold",
    schedule: Annotated[
        str | None, typer.Option(help="Start no earlier than this ISO 8601 time.")
    ] = None,
    parallelism: Annotated[int, typer.Option(help=_PARALLELISM_HELP)] = 1,
    output: Output = OutputFormat.TABLE,
) -> None:
    """Store a draft plan (nothing moves until `start`)."""
    client = _client()
    src, dst = find_provider_id(client, source), find_provider_id(client, target)
    body = {
        "name": name,
        "source_provider_id": src,
        "target_provider_id": dst,
        "vm_ids": _vm_ids(client, src, vm),
        "network_map": _network_ids(client, src, _pairs(network, "--network"), dst),
        "storage_map": _datastore_ids(client, src, _pairs(storage, "--storage"), dst),
        "target_format": target_format,
        "mode": mode,
        "parallelism": parallelism,
    }
    if schedule is not None:
        body["schedule_at"] = schedule
    emit(_row(client.post(_BASE, body)), output, PLAN_COLUMNS)


@plan_app.command("list")
@reports_errors
def list_plans(output: Output = OutputFormat.TABLE) -> None:
    """Every plan with its state and its VMs' states."""
    emit([_row(p) for p in _client().get(_BASE)], output, PLAN_COLUMNS)


@plan_app.command("show")
@reports_errors
def show(plan: str, output: Output = OutputFormat.TABLE) -> None:
    """The plan, its VMs' phases and disks' progress."""
    found = _plan(_client(), plan)
    if output is not OutputFormat.TABLE:
        emit(found, output)
        return
    emit(_row(found), output, PLAN_COLUMNS)
    rows = [
        {"vm": v["name"], "state": v["state"], "phase": v["phase"] or "", "error": v["error"] or ""}
        for v in found["vms"]
    ]
    emit(rows, output, ("vm", "state", "phase", "error"))


@plan_app.command("edit")
@reports_errors
def edit(
    plan: str,
    target_format: Annotated[str | None, typer.Option(help="qcow2 or raw.")] = None,
    vm: Annotated[list[str] | None, typer.Option(help="Replace the VMs; repeatable.")] = None,
    mode: Annotated[str | None, typer.Option(help="cold or warm.")] = None,
    network: Annotated[
        list[str] | None, typer.Option(help="Replace the network map: PORTGROUP=KVM_NETWORK.")
    ] = None,
    storage: Annotated[
        list[str] | None, typer.Option(help="Replace the storage map: DATASTORE=POOL.")
    ] = None,
    parallelism: Annotated[int | None, typer.Option(help=_PARALLELISM_HELP)] = None,
    output: Output = OutputFormat.TABLE,
) -> None:
    """Change a draft plan."""
    client = _client()
    found = _plan(client, plan)
    src, dst = found["source_provider_id"], found["target_provider_id"]
    body: dict[str, Any] = {}
    if network:
        body["network_map"] = _network_ids(client, src, _pairs(network, "--network"), dst)
    if storage:
        body["storage_map"] = _datastore_ids(client, src, _pairs(storage, "--storage"), dst)
    if target_format is not None:
        body["target_format"] = target_format
    if mode is not None:
        body["mode"] = mode
    if vm:
        body["vm_ids"] = _vm_ids(client, src, vm)
    if parallelism is not None:
        body["parallelism"] = parallelism
    if not body:
        raise typer.BadParameter("nothing to change: give what to change (see --help)")
    changed = client.request("PATCH", f"{_BASE}/{found['id']}", json=body)
    emit(_row(changed), output, PLAN_COLUMNS)


plan_app.command("update", help="Change a draft plan (the same as `edit`).")(edit)


@plan_app.command("delete")
@reports_errors
def delete(plan: str) -> None:
    """Forget a plan that is not running (what it migrated stays)."""
    _client().delete(f"{_BASE}/{quote(plan, safe='')}")
    console.print(f"deleted plan {plan}")


@plan_app.command("readiness")
@reports_errors
def readiness(plan: str, output: Output = OutputFormat.TABLE) -> None:
    """Check the plan now: per VM, what blocks it, what to watch, the transfer estimate.
    Exits 4 when something blocks it (as `start` would)."""
    report = _client().post(f"{_BASE}/{quote(plan, safe='')}/readiness")
    if output is not OutputFormat.TABLE:
        emit(report, output)
        if not report["ready"]:
            raise typer.Exit(EXIT_CONFLICT)
        return
    rows = [
        {"vm": vm["name"], "severity": f["severity"], "code": f["code"], "message": f["message"]}
        for vm in report["vms"]
        for f in vm["findings"]
    ]
    emit(rows, output, ("vm", "severity", "code", "message"))
    verdict = "ready" if report["ready"] else "NOT ready"
    console.print(
        f"{verdict}: {report['transfer_bytes']} bytes to transfer, ~{report['estimate_s']} s "
        f"({report.get('estimate_basis', 'default')} copy speed)"
    )
    if not report["ready"]:
        raise typer.Exit(EXIT_CONFLICT)


def _follow(client: ApiClient, plan_id: str, task: dict[str, Any]) -> None:
    """A progress bar per disk until the plan's task ends; exit 10 unless it succeeded."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    bars: dict[str, TaskID] = {}
    with Progress(*columns, console=console, transient=False) as progress:
        while True:
            # The task first: once it has ended, the plan read after it is final too.
            state = client.get(f"/v1/tasks/{task['id']}")
            found = client.get(f"{_BASE}/{plan_id}")
            for vm in found["vms"]:
                for disk in vm["disks"]:
                    key = f"{vm['name']} disk {disk['index']}"
                    if key not in bars:
                        bars[key] = progress.add_task(key, total=disk["total_bytes"])
                    progress.update(bars[key], completed=disk["done_bytes"])
            if state["state"] in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(0.5)
    console.print(f"plan {found['name']}: {found['state']}")
    for vm in found["vms"]:
        console.print(f"  {vm['name']}: {vm['state']} {vm['phase'] or ''} {vm['error'] or ''}")
    if state["state"] != "succeeded":
        raise CliError(f"task {task['id']} {state['state']}", EXIT_TASK_FAILED)


def _action(plan: str, action: str, wait: bool) -> None:
    client = _client()
    plan_id = quote(plan, safe="")
    task = client.post(f"{_BASE}/{plan_id}/{action}")
    console.print(f"task {task['id']} {task['state']}")
    if wait:
        _follow(client, plan_id, task)


_WAIT = Annotated[bool, typer.Option("--wait/--no-wait", help="Follow it to its end.")]


@plan_app.command("start")
@reports_errors
def start(plan: str, wait: _WAIT = True) -> None:
    """Check readiness and run the plan (409 when something blocks it)."""
    _action(plan, "start", wait)


@plan_app.command("cancel")
@reports_errors
def cancel(plan: str) -> None:
    """Stop the running plan; the VMs in flight are rolled back, no new one starts."""
    _action(plan, "cancel", False)


@plan_app.command("resume")
@reports_errors
def resume(plan: str, wait: _WAIT = True) -> None:
    """Run a failed or cancelled plan again, for its VMs not yet migrated."""
    _action(plan, "resume", wait)


@plan_app.command("rollback")
@reports_errors
def rollback(plan: str, wait: _WAIT = True) -> None:
    """Power the sources back as they were and remove every target the plan made."""
    _action(plan, "rollback", wait)
