"""Shared steps of the task tests: register a lab pool through the API, wait for tasks."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

from tessera.domain.inventory import NetworkKind

FINISHED = {"succeeded", "failed", "cancelled"}


def register(api: TestClient, kind: str, member: Any, name: str) -> str:
    """Add the lab pool as a provider and read its inventory; its id."""
    body: dict[str, Any] = {"name": name, "kind": kind}
    if kind == "vsphere":
        body |= {
            "url": member.url,
            "username": member.username,
            "password": member.password,
            "verify_tls": False,
        }
    else:
        body["url"] = member.uri
    response = api.post("/v1/providers", json=body)
    assert response.status_code == 201, response.text
    provider_id = str(response.json()["id"])
    sync = wait_task(api, submitted(api.post(f"/v1/providers/{provider_id}/sync")))
    assert sync["state"] == "succeeded", sync
    return provider_id


def create_body(api: TestClient, kind: str, provider_id: str, name: str) -> dict[str, Any]:
    """A VM with 2 disks and 2 NICs, on the pool's first host; Tessera ids only."""
    networks = api.get("/v1/networks", params={"provider_id": provider_id}).json()["items"]
    if kind == "vsphere":
        chosen = [
            next(n for n in networks if n["kind"] == NetworkKind.DVS_PORTGROUP),
            next(n for n in networks if n["kind"] == NetworkKind.STANDARD_PORTGROUP),
        ]
    else:
        # The lab's tagged network is OVS-backed and cannot start guests: use the plain one.
        plain = next(n for n in networks if n["vlan_id"] is None)
        chosen = [plain, plain]
    hosts = api.get("/v1/hosts", params={"provider_id": provider_id}).json()["items"]
    return {
        "provider_id": provider_id,
        "name": name,
        "cpus": 1,
        "memory_mib": 64,
        "host_id": hosts[0]["id"],
        "disks": [{"size_gib": 1}, {"size_gib": 2}],
        "nics": [{"network_id": n["id"]} for n in chosen],
    }


def wait_task(api: TestClient, task_id: str, timeout_s: float = 180.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        task: dict[str, Any] = api.get(f"/v1/tasks/{task_id}").json()
        if task["state"] in FINISHED:
            return task
        assert time.monotonic() < deadline, f"task still {task['state']}: {task}"
        time.sleep(0.2)


def submitted(response: Any) -> str:
    assert response.status_code == 202, response.text
    task = response.json()
    assert task["state"] == "queued"
    return str(task["id"])
