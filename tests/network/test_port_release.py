"""A VM deleted behind Tessera's back (here: undefined in libvirt) releases its ports once
the inventory learns it is gone, through a sync or the change feed, as a delete through
Tessera would: the port made for its NIC is deleted and its address can be handed out
again, a port the caller gave is unbound and keeps its address. Each is an event."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest
from fastapi.testclient import TestClient

from tessera.inventory.watcher import WatchManager
from tessera.lab.kvm import RunningKvmHost, free_port
from tessera.network.dataplane.ovs import OvsInstance
from tessera.runtime import Runtime
from tests.fixtures.netns import NetLab
from tests.network.helpers import ok, subnet
from tests.tasks.helpers import register, submitted, wait_task


@pytest.fixture
def watchers(runtime: Runtime) -> Iterator[WatchManager]:
    manager = WatchManager(runtime)
    yield manager
    manager.stop_all()


def _wait_for(predicate: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


def _create(api: TestClient, pool: str, name: str, nics: list[dict[str, str]]) -> str:
    hosts = ok(api.get("/v1/hosts", params={"provider_id": pool}))["items"]
    body = {
        "provider_id": pool,
        "host_id": hosts[0]["id"],
        "name": name,
        "cpus": 1,
        "memory_mib": 64,
        "nics": nics,
    }
    task = wait_task(api, ok(api.post("/v1/vms", json=body), 202)["id"])
    assert task["state"] == "succeeded", task
    return str(task["result"]["vm_id"])


def _undefine(host: RunningKvmHost, name: str) -> None:
    """Delete the VM the way an operator would, in libvirt itself."""
    conn = libvirt.open(host.uri)
    try:
        conn.lookupByName(name).undefine()
    finally:
        conn.close()


def _port_on(api: TestClient, segment_id: str, subnet_id: str, address: str) -> Any:
    body = {
        "segment_id": segment_id,
        "fixed_ips": [{"subnet_id": subnet_id, "ip_address": address}],
    }
    return api.post("/v1/ports", json=body)


def _released(api: TestClient, actor: str) -> dict[str, dict[str, Any]]:
    """The port.released events by `actor`, by port id."""
    events = ok(api.get("/v1/events", params={"kind": "port.released"}))["items"]
    return {e["object_id"]: e for e in events if e["actor"] == actor}


def test_ports_of_a_vm_deleted_outside_tessera_are_released(
    api: TestClient,
    kvm_host_fresh: RunningKvmHost,
    netlab: NetLab,
    tmp_path: Path,
    watchers: WatchManager,
) -> None:
    switch = OvsInstance(
        tmp_path / "ovs", netns=netlab.namespace("kvm").name, manager_port=free_port()
    )
    netlab.defer(switch.stop)
    switch.start()
    pool = register(api, "libvirt", kvm_host_fresh, "lab-kvm")
    ovsdb = {"ovsdb": f"tcp:127.0.0.1:{switch.manager_port}"}
    ok(api.put(f"/v1/providers/{pool}/network", json=ovsdb))
    made = ok(
        api.post(
            "/v1/segments",
            json={
                "name": "web",
                "network_type": "vlan",
                "segmentation_id": 371,
                "provider_ids": [pool],
            },
        ),
        202,
    )
    assert wait_task(api, made["task"]["id"], timeout_s=120)["state"] == "succeeded"
    web = made["segment"]["id"]
    lan = subnet(api, web, "10.40.7.0/24")

    given = ok(api.post("/v1/ports", json={"segment_id": web, "name": "mine"}), 201)
    vm_id = _create(api, pool, "gone-by-sync", [{"network_id": web}, {"port_id": given["id"]}])
    [auto] = [p for p in ok(api.get("/v1/ports")) if p["id"] != given["id"]]
    assert (auto["device_id"], ok(api.get(f"/v1/ports/{given['id']}"))["device_id"]) == (
        vm_id,
        vm_id,
    )
    [auto_ip] = [f["ip_address"] for f in auto["fixed_ips"]]
    [given_ip] = [f["ip_address"] for f in given["fixed_ips"]]
    taken = _port_on(api, web, lan["id"], auto_ip)
    assert taken.status_code == 409, taken.text  # held while the VM exists
    assert ok(api.get(f"/v1/subnets/{lan['id']}"))["addresses_used"] == 2

    _undefine(kvm_host_fresh, "gone-by-sync")
    sync = wait_task(api, submitted(api.post(f"/v1/providers/{pool}/sync")))
    assert sync["state"] == "succeeded", sync
    assert api.get(f"/v1/vms/{vm_id}").status_code == 404
    assert api.get(f"/v1/ports/{auto['id']}").status_code == 404  # made for its NIC: gone
    kept = ok(api.get(f"/v1/ports/{given['id']}"))  # given: unbound, keeps its address
    assert (kept["device_owner"], kept["device_id"]) == ("", None)
    assert [f["ip_address"] for f in kept["fixed_ips"]] == [given_ip]
    assert ok(api.get(f"/v1/subnets/{lan['id']}"))["addresses_used"] == 1
    reused = ok(_port_on(api, web, lan["id"], auto_ip), 201)  # its address is free again
    events = _released(api, "sync")
    assert set(events) == {auto["id"], given["id"]}
    assert events[auto["id"]]["message"] == (
        f"VM gone-by-sync left its pool's inventory: port deleted, {auto_ip} freed"
    )
    assert events[given["id"]]["message"] == (
        f"VM gone-by-sync left its pool's inventory: port unbound, keeps {given_ip}"
    )
    assert events[given["id"]]["before"]["device_id"] == vm_id

    # the change feed sees a deletion too, without a sync
    ok(api.delete(f"/v1/ports/{reused['id']}"), 204)
    second = _create(api, pool, "gone-by-feed", [{"network_id": web}, {"port_id": given["id"]}])
    [auto2] = [p for p in ok(api.get("/v1/ports")) if p["device_id"] == second and not p["name"]]
    synced = ok(api.get(f"/v1/providers/{pool}"))["last_sync_ok_at"]
    watchers.start(pool)  # established once its first full sync is done
    _wait_for(lambda: ok(api.get(f"/v1/providers/{pool}"))["last_sync_ok_at"] != synced)
    _undefine(kvm_host_fresh, "gone-by-feed")
    _wait_for(lambda: api.get(f"/v1/ports/{auto2['id']}").status_code == 404)
    assert ok(api.get(f"/v1/ports/{given['id']}"))["device_id"] is None
    assert api.get(f"/v1/vms/{second}").status_code == 404
    assert set(_released(api, "watch")) == {auto2["id"], given["id"]}
