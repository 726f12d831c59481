"""The VM lifecycle operations beyond create/power/rename/delete, as durable tasks through
the API against the lab's KVM host (and the lab vCenter for templates and migration);
every check reads what `GET /v1/vms/{id}` serves afterwards."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.tasks.helpers import create_body, register, submitted, wait_task

GIB = 1 << 30


def _run(api: TestClient, method: str, path: str, body: Any = None) -> dict[str, Any]:
    """Submit one VM change, wait for it, and check it succeeded with a refresh last."""
    task = wait_task(api, submitted(api.request(method, path, json=body)))
    assert task["state"] == "succeeded", task
    assert task["steps"][-1]["name"] == "refresh"
    return task


def _vm(api: TestClient, vm_id: str) -> dict[str, Any]:
    response = api.get(f"/v1/vms/{vm_id}")
    assert response.status_code == 200, response.text
    vm: dict[str, Any] = response.json()
    return vm


def _new_vm(api: TestClient, kind: str, provider_id: str, name: str) -> str:
    body = create_body(api, kind, provider_id, name)
    body |= {"disks": body["disks"][:1], "nics": body["nics"][:1]}
    return str(_run(api, "POST", "/v1/vms", body)["result"]["vm_id"])


def test_libvirt_resize_devices_snapshots_clone(api: TestClient, kvm_host_module: Any) -> None:
    provider_id = register(api, "libvirt", kvm_host_module, "lab-kvm-ops")
    vm_id = _new_vm(api, "libvirt", provider_id, "ops-kvm")
    base = f"/v1/vms/{vm_id}"

    _run(api, "POST", f"{base}/resize", {"cpu_count": 2, "memory_mib": 128})
    vm = _vm(api, vm_id)
    assert (vm["cpu_count"], vm["memory_mib"]) == (2, 128)

    network_id = vm["nics"][0]["network_id"]
    mac = "52:54:00:aa:bb:cc"
    _run(api, "POST", f"{base}/nics", {"network_id": network_id, "mac": mac})
    nics = _vm(api, vm_id)["nics"]
    assert len(nics) == 2
    added = next(n for n in nics if n["mac"] == mac)
    assert added["network_id"] == network_id
    _run(api, "DELETE", f"{base}/nics/{added['id']}")
    assert [n["mac"] for n in _vm(api, vm_id)["nics"]] == [nics[0]["mac"]]

    _run(api, "POST", f"{base}/disks", {"size_gib": 2})
    disks = _vm(api, vm_id)["disks"]
    assert sorted(d["size_bytes"] for d in disks) == [GIB, 2 * GIB]
    second = next(d for d in disks if d["size_bytes"] == 2 * GIB)
    shrink = api.post(f"{base}/disks/{second['id']}/grow", json={"size_gib": 1})
    assert shrink.status_code == 422 and "only grow" in shrink.json()["message"]
    _run(api, "POST", f"{base}/disks/{second['id']}/grow", {"size_gib": 3})
    assert sorted(d["size_bytes"] for d in _vm(api, vm_id)["disks"]) == [GIB, 3 * GIB]
    grown = next(d for d in _vm(api, vm_id)["disks"] if d["size_bytes"] == 3 * GIB)
    _run(api, "DELETE", f"{base}/disks/{grown['id']}")
    assert [d["size_bytes"] for d in _vm(api, vm_id)["disks"]] == [GIB]

    assert api.get(f"{base}/snapshots").json() == []
    _run(api, "POST", f"{base}/snapshots", {"name": "before"})
    _run(api, "POST", f"{base}/resize", {"cpu_count": 1})
    snapshots = api.get(f"{base}/snapshots").json()
    assert [s["name"] for s in snapshots] == ["before"]
    _run(api, "POST", f"{base}/snapshots/before/revert")
    assert _vm(api, vm_id)["cpu_count"] == 2
    missing = wait_task(api, submitted(api.post(f"{base}/snapshots/nope/revert")))
    assert missing["state"] == "failed" and "nope" in missing["error"]["message"]
    _run(api, "DELETE", f"{base}/snapshots/before")
    assert api.get(f"{base}/snapshots").json() == []

    task = _run(api, "POST", f"{base}/clone", {"name": "ops-kvm-copy"})
    clone_id = task["result"]["clone_vm_id"]
    assert clone_id != vm_id
    clone = _vm(api, clone_id)
    assert clone["name"] == "ops-kvm-copy"
    assert (clone["cpu_count"], len(clone["disks"]), len(clone["nics"])) == (2, 1, 1)
    assert clone["nics"][0]["mac"] != _vm(api, vm_id)["nics"][0]["mac"]
    assert _vm(api, vm_id)["name"] == "ops-kvm"

    for path, body, capability in (
        (f"{base}/template", None, "supports_templates"),
        (f"{base}/migrate", {"host_id": clone["host_id"]}, "supports_cold_migration"),
    ):
        refused = api.post(path, json=body)
        assert refused.status_code == 422, refused.text
        assert refused.json()["capability"] == capability
    assert not api.get("/v1/tasks", params={"kind": "vm.template"}).json()["items"]

    for doomed in (clone_id, vm_id):
        _run(api, "DELETE", f"/v1/vms/{doomed}")


def test_vsphere_templates_and_migration(api: TestClient, vcsim_module: Any) -> None:
    provider_id = register(api, "vsphere", vcsim_module, "lab-vc-ops")
    vm_id = _new_vm(api, "vsphere", provider_id, "ops-vc")
    base = f"/v1/vms/{vm_id}"

    source = _vm(api, vm_id)["host_id"]
    hosts = api.get("/v1/hosts", params={"provider_id": provider_id}).json()["items"]
    target = next(h["id"] for h in hosts if h["id"] != source)
    _run(api, "POST", f"{base}/migrate", {"host_id": target})
    assert _vm(api, vm_id)["host_id"] == target

    _run(api, "POST", f"{base}/template")
    assert _vm(api, vm_id)["is_template"] is True
    _run(api, "DELETE", f"{base}/template")
    assert _vm(api, vm_id)["is_template"] is False

    _run(api, "DELETE", base)


def test_a_vm_held_by_a_task_refuses_another(api: TestClient, kvm_host_module: Any) -> None:
    provider_id = register(api, "libvirt", kvm_host_module, "lab-kvm-lock")
    vm_id = _new_vm(api, "libvirt", provider_id, "ops-lock")
    first = submitted(api.post(f"/v1/vms/{vm_id}/snapshots", json={"name": "s1"}))
    conflict = api.post(f"/v1/vms/{vm_id}/resize", json={"cpu_count": 2})
    assert conflict.status_code == 409, conflict.text
    assert conflict.json()["holder_task_id"] == first
    clone = api.post(f"/v1/vms/{vm_id}/clone", json={"name": "ops-lock-copy"})
    assert clone.status_code == 409
    assert wait_task(api, first)["state"] == "succeeded"
    _run(api, "DELETE", f"/v1/vms/{vm_id}")


def test_snapshot_list_of_an_unreachable_pool_is_503(
    api: TestClient, kvm_host_module: Any, cutting_proxy: Any
) -> None:
    port = int(kvm_host_module.uri.rsplit(":", 1)[1].split("/")[0])
    proxy = cutting_proxy("127.0.0.1", port)
    via_proxy = type("Member", (), {"uri": f"qemu+tcp://127.0.0.1:{proxy.port}/system"})
    provider_id = register(api, "libvirt", via_proxy, "cut-kvm")
    vm = api.get("/v1/vms", params={"provider_id": provider_id}).json()["items"][0]
    proxy.cut_after(0)
    response = api.get(f"/v1/vms/{vm['id']}/snapshots")
    assert response.status_code == 503, response.text
    assert response.json()["retryable"] is True
    assert int(response.headers["Retry-After"]) > 0


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/v1/vms/nope/resize", {}, 422),
        ("POST", "/v1/vms/nope/resize", {"cpu_count": 0}, 422),
        ("POST", "/v1/vms/nope/resize", {"cpu_count": 2}, 404),
        ("POST", "/v1/vms/nope/nics", {"network_id": "n", "mac": "zz"}, 422),
        ("POST", "/v1/vms/nope/nics", {"network_id": "n"}, 404),
        ("DELETE", "/v1/vms/nope/nics/abc", None, 422),
        ("DELETE", "/v1/vms/nope/nics/1", None, 404),
        ("POST", "/v1/vms/nope/disks", {"size_gib": 0}, 422),
        ("POST", "/v1/vms/nope/disks/1/grow", {}, 422),
        ("POST", "/v1/vms/nope/disks/1/grow", {"size_gib": 2}, 404),
        ("DELETE", "/v1/vms/nope/disks/1", None, 404),
        ("POST", "/v1/vms/nope/snapshots", {"name": "bad name"}, 422),
        ("GET", "/v1/vms/nope/snapshots", None, 404),
        ("POST", "/v1/vms/nope/snapshots/s/revert", None, 404),
        ("DELETE", "/v1/vms/nope/snapshots/s", None, 404),
        ("POST", "/v1/vms/nope/clone", {}, 422),
        ("POST", "/v1/vms/nope/clone", {"name": "c"}, 404),
        ("POST", "/v1/vms/nope/template", None, 404),
        ("DELETE", "/v1/vms/nope/template", None, 404),
        ("POST", "/v1/vms/nope/migrate", {}, 422),
        ("POST", "/v1/vms/nope/migrate", {"host_id": "h"}, 404),
    ],
)
def test_bad_operation_input_is_a_clear_4xx(
    api: TestClient, method: str, path: str, body: Any, status: int
) -> None:
    response = api.request(method, path, json=body)
    assert response.status_code == status, response.text
    assert response.json()["message"]
