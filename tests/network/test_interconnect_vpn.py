"""VPN interconnect between two regions' VPN routers, with real packets: IPsec (charon
with kernel-libipsec) or GRE (OVS userspace datapath), started and configured by the
agent from what Tessera records. Each router drops tenant traffic that would cross the
underlay in the clear, so a guest's ping can pass only through the tunnel, whose own
counters must show it; a subnet made later is reached through it too, applied by the
task its creation queued. A peer range (or announcement) overlapping another region's
subnet is refused naming both, and leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tessera.cli.main import app
from tessera.network.interconnect import gre, strongswan
from tessera.network.interconnect.agent import InterconnectAgent
from tessera.runtime import Runtime
from tests.fixtures.netns import NetLab
from tests.network.helpers import ok
from tests.network.regions import Region, last_sync, side, tenant_subnet, two_regions

PSK = "lab-psk-0f3c9a7e2b5d"
runner = CliRunner()


def _tunnel_only(region: Region, remote: str) -> None:
    """Tenant traffic to or from the other region never crosses the underlay unwrapped."""
    for rule in (
        ["FORWARD", "-o", "transit", "-d", remote],
        ["FORWARD", "-i", "transit", "-s", remote],
        ["OUTPUT", "-o", "transit", "-d", remote],
        ["INPUT", "-i", "transit", "-s", remote],
    ):
        region.gateway.run("iptables", "-A", *rule, "-j", "DROP")


@pytest.mark.parametrize("kind", ["ipsec", "gre"])
def test_vpn_carries_cross_region_traffic_through_the_tunnel_only(
    kind: str, api: TestClient, runtime: Runtime, netlab: NetLab, tmp_path: Path
) -> None:
    missing = strongswan.available() if kind == "ipsec" else gre.available()
    if missing:
        pytest.skip(f"{kind} needs {missing}")
    east, west = two_regions(netlab)
    _tunnel_only(east, "10.62.0.0/16")
    _tunnel_only(west, "10.61.0.0/16")
    if kind == "ipsec":
        body = {"a": side(east), "b": side(west), "psk": PSK}
    else:
        body = {
            "a": side(east, tunnel_ip="10.255.0.1/30"),
            "b": side(west, tunnel_ip="10.255.0.2/30"),
        }
    made = ok(
        api.post("/v1/interconnects", json={"name": f"vpn-{kind}", "kind": kind, **body}), 201
    )
    assert PSK not in str(made)
    assert made["has_psk"] is (kind == "ipsec")
    assert made["a"]["tunnel_state"] == made["b"]["tunnel_state"] == "unknown"  # no agent
    tenant_subnet(api, "east", 101, "10.61.1.0/24")
    tenant_subnet(api, "west", 201, "10.62.1.0/24")
    assert not east.guest.ping("10.62.1.10", count=1, wait_s=1)  # no path before the VPN

    agent = InterconnectAgent(runtime, tmp_path / "agent")
    netlab.defer(agent.close)
    agent.up(made["id"])
    realised = agent.sides[(made["id"], "a")]
    before = _counters(realised)
    assert east.guest.ping("10.62.1.10", count=3)
    assert west.guest.ping("10.61.1.10", count=3)
    after = _counters(realised)
    # Each ping passed once at least (a loaded machine may drop some): the tunnel carried
    # that request and reply in each direction.
    assert after[0] - before[0] >= 2, (before, after)  # sent
    assert after[1] - before[1] >= 2, (before, after)  # received

    # a subnet made in west is reached through the tunnel at once: the task the API call
    # queued changed the routes (GRE) or traffic selectors (IPsec), no sync of the agent's
    west.lan("10.62.2")
    assert not east.guest.ping("10.62.2.1", count=1, wait_s=1)
    tenant_subnet(api, "west", 202, "10.62.2.0/24")
    assert last_sync(api)["result"] == {made["id"]: {"a": "applied", "b": "applied"}}
    assert east.guest.ping("10.62.2.1", count=3)
    assert agent.sync(made["id"]) == []  # nothing left for the reconciler
    agent.sync(made["id"])
    shown = ok(api.get(f"/v1/interconnects/{made['id']}"))
    assert (shown["a"]["tunnel_state"], shown["b"]["tunnel_state"]) == ("up", "up")
    assert shown["a"]["tunnel_checked_at"] is not None

    if kind == "ipsec":
        home = tmp_path / "agent" / "vpn-ipsec-a"
        assert (home / "secrets.conf").stat().st_mode & 0o777 == 0o600
        for log in (home / "charon.log", home / "charon.out", home / "swanctl.conf"):
            assert PSK not in log.read_text(), log
        assert PSK not in api.get(f"/v1/interconnects/{made['id']}").text

    agent.down(made["id"])
    assert ok(api.get(f"/v1/interconnects/{made['id']}"))["a"]["tunnel_state"] == "unknown"
    assert not east.guest.ping("10.62.1.10", count=1, wait_s=1)  # the tunnel is gone
    assert "transit" in east.gateway.ip("-br", "addr")  # the underlay is given back
    assert "172.31.0.1/30" in east.gateway.ip("-br", "addr", "show", "dev", "transit")


def _counters(realised: object) -> tuple[int, int]:
    """(packets sent, packets received) through the tunnel of side a."""
    ipsec = getattr(realised, "ipsec", None)
    if ipsec is not None:
        found = ipsec.counters()
        return found["out"][1], found["in"][1]
    found = realised.gre.counters()  # type: ignore[attr-defined]
    return found["tx"][0], found["rx"][0]


def test_overlapping_peer_range_or_announcement_is_refused_naming_both(
    api: TestClient,
) -> None:
    ok(
        api.post(
            "/v1/interconnects",
            json={
                "name": "first",
                "kind": "gre",
                "a": {"region": "east", "namespace": "ns-e", "underlay_ip": "172.31.0.1",
                      "tunnel_ip": "10.255.0.1/30"},
                "b": {"region": "west", "namespace": "ns-w", "underlay_ip": "172.31.0.2",
                      "tunnel_ip": "10.255.0.2/30", "ranges": ["192.168.50.0/24"]},
            },
        ),
        201,
    )  # fmt: skip
    west_subnet = tenant_subnet(api, "west", 201, "10.62.1.0/24")
    before = (ok(api.get("/v1/interconnects")), ok(api.get("/v1/address-ranges")))
    assert [r["cidr"] for r in before[1]] == ["192.168.50.0/24"]
    cases = [
        (
            "ipsec",
            {"ranges": ["10.62.0.0/16"]},
            "10.62.0.0/16 (vpn-peer 'bad/east' of region 'east') overlaps 10.62.1.0/24 (subnet ",
        ),
        (
            "ipsec",
            {"ranges": ["192.168.50.128/25"]},
            "192.168.50.128/25 (vpn-peer 'bad/east' of region 'east') overlaps"
            " 192.168.50.0/24 (vpn-peer 'first/west' of region 'west')",
        ),
        (
            "bgp",
            {"asn": 65001, "ranges": ["10.62.1.0/25"]},
            "10.62.1.0/25 (announcement 'bad/east' of region 'east') overlaps 10.62.1.0/24",
        ),
    ]
    for kind, extra, message in cases:
        body = {
            "name": "bad",
            "kind": kind,
            "a": {"region": "east", "namespace": "ns-e", "underlay_ip": "172.31.0.1", **extra},
            "b": {"region": "west", "namespace": "ns-w", "underlay_ip": "172.31.0.2", "asn": 65002},
        }
        if kind == "ipsec":
            body["b"].pop("asn")  # type: ignore[attr-defined]
        answer = api.post("/v1/interconnects", json=body)
        assert answer.status_code == 409, answer.text
        assert message in answer.json()["message"], answer.text
        assert (ok(api.get("/v1/interconnects")), ok(api.get("/v1/address-ranges"))) == before
    overlaps = ok(api.get("/v1/address-overlaps"))
    assert overlaps == []  # nothing that collides was recorded
    ok(api.delete(f"/v1/subnets/{west_subnet}"), 204)
    ok(api.delete("/v1/interconnects/first"), 204)
    assert ok(api.get("/v1/address-ranges")) == []  # its ranges went with it


def test_readme_vpn_between_two_regions_from_the_cli(
    cli_env: dict[str, str], netlab: NetLab, tmp_path: Path
) -> None:
    """`tessera interconnect create` (key from the environment), then `tessera
    interconnect agent` as its own process: the guests reach each other until SIGTERM
    stops it, which takes the tunnel down; an overlapping peer range exits 4."""
    missing = strongswan.available()
    if missing:
        pytest.skip(f"ipsec needs {missing}")
    east, west = two_regions(netlab)
    env = {**os.environ, **cli_env, "TESSERA_IPSEC_PSK": PSK}
    made = runner.invoke(
        app,
        ["interconnect", "create", "east-west", "--kind", "ipsec",
         "--a", f"east:{east.gateway.name}:172.31.0.1",
         "--b", f"west:{west.gateway.name}:172.31.0.2", "-o", "json"],
        env=env,
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    assert PSK not in made.output
    headers = {"Authorization": f"Bearer {cli_env['TESSERA_API_TOKEN']}"}
    with httpx.Client(base_url=cli_env["TESSERA_API_URL"], headers=headers) as api:
        for region, vlan, cidr in (("east", 101, "10.61.1.0/24"), ("west", 201, "10.62.1.0/24")):
            segment = {"name": region, "network_type": "vlan", "segmentation_id": vlan}
            seg = api.post("/v1/segments", json={**segment, "region": region}).json()
            body = {"segment_id": seg["segment"]["id"], "cidr": cidr}
            assert api.post("/v1/subnets", json=body).status_code == 201
    clash = runner.invoke(
        app,
        ["interconnect", "create", "clash", "--kind", "gre",
         "--a", "east:ns-e:172.31.1.1:tunnel=10.255.0.1/30",
         "--b", "west:ns-w:172.31.1.2:tunnel=10.255.0.2/30", "--a-range", "10.62.0.0/16"],
        env=env,
    )  # fmt: skip
    assert clash.exit_code == 4, clash.output
    assert "overlaps 10.62.1.0/24" in " ".join(clash.output.split())  # the console wraps

    agent = subprocess.Popen(
        [str(Path(sys.executable).parent / "tessera"), "interconnect", "agent", "east-west",
         "--home", str(tmp_path / "agent"), "--interval", "1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    netlab.defer(lambda: _end(agent))
    assert agent.stderr is not None
    line = agent.stderr.readline()
    assert "is up" in line, line + agent.stderr.read() if agent.poll() is not None else line
    assert east.guest.ping("10.62.1.10", count=3)
    _end(agent)
    assert agent.returncode == 0
    assert not east.guest.ping("10.62.1.10", count=1, wait_s=1)


def _end(agent: subprocess.Popen[str]) -> None:
    if agent.poll() is None:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=30)
    if agent.stderr is not None:
        agent.stderr.close()


def test_bad_interconnect_input_is_a_clear_4xx_and_makes_nothing(api: TestClient) -> None:
    a = {"region": "east", "namespace": "ns-e", "underlay_ip": "172.31.0.1"}
    b = {"region": "west", "namespace": "ns-w", "underlay_ip": "172.31.0.2"}
    cases = [
        ({"kind": "bgp", "a": a, "b": b}, 422, "side a: a BGP interconnect needs an asn"),
        ({"kind": "gre", "a": a, "b": b}, 422, "side a: a GRE interconnect needs a tunnel_ip"),
        (
            {"kind": "gre", "a": {**a, "tunnel_ip": "10.255.0.1/30"},
             "b": {**b, "tunnel_ip": "10.255.1.2/30"}},
            422,
            "must be two addresses of one subnet",
        ),
        ({"kind": "ospf", "a": a, "b": {**b, "region": "east"}}, 422, "two different regions"),
        ({"kind": "ospf", "a": a, "b": {**b, "underlay_ip": "172.31.0.1"}}, 422, "different"),
        ({"kind": "ospf", "a": a, "b": b, "ospf_area": "x"}, 422, "ospf_area 'x' is not"),
        ({"kind": "ipsec", "a": {**a, "underlay_ip": "fd00::1"}, "b": b}, 422, "must be IPv4"),
        ({"kind": "ospf", "a": a, "b": b, "psk": "p" * 20}, 422, "only an ipsec interconnect"),
        ({"kind": "ipsec", "a": {**a, "ranges": ["10.0.0.1/8"]}, "b": b}, 422, "host bits set"),
    ]  # fmt: skip
    for body, status, message in cases:
        answer = api.post("/v1/interconnects", json={"name": "bad", **body})
        assert answer.status_code == status, (body, answer.text)
        assert message in answer.json()["message"], answer.text
    ok(api.post("/v1/interconnects", json={"name": "ok", "kind": "ospf", "a": a, "b": b}), 201)
    again = api.post("/v1/interconnects", json={"name": "ok", "kind": "ospf", "a": a, "b": b})
    assert again.status_code == 409, again.text
    assert [i["name"] for i in ok(api.get("/v1/interconnects"))] == ["ok"]
    assert api.get("/v1/interconnects/nope").status_code == 404
