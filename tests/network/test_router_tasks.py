"""Router and floating-IP changes through the API reach the network node as tasks, with real
packets: the node is this machine (`network_node` local), its switch an OVS instance in
namespace `node`; namespaces stand in for an external host and a guest on a tenant VLAN."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tessera.api.app import create_app
from tessera.config import Settings
from tessera.network.dataplane import iproute
from tessera.network.dataplane.ovs import OvsInstance
from tessera.network.dataplane.router import namespace_of
from tessera.runtime import Runtime, ensure_admin_token
from tests.fixtures.netns import Namespace, NetLab
from tests.network.helpers import ok, subnet
from tests.tasks.helpers import wait_task

TENANT_VLAN = 100


class Node:
    """The network node's switch (bridges for the external and the default physical
    network) and a way to put a host on either."""

    def __init__(self, netlab: NetLab, home: Path) -> None:
        self.netlab = netlab
        self.ns = netlab.namespace("node")
        self.switch = OvsInstance(home, netns=self.ns.name)
        netlab.defer(self.switch.stop)
        self.switch.start()
        for bridge in ("br-ext", "br-default"):
            self.switch.ovs.ensure_bridge(bridge)

    def host(self, hint: str, bridge: str, vlan: int, cidr: str, gateway: str) -> Namespace:
        ns = self.netlab.namespace(hint)
        self.netlab.veth(ns, "eth0", self.ns, f"v{hint}")
        self.switch.ovs.add_port(bridge, f"v{hint}", tag=vlan or None)
        ns.addr("eth0", cidr)
        ns.route("default", "via", gateway)
        return ns


@pytest.fixture
def node(netlab: NetLab, tmp_path: Path) -> Node:
    return Node(netlab, tmp_path / "ovs-node")


@pytest.fixture
def settings(tmp_path: Path, node: Node) -> Settings:
    return Settings(
        data_dir=tmp_path / "state",
        watch_enabled=False,
        task_retry_attempts=1,
        network_node_ovsdb=f"unix:{node.switch.db_socket}",
        network_node_netns=node.ns.name,
    )


def applied(api: TestClient, response: Any, status: int = 200) -> Any:
    """The answer's body, once the network node's task it links has succeeded."""
    body = ok(response, status)
    link = re.fullmatch(r'</v1/tasks/([^>]+)>; rel="monitor"', response.headers["Link"])
    assert link is not None, response.headers["Link"]
    task = wait_task(api, link.group(1), timeout_s=60)
    assert task["kind"] == "router.sync" and task["state"] == "succeeded", task
    return body


def _segment(api: TestClient, **body: Any) -> dict[str, Any]:
    made = ok(api.post("/v1/segments", json=body), 202)
    assert made["task"] is None  # no pools: active at once
    return dict(made["segment"])


def test_router_and_floating_ip_changes_are_applied_on_the_network_node(
    api: TestClient, node: Node, netlab: NetLab
) -> None:
    ext = _segment(api, name="ext", network_type="flat", physical_network="ext", external=True)
    ext_net = subnet(api, ext["id"], "203.0.113.0/24")
    tenant = _segment(api, name="web", network_type="vlan", segmentation_id=TENANT_VLAN)
    web_net = subnet(api, tenant["id"], "10.0.1.0/24")
    port = ok(api.post("/v1/ports", json={"segment_id": tenant["id"]}), 201)
    guest_ip = port["fixed_ips"][0]["ip_address"]
    outside = node.host("ext", "br-ext", 0, "203.0.113.1/24", "203.0.113.1")
    guest = node.host("vm1", "br-default", TENANT_VLAN, f"{guest_ip}/24", "10.0.1.1")

    router = applied(
        api,
        api.post("/v1/routers", json={"name": "r1", "external_segment_id": ext["id"]}),
        201,
    )
    netlab.adopt_namespace(namespace_of(router["id"]))
    assert namespace_of(router["id"]) in iproute.namespaces()
    applied(api, api.put(f"/v1/routers/{router['id']}/interfaces/{web_net['id']}"))
    assert guest.ping("10.0.1.1")
    body = {"segment_id": ext["id"], "port_id": port["id"]}
    fip = applied(api, api.post("/v1/floating-ips", json=body), 201)
    address = fip["address"]
    assert outside.ping(address)
    guest.serve_tcp(8080)
    assert outside.tcp_echo(address, 8080) == "hello from 203.0.113.1"

    applied(api, api.put(f"/v1/floating-ips/{fip['id']}", json={"port_id": None}))
    assert not outside.ping(address, count=1, wait_s=1)
    outside.serve_tcp(9090)  # the guest still leaves, SNATed to the router's gateway
    assert guest.tcp_echo("203.0.113.1", 9090) == f"hello from {router['gateway_ips'][0]}"

    gone = api.delete(f"/v1/floating-ips/{fip['id']}")
    assert gone.status_code == 204 and "Link" not in gone.headers  # it reached no router
    applied(api, api.delete(f"/v1/routers/{router['id']}/interfaces/{web_net['id']}"), 204)
    assert not guest.ping("10.0.1.1", count=1, wait_s=1)
    applied(api, api.delete(f"/v1/routers/{router['id']}"), 204)
    assert namespace_of(router["id"]) not in iproute.namespaces()
    assert node.switch.ovs.vsctl("list-ports", "br-ext").split() == ["vext"]
    assert ext_net["gateway_ip"] == "203.0.113.1"


def test_a_change_the_node_cannot_apply_fails_its_task_saying_why(
    api: TestClient, node: Node, netlab: NetLab
) -> None:
    nowhere = _segment(
        api, name="lost", network_type="vlan", segmentation_id=7, physical_network="nowhere"
    )
    lost_net = subnet(api, nowhere["id"], "10.0.7.0/24")
    router = ok(api.post("/v1/routers", json={"name": "r2"}), 201)
    netlab.adopt_namespace(namespace_of(router["id"]))
    answer = api.put(f"/v1/routers/{router['id']}/interfaces/{lost_net['id']}")
    ok(answer, 200)  # saved; the node has no bridge for physical network `nowhere`
    task_id = answer.headers["Link"].split("/")[3].split(">")[0]
    task = wait_task(api, task_id, timeout_s=60)
    assert task["state"] == "failed", task
    assert task["error"]["code"] == "dataplane_failed"
    assert "br-nowhere" in task["error"]["message"], task["error"]


def test_a_starting_worker_applies_every_router_again(
    runtime: Runtime, node: Node, netlab: NetLab
) -> None:
    """A router whose namespace is gone (a network node rebooted, or a change whose task a
    crash lost between the two commits) is rebuilt when a worker starts."""
    token = ensure_admin_token(runtime.settings)
    with TestClient(create_app(runtime=runtime, watch=False)) as api:
        api.headers["Authorization"] = f"Bearer {token}"
        tenant = _segment(api, name="app", network_type="vlan", segmentation_id=TENANT_VLAN)
        app_net = subnet(api, tenant["id"], "10.0.3.0/24")
        router = ok(api.post("/v1/routers", json={"name": "r3"}), 201)
        netlab.adopt_namespace(namespace_of(router["id"]))
        applied(api, api.put(f"/v1/routers/{router['id']}/interfaces/{app_net['id']}"))
    guest = node.host("vm3", "br-default", TENANT_VLAN, "10.0.3.9/24", "10.0.3.1")
    assert guest.ping("10.0.3.1")
    iproute.run(["ip", "netns", "delete", namespace_of(router["id"])])
    assert not guest.ping("10.0.3.1", count=1, wait_s=1)

    with TestClient(create_app(runtime=runtime, watch=False)) as api:
        api.headers["Authorization"] = f"Bearer {token}"
        newest = ok(api.get("/v1/tasks", params={"kind": "router.sync"}))["items"][0]
        assert newest["requester"] == "tessera", newest
        task = wait_task(api, newest["id"], timeout_s=60)
        assert task["state"] == "succeeded", task
        assert guest.ping("10.0.3.1")
