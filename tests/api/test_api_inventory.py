"""The API as a client sees it: auth, bad input, filters, sorting and cursor paging."""

from __future__ import annotations

import dataclasses

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tessera.db.rows import VMRow
from tessera.domain.inventory import (
    DiskInfo,
    HostInfo,
    InventorySnapshot,
    NicInfo,
    PowerState,
    VMInfo,
)
from tessera.inventory import pools
from tessera.inventory.reconcile import reconcile
from tessera.inventory.tags import change_tags
from tessera.providers import driver_class
from tessera.runtime import Runtime


def _seed(rt: Runtime, count: int) -> str:
    pid = pools.add_provider(
        rt,
        pools.ProviderSpec(name="seeded", kind="libvirt", url="qemu+tcp://127.0.0.1:1/system"),
        test_connection=False,
    ).id
    base = VMInfo(native_id="", name="", power_state=PowerState.RUNNING, host_native_id="h1")
    vms = [
        dataclasses.replace(
            base,
            native_id=f"vm-{i}",
            name=f"{'web' if i % 2 else 'db'}-{i:03d}",
            power_state=PowerState.STOPPED if i % 3 == 0 else PowerState.RUNNING,
            cpu_count=1 + i % 4,
            memory_mib=512 * (1 + i % 5),
            disks=(DiskInfo(key="vda", size_bytes=1 << 30),),
            nics=(NicInfo(key="n0", mac=f"52:54:00:00:01:{i:02x}", order=0),),
        )
        for i in range(count)
    ]
    with rt.sessions.begin() as s:
        reconcile(s, pid, InventorySnapshot(hosts=[HostInfo(native_id="h1", name="kvm1")], vms=vms))
        for vm in s.scalars(select(VMRow).where(VMRow.provider_id == pid)):
            if int(vm.native_id.split("-")[1]) % 2 == 0:
                change_tags(s, vm, add=["even"], actor="test")
    return pid


def test_requests_without_a_valid_token_are_refused(api: TestClient) -> None:
    bare = TestClient(api.app)
    assert bare.get("/v1/vms").status_code == 401
    wrong = bare.get("/v1/vms", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.json()["code"] == "unauthorized"
    assert bare.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"name": "x", "kind": "hyperv", "url": "https://h/sdk"}, "kind"),
        ({"name": "bad name!", "kind": "vsphere", "url": "https://h/sdk"}, "name"),
        ({"kind": "vsphere", "url": "https://h/sdk"}, "name"),
        ({"name": "x", "kind": "vsphere", "url": "file:///etc/passwd"}, "https"),
        ({"name": "x", "kind": "libvirt", "url": "https://h/sdk"}, "qemu+tcp"),
        ({"name": "x", "kind": "vsphere", "url": "https://h/sdk", "colour": "red"}, "colour"),
    ],
)
def test_bad_provider_input_is_a_clear_422(
    api: TestClient, body: dict[str, str], fragment: str
) -> None:
    body = {**body, "password": "S3cret-canary"}
    response = api.post("/v1/providers", json=body)
    assert response.status_code == 422, response.text
    payload = response.json()
    assert payload["code"] == "invalid_input"
    assert fragment in payload["message"]
    assert "S3cret-canary" not in response.text


def test_malformed_json_is_a_422(api: TestClient) -> None:
    response = api.post(
        "/v1/providers", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_input"


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=5000",
        "limit=abc",
        "sort=password",
        "sort=-x;drop",
        "cursor=garbage",
        "fields=name,secret",
        "power_state=exploded",
        "name=",
    ],
)
def test_bad_list_parameters_are_a_clear_422(api: TestClient, query: str) -> None:
    response = api.get(f"/v1/vms?{query}")
    assert response.status_code == 422, response.text
    assert response.json()["message"]


def test_unknown_ids_are_404(api: TestClient) -> None:
    for method, path in [
        ("GET", "/v1/vms/0000"),
        ("GET", "/v1/providers/0000"),
        ("DELETE", "/v1/providers/0000"),
        ("POST", "/v1/providers/0000/sync"),
    ]:
        response = api.request(method, path)
        assert response.status_code == 404, (method, path)
        assert response.json()["code"] == "not_found"


def test_cursor_walk_returns_every_vm_once_in_order(api: TestClient, runtime: Runtime) -> None:
    _seed(runtime, 57)
    for sort in ("name", "-name", "memory_mib", "-cpu_count", "created_at"):
        seen: list[dict[str, object]] = []
        cursor = None
        while True:
            params: dict[str, str | int] = {"limit": 10, "sort": sort}
            if cursor:
                params["cursor"] = cursor
            page = api.get("/v1/vms", params=params).json()
            seen += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert len(seen) == 57 and len({v["id"] for v in seen}) == 57, sort
        key = sort.removeprefix("-")
        values = [(v[key], v["id"]) for v in seen]
        assert values == sorted(values, reverse=sort.startswith("-")), sort


def test_filters_and_field_selection(api: TestClient, runtime: Runtime) -> None:
    pid = _seed(runtime, 30)
    stopped = api.get("/v1/vms", params={"power_state": "stopped", "limit": 100}).json()["items"]
    assert len(stopped) == 10 and all(v["power_state"] == "stopped" for v in stopped)
    named = api.get("/v1/vms", params={"name": "web-", "limit": 100}).json()["items"]
    assert len(named) == 15 and all("web-" in v["name"] for v in named)
    # case-insensitive, and LIKE wildcards are taken literally
    assert len(api.get("/v1/vms", params={"name": "WEB-", "limit": 100}).json()["items"]) == 15
    assert api.get("/v1/vms", params={"name": "%"}).json()["items"] == []
    assert api.get("/v1/vms", params={"name": "web_0"}).json()["items"] == []
    tagged = api.get("/v1/vms", params={"tag": "even", "limit": 100}).json()["items"]
    assert len(tagged) == 15 and all(v["tags"] == ["even"] for v in tagged)
    assert api.get("/v1/vms", params={"provider_id": "other"}).json()["items"] == []
    assert len(api.get("/v1/vms", params={"provider_id": pid, "limit": 100}).json()["items"]) == 30
    slim = api.get("/v1/vms", params={"fields": "name,nics", "limit": 1}).json()["items"][0]
    assert set(slim) == {"id", "name", "nics"}
    assert slim["nics"][0]["mac"].startswith("52:54:00")
    host_id = api.get("/v1/hosts").json()["items"][0]["id"]
    assert len(api.get("/v1/vms", params={"host_id": host_id, "limit": 100}).json()["items"]) == 30


def test_vm_detail_has_disks_and_nics(api: TestClient, runtime: Runtime) -> None:
    _seed(runtime, 3)
    vm = api.get("/v1/vms", params={"name": "db-000"}).json()["items"][0]
    detail = api.get(f"/v1/vms/{vm['id']}").json()
    assert detail["disks"][0]["size_bytes"] == 1 << 30
    assert detail["nics"][0]["mac"] == "52:54:00:00:01:00"
    assert "native_id" not in detail and "fingerprint" not in detail


def test_provider_kinds_come_from_the_drivers(api: TestClient) -> None:
    kinds = {k["kind"]: k["capabilities"] for k in api.get("/v1/provider-kinds").json()}
    assert set(kinds) == {"vsphere", "libvirt"}
    assert kinds["vsphere"]["supports_cbt"] is driver_class("vsphere").capabilities.supports_cbt
    assert kinds["vsphere"]["supports_dvs"] and not kinds["libvirt"]["supports_dvs"]
