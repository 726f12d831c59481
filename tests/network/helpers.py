"""Shared steps of the network tests: projects with a member each, logged in."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, (response.request.url, response.text)
    return response.json() if response.content else None


def member(
    api: TestClient, project: str, user: str, role: str = "member"
) -> tuple[str, TestClient]:
    """A project (made unless there) with `user` in it; the project's id and the user's
    client."""
    found = [p for p in ok(api.get("/v1/projects")) if p["name"] == project]
    project_id = (
        found[0]["id"] if found else ok(api.post("/v1/projects", json={"name": project}), 201)["id"]
    )
    password = f"pw-{user}-123"
    made = ok(api.post("/v1/users", json={"name": user, "password": password}), 201)
    ok(api.put(f"/v1/projects/{project_id}/members/{made['id']}", json={"role": role}), 204)
    token = ok(api.post("/v1/auth/login", json={"user": user, "password": password}))["token"]
    client = TestClient(api.app)
    client.headers["Authorization"] = f"Bearer {token}"
    return project_id, client


def segment(client: TestClient, name: str, vlan: int, **body: Any) -> dict[str, Any]:
    made = ok(
        client.post(
            "/v1/segments",
            json={"name": name, "network_type": "vlan", "segmentation_id": vlan, **body},
        ),
        202,
    )
    return dict(made["segment"])


def subnet(client: TestClient, segment_id: str, cidr: str, **body: Any) -> dict[str, Any]:
    return dict(
        ok(client.post("/v1/subnets", json={"segment_id": segment_id, "cidr": cidr, **body}), 201)
    )
