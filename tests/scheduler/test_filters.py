"""Each filter accepts what fits, rejects what does not with a reason to act on, and its
fast path (`keep`) agrees with its explanation (`check`)."""

from __future__ import annotations

import dataclasses
import random

import pytest

from tessera.errors import InvalidInputError
from tessera.scheduler import filters as f
from tessera.scheduler.model import (
    GIB,
    Candidate,
    CandidateKind,
    DatastoreSpace,
    GroupPolicy,
    Overcommit,
    PlacementGroup,
    PlacementRequest,
    SegmentRef,
)
from tests.scheduler.helpers import VSPHERE_CAPS, candidate

BASE = PlacementRequest(vcpus=2, memory_mib=4096, disk_gib=20)


def req(**changes: object) -> PlacementRequest:
    return dataclasses.replace(BASE, **changes)  # type: ignore[arg-type]


CASES = [
    # filter, request, accepted candidate, rejected candidate, fragment of the reason
    (
        f.ExcludeFilter(),
        req(exclude=frozenset({"id-b"})),
        candidate("a"),
        candidate("b"),
        "excluded",
    ),
    (f.HostStateFilter(), BASE, candidate(), candidate(in_maintenance=True), "maintenance"),
    (f.HostStateFilter(), BASE, candidate(), candidate(connected=False), "disconnected"),
    (
        f.HostStateFilter(),
        BASE,
        candidate(),
        candidate(pool_reachable=False),
        "pool pool-h1 is unreachable",
    ),
    (
        f.ZoneFilter(),
        req(zone="z1"),
        candidate(),
        candidate(zone="z2", zone_name="az2"),
        "in zone az2",
    ),
    (f.ProviderFilter(), req(provider_id="p-a"), candidate("a"), candidate("b"), "in pool pool-b"),
    (
        f.CapabilityFilter(),
        req(capabilities=frozenset({"supports_cbt"})),
        candidate(capabilities=VSPHERE_CAPS, provider_kind="vsphere"),
        candidate(),
        "libvirt pools lack supports_cbt",
    ),
    (
        f.NetworkFilter(),
        req(networks=frozenset({"net-1"})),
        candidate(),
        candidate(networks=frozenset({"net-2"})),
        "cannot reach 1 of the 1 requested networks",
    ),
    (
        f.SegmentFilter(),
        req(segments=frozenset({SegmentRef("seg-1", "web"), SegmentRef("seg-2", "db")})),
        candidate(segments=frozenset({"seg-1", "seg-2", "seg-3"})),
        candidate(segments=frozenset({"seg-2"})),
        "segment 'web' (seg-1) is not realised on pool pool-h1",
    ),
    (
        f.GroupFilter(),
        req(group=PlacementGroup("web", GroupPolicy.ANTI_AFFINITY, frozenset({"id-b"}))),
        candidate("a"),
        candidate("b"),
        "anti-affinity group web already has a member here",
    ),
    (
        f.GroupFilter(),
        req(group=PlacementGroup("db", GroupPolicy.AFFINITY, frozenset({"id-a"}))),
        candidate("a"),
        candidate("b"),
        "affinity group db has its members elsewhere",
    ),
    (
        f.CpuFilter(),
        req(vcpus=8),
        candidate(vcpus_used=56),
        candidate(vcpus_used=60),
        "needs 8 vCPUs, 4 free after 4x overcommit of 16 cores (60 in use)",
    ),
    (
        f.CpuFilter(),
        req(vcpus=24),
        candidate(kind=CandidateKind.CLUSTER, cpu_cores=64, max_host_cores=32),
        candidate(kind=CandidateKind.CLUSTER, cpu_cores=64, max_host_cores=16),
        "needs 24 vCPUs, its largest host has 16 cores",
    ),
    (
        f.RamFilter(),
        req(memory_mib=8192),
        candidate(memory_mib_used=57344),
        candidate(memory_mib_used=62464),
        "needs 8192 MiB RAM, 3072 MiB free after 1x overcommit",
    ),
    (
        f.DiskFilter(),
        req(disk_gib=600),
        candidate(
            datastores=(
                DatastoreSpace("s", "s", 1024 * GIB, 100 * GIB),
                DatastoreSpace("b", "b", 1024 * GIB, 700 * GIB),
            )
        ),
        candidate(),
        "needs 600 GiB disk, the roomiest datastore has 512.0 GiB free after 1x overcommit",
    ),
    (f.DiskFilter(), BASE, candidate(), candidate(datastores=()), "has no datastore"),
]


@pytest.mark.parametrize(("check", "request_", "good", "bad", "fragment"), CASES)
def test_filter_accepts_and_rejects_with_a_reason(
    check: f.Filter, request_: PlacementRequest, good: Candidate, bad: Candidate, fragment: str
) -> None:
    assert check.applies(request_)
    assert check.check(request_, good) is None
    reason = check.check(request_, bad)
    assert reason is not None and fragment in reason, reason
    assert check.keep(request_, [bad, good, bad]) == [good]


def test_filters_with_nothing_to_check_are_skipped() -> None:
    plain = PlacementRequest(vcpus=1, memory_mib=1)
    skipped = {c.name for c in f.DEFAULT_FILTERS if not c.applies(plain)}
    assert skipped == {
        "exclude",
        "zone",
        "provider",
        "capability",
        "network",
        "segment",
        "group",
        "disk",
    }
    empty_group = req(group=PlacementGroup("new", GroupPolicy.AFFINITY))
    assert not f.GroupFilter().applies(empty_group)  # the first member may go anywhere


