"""VM changes through the API as durable tasks, against the lab's real backends; every
check reads the inventory the API serves, which the task refreshes itself."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tessera.config import Settings
from tessera.db.rows import ProviderRow, VMLockRow
from tessera.domain.inventory import InventorySnapshot, PowerState, VMInfo
from tessera.inventory.pools import _zone_id
from tessera.inventory.reconcile import reconcile
from tessera.providers import DRIVERS
from tessera.providers.base import Capabilities
from tessera.providers.libvirt.driver import LibvirtProvider
from tessera.runtime import Runtime
from tests.tasks.helpers import create_body, register, submitted, wait_task

GIB = 1 << 30


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """One task at a time per provider, so a second task deterministically waits."""
    return Settings(
        data_dir=tmp_path / "state",
        watch_enabled=False,
        provider_concurrency=1,
        task_retry_interval_s=0.2,
    )


@pytest.mark.parametrize("kind", ["libvirt", "vsphere"])
def test_create_power_rename_delete(
    api: TestClient, runtime: Runtime, kind: str, request: pytest.FixtureRequest
) -> None:
    member = request.getfixturevalue("vcsim_module" if kind == "vsphere" else "kvm_host_module")
    provider_id = register(api, kind, member, f"lab-{kind}")

    body = create_body(api, kind, provider_id, f"task-{kind}") | {"power_on": True}
    task = wait_task(api, submitted(api.post("/v1/vms", json=body)))
    assert task["state"] == "succeeded", task
    assert task["progress"] == 100
    assert [s["name"] for s in task["steps"]] == [
        "create", "disk-0", "disk-1", "nic-0", "nic-1", "power-on", "refresh",
    ]  # fmt: skip
    assert all(s["state"] == "succeeded" and s["finished_at"] for s in task["steps"])
    assert task["requester"] == "admin" and task["started_at"] and task["finished_at"]
    vm_id = task["result"]["vm_id"]
    assert task["vm_id"] == vm_id
    vm = api.get(f"/v1/vms/{vm_id}").json()
    assert (vm["name"], vm["cpu_count"], vm["memory_mib"]) == (f"task-{kind}", 1, 64)
    assert vm["power_state"] == PowerState.RUNNING
    assert sorted(d["size_bytes"] for d in vm["disks"]) == [GIB, 2 * GIB]
    assert [n["network_id"] for n in vm["nics"]] == [n["network_id"] for n in body["nics"]]

    stop = {"action": "stop", "graceful_timeout_s": 0.5}
    task = wait_task(api, submitted(api.post(f"/v1/vms/{vm_id}/power", json=stop)))
    assert task["state"] == "succeeded", task
    assert api.get(f"/v1/vms/{vm_id}").json()["power_state"] == PowerState.STOPPED

    rename = {"name": f"renamed-{kind}"}
    task = wait_task(api, submitted(api.post(f"/v1/vms/{vm_id}/rename", json=rename)))
    assert task["state"] == "succeeded", task
    assert api.get(f"/v1/vms/{vm_id}").json()["name"] == f"renamed-{kind}"

    task = wait_task(api, submitted(api.delete(f"/v1/vms/{vm_id}")))
    assert task["state"] == "succeeded", task
    assert api.get(f"/v1/vms/{vm_id}").status_code == 404
    names = [
        v["name"] for v in api.get("/v1/vms", params={"provider_id": provider_id}).json()["items"]
    ]
    assert f"renamed-{kind}" not in names
    with runtime.sessions() as session:
        assert session.query(VMLockRow).count() == 0

    listed = api.get("/v1/tasks", params={"kind": "vm.power", "state": "succeeded"}).json()
    assert [t["kind"] for t in listed["items"]] == ["vm.power"]
    page = api.get("/v1/tasks", params={"limit": 2}).json()
    rest = api.get("/v1/tasks", params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert len(page["items"]) == len(rest["items"]) == 2
    assert {t["id"] for t in page["items"]}.isdisjoint(t["id"] for t in rest["items"])


def _vm_named(api: TestClient, provider_id: str, name: str) -> list[dict[str, Any]]:
    items = api.get("/v1/vms", params={"provider_id": provider_id, "name": name}).json()["items"]
    return [vm for vm in items if vm["name"] == name]


def test_lock_conflict_cancel_and_retry(api: TestClient, kvm_host_fresh: Any) -> None:
    provider_id = register(api, "libvirt", kvm_host_fresh, "lab-kvm")
    running = next(
        vm
        for vm in api.get("/v1/vms", params={"provider_id": provider_id}).json()["items"]
        if vm["power_state"] == PowerState.RUNNING
    )
    # The lab guests ignore ACPI: this stop holds the VM (and the provider's one slot)
    # for the whole graceful wait.
    slow_stop = {"action": "stop", "graceful_timeout_s": 4}
    stop_id = submitted(api.post(f"/v1/vms/{running['id']}/power", json=slow_stop))

    conflict = api.post(f"/v1/vms/{running['id']}/rename", json={"name": "other"})
    assert conflict.status_code == 409, conflict.text
    assert conflict.json()["code"] == "locked"
    assert conflict.json()["holder_task_id"] == stop_id
    assert stop_id in conflict.json()["message"]

    body = create_body(api, "libvirt", provider_id, "task-cancelled")
    create_id = submitted(api.post("/v1/vms", json=body))
    again = api.post("/v1/vms", json=body)
    assert again.status_code == 409 and again.json()["holder_task_id"] == create_id
    cancel = api.post(f"/v1/tasks/{create_id}/cancel")
    assert cancel.status_code == 202 and cancel.json()["cancel_requested"] is True

    assert wait_task(api, stop_id)["state"] == "succeeded"
    cancelled = wait_task(api, create_id)
    assert cancelled["state"] == "cancelled", cancelled
    assert cancelled["error"]["code"] == "cancelled"
    assert not _vm_named(api, provider_id, "task-cancelled")
    assert api.post(f"/v1/tasks/{create_id}/cancel").status_code == 409

    renamed = wait_task(
        api, submitted(api.post(f"/v1/vms/{running['id']}/rename", json={"name": "other"}))
    )
    assert renamed["state"] == "succeeded", renamed

    retried = api.post(f"/v1/tasks/{create_id}/retry")
    assert retried.status_code == 202 and retried.json()["attempt"] == 2
    task = wait_task(api, create_id)
    assert task["state"] == "succeeded" and task["error"] is None, task
    (vm,) = _vm_named(api, provider_id, "task-cancelled")
    assert len(api.get(f"/v1/vms/{vm['id']}").json()["disks"]) == 2
    assert api.post(f"/v1/tasks/{create_id}/retry").status_code == 409


class _PowerlessLibvirt(LibvirtProvider):
    """A driver that declares no capabilities, as a backend without VM operations would."""

    capabilities = Capabilities()


@pytest.fixture
def powerless_kind(monkeypatch: pytest.MonkeyPatch) -> str:
    """Registers the driver in the drivers table, as a real backend would be."""
    monkeypatch.setitem(DRIVERS, "powerless", f"{__name__}:_PowerlessLibvirt")
    return "powerless"


def test_an_operation_the_provider_cannot_do_is_refused_before_any_task(
    api: TestClient, runtime: Runtime, powerless_kind: str
) -> None:
    with runtime.sessions.begin() as session:
        provider = ProviderRow(
            name="bare", kind=powerless_kind, url="qemu+tcp://127.0.0.1:1/system", zone_id=None
        )
        provider.zone_id = _zone_id(session, "default", "default")
        session.add(provider)
        session.flush()
        provider_id = provider.id
        vm = VMInfo(native_id="n1", name="vm1", power_state=PowerState.STOPPED)
        reconcile(session, provider_id, InventorySnapshot(vms=[vm]))
    vm_id = api.get("/v1/vms").json()["items"][0]["id"]
    for method, path, body, capability in (
        ("POST", f"/v1/vms/{vm_id}/power", {"action": "start"}, "supports_power_ops"),
        ("POST", f"/v1/vms/{vm_id}/power", {"action": "suspend"}, "supports_suspend"),
        ("POST", f"/v1/vms/{vm_id}/rename", {"name": "x"}, "supports_rename"),
        ("DELETE", f"/v1/vms/{vm_id}", None, "supports_vm_create"),
        (
            "POST",
            "/v1/vms",
            {"provider_id": provider_id, "name": "n", "cpus": 1, "memory_mib": 64},
            "supports_vm_create",
        ),
    ):
        response = api.request(method, path, json=body)
        assert response.status_code == 422, response.text
        assert response.json()["capability"] == capability
        assert capability in response.json()["message"]
    assert api.get("/v1/tasks").json()["items"] == []


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/v1/vms", {"name": "x"}, 422),
        ("POST", "/v1/vms", {"provider_id": "nope", "name": "x", "cpus": 1, "memory_mib": 64}, 404),
        (
            "POST",
            "/v1/vms",
            {"provider_id": "p", "name": "bad name", "cpus": 1, "memory_mib": 64},
            422,
        ),
        ("POST", "/v1/vms", {"provider_id": "p", "name": "x", "cpus": 0, "memory_mib": 64}, 422),
        ("POST", "/v1/vms/nope/power", {"action": "dance"}, 422),
        ("POST", "/v1/vms/nope/power", {"action": "start"}, 404),
        ("POST", "/v1/vms/nope/rename", {"name": "ok"}, 404),
        ("DELETE", "/v1/vms/nope", None, 404),
        ("GET", "/v1/tasks/nope", None, 404),
        ("POST", "/v1/tasks/nope/cancel", None, 404),
        ("POST", "/v1/tasks/nope/retry", None, 404),
        ("GET", "/v1/tasks?state=sleeping", None, 422),
        ("GET", "/v1/tasks?cursor=garbage", None, 422),
    ],
)
def test_bad_task_input_is_a_clear_4xx(
    api: TestClient, method: str, path: str, body: Any, status: int
) -> None:
    response = api.request(method, path, json=body)
    assert response.status_code == status, response.text
    assert response.json()["message"]


def test_a_transient_fault_is_retried_with_backoff(
    api: TestClient, kvm_host_fresh: Any, cutting_proxy: Any
) -> None:
    """The pool drops off the network as the task starts and comes back a second later:
    the step is retried (0.2 s, 0.4 s, 0.8 s apart here) and the task succeeds."""
    port = int(kvm_host_fresh.uri.rsplit(":", 1)[1].split("/")[0])
    proxy = cutting_proxy("127.0.0.1", port)
    via_proxy = type("Member", (), {"uri": f"qemu+tcp://127.0.0.1:{proxy.port}/system"})
    provider_id = register(api, "libvirt", via_proxy, "flaky-kvm")
    stopped = next(
        vm
        for vm in api.get("/v1/vms", params={"provider_id": provider_id}).json()["items"]
        if vm["power_state"] == PowerState.STOPPED
    )
    proxy.cut_after(0)
    healer = threading.Timer(1.0, proxy.heal)
    healer.start()
    try:
        start = api.post(f"/v1/vms/{stopped['id']}/power", json={"action": "start"})
        task = wait_task(api, submitted(start))
    finally:
        healer.cancel()
    assert task["state"] == "succeeded", task
    assert api.get(f"/v1/vms/{stopped['id']}").json()["power_state"] == PowerState.RUNNING
