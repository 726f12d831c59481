"""place(): spread and pack, clusters, groups, datastore choice, explanations, determinism."""

from __future__ import annotations

import dataclasses
import random

from tessera.scheduler.model import (
    GIB,
    CandidateKind,
    DatastoreSpace,
    GroupPolicy,
    PlacementGroup,
    PlacementRequest,
    Strategy,
)
from tessera.scheduler.scheduler import place
from tests.scheduler.helpers import candidate

REQUEST = PlacementRequest(vcpus=2, memory_mib=4096, disk_gib=20)
PACK = dataclasses.replace(REQUEST, strategy=Strategy.PACK)


def test_spread_and_pack_choose_differently() -> None:
    idle = candidate("idle")
    busy = candidate("busy", vcpus_used=40, memory_mib_used=49152)
    middle = candidate("middle", vcpus_used=20, memory_mib_used=24576)
    spread = place(REQUEST, [busy, idle, middle])
    assert spread.chosen == idle
    assert [c.name for c in spread.ranked] == ["idle", "middle", "busy"]
    assert spread.scores == tuple(sorted(spread.scores, reverse=True))
    packed = place(PACK, [busy, idle, middle])
    assert packed.chosen == busy
    assert [c.name for c in packed.ranked] == ["busy", "middle", "idle"]


def test_spread_weighs_the_share_used_not_the_absolute_room() -> None:
    # The big cluster has more free RAM in MiB but is fuller in proportion.
    big = candidate(
        "big",
        kind=CandidateKind.CLUSTER,
        memory_mib=1 << 20,
        memory_mib_used=900000,
        cpu_cores=256,
        max_host_cores=32,
    )
    small = candidate("small", memory_mib=65536, memory_mib_used=8192)
    assert place(REQUEST, [big, small]).chosen == small


def test_cluster_needs_one_host_big_enough_for_the_vm() -> None:
    cluster = candidate("cl", kind=CandidateKind.CLUSTER, cpu_cores=64, max_host_cores=8, hosts=8)
    decision = place(dataclasses.replace(REQUEST, vcpus=12), [cluster])
    assert decision.chosen is None
    assert "largest host has 8 cores" in decision.rejected[0].reasons[0].reason


def test_rejections_list_every_reason_and_the_summary_counts_them() -> None:
    hopeless = candidate("hopeless", in_maintenance=True, memory_mib_used=65536, zone="z9")
    fine = candidate("fine")
    decision = place(dataclasses.replace(REQUEST, zone="z1"), [hopeless, fine])
    assert decision.chosen == fine
    (rejected,) = decision.rejected
    assert rejected.candidate == hopeless
    assert [r.filter for r in rejected.reasons] == ["zone", "host_state", "ram"]
    assert decision.rejected_by == {"zone": 1, "host_state": 1, "cpu": 0, "ram": 1, "disk": 0}
    assert (
        decision.summary
        == "host fine in pool pool-fine on datastore ds-fine; 1 of 2 candidates fit"
    )
    nothing = place(dataclasses.replace(REQUEST, zone="z1"), [hopeless])
    assert nothing.chosen is None and nothing.datastore is None and nothing.ranked == ()
    assert (
        nothing.summary
        == "no candidate fits: 1 considered, rejected 1 by zone, 1 by host_state, 1 by ram"
    )


def test_anti_affinity_keeps_members_apart_and_affinity_together() -> None:
    a, b, c = candidate("a"), candidate("b"), candidate("c", memory_mib_used=32768)
    anti = PlacementGroup("web", GroupPolicy.ANTI_AFFINITY, frozenset({a.id, b.id}))
    decision = place(dataclasses.replace(REQUEST, group=anti), [a, b, c])
    assert decision.chosen == c
    assert {r.candidate.name for r in decision.rejected} == {"a", "b"}
    together = PlacementGroup("db", GroupPolicy.AFFINITY, frozenset({c.id}))
    assert place(dataclasses.replace(REQUEST, group=together), [a, b, c]).chosen == c
    # a fresh group constrains nothing: the first member goes where it fits best
    fresh = PlacementGroup("new", GroupPolicy.AFFINITY)
    assert place(dataclasses.replace(REQUEST, group=fresh), [a, b, c]).chosen == a


def test_datastore_is_the_roomiest_for_spread_and_the_tightest_fit_for_pack() -> None:
    stores = (
        DatastoreSpace("d-tiny", "tiny", 100 * GIB, 10 * GIB),
        DatastoreSpace("d-snug", "snug", 100 * GIB, 30 * GIB),
        DatastoreSpace("d-roomy", "roomy", 1000 * GIB, 800 * GIB),
    )
    host = candidate(datastores=stores)
    assert place(REQUEST, [host]).datastore == stores[2]
    assert place(PACK, [host]).datastore == stores[1]  # tiny cannot hold 20 GiB
    no_disk = dataclasses.replace(PACK, disk_gib=0)
    assert place(no_disk, [host]).datastore == stores[0]
    assert place(no_disk, [candidate(datastores=())]).datastore is None


def test_excluding_the_current_location_for_a_migration() -> None:
    here, there = candidate("here"), candidate("there", memory_mib_used=60000)
    decision = place(dataclasses.replace(REQUEST, exclude=frozenset({here.id})), [here, there])
    assert decision.chosen == there
    assert decision.rejected[0].reasons[0].filter == "exclude"


def test_decisions_are_deterministic_whatever_the_input_order() -> None:
    rng = random.Random(3)
    twins = [candidate(f"twin-{n}") for n in range(6)]  # equal scores: ordered by name
    others = [
        candidate(f"h{n}", vcpus_used=rng.randint(0, 60), memory_mib_used=rng.randint(0, 60000))
        for n in range(50)
    ]
    everyone = twins + others
    first = place(REQUEST, everyone)
    for _ in range(5):
        rng.shuffle(everyone)
        again = place(REQUEST, everyone)
        assert again.ranked == first.ranked and again.scores == first.scores
        assert {r.candidate.id for r in again.rejected} == {r.candidate.id for r in first.rejected}
    assert [c.name for c in first.ranked[:6]] == [f"twin-{n}" for n in range(6)]
    assert first.chosen is not None and first.chosen.name == "twin-0"
