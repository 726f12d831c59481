"""Time one placement decision over 5,000 candidates (placement_5k_hosts_ms).

The candidates are synthetic but shaped like a large estate: 4,000 KVM hosts (one pool
each) and 20 vCenters with 800 DRS clusters of 4-16 hosts and 200 standalone ESXi hosts,
over three zones, with some hosts in maintenance or disconnected and an anti-affinity
group of 200 VMs. The timed request filters on a capability every pool has, so all 5,000
candidates reach every filter and most reach the weighers: the slow case.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from dataclasses import replace

from bench.common import machine, record
from tessera.scheduler.model import (
    GIB,
    Candidate,
    CandidateKind,
    DatastoreSpace,
    GroupPolicy,
    PlacementGroup,
    PlacementRequest,
    Strategy,
)
from tessera.scheduler.scheduler import place

KVM_CAPS = frozenset(
    {"supports_snapshots", "supports_live_migration", "supports_clone", "supports_console"}
)
VSPHERE_CAPS = KVM_CAPS | {"supports_cbt", "supports_dvs", "supports_templates"}


def _datastores(rng: random.Random, prefix: str, count: int) -> tuple[DatastoreSpace, ...]:
    stores = []
    for n in range(count):
        capacity = rng.choice((2, 4, 8, 16)) * 1024 * GIB
        stores.append(
            DatastoreSpace(f"{prefix}-ds{n}", f"{prefix}-ds{n}", capacity, rng.randrange(capacity))
        )
    return tuple(stores)


def build_candidates(seed: int = 7) -> list[Candidate]:
    rng = random.Random(seed)
    candidates: list[Candidate] = []
    for n in range(4000):
        cores = rng.choice((16, 32, 48, 64))
        memory = cores * rng.choice((4096, 8192))
        candidates.append(
            Candidate(
                id=f"kvm-{n}",
                name=f"kvm-{n:04d}",
                kind=CandidateKind.HOST,
                provider_id=f"pkvm-{n}",
                provider_name=f"kvm-{n:04d}",
                provider_kind="libvirt",
                zone=f"az{n % 3 + 1}",
                capabilities=KVM_CAPS,
                cpu_cores=cores,
                vcpus_used=rng.randrange(cores * 4),
                memory_mib=memory,
                memory_mib_used=rng.randrange(memory),
                datastores=_datastores(rng, f"kvm-{n}", rng.randint(1, 2)),
                networks=frozenset({f"net-kvm-{n}"}),
                in_maintenance=rng.random() < 0.03,
                connected=rng.random() > 0.01,
                max_host_cores=cores,
            )
        )
    for n in range(1000):
        vcenter = n % 20
        hosts = 1 if n % 5 == 0 else rng.randint(4, 16)
        cores = rng.choice((32, 48, 64)) * hosts
        memory = cores * 8192
        candidates.append(
            Candidate(
                id=f"vs-{n}",
                name=f"vc{vcenter}-{'esx' if hosts == 1 else 'cl'}-{n:04d}",
                kind=CandidateKind.HOST if hosts == 1 else CandidateKind.CLUSTER,
                provider_id=f"pvc-{vcenter}",
                provider_name=f"vc{vcenter}",
                provider_kind="vsphere",
                zone=f"az{vcenter % 3 + 1}",
                capabilities=VSPHERE_CAPS,
                cpu_cores=cores,
                vcpus_used=rng.randrange(cores * 4),
                memory_mib=memory,
                memory_mib_used=rng.randrange(memory),
                datastores=_datastores(rng, f"vc{vcenter}", 4),
                networks=frozenset({f"net-vc{vcenter}-a", f"net-vc{vcenter}-b"}),
                in_maintenance=rng.random() < 0.01,
                hosts=hosts,
                max_host_cores=cores // hosts,
            )
        )
    return candidates


def time_place(
    request: PlacementRequest, candidates: list[Candidate], runs: int, *, explain: bool = False
) -> list[float]:
    """Milliseconds per decision; with `explain`, including every rejected candidate's
    reasons, as a dry run shows them."""
    for _ in range(20):  # warm up
        place(request, candidates)
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        decision = place(request, candidates)
        if explain:
            _ = decision.rejected
        timings.append((time.perf_counter() - start) * 1000)
    return sorted(timings)


def p99(timings: list[float]) -> float:
    return timings[max(0, int(len(timings) * 0.99) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=500)
    args = parser.parse_args()
    candidates = build_candidates()
    members = frozenset(c.id for c in candidates[::25])
    group = PlacementGroup("web-tier", GroupPolicy.ANTI_AFFINITY, members)
    base = PlacementRequest(
        vcpus=4,
        memory_mib=8192,
        disk_gib=40,
        capabilities=frozenset({"supports_snapshots"}),
        group=group,
    )
    cases = {
        "spread": base,
        "pack": replace(base, strategy=Strategy.PACK),
        "zone+network": replace(base, zone="az2", networks=frozenset({"net-vc1-a"})),
    }
    print(f"machine: {machine()}; {len(candidates)} candidates, {args.runs} runs each")
    medians: dict[str, float] = {}
    for label, request in cases.items():
        decision = place(request, candidates)
        timings = time_place(request, candidates, args.runs)
        explained = time_place(request, candidates, args.runs, explain=True)
        medians[label] = statistics.median(timings)
        print(
            f"{label:>13}: median {medians[label]:.2f} ms, p99 {p99(timings):.2f} ms "
            f"(with every rejection explained: median {statistics.median(explained):.2f} ms, "
            f"p99 {p99(explained):.2f} ms); {len(decision.ranked)} fit, "
            f"{len(decision.rejected)} rejected; {decision.summary}"
        )
    record("placement_5k_hosts_ms", medians["spread"], "ms", ".venv/bin/python -m bench.placement")


if __name__ == "__main__":
    main()
