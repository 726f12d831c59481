"""Two regions in namespaces for the interconnect tests: in each, a gateway router with a
transit link to the other's and a "guest" on a tenant subnet behind it. Built on the
netlab fixture, so everything goes at teardown."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

from tessera.network.dataplane import iproute
from tests.fixtures.netns import Namespace, NetLab
from tests.network.helpers import ok
from tests.tasks.helpers import wait_task

UNDERLAY = {"east": "172.31.0.1", "west": "172.31.0.2"}
TRANSIT_PREFIXLEN = 30


@dataclass
class Region:
    name: str
    gateway: Namespace
    guest: Namespace
    lans: int = 0

    def lan(self, cidr_prefix: str, guest: bool = False) -> str:
        """A tenant LAN on the gateway (`cidr_prefix` as 10.61.1): the gateway takes .1,
        the guest (when `guest`) .10 with its default route via .1. Its interface name."""
        self.lans += 1
        name = f"lan{self.lans}"
        if guest:
            iproute.add_veth(name, "eth0", a_netns=self.gateway.name, b_netns=self.guest.name)
            self.guest.addr("eth0", f"{cidr_prefix}.10/24")
            self.guest.route("default", "via", f"{cidr_prefix}.1")
        else:  # a subnet with no guest: the other end stays unaddressed in the gateway
            iproute.add_veth(name, f"{name}p", a_netns=self.gateway.name, b_netns=self.gateway.name)
        self.gateway.addr(name, f"{cidr_prefix}.1/24")
        return name


def two_regions(netlab: NetLab) -> tuple[Region, Region]:
    """east and west: gateways joined by a /30 transit link, each with a guest LAN
    (10.61.1.0/24 east, 10.62.1.0/24 west), forwarding on."""
    regions = []
    for name in ("east", "west"):
        region = Region(name, netlab.namespace(f"{name[0]}gw"), netlab.namespace(f"{name[0]}vm"))
        region.gateway.forwarding()
        regions.append(region)
    east, west = regions
    netlab.veth(east.gateway, "transit", west.gateway, "transit")
    for region in regions:
        region.gateway.addr("transit", f"{UNDERLAY[region.name]}/{TRANSIT_PREFIXLEN}")
    east.lan("10.61.1", guest=True)
    west.lan("10.62.1", guest=True)
    return east, west


def side(region: Region, **extra: object) -> dict[str, object]:
    return {
        "region": region.name,
        "namespace": region.gateway.name,
        "underlay_ip": UNDERLAY[region.name],
        **extra,
    }


def tenant_subnet(api: TestClient, region: str, vlan: int, cidr: str) -> str:
    """A segment of `region` with one subnet; the subnet's id."""
    made = ok(
        api.post(
            "/v1/segments",
            json={
                "name": f"{region}-{vlan}",
                "network_type": "vlan",
                "segmentation_id": vlan,
                "region": region,
            },
        ),
        202,
    )
    body = {"segment_id": made["segment"]["id"], "cidr": cidr}
    return str(ok(api.post("/v1/subnets", json=body), 201)["id"])


def routes(ns: Namespace) -> dict[str, str]:
    """The namespace's IPv4 routes: {prefix: protocol}."""
    return {
        str(r["dst"]): str(r.get("protocol", ""))
        for r in iproute.ip_json("-4", "route", "show", netns=ns.name)
    }


def eventually(check: Callable[[], bool], what: str, timeout: float = 60.0) -> float:
    """Wait for `check`; the seconds it took (a loaded machine gets the whole timeout)."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, f"{what}: not after {timeout:.0f} s"
        time.sleep(0.25)
    return time.monotonic() - start


def last_sync(api: TestClient, state: str = "succeeded") -> dict[str, Any]:
    """The newest interconnect.sync task (a subnet or interconnect change queued it), once
    it has ended in `state`."""
    found = ok(api.get("/v1/tasks", params={"kind": "interconnect.sync", "limit": 1}))["items"]
    task = wait_task(api, found[0]["id"], timeout_s=60)
    assert task["state"] == state, task
    return dict(task)
