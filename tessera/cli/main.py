"""Entry point of the `tessera` command.

Inventory commands talk to the API (so they work against a remote control plane); `serve`,
`demo`, `db` and `lab` act on this machine.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer

from tessera.cli import adopt as adopt_cli
from tessera.cli import audit as audit_cli
from tessera.cli import bulk as bulk_cli
from tessera.cli import events as events_cli
from tessera.cli import identity as identity_cli
from tessera.cli import interconnect as interconnect_cli
from tessera.cli import inventory as inventory_cli
from tessera.cli import lab as lab_cli
from tessera.cli import migrate as migrate_cli
from tessera.cli import network as network_cli
from tessera.cli import placement as placement_cli
from tessera.cli import tasks as tasks_cli
from tessera.cli.client import ApiClient, find_provider_id, find_vm_id
from tessera.cli.errors import (
    EXIT_INVALID,
    EXIT_NOT_FOUND,
    EXIT_TASK_FAILED,
    CliError,
    reports_errors,
)
from tessera.cli.output import Output, OutputFormat, console, emit, err_console
from tessera.config import Settings

app = typer.Typer(
    help="Tessera: one control plane over VMware vSphere and KVM pools.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
provider_app = typer.Typer(
    help="Pools under management (vCenters, KVM hosts).", no_args_is_help=True
)
vm_app = typer.Typer(help="Virtual machines across every pool.", no_args_is_help=True)
app.add_typer(provider_app, name="provider")
app.add_typer(vm_app, name="vm")
app.add_typer(lab_cli.app, name="lab")
app.add_typer(placement_cli.app, name="placement")
app.add_typer(tasks_cli.task_app, name="task")
app.add_typer(events_cli.event_app, name="event")
app.add_typer(audit_cli.audit_app, name="audit")
app.add_typer(migrate_cli.app, name="migration")
app.add_typer(interconnect_cli.app, name="interconnect")
tasks_cli.register_vm_commands(vm_app)
bulk_cli.register(vm_app, tasks_cli.task_app)
adopt_cli.register(vm_app)
identity_cli.register(app)
inventory_cli.register(app)
network_cli.register(app)


def _client() -> ApiClient:
    return ApiClient(Settings())


PROVIDER_COLUMNS = ("name", "kind", "url", "zone", "status", "last_sync_ok_at", "id")


@provider_app.command("list")
@reports_errors
def provider_list(output: Output = OutputFormat.TABLE) -> None:
    """List registered pools with their reachability and inventory age."""
    emit(_client().get("/v1/providers"), output, PROVIDER_COLUMNS)


@provider_app.command("kinds")
@reports_errors
def provider_kinds(output: Output = OutputFormat.TABLE) -> None:
    """What each kind of pool can do: the drivers' capability flags."""
    rows = [{"kind": k["kind"], **k["capabilities"]} for k in _client().get("/v1/provider-kinds")]
    emit(rows, output)


@provider_app.command("show")
@reports_errors
def provider_show(name: str, output: Output = OutputFormat.TABLE) -> None:
    """Show one pool, with its capability flags."""
    client = _client()
    emit(client.get(f"/v1/providers/{find_provider_id(client, name)}"), output)


@provider_app.command("add")
@reports_errors
def provider_add(
    name: str,
    kind: Annotated[str, typer.Option(help="vsphere or libvirt.")],
    url: Annotated[str, typer.Option(help="https://vcenter/sdk or qemu+tcp://host/system.")],
    username: Annotated[str | None, typer.Option()] = None,
    password_stdin: Annotated[
        bool, typer.Option(help="Read the password from standard input.")
    ] = False,
    insecure: Annotated[bool, typer.Option(help="Do not verify the TLS certificate.")] = False,
    region: str = "default",
    zone: str = "default",
    output: Output = OutputFormat.TABLE,
) -> None:
    """Register a pool; the connection is tested first. The password comes from standard
    input or TESSERA_PROVIDER_PASSWORD, never from the command line."""
    password = os.environ.get("TESSERA_PROVIDER_PASSWORD")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    body = {
        "name": name,
        "kind": kind,
        "url": url,
        "username": username,
        "password": password,
        "verify_tls": not insecure,
        "region": region,
        "zone": zone,
    }
    emit(_client().post("/v1/providers", body), output)


