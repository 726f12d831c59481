"""The loader over real rows written by reconcile, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tessera.config import Settings
from tessera.db.rows import HostRow, PlacementGroupMemberRow, VMRow
from tessera.domain.inventory import HostInfo, InventorySnapshot
from tessera.inventory.reconcile import reconcile
from tessera.runtime import Runtime
from tessera.scheduler import service
from tessera.scheduler.inventory import load_candidates
from tessera.scheduler.model import GIB, CandidateKind, GroupPolicy
from tests.scheduler.helpers import mark_unreachable, seed_estate


@pytest.fixture
def db_runtime(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = Runtime.open(
        Settings(data_dir=tmp_path / "state", database_url=database_url, watch_enabled=False)
    )
    yield rt
    rt.close()


def test_candidates_from_the_inventory(db_runtime: Runtime) -> None:
    estate = seed_estate(db_runtime)
    with db_runtime.sessions() as session:
        loaded = load_candidates(session)
        host_ids = {name: hid for name, hid in session.execute(select(HostRow.name, HostRow.id))}
    by_name = {c.name: c for c in loaded.candidates}
    assert [c.name for c in loaded.candidates] == ["cl-a", "esx-9", "kvm1-host"]

    cluster = by_name["cl-a"]
    assert cluster.kind is CandidateKind.CLUSTER and cluster.provider_id == estate.vcenter_id
    # capacity from esx-1 only (esx-2 is in maintenance); usage from both, the stopped VM
    # included and the template not
    assert (cluster.cpu_cores, cluster.memory_mib, cluster.hosts) == (16, 65536, 1)
    assert (cluster.vcpus_used, cluster.memory_mib_used) == (6, 12288)
    assert cluster.max_host_cores == 16 and not cluster.in_maintenance and cluster.connected
    assert {d.name for d in cluster.datastores} == {"ds-big", "ds-small"}
    assert cluster.max_datastore_free_bytes == 4096 * GIB
    assert len(cluster.networks) == 1
    assert "supports_cbt" in cluster.capabilities and cluster.provider_kind == "vsphere"
    assert cluster.zone_name == "az1" and cluster.provider_name == "vc1"
    assert loaded.candidate_of_host[host_ids["esx-1"]] == cluster.id
    assert loaded.candidate_of_host[host_ids["esx-2"]] == cluster.id

    esx = by_name["esx-9"]
    assert esx.kind is CandidateKind.HOST and esx.id == host_ids["esx-9"]
    assert (esx.cpu_cores, esx.vcpus_used, esx.memory_mib_used) == (8, 2, 2048)

    kvm = by_name["kvm1-host"]
    assert kvm.provider_kind == "libvirt" and "supports_cbt" not in kvm.capabilities
    assert kvm.zone_name == "az2" and kvm.zone != cluster.zone
    assert [d.name for d in kvm.datastores] == ["default"]
    assert kvm.networks.isdisjoint(cluster.networks)
    assert kvm.pool_reachable

    mark_unreachable(db_runtime, estate.kvm_id)
    with db_runtime.sessions() as session:
        reloaded = {c.name: c for c in load_candidates(session).candidates}
    assert not reloaded["kvm1-host"].pool_reachable and reloaded["esx-9"].pool_reachable


def test_a_cluster_with_every_host_in_maintenance_is_in_maintenance(db_runtime: Runtime) -> None:
    estate = seed_estate(db_runtime)
    with db_runtime.sessions.begin() as session:
        session.execute(
            HostRow.__table__.update()
            .where(HostRow.provider_id == estate.vcenter_id)
            .values(in_maintenance=True)
        )
    with db_runtime.sessions() as session:
        cluster = next(c for c in load_candidates(session).candidates if c.name == "cl-a")
    assert cluster.in_maintenance and cluster.hosts == 0 and cluster.cpu_cores == 0


def test_group_members_follow_their_vms(db_runtime: Runtime) -> None:
    """Members map to the candidate holding their host; a VM gone from the inventory
    leaves its groups (ON DELETE CASCADE)."""
    estate = seed_estate(db_runtime)
    with db_runtime.sessions() as session:
        vm_ids = {name: vid for name, vid in session.execute(select(VMRow.name, VMRow.id))}
    group = service.create_group(db_runtime, "web", GroupPolicy.ANTI_AFFINITY)
    service.add_member(db_runtime, "web", vm_ids["web-2"])  # on esx-2, in cl-a
    service.add_member(db_runtime, group.id, vm_ids["db-1"])
    service.add_member(db_runtime, "web", vm_ids["db-1"])  # again: no change
    with db_runtime.sessions() as session:
        members = service.get_group(session, "web").members
        assert sorted(members) == sorted([vm_ids["web-2"], vm_ids["db-1"]])
        decision = service.dry_run(
            session,
            db_runtime.settings,
            service.PlacementSpec(vcpus=1, memory_mib=512, group="web"),
        )
    assert decision.chosen is not None and decision.chosen.name == "esx-9"
    assert {r.candidate.name for r in decision.rejected} == {"cl-a", "kvm1-host"}

    with db_runtime.sessions.begin() as session:  # db-1 disappears from its pool
        reconcile(
            session,
            estate.kvm_id,
            InventorySnapshot(hosts=[HostInfo("kvm-host", "kvm1-host", cpu_cores=8)]),
        )
    with db_runtime.sessions() as session:
        left = list(session.scalars(select(PlacementGroupMemberRow.vm_id)))
    assert left == [vm_ids["web-2"]]


def test_allocation_ratios_default_to_the_settings(db_runtime: Runtime) -> None:
    seed_estate(db_runtime)
    spec = service.PlacementSpec(vcpus=1, memory_mib=40000)
    generous = db_runtime.settings.model_copy(update={"ram_allocation_ratio": 2.0})
    with db_runtime.sessions() as session:
        strict = service.dry_run(session, db_runtime.settings, spec)
        loose = service.dry_run(session, generous, spec)
    assert [c.name for c in strict.ranked] == ["cl-a"]
    assert [c.name for c in loose.ranked] == ["cl-a", "esx-9"]
    assert loose.request.overcommit.ram == 2.0 and loose.request.overcommit.cpu == 4.0
