"""`tessera interconnect`: routed (BGP, OSPF) and VPN (IPsec, GRE) interconnects between
regions. `create|list|show|delete` go through the API (admins); `agent` runs on a
region's network node, starts the daemons of the sides whose router namespaces live
there, and keeps them in step with the regions' subnets until stopped."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer

from tessera.cli.client import ApiClient
from tessera.cli.errors import reports_errors
from tessera.cli.output import Output, OutputFormat, console, emit, err_console
from tessera.config import Settings

app = typer.Typer(
    help="Interconnects between regions: BGP, OSPF, IPsec, GRE.", no_args_is_help=True
)
COLUMNS = ("name", "kind", "a", "b", "id")
PSK_ENV = "TESSERA_IPSEC_PSK"


def _client() -> ApiClient:
    return ApiClient(Settings())


def _side(spec: str, ranges: list[str]) -> dict[str, Any]:
    """REGION:NAMESPACE:UNDERLAY_IP, then any of asn=, tunnel= (GRE)."""
    parts = spec.split(":")
    if len(parts) < 3:
        raise typer.BadParameter(
            f"{spec!r}: want REGION:NAMESPACE:UNDERLAY_IP[:asn=N][:tunnel=CIDR]"
        )
    side: dict[str, Any] = {"region": parts[0], "namespace": parts[1], "underlay_ip": parts[2]}
    for extra in parts[3:]:
        key, _, value = extra.partition("=")
        if key == "asn" and value.isdigit():
            side["asn"] = int(value)
        elif key == "tunnel" and value:
            side["tunnel_ip"] = value
        else:
            raise typer.BadParameter(f"{extra!r}: want asn=N or tunnel=ADDRESS/PREFIX")
    side["ranges"] = ranges
    return side


def _row(item: dict[str, Any]) -> dict[str, Any]:
    def end(side: dict[str, Any]) -> str:
        return f"{side['region']} ({', '.join(side['prefixes']) or '-'})"

    return {**item, "a": end(item["a"]), "b": end(item["b"])}


@app.command("create")
@reports_errors
def create(
    name: str,
    kind: Annotated[str, typer.Option(help="bgp, ospf, ipsec or gre.")],
    a: Annotated[
        str, typer.Option("--a", help="REGION:NAMESPACE:UNDERLAY_IP[:asn=N][:tunnel=CIDR]")
    ],
    b: Annotated[str, typer.Option("--b", help="The other side, alike.")],
    a_range: Annotated[
        list[str] | None, typer.Option(help="A prefix behind side a (a VPN peer's, or announced).")
    ] = None,
    b_range: Annotated[list[str] | None, typer.Option(help="A prefix behind side b.")] = None,
    ospf_area: Annotated[str | None, typer.Option(help="OSPF: the area (0.0.0.0).")] = None,
    output: Output = OutputFormat.TABLE,
) -> None:
    """Record an interconnect. IPsec's pre-shared key comes from TESSERA_IPSEC_PSK (never
    the command line); without it Tessera makes one. Overlapping ranges exit 4."""
    body: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "a": _side(a, a_range or []),
        "b": _side(b, b_range or []),
        "ospf_area": ospf_area,
    }
    if kind == "ipsec" and os.environ.get(PSK_ENV):
        body["psk"] = os.environ[PSK_ENV]
    emit(_row(_client().post("/v1/interconnects", body)), output, COLUMNS)


@app.command("list")
@reports_errors
def list_(output: Output = OutputFormat.TABLE) -> None:
    """The interconnects, with what each side announces or tunnels now."""
    items = _client().get("/v1/interconnects")
    emit([_row(i) for i in items] if output is OutputFormat.TABLE else items, output, COLUMNS)


@app.command("show")
@reports_errors
def show(interconnect: str, output: Output = OutputFormat.YAML) -> None:
    emit(_client().get(f"/v1/interconnects/{quote(interconnect, safe='')}"), output)


@app.command("delete")
@reports_errors
def delete(interconnect: str) -> None:
    """Forget it and its ranges (stop its agents too)."""
    _client().delete(f"/v1/interconnects/{quote(interconnect, safe='')}")
    console.print(f"deleted interconnect {interconnect}")


@app.command("agent")
@reports_errors
def agent(
    interconnect: str,
    side: Annotated[list[str] | None, typer.Option(help="a and/or b: the sides run here.")] = None,
    interval: Annotated[float, typer.Option(help="Seconds between syncs.")] = 2.0,
    home: Annotated[
        Path | None, typer.Option(help="Daemons' folders (.tessera/interconnects).")
    ] = None,
) -> None:
    """Start the daemons of the given sides here (in their router namespaces), keep them
    in step with the regions' subnets, and stop them on Ctrl-C or SIGTERM."""
    from tessera.network.interconnect import service
    from tessera.network.interconnect.agent import InterconnectAgent
    from tessera.runtime import Runtime

    settings = Settings()
    rt = Runtime.open(settings)
    worker = InterconnectAgent(rt, home or settings.data_dir / "interconnects")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with rt.sessions() as session:
            interconnect_id = service.get(session, interconnect).id
        worker.up(interconnect_id, tuple(side or ["a", "b"]))
        err_console.print(f"interconnect {interconnect} is up; Ctrl-C stops it")
        while not stop.wait(interval):
            changed = worker.sync(interconnect_id)
            if changed:
                err_console.print(f"applied changes to side(s) {', '.join(changed)}")
    except KeyboardInterrupt:
        pass
    finally:
        worker.close()
        rt.close()
