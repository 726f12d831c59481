"""Placement knows Tessera segments: a VM whose NIC is on a segment (named, or through a
port) goes only to a pool where that segment is realised, and a segment no pool carries
is refused with a 409 that names it, before any task or port exists. Against the lab:
two KVM hosts, the segment's on an Open vSwitch in a namespace of the test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from tessera.lab.kvm import RunningKvmHost, free_port
from tessera.lab.vcsim import RunningVcsim
from tessera.network.dataplane.ovs import OvsInstance
from tests.fixtures.netns import NetLab
from tests.network.helpers import member, ok
from tests.tasks.helpers import register, wait_task


def _segment(api: TestClient, name: str, vlan: int, pools: list[str]) -> dict[str, Any]:
    body = {"name": name, "network_type": "vlan", "segmentation_id": vlan, "provider_ids": pools}
    made = ok(api.post("/v1/segments", json=body), 202)
    if made["task"] is not None:
        assert wait_task(api, made["task"]["id"], timeout_s=120)["state"] == "succeeded"
    return dict(made["segment"])


def _vm(name: str, *nics: dict[str, str], **more: Any) -> dict[str, Any]:
    """A VM for the scheduler to place: no pool, host or disk given."""
    return {"name": name, "cpus": 1, "memory_mib": 64, "nics": list(nics), **more}


def _dry_run(api: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    return dict(ok(api.post("/v1/vms/dry-run", json=body)))


def test_a_vm_on_a_segment_goes_to_a_pool_that_carries_it(
    api: TestClient,
    kvm_host: RunningKvmHost,
    kvm_host_fresh: RunningKvmHost,
    netlab: NetLab,
    tmp_path: Path,
) -> None:
    switch = OvsInstance(
        tmp_path / "ovs", netns=netlab.namespace("kvm").name, manager_port=free_port()
    )
    netlab.defer(switch.stop)
    switch.start()
    other = register(api, "libvirt", kvm_host, "kvm-other")
    kvm = register(api, "libvirt", kvm_host_fresh, "kvm-web")
    ovsdb = {"ovsdb": f"tcp:127.0.0.1:{switch.manager_port}"}
    ok(api.put(f"/v1/providers/{kvm}/network", json=ovsdb))
    web = _segment(api, "web", 351, [kvm])
    nowhere = _segment(api, "nowhere", 352, [])

    # without a segment both pools fit; with it only the pool it is realised on
    plain = _dry_run(api, _vm("any"))
    assert {c["provider_id"] for c in plain["ranked"]} == {other, kvm}
    on_web = _dry_run(api, _vm("web", {"network_id": web["id"]}))
    assert on_web["chosen"]["provider_id"] == kvm
    assert {c["provider_id"] for c in on_web["ranked"]} == {kvm}
    [rejected] = on_web["rejected"]
    assert rejected["provider_id"] == other
    assert rejected["reasons"] == [
        {
            "filter": "segment",
            "reason": f"segment 'web' ({web['id']}) is not realised on pool kvm-other",
        }
    ]
    given = ok(api.post("/v1/ports", json={"segment_id": web["id"], "name": "mine"}), 201)
    by_port = _dry_run(api, _vm("web", {"port_id": given["id"]}))
    assert by_port["chosen"]["provider_id"] == kvm
    assert on_web["rejected_by"]["segment"] == by_port["rejected_by"]["segment"] == 1

    # for real: the scheduler puts it on the KVM host the segment is on
    created = api.post("/v1/vms", json=_vm("placed", {"network_id": web["id"]}))
    task = wait_task(api, ok(created, 202)["id"])
    assert task["state"] == "succeeded", task
    vm = ok(api.get(f"/v1/vms/{task['result']['vm_id']}"))
    assert vm["provider_id"] == kvm
    [port] = [p for p in ok(api.get("/v1/ports")) if p["device_id"] == vm["id"]]
    assert port["segment_id"] == web["id"]
    assert [n["mac"] for n in vm["nics"]] == [port["mac"]]

    # a segment on no pool, or on another pool than the one named: a 409 that names the
    # segment, and nothing made or bound on the way
    ports_before, tasks_before = ok(api.get("/v1/ports")), ok(api.get("/v1/tasks"))["items"]
    for body, named in (
        (_vm("lost", {"network_id": nowhere["id"]}), f"segment 'nowhere' ({nowhere['id']})"),
        (_vm("lost", {"port_id": given["id"]}, provider_id=other), f"segment 'web' ({web['id']})"),
    ):
        refused = api.post("/v1/vms", json=body)
        assert refused.status_code == 409, refused.text
        error = refused.json()
        assert error["code"] == "no_valid_placement", error
        assert error["message"].startswith("no candidate fits"), error
        assert named in error["message"] and "is not realised on pool" in error["message"]
    assert ok(api.get("/v1/ports")) == ports_before
    assert ok(api.get("/v1/tasks"))["items"] == tasks_before


def test_a_segment_out_of_reach_is_not_found_before_placement(
    api: TestClient, vcsim: RunningVcsim
) -> None:
    """Another project's segment or port is not found (404), as the create's own checks
    say: the scheduler's explanation never names it."""
    pool = register(api, "vsphere", vcsim, "lab-vc")
    blue_id, blue = member(api, "blue", "bob")
    red_id, red = member(api, "red", "rita")
    for project in (blue_id, red_id):
        ok(api.put(f"/v1/projects/{project}/grants/provider/{pool}"), 204)
    secret = _segment(red, "red-secret", 361, [])
    red_port = ok(red.post("/v1/ports", json={"segment_id": secret["id"]}), 201)
    for nic, message in (
        ({"network_id": secret["id"]}, f"segment {secret['id']} not found"),
        ({"port_id": red_port["id"]}, f"port {red_port['id']} not found"),
    ):
        for path in ("/v1/vms/dry-run", "/v1/vms"):
            answer = blue.post(path, json=_vm("blue-vm", nic))
            assert answer.status_code == 404, answer.text
            assert answer.json()["message"] == message
            assert "red-secret" not in answer.text
