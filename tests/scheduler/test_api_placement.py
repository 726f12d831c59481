"""The placement API: dry runs with explanations, groups, and clear 4xx for bad input."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tessera.runtime import Runtime
from tests.scheduler.helpers import mark_unreachable, seed_estate

SMALL = {"vcpus": 2, "memory_mib": 4096, "disk_gib": 20}


def _vm_id(api: TestClient, name: str) -> str:
    return str(api.get("/v1/vms", params={"name": name}).json()["items"][0]["id"])


def _dry_run(api: TestClient, **body: Any) -> dict[str, Any]:
    response = api.post("/v1/placement/dry-run", json={**SMALL, **body})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_dry_run_explains_the_choice(api: TestClient, runtime: Runtime) -> None:
    seed_estate(runtime)
    spread = _dry_run(api)
    assert spread["chosen"]["name"] == "esx-9"
    assert spread["datastore"]["name"] == "ds-big"
    assert [c["name"] for c in spread["ranked"]] == ["esx-9", "cl-a", "kvm1-host"]
    assert spread["rejected"] == []
    assert spread["summary"].startswith("host esx-9 in pool vc1 on datastore ds-big")
    cluster = spread["ranked"][1]
    assert cluster["kind"] == "cluster" and cluster["hosts"] == 1 and cluster["zone"] == "az1"
    assert 0 <= cluster["score"] <= 1

    packed = _dry_run(api, strategy="pack")
    assert packed["chosen"]["name"] == "kvm1-host"
    assert packed["datastore"]["name"] == "default"

    big = _dry_run(api, memory_mib=40000, capabilities=["supports_snapshots"])
    assert big["chosen"]["name"] == "cl-a"
    reasons = {c["name"]: c["reasons"] for c in big["rejected"]}
    assert reasons["esx-9"] == [
        {"filter": "ram", "reason": "needs 40000 MiB RAM, 30720 MiB free after 1x overcommit"}
    ]
    assert [r["filter"] for r in reasons["kvm1-host"]] == ["ram"]
    assert big["rejected_by"]["ram"] == 2

    # the ratio from the request wins over the setting's 1.0: esx-9 now has 65536 MiB
    overcommitted = _dry_run(api, memory_mib=40000, ram_allocation_ratio=2.0)
    assert [c["name"] for c in overcommitted["ranked"]] == ["cl-a", "esx-9"]


def test_dry_run_constraints(api: TestClient, runtime: Runtime) -> None:
    estate = seed_estate(runtime)
    assert _dry_run(api, zone="az2")["chosen"]["name"] == "kvm1-host"
    assert _dry_run(api, zone="eu/az2")["chosen"]["name"] == "kvm1-host"
    assert _dry_run(api, provider="kvm1")["chosen"]["name"] == "kvm1-host"
    cbt = _dry_run(api, capabilities=["supports_cbt"])
    assert cbt["rejected"][0]["reasons"][0]["reason"] == "libvirt pools lack supports_cbt"
    network = api.get("/v1/networks", params={"name": "default"}).json()["items"][0]["id"]
    assert _dry_run(api, networks=[network])["chosen"]["name"] == "kvm1-host"

    esx9 = _dry_run(api)["chosen"]["id"]
    moved = _dry_run(api, exclude=[esx9])
    assert moved["chosen"]["name"] == "cl-a"
    assert moved["rejected"][0]["reasons"][0]["filter"] == "exclude"

    mark_unreachable(runtime, estate.vcenter_id)
    down = _dry_run(api, zone="az1")
    assert down["chosen"] is None
    assert down["summary"] == "no candidate fits: 3 considered, rejected 1 by zone, 2 by host_state"


def test_dry_run_with_placement_groups(api: TestClient, runtime: Runtime) -> None:
    seed_estate(runtime)
    created = api.post("/v1/placement-groups", json={"name": "web", "policy": "anti-affinity"})
    assert created.status_code == 201, created.text
    group = created.json()
    assert group["members"] == [] and group["policy"] == "anti-affinity"
    assert _dry_run(api, group="web")["chosen"]["name"] == "esx-9"  # empty: no constraint

    lone = _vm_id(api, "lone")
    added = api.put(f"/v1/placement-groups/{group['id']}/members/{lone}")
    assert added.status_code == 200 and added.json()["members"] == [lone]
    again = api.put(f"/v1/placement-groups/web/members/{lone}")
    assert again.json()["members"] == [lone]
    apart = _dry_run(api, group="web")
    assert apart["chosen"]["name"] == "cl-a"
    assert apart["rejected"][0]["reasons"] == [
        {"filter": "group", "reason": "anti-affinity group web already has a member here"}
    ]

    api.post("/v1/placement-groups", json={"name": "db", "policy": "affinity"})
    api.put(f"/v1/placement-groups/db/members/{_vm_id(api, 'db-1')}")
    assert _dry_run(api, group="db")["chosen"]["name"] == "kvm1-host"

    listed = api.get("/v1/placement-groups").json()
    assert [(g["name"], len(g["members"])) for g in listed] == [("db", 1), ("web", 1)]
    assert api.get("/v1/placement-groups/web").json()["id"] == group["id"]
    assert api.delete(f"/v1/placement-groups/web/members/{lone}").status_code == 204
    assert api.get(f"/v1/placement-groups/{group['id']}").json()["members"] == []
    assert api.delete("/v1/placement-groups/web").status_code == 204
    assert api.get("/v1/placement-groups/web").status_code == 404


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"vcpus": 0}, "vcpus"),
        ({"memory_mib": -1}, "memory_mib"),
        ({"disk_gib": -5}, "disk_gib"),
        ({"vcpus": "many"}, "vcpus"),
        ({"strategy": "random"}, "strategy"),
        ({"colour": "red"}, "colour"),
        ({"cpu_allocation_ratio": 0}, "cpu_allocation_ratio"),
        ({"capabilities": ["supports_teleport"]}, "unknown capability supports_teleport"),
        ({"zone": "nowhere"}, "no zone 'nowhere'"),
        ({"zone": "mars/az1"}, "no zone 'mars/az1'"),
        ({"provider": "nope"}, "no pool 'nope'"),
        ({"networks": ["net-x"]}, "no network net-x"),
        ({"group": "ghosts"}, "placement group 'ghosts' not found"),
        ({"exclude": ["somewhere"]}, "no candidate (host or cluster) somewhere"),
    ],
)
def test_bad_dry_run_input_is_a_clear_422(
    api: TestClient, runtime: Runtime, body: dict[str, Any], fragment: str
) -> None:
    seed_estate(runtime)
    response = api.post("/v1/placement/dry-run", json={**SMALL, **body})
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_input"
    assert fragment in response.json()["message"]


def test_an_ambiguous_zone_name_asks_for_the_region(api: TestClient, runtime: Runtime) -> None:
    from tessera.inventory import pools

    seed_estate(runtime)
    pools.add_provider(
        runtime,
        pools.ProviderSpec("kvm9", "libvirt", "qemu+tcp://kvm9/system", region="us", zone="az2"),
        test_connection=False,
    )
    response = api.post("/v1/placement/dry-run", json={**SMALL, "zone": "az2"})
    assert response.status_code == 422
    assert "give region/zone" in response.json()["message"]


def test_bad_group_requests(api: TestClient, runtime: Runtime) -> None:
    seed_estate(runtime)
    assert (
        api.post("/v1/placement-groups", json={"name": "g", "policy": "affinity"}).status_code
        == 201
    )
    cases = [
        ("POST", "/v1/placement-groups", {"name": "g", "policy": "affinity"}, 409),
        ("POST", "/v1/placement-groups", {"name": "bad name!", "policy": "affinity"}, 422),
        ("POST", "/v1/placement-groups", {"name": "h", "policy": "friendly"}, 422),
        ("POST", "/v1/placement-groups", {"policy": "affinity"}, 422),
        ("GET", "/v1/placement-groups/nope", None, 404),
        ("DELETE", "/v1/placement-groups/nope", None, 404),
        ("PUT", "/v1/placement-groups/nope/members/x", None, 404),
        ("PUT", "/v1/placement-groups/g/members/no-such-vm", None, 404),
        ("DELETE", "/v1/placement-groups/g/members/no-such-vm", None, 404),
    ]
    for method, path, body, expected in cases:
        response = api.request(method, path, json=body)
        assert response.status_code == expected, (method, path, body, response.text)
        assert response.json()["message"]


def test_placement_routes_need_the_token(api: TestClient) -> None:
    bare = TestClient(api.app)
    assert bare.post("/v1/placement/dry-run", json=SMALL).status_code == 401
    assert bare.get("/v1/placement-groups").status_code == 401
