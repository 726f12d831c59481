"""The dashboard and the pools' object tables as an operator reads them: the counts and
capacity add up to what the inventory holds, pages walk every row once, and a project
sees its own VMs and the pools granted to it only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tessera.config import Settings
from tessera.domain.inventory import (
    ClusterInfo,
    DatastoreInfo,
    HostInfo,
    InventorySnapshot,
    NetworkInfo,
    NetworkKind,
    PowerState,
    VMInfo,
)
from tessera.inventory import pools
from tessera.inventory.reconcile import reconcile
from tessera.runtime import Runtime
from tests.identity.tenants import build, ok

GIB = 1 << 30
RUNNING, STOPPED, SUSPENDED = PowerState.RUNNING, PowerState.STOPPED, PowerState.SUSPENDED


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "state",
        database_url=database_url,
        watch_enabled=False,
        task_retry_attempts=1,
        login_attempts_per_minute=1000,
    )


def _vm(name: str, state: PowerState, cpus: int, mib: int, host: str | None, **kw: Any) -> VMInfo:
    return VMInfo(name, name, state, cpu_count=cpus, memory_mib=mib, host_native_id=host, **kw)


def _seed(rt: Runtime) -> dict[str, str]:
    """Pool `vc` (zone a): cluster c1 of h1 and h2 (in maintenance), h3 alone and
    disconnected, two datastores, two networks and six VMs, one of them a template and
    one on no host. Pool `kvm` (zone b): one host, one VM."""
    vc = pools.add_provider(
        rt,
        pools.ProviderSpec(
            name="vc", kind="libvirt", url="qemu+tcp://127.0.0.1:1/system", zone="a"
        ),
        test_connection=False,
    ).id
    kvm = pools.add_provider(
        rt,
        pools.ProviderSpec(
            name="kvm", kind="libvirt", url="qemu+tcp://127.0.0.1:2/system", zone="b"
        ),
        test_connection=False,
    ).id
    vc_inventory = InventorySnapshot(
        clusters=[ClusterInfo("c1", "c1", datacenter="dc")],
        hosts=[
            HostInfo("h1", "h1", "c1", cpu_cores=16, cpu_mhz=2000, memory_mib=65536),
            HostInfo("h2", "h2", "c1", 8, 2500, 32768, in_maintenance=True),
            HostInfo("h3", "h3", None, 4, 3000, 16384, connected=False),
        ],
        datastores=[
            DatastoreInfo("ds1", "ds1", "vmfs", capacity_bytes=100 * GIB, free_bytes=40 * GIB),
            DatastoreInfo("ds2", "ds2", "nfs", capacity_bytes=50 * GIB, free_bytes=50 * GIB),
        ],
        networks=[
            NetworkInfo("n1", "n1", NetworkKind.DVS_PORTGROUP),
            NetworkInfo("n2", "n2", NetworkKind.STANDARD_PORTGROUP, vlan_id=10),
        ],
        vms=[
            *(_vm(f"web-{i}", RUNNING, 2, 4096, "h1") for i in (1, 2, 3)),
            _vm("db-1", STOPPED, 4, 8192, "h2"),
            _vm("tpl", STOPPED, 1, 1024, "h1", is_template=True),
            _vm("lost", SUSPENDED, 1, 512, None),
        ],
    )
    kvm_inventory = InventorySnapshot(
        hosts=[HostInfo("k1", "k1", cpu_cores=8, cpu_mhz=1000, memory_mib=16384)],
        datastores=[DatastoreInfo("p1", "p1", "dir", capacity_bytes=10 * GIB, free_bytes=GIB)],
        vms=[_vm("k-1", RUNNING, 1, 512, "k1")],
    )
    with rt.sessions.begin() as session:
        reconcile(session, vc, vc_inventory)
        reconcile(session, kvm, kvm_inventory)
    return {"vc": vc, "kvm": kvm}


def test_the_overview_adds_up_what_the_inventory_holds(api: TestClient, runtime: Runtime) -> None:
    ids = _seed(runtime)
    task = ok(api.post(f"/v1/providers/{ids['kvm']}/sync"), 202)
    seen = ok(api.get("/v1/overview"))

    by_name = {p["name"]: p for p in seen["pools"]}
    vc, kvm = by_name["vc"], by_name["kvm"]
    assert (vc["id"], vc["zone"], vc["kind"], vc["status"]) == (
        ids["vc"],
        "a",
        "libvirt",
        "unknown",
    )
    assert vc["reachable"] is False and vc["last_sync_ok_at"] is None
    assert vc["hosts"] == {"total": 3, "connected": 1, "maintenance": 1, "disconnected": 1}
    assert vc["vms"] == 5  # the template aside
    # compute: hosts' cores and memory against the VMs on a host, templates aside
    assert vc["capacity"] == {
        "vcpus_total": 28,
        "vcpus_used": 3 * 2 + 4,
        "vcpus_free": 28 - 10,
        "memory_mib_total": 65536 + 32768 + 16384,
        "memory_mib_used": 3 * 4096 + 8192,
        "memory_mib_free": 65536 + 32768 + 16384 - 20480,
        "storage_gib_total": 150.0,
        "storage_gib_used": 60.0,
        "storage_gib_free": 90.0,
    }
    assert kvm["capacity"]["vcpus_used"] == 1 and kvm["capacity"]["storage_gib_free"] == 1.0

    zones = {z["name"]: z for z in seen["zones"]}
    assert set(zones) == {"a", "b"}
    assert zones["a"]["pools"] == 1 and zones["a"]["capacity"] == vc["capacity"]
    assert seen["capacity"]["vcpus_total"] == 28 + 8
    assert seen["capacity"]["storage_gib_total"] == 160.0
    assert seen["hosts"] == {"total": 4, "connected": 2, "maintenance": 1, "disconnected": 1}
    assert seen["vms"] == {
        "total": 6,
        "running": 4,
        "stopped": 1,
        "suspended": 1,
        "paused": 0,
        "unknown": 0,
        "templates": 1,
    }
    assert [t["id"] for t in seen["recent_tasks"]] == [task["id"]]
    events = seen["recent_events"]  # newest first: the sync's, then the discoveries
    assert [e["id"] for e in events] == sorted((e["id"] for e in events), reverse=True)
    assert events[0]["task_id"] == task["id"]
    assert [e["kind"] for e in events[-2:]] == ["provider.discovered"] * 2


def test_object_tables_show_what_an_operator_expects(api: TestClient, runtime: Runtime) -> None:
    ids = _seed(runtime)
    hosts = {h["name"]: h for h in ok(api.get("/v1/hosts"))["items"]}
    assert set(hosts) == {"h1", "h2", "h3", "k1"}
    h1 = hosts["h1"]
    assert (h1["provider_name"], h1["cluster_name"], h1["state"]) == ("vc", "c1", "connected")
    assert (h1["cpu_cores"], h1["cpu_ghz"], h1["memory_mib"]) == (16, 32.0, 65536)
    assert (h1["vm_count"], h1["vcpus_used"], h1["memory_mib_used"]) == (4, 6, 12288)
    assert hosts["h2"]["state"] == "maintenance" and hosts["h3"]["state"] == "disconnected"
    assert (hosts["h3"]["cluster_name"], hosts["h3"]["vm_count"]) == (None, 0)

    (c1,) = ok(api.get("/v1/clusters"))["items"]
    assert (c1["name"], c1["provider_name"], c1["host_count"]) == ("c1", "vc", 2)
    assert (c1["cpu_cores"], c1["cpu_ghz"], c1["memory_mib"]) == (24, 52.0, 98304)
    assert (c1["vcpus_used"], c1["memory_mib_used"], c1["vm_count"]) == (10, 20480, 5)

    stores = {d["name"]: d for d in ok(api.get("/v1/datastores"))["items"]}
    ds1 = stores["ds1"]
    assert (ds1["kind"], ds1["provider_name"], ds1["host_count"]) == ("vmfs", "vc", 3)
    assert (ds1["capacity_bytes"], ds1["free_bytes"], ds1["used_bytes"]) == (
        100 * GIB,
        40 * GIB,
        60 * GIB,
    )
    nets = ok(api.get("/v1/networks", params={"provider_id": ids["vc"]}))["items"]
    assert [(n["name"], n["kind"], n["vlan_id"], n["host_count"]) for n in nets] == [
        ("n1", "dvs_portgroup", None, 3),
        ("n2", "standard_portgroup", 10, 3),
    ]

    # keyset pages, sorted as asked, walk every row once
    walked: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1, "sort": "-cpu_cores"}
        if cursor:
            params["cursor"] = cursor
        page = ok(api.get("/v1/hosts", params=params))
        walked += [h["name"] for h in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert walked[0] == "h1" and walked[-1] == "h3" and sorted(walked) == sorted(hosts)
    big_first = ok(api.get("/v1/datastores", params={"sort": "-capacity_bytes", "name": "ds"}))
    assert [d["name"] for d in big_first["items"]] == ["ds1", "ds2"]


@pytest.mark.parametrize(
    "query",
    ["sort=vm_count", "sort=-cpu_cores;x", "limit=0", "limit=1001", "cursor=junk", "name="],
)
def test_bad_object_list_parameters_are_a_clear_422(api: TestClient, query: str) -> None:
    response = api.get(f"/v1/hosts?{query}")
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_input"


def test_a_project_sees_its_own_vms_and_granted_pools_only(
    api: TestClient, runtime: Runtime
) -> None:
    world = build(api, runtime)
    alpha, beta = world.tenants["alpha"], world.tenants["beta"]
    seen = ok(alpha.clients["reader"].get("/v1/overview"))
    assert [p["id"] for p in seen["pools"]] == [alpha.pool.id]
    assert [z["id"] for z in seen["zones"]] == [alpha.pool.zone_id]
    # its three VMs; the pool's fourth (no project's) counts toward capacity only
    assert seen["vms"]["total"] == seen["vms"]["running"] == seen["pools"][0]["vms"] == 3
    assert seen["capacity"]["vcpus_used"] == 4 and seen["capacity"]["vcpus_total"] == 16
    assert seen["hosts"]["total"] == 1
    assert {t["project_id"] for t in seen["recent_tasks"]} == {alpha.project}
    assert {alpha.task, alpha.bulk_task} <= {t["id"] for t in seen["recent_tasks"]}
    assert seen["recent_events"] and all(
        e["task_id"] is None or e["task_id"] not in {beta.task, beta.bulk_task}
        for e in seen["recent_events"]
    )
    admin = ok(api.get("/v1/overview"))
    assert {p["id"] for p in admin["pools"]} == {alpha.pool.id, beta.pool.id}
    assert admin["vms"]["total"] == 8

    (host,) = ok(alpha.clients["reader"].get("/v1/hosts"))["items"]
    assert (host["id"], host["vm_count"], host["vcpus_used"]) == (alpha.pool.host, 3, 4)
    assert (
        ok(api.get("/v1/hosts", params={"provider_id": alpha.pool.id}))["items"][0]["vm_count"] == 4
    )
    networks = ok(alpha.clients["reader"].get("/v1/networks"))["items"]
    assert [n["id"] for n in networks] == [alpha.pool.networks[0]]  # its network grant
    on_beta = alpha.clients["reader"].get("/v1/datastores", params={"provider_id": beta.pool.id})
    assert ok(on_beta) == {"items": [], "next_cursor": None}
