"""`tessera demo`: the embedded default in one command.

Starts the lab, registers its pools (once), syncs them, prints where to go and how to log
in, then serves the API with in-process watchers. Safe to run again.
"""

from __future__ import annotations

from sqlalchemy import select

from tessera.cli.output import console
from tessera.config import Settings
from tessera.db.rows import ProviderRow
from tessera.errors import TesseraError
from tessera.identity.service import bootstrap
from tessera.inventory import pools
from tessera.lab.manager import LabSpec, LabState, lab_up
from tessera.network import poolsettings
from tessera.network.poolsettings import PoolNetworkSettings
from tessera.runtime import Runtime, ensure_admin_token


def _lab_pools(state: LabState) -> list[pools.ProviderSpec]:
    specs = [
        pools.ProviderSpec(
            name=f"lab-{vc.name}",
            kind="vsphere",
            url=vc.url,
            username=vc.username,
            password=vc.password,
            verify_tls=False,
            region="lab",
            zone="az1",
        )
        for vc in state.vcenters
    ]
    specs += [
        pools.ProviderSpec(
            name=f"lab-{host.name}", kind="libvirt", url=host.uri, region="lab", zone="az2"
        )
        for host in state.kvm_hosts
    ]
    return specs


def _register(rt: Runtime, state: LabState) -> list[str]:
    """Register lab pools that are new; re-point ones whose endpoint moved (new port)."""
    switches = {
        f"lab-{h.name}": PoolNetworkSettings(ovsdb=h.ovsdb) for h in state.kvm_hosts if h.ovsdb
    }
    ids = []
    for spec in _lab_pools(state):
        with rt.sessions.begin() as session:
            row = session.scalar(select(ProviderRow).where(ProviderRow.name == spec.name))
            if row is not None and row.url != spec.url:
                session.delete(row)
                row = None
        if row is None:
            row = pools.add_provider(rt, spec)
            console.print(f"registered [bold]{spec.name}[/] ({spec.kind}) {spec.url}")
        if spec.name in switches:  # where its Open vSwitch answers (the lab started it)
            poolsettings.store(rt, row.id, switches[spec.name])
        ids.append(row.id)
    return ids


def run_demo(
    settings: Settings, *, vms: int, kvm_hosts: int, port: int | None, serve_api: bool
) -> None:
    with console.status("starting the lab (first start probes QEMU, ~15 s)"):
        state = lab_up(LabSpec(vms=vms, kvm_hosts=kvm_hosts), settings.lab_dir)
    rt = Runtime.open(settings)
    token = ensure_admin_token(settings)
    bootstrap(rt, token)
    for provider_id in _register(rt, state):
        with console.status("syncing"):
            try:
                report = pools.sync_provider(rt, provider_id)
                counts = (report.counts.added, report.counts.changed, report.counts.unchanged)
                vms_seen = sum(c.get("vm", 0) for c in counts)
                console.print(f"synced {vms_seen} VMs in {report.seconds:.2f} s")
            except TesseraError as exc:
                console.print(f"[yellow]sync failed:[/] {exc.message}")
    port = port or settings.api_port
    url = f"http://{settings.api_host}:{port}"
    console.rule("Tessera is running")
    console.print(f"Portal:   [bold]{url}[/]  (English / 简体中文)")
    password_file = settings.admin_password_file
    if password_file.exists():
        password = password_file.read_text().strip()
        console.print(f"          log in as [bold]admin[/], password [bold]{password}[/]")
    console.print(f"API:      {url}  (OpenAPI docs at {url}/docs)")
    console.print(f"Login:    bearer token [bold]{token}[/] (also in {settings.token_file})")
    console.print(
        f"          or user [bold]admin[/], password in {settings.admin_password_file}"
        " (tessera login)"
    )
    console.print("Try:      .venv/bin/tessera vm list    .venv/bin/tessera provider list")
    console.print(f"          curl -H 'Authorization: Bearer {token}' {url}/v1/vms")
    if not serve_api:
        rt.close()
        return
    import uvicorn

    from tessera.api.app import create_app

    try:
        uvicorn.run(
            create_app(settings, runtime=rt), host=settings.api_host, port=port, log_level="info"
        )
    finally:
        rt.close()