def test_overcommit_arithmetic() -> None:
    host = candidate(cpu_cores=10, vcpus_used=30, memory_mib=1000, memory_mib_used=900)
    # cpu: 10 cores x 4.0 = 40 vCPUs, 30 used: 10 free exactly
    assert f.CpuFilter().check(req(vcpus=10, memory_mib=1), host) is None
    assert f.CpuFilter().check(req(vcpus=11, memory_mib=1), host) is not None
    assert (
        f.CpuFilter().check(req(vcpus=11, memory_mib=1, overcommit=Overcommit(cpu=3.0)), host)
        == "needs 11 vCPUs, 0 free after 3x overcommit of 10 cores (30 in use)"
    )
    # ram: 1000 x 1.5 = 1500, 900 used: 600 free
    ram = f.RamFilter()
    assert ram.check(req(memory_mib=100), host) is None
    assert ram.check(req(memory_mib=101), host) is not None
    assert ram.check(req(memory_mib=600, overcommit=Overcommit(ram=1.5)), host) is None
    assert ram.check(req(memory_mib=601, overcommit=Overcommit(ram=1.5)), host) is not None
    # disk: 1 TiB with 100 GiB free, thin 2.0x: 2048 - 924 = 1124 GiB available
    thin = candidate(datastores=(DatastoreSpace("d", "d", 1024 * GIB, 100 * GIB),))
    disk = f.DiskFilter()
    assert disk.check(req(disk_gib=101), thin) is not None
    assert disk.check(req(disk_gib=1124, overcommit=Overcommit(disk=2.0)), thin) is None
    assert disk.check(req(disk_gib=1125, overcommit=Overcommit(disk=2.0)), thin) is not None
    assert disk.keep(req(disk_gib=1124, overcommit=Overcommit(disk=2.0)), [thin]) == [thin]
    assert disk.keep(req(disk_gib=1125, overcommit=Overcommit(disk=2.0)), [thin]) == []


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"vcpus": 0}, "vcpus"),
        ({"memory_mib": -1}, "memory_mib"),
        ({"disk_gib": -0.5}, "disk_gib"),
        (
            {"capabilities": frozenset({"supports_teleport"})},
            "unknown capability supports_teleport",
        ),
        ({"overcommit": Overcommit(cpu=4.0, ram=1.0, disk=1.0)}, None),
    ],
)
def test_requests_are_checked(changes: dict[str, object], fragment: str | None) -> None:
    if fragment is None:
        assert req(**changes).overcommit.cpu == 4.0
        return
    with pytest.raises(InvalidInputError, match=fragment):
        req(**changes)


def test_overcommit_ratios_are_checked() -> None:
    with pytest.raises(InvalidInputError, match="ram overcommit"):
        Overcommit(ram=0)
    assert Overcommit() == Overcommit(cpu=4.0, ram=1.0, disk=1.0)


def test_keep_agrees_with_check_on_random_estates() -> None:
    rng = random.Random(11)
    candidates = [
        candidate(
            f"h{i}",
            zone=rng.choice(("z1", "z2")),
            provider_id=rng.choice(("p1", "p2")),
            capabilities=rng.choice((frozenset(), VSPHERE_CAPS)),
            networks=frozenset(rng.sample(["n1", "n2", "n3"], rng.randint(0, 3))),
            segments=frozenset(rng.sample(["s1", "s2", "s3"], rng.randint(0, 3))),
            in_maintenance=rng.random() < 0.2,
            connected=rng.random() > 0.2,
            pool_reachable=rng.random() > 0.2,
            cpu_cores=rng.randint(0, 32),
            max_host_cores=rng.randint(0, 32),
            vcpus_used=rng.randint(0, 128),
            memory_mib=rng.randint(0, 8192),
            memory_mib_used=rng.randint(0, 8192),
            datastores=tuple(
                DatastoreSpace(f"d{i}{n}", "d", cap, rng.randint(0, cap))
                for n in range(rng.randint(0, 3))
                for cap in [rng.randint(1, 64) * GIB]
            ),
        )
        for i in range(300)
    ]
    for _ in range(40):
        request = PlacementRequest(
            vcpus=rng.randint(1, 16),
            memory_mib=rng.randint(1, 4096),
            disk_gib=rng.choice((0, 1, 10, 40)),
            zone=rng.choice((None, "z1")),
            provider_id=rng.choice((None, "p2")),
            capabilities=rng.choice((frozenset(), frozenset({"supports_cbt"}))),
            networks=frozenset(rng.sample(["n1", "n2"], rng.randint(0, 2))),
            segments=frozenset(
                SegmentRef(s, s.upper()) for s in rng.sample(["s1", "s2"], rng.randint(0, 2))
            ),
            group=PlacementGroup(
                "g",
                rng.choice(list(GroupPolicy)),
                frozenset(c.id for c in rng.sample(candidates, 30)),
            ),
            overcommit=Overcommit(cpu=rng.choice((1.0, 4.0)), disk=rng.choice((1.0, 1.5))),
            exclude=frozenset({"id-h3"}),
        )
        for check in (c for c in f.DEFAULT_FILTERS if c.applies(request)):
            expected = [c for c in candidates if check.check(request, c) is None]
            assert check.keep(request, candidates) == expected, check.name