@provider_app.command("delete")
@reports_errors
def provider_delete(name: str) -> None:
    """Forget a pool and its inventory (the pool itself is not touched)."""
    client = _client()
    client.delete(f"/v1/providers/{find_provider_id(client, name)}")
    console.print(f"deleted provider {name}")


@provider_app.command("network")
@reports_errors
def provider_network(
    name: str,
    ovsdb: Annotated[
        str | None, typer.Option(help="Its Open vSwitch: unix:/path/db.sock or tcp:host:port.")
    ] = None,
    netns: Annotated[str | None, typer.Option(help="Its namespace here (lab hosts).")] = None,
    vxlan_local_ip: Annotated[str | None, typer.Option(help="Its VXLAN endpoint.")] = None,
    vxlan_group: Annotated[str | None, typer.Option(help="VXLAN multicast group.")] = None,
    output: Output = OutputFormat.TABLE,
) -> None:
    """Set where Tessera reaches a KVM pool's switch and VXLAN endpoint (replaces all)."""
    client = _client()
    body = {
        "ovsdb": ovsdb,
        "netns": netns,
        "vxlan_local_ip": vxlan_local_ip,
        "vxlan_group": vxlan_group,
    }
    emit(client.put(f"/v1/providers/{find_provider_id(client, name)}/network", body), output)


@provider_app.command("mounts")
@reports_errors
def provider_mounts(
    name: str,
    mounts: Annotated[
        list[str] | None,
        typer.Argument(help="DATASTORE=/folder, where this host mounts the datastore."),
    ] = None,
    clear: Annotated[bool, typer.Option(help="Remove every mount of the pool.")] = False,
    output: Output = OutputFormat.TABLE,
) -> None:
    """Set where the conversion host mounts a vSphere pool's datastores (replaces all):
    cold migrations then read those disks as files instead of over HTTPS."""
    pairs = [m.partition("=") for m in mounts or []]
    if clear == bool(pairs) or any(not sep or not ds for ds, sep, _ in pairs):
        raise CliError("give DATASTORE=/folder pairs, or --clear alone", EXIT_INVALID)
    client = _client()
    body = {"mounts": {ds: folder for ds, _, folder in pairs}}
    path = f"/v1/providers/{find_provider_id(client, name)}/datastore-mounts"
    emit(client.put(path, body), output)


@provider_app.command("sync")
@reports_errors
def provider_sync(
    names: Annotated[list[str] | None, typer.Argument(help="Pools to sync; all when none.")] = None,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait at most.")] = 3600.0,
    output: Output = OutputFormat.TABLE,
) -> None:
    """Read pools in full now and reconcile the inventory (a task per pool, run together)."""
    client = _client()
    providers = client.get("/v1/providers")
    chosen = [p for p in providers if not names or p["name"] in names or p["id"] in names]
    missing = set(names or ()) - {p["name"] for p in chosen} - {p["id"] for p in chosen}
    if missing:
        raise CliError(f"provider(s) not found: {', '.join(sorted(missing))}", EXIT_NOT_FOUND)
    submitted: list[tuple[str, dict[str, Any] | CliError]] = []
    for provider in chosen:
        try:
            task = client.post(f"/v1/providers/{provider['id']}/sync")
        except CliError as exc:
            task = exc
        submitted.append((provider["name"], task))
    results: list[dict[str, Any]] = []
    exit_code = 0
    for name, queued in submitted:
        ended: dict[str, Any] | CliError = (
            queued
            if isinstance(queued, CliError)
            else tasks_cli.wait_for(client, queued["id"], timeout)
        )
        if isinstance(ended, CliError):
            results.append({"provider": name, "error": ended.message})
            exit_code = exit_code or ended.exit_code
        elif ended["state"] != "succeeded":
            results.append({"provider": name, "error": (ended.get("error") or {}).get("message")})
            exit_code = exit_code or EXIT_TASK_FAILED
        else:
            results.append({"provider": name, **_sync_summary(ended["result"])})
    emit(results, output)
    if exit_code:
        raise typer.Exit(exit_code)


def _sync_summary(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "seconds": round(result["seconds"], 2),
        "vms": sum(result[k].get("vm", 0) for k in ("added", "changed", "unchanged")),
        "added": sum(result["added"].values()),
        "changed": sum(result["changed"].values()),
        "removed": sum(result["removed"].values()),
    }


VM_COLUMNS = ("name", "power_state", "cpu_count", "memory_mib", "guest_os", "id")


