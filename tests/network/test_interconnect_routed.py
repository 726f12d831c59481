"""Routed interconnect between two regions, with real packets: each region's gateway (FRR
in its namespace, started by the agent) announces the region's tenant subnets over BGP,
or OSPF; a guest of one region pings a guest of the other; a subnet made in Tessera is
announced (seen in the peer's routing table), a deleted one withdrawn, by the
`interconnect.sync` task the API call queues (no sync of the agent's by hand); a LAN
Tessera does not know is never announced, nor is the transit link."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tessera.config import Settings
from tessera.network.interconnect import frr
from tessera.network.interconnect.agent import InterconnectAgent
from tessera.runtime import Runtime
from tests.fixtures.netns import NetLab
from tests.network.helpers import ok
from tests.network.regions import (
    eventually,
    last_sync,
    routes,
    side,
    tenant_subnet,
    two_regions,
)


@pytest.fixture(autouse=True)
def _frr_installed() -> None:
    missing = frr.available()
    if missing:
        pytest.skip(f"FRR is not installed: {missing}")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Quick retries: a task facing a dead daemon fails within a second."""
    return Settings(
        data_dir=tmp_path / "state",
        watch_enabled=False,
        task_retry_attempts=2,
        task_retry_interval_s=0.2,
    )


@pytest.mark.parametrize("kind", ["bgp", "ospf"])
def test_routed_regions_announce_their_subnets(
    kind: str, api: TestClient, runtime: Runtime, netlab: NetLab, tmp_path: Path
) -> None:
    east, west = two_regions(netlab)
    east.lan("10.61.2")  # a LAN on east's gateway that Tessera does not know yet
    extra: dict[str, dict[str, object]] = {"a": {}, "b": {}}
    if kind == "bgp":
        extra = {"a": {"asn": 65001}, "b": {"asn": 65002}}
    body = {
        "name": f"east-west-{kind}",
        "kind": kind,
        "a": side(east, **extra["a"]),
        "b": side(west, **extra["b"]),
    }
    made = ok(api.post("/v1/interconnects", json=body), 201)
    tenant_subnet(api, "east", 101, "10.61.1.0/24")
    tenant_subnet(api, "west", 201, "10.62.1.0/24")

    agent = InterconnectAgent(runtime, tmp_path / "agent")
    netlab.defer(agent.close)
    agent.up(made["id"])

    protocol = "bgp" if kind == "bgp" else "ospf"
    eventually(lambda: routes(west.gateway).get("10.61.1.0/24") == protocol, "east's subnet")
    eventually(lambda: routes(east.gateway).get("10.62.1.0/24") == protocol, "west's subnet")
    assert east.guest.ping("10.62.1.10")
    assert west.guest.ping("10.61.1.10")
    assert made["a"]["tunnel_state"] == "unknown"  # no agent ran it yet
    agent.sync(made["id"])  # the session is up by now: the API shows what the agent saw
    shown = ok(api.get(f"/v1/interconnects/{made['id']}"))
    assert (shown["a"]["tunnel_state"], shown["b"]["tunnel_state"]) == ("up", "up")
    seen = routes(west.gateway)
    assert "10.61.2.0/24" not in seen  # not a subnet of Tessera's: not announced
    assert list(seen).count("172.31.0.0/30") == 1  # the transit link: connected only

    # a subnet made in east is announced, deleted it is withdrawn: by the task each
    # change queues, with no sync of the agent's
    assert not west.guest.ping("10.61.2.1", count=1, wait_s=1)  # east's LAN, unannounced
    subnet_id = tenant_subnet(api, "east", 102, "10.61.2.0/24")
    assert ok(api.get(f"/v1/interconnects/{made['id']}"))["a"]["prefixes"] == [
        "10.61.1.0/24",
        "10.61.2.0/24",
    ]
    assert last_sync(api)["result"] == {made["id"]: {"a": "applied", "b": "applied"}}
    eventually(lambda: routes(west.gateway).get("10.61.2.0/24") == protocol, "the new subnet")
    assert west.guest.ping("10.61.2.1")
    assert agent.sync(made["id"]) == []  # the task applied it: nothing left to reconcile
    ok(api.delete(f"/v1/subnets/{subnet_id}"), 204)
    assert last_sync(api)["result"] == {made["id"]: {"a": "applied", "b": "applied"}}
    eventually(lambda: "10.61.2.0/24" not in routes(west.gateway), "the withdrawal")
    assert "10.61.1.0/24" in routes(west.gateway)  # the others stay announced

    # west's daemons die behind the agent's back: the next change's task retries, then
    # fails naming the side, once east's side has been applied
    agent.sides[(made["id"], "b")].stop()
    tenant_subnet(api, "east", 103, "10.61.3.0/24")
    failed = last_sync(api, "failed")
    assert failed["error"]["message"] == (
        f"side b of interconnect 'east-west-{kind}': its daemons in {west.gateway.name} are"
        " not running (is its agent stopped?); the sides' agents apply what is left at their"
        " next sync"
    )
    assert [s["state"] for s in failed["steps"]] == ["failed"]

    # deleting the interconnect stops its daemons here (its task again)
    ok(api.delete(f"/v1/interconnects/{made['id']}"), 204)
    assert last_sync(api)["result"] == {made["id"]: {"a": "stopped", "b": "stopped"}}
    assert not list(frr.RUN_ROOT.glob(f"{made['id']}-*"))  # daemons gone with their sockets
    eventually(lambda: "10.61.1.0/24" not in routes(west.gateway), "routes after stop", 30)
    assert agent.sync(made["id"]) == [] and not agent.sides  # the agent lets it go
