"""Segments on the lab vCenter, checked through pyvmomi behind Tessera's back: a VLAN
segment becomes a DVS portgroup with that VLAN id, is re-tagged and removed; a pool
without a DVS gets standard vSwitch portgroups; a failure on one pool takes the segment
off the other; a VLAN a pool's network already carries is refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pyVmomi import vim

from tessera.config import Settings
from tessera.lab.vcsim import RunningVcsim, VcsimSpec, start_vcsim
from tests.fixtures.vcsim import SMALL_LAB
from tests.network.helpers import ok
from tests.tasks.helpers import register, wait_task


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "state", watch_enabled=False, task_retry_attempts=1)


@pytest.fixture
def second_lab(tmp_path: Path) -> Iterator[RunningVcsim]:
    lab = start_vcsim(SMALL_LAB, tmp_path / "second")
    yield lab
    lab.stop()


def _networks(lab: RunningVcsim) -> dict[str, Any]:
    """Every network of the lab vCenter by name, with its VLAN id, read directly."""
    with lab.operator_session() as si:
        view = si.content.viewManager.CreateContainerView(
            si.content.rootFolder, [vim.Network], True
        )
        found: dict[str, Any] = {}
        for net in view.view:
            if isinstance(net, vim.dvs.DistributedVirtualPortgroup):
                config = net.config
                found[net.name] = ("dvs", config.defaultPortConfig.vlan.vlanId, config.description)
            else:
                hosts = si.content.viewManager.CreateContainerView(
                    si.content.rootFolder, [vim.HostSystem], True
                ).view
                vlans = {
                    pg.spec.vlanId
                    for host in hosts
                    for pg in host.configManager.networkSystem.networkInfo.portgroup
                    if pg.spec.name == net.name
                }
                found[net.name] = ("standard", vlans, None)
        return found


def _create(
    api: TestClient, vlan: int, *pools: str, name: str = "web"
) -> tuple[dict[str, Any], dict[str, Any]]:
    made = ok(
        api.post(
            "/v1/segments",
            json={
                "name": name,
                "network_type": "vlan",
                "segmentation_id": vlan,
                "provider_ids": list(pools),
            },
        ),
        202,
    )
    assert made["segment"]["status"] == "building" and made["task"]["kind"] == "segment.create"
    return made["segment"], wait_task(api, made["task"]["id"], timeout_s=120)


def test_a_vlan_segment_becomes_a_dvs_portgroup_with_its_vlan(
    api: TestClient, vcsim_fresh: RunningVcsim
) -> None:
    pool = register(api, "vsphere", vcsim_fresh, "lab-vc")
    segment, task = _create(api, 321, pool)
    assert task["state"] == "succeeded", task
    assert [s["name"] for s in task["steps"]] == ["realise-0", "activate"]
    shown = ok(api.get(f"/v1/segments/{segment['id']}"))
    assert shown["status"] == "active"
    [realised] = shown["realisations"]
    name = realised["native_name"]
    assert (name, realised["state"], realised["location"]) == (
        f"web-{segment['id'][:8]}",
        "realised",
        "DVS0",
    )
    assert _networks(vcsim_fresh)[name] == ("dvs", 321, f"tessera segment {segment['id']}")

    retag = ok(api.patch(f"/v1/segments/{segment['id']}", json={"segmentation_id": 322}), 202)
    assert wait_task(api, retag["task"]["id"])["state"] == "succeeded"
    assert _networks(vcsim_fresh)[name][1] == 322
    assert ok(api.get(f"/v1/segments/{segment['id']}"))["segmentation_id"] == 322

    gone = ok(api.delete(f"/v1/segments/{segment['id']}"), 202)
    assert wait_task(api, gone["task"]["id"])["state"] == "succeeded"
    assert name not in _networks(vcsim_fresh)
    assert api.get(f"/v1/segments/{segment['id']}").status_code == 404


def test_a_vlan_a_pools_network_carries_is_refused(
    api: TestClient, vcsim_fresh: RunningVcsim
) -> None:
    pool = register(api, "vsphere", vcsim_fresh, "lab-vc")
    taken = api.post(
        "/v1/segments",
        json={
            "name": "web",
            "network_type": "vlan",
            "segmentation_id": 100,
            "provider_ids": [pool],
        },
    )
    assert taken.status_code == 409
    assert (
        taken.json()["message"]
        == "VLAN 100 is already used on pool 'lab-vc' by network 'DC0_DVPG0'"
    )
    vxlan = api.post(
        "/v1/segments",
        json={"name": "vx", "network_type": "vxlan", "segmentation_id": 9, "provider_ids": [pool]},
    )
    assert vxlan.status_code == 422 and "cannot carry a vxlan segment" in vxlan.json()["message"]
    assert ok(api.get("/v1/segments")) == []


def test_without_a_dvs_the_hosts_get_standard_portgroups(api: TestClient, tmp_path: Path) -> None:
    lab = start_vcsim(VcsimSpec(vms=1, dvs_portgroups=0), tmp_path / "no-dvs")
    try:
        pool = register(api, "vsphere", lab, "lab-std")
        segment, task = _create(api, 250, pool, name="std")
        assert task["state"] == "succeeded", task
        name = f"std-{segment['id'][:8]}"
        kind, vlans, _ = _networks(lab)[name]
        assert (kind, vlans) == ("standard", {250})
        gone = ok(api.delete(f"/v1/segments/{segment['id']}"), 202)
        assert wait_task(api, gone["task"]["id"])["state"] == "succeeded"
        assert name not in _networks(lab)
    finally:
        lab.stop()


def test_a_failure_on_one_pool_takes_the_segment_off_the_other(
    api: TestClient, vcsim_fresh: RunningVcsim, second_lab: RunningVcsim
) -> None:
    first = register(api, "vsphere", vcsim_fresh, "lab-a")
    second = register(api, "vsphere", second_lab, "lab-b")
    second_lab.stop()  # the second pool is down when the task reaches it
    segment, task = _create(api, 777, first, second, name="span")
    assert task["state"] == "failed", task
    assert [(s["name"], s["state"]) for s in task["steps"]] == [
        ("realise-0", "succeeded"),
        ("realise-1", "failed"),
        ("activate", "skipped"),
    ]
    assert task["error"]["code"] == "unreachable"
    assert task["error"]["message"].endswith("; removed again from the 1 pool(s) it had reached")
    names = _networks(vcsim_fresh)
    assert not [n for n in names if n.startswith("span-")], names
    shown = ok(api.get(f"/v1/segments/{segment['id']}"))
    assert shown["status"] == "error"
    assert [r["state"] for r in shown["realisations"]] == ["removed", "pending"]
    # nothing is left on the pools, so it goes without reaching the one that is down
    gone = ok(api.delete(f"/v1/segments/{segment['id']}"), 202)
    assert wait_task(api, gone["task"]["id"])["state"] == "succeeded"
    assert api.get(f"/v1/segments/{segment['id']}").status_code == 404