@vm_app.command("list")
@reports_errors
def vm_list(
    provider: Annotated[str | None, typer.Option(help="Pool name or id.")] = None,
    power_state: Annotated[str | None, typer.Option(help="running, stopped, ...")] = None,
    name: Annotated[str | None, typer.Option(help="Name contains.")] = None,
    host: Annotated[str | None, typer.Option(help="Host id.")] = None,
    tag: Annotated[str | None, typer.Option()] = None,
    sort: Annotated[str, typer.Option(help="Field, '-' prefix for descending.")] = "name",
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Page size.")] = 50,
    all_pages: Annotated[bool, typer.Option("--all", help="Follow every page.")] = False,
    fields: Annotated[str | None, typer.Option(help="Comma-separated fields.")] = None,
    output: Output = OutputFormat.TABLE,
) -> None:
    """List VMs across every pool, filtered and sorted on the server."""
    client = _client()
    params: dict[str, Any] = {
        "provider_id": find_provider_id(client, provider) if provider else None,
        "power_state": power_state,
        "name": name,
        "host_id": host,
        "tag": tag,
        "sort": sort,
        "limit": limit,
        "fields": fields,
    }
    items: list[dict[str, Any]] = []
    while True:
        page = client.get("/v1/vms", **params)
        items += page["items"]
        if not all_pages or not page["next_cursor"]:
            break
        params["cursor"] = page["next_cursor"]
    columns = fields.split(",") if fields else VM_COLUMNS
    emit(items, output, columns)


@vm_app.command("show")
@reports_errors
def vm_show(vm: str, output: Output = OutputFormat.TABLE) -> None:
    """Show a VM (by id, or by exact name when unique) with its disks and NICs."""
    client = _client()
    emit(client.get(f"/v1/vms/{find_vm_id(client, vm)}"), output)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address.")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port.")] = None,
    worker: Annotated[
        bool | None,
        typer.Option(
            "--worker/--no-worker",
            help="Run tasks in this process too (default: TESSERA_RUN_TASKS, true).",
        ),
    ] = None,
) -> None:
    """Run the API with in-process inventory watchers (the embedded default); with
    --no-worker it only enqueues tasks for `tessera worker` processes."""
    import uvicorn

    from tessera.api.app import create_app

    settings = Settings() if worker is None else Settings(run_tasks=worker)
    uvicorn.run(
        create_app(settings),
        host=host or settings.api_host,
        port=port or settings.api_port,
        log_level="info",
    )


@app.command()
def worker(
    watch: Annotated[
        bool, typer.Option("--watch/--no-watch", help="Also run the inventory watchers.")
    ] = False,
) -> None:
    """Run tasks from the shared queue until SIGTERM or Ctrl-C (several per PostgreSQL).

    The inventory watchers stay off by default: they hold one event stream per pool and
    write every change, so running them in each of N workers would multiply that load
    and race on the same rows. One process runs them: the API, or one worker with
    --watch. Each worker needs its own TESSERA_EXECUTOR_ID, kept across restarts.
    """
    import signal
    import threading

    from tessera.inventory.watcher import WatchManager
    from tessera.runtime import Runtime
    from tessera.tasks.engine import TaskEngine

    settings = Settings(run_tasks=True)
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    rt = Runtime.open(settings)
    engine = TaskEngine.start(rt)
    watchers = WatchManager(rt) if watch else None
    if watchers is not None:
        watchers.start_all()
    err_console.print(f"worker {settings.resolved_executor_id} is running tasks")
    try:
        while not stopping.wait(1.0):
            pass
    finally:
        if watchers is not None:
            watchers.stop_all()
        engine.stop()
        rt.close()


@app.command()
@reports_errors
def demo(
    vms: Annotated[int, typer.Option(help="VMs in the lab vCenter.")] = 40,
    kvm_hosts: Annotated[int, typer.Option(help="Simulated KVM hosts.")] = 2,
    port: Annotated[int | None, typer.Option(help="API port.")] = None,
    serve_api: Annotated[bool, typer.Option("--serve/--no-serve")] = True,
) -> None:
    """Start the lab, register and sync its pools, then serve the API."""
    from tessera.cli.demo import run_demo

    run_demo(Settings(), vms=vms, kvm_hosts=kvm_hosts, port=port, serve_api=serve_api)


@app.command("db-upgrade")
def db_upgrade() -> None:
    """Create or migrate the database schema."""
    from tessera.runtime import Runtime

    Runtime.open(Settings()).close()
    console.print("database is at the latest schema")
