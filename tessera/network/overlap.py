"""The overlap checker over every address range Tessera knows: subnets of every project,
regions' address spaces, VPN peers' ranges, routed announcements and migration targets.

A range may overlap only ranges of its own region (a subnet of region R inside R's space
or under R's announcement), never another subnet; every other overlap is a collision.
Subnets, peers and announcements that would collide are refused; region and
migration-target ranges record what exists, so they are taken as they are and the
report lists what they collide with (as ranges adopted from elsewhere may). Pure
functions: the service loads the ranges.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from netaddr import IPNetwork  # type: ignore[import-untyped]

from tessera.network.model import AddressRange, Overlap, RangeKind


def _bounds(item: AddressRange) -> tuple[int, int, int]:
    net = IPNetwork(item.cidr)
    return net.version, net.first, net.last


def _tolerated(a: AddressRange, b: AddressRange) -> bool:
    """Two ranges of one region, not both subnets: a subnet inside its region's space, an
    announcement of the region's prefixes covering its subnets."""
    return (
        a.region_id is not None
        and a.region_id == b.region_id
        and not (a.kind is RangeKind.SUBNET and b.kind is RangeKind.SUBNET)
    )


def overlaps(a: AddressRange, b: AddressRange) -> bool:
    va, fa, la = _bounds(a)
    vb, fb, lb = _bounds(b)
    return va == vb and fa <= lb and fb <= la


def collisions(candidate: AddressRange, known: Iterable[AddressRange]) -> list[AddressRange]:
    """The known ranges `candidate` collides with (itself excluded), widest first."""
    found = [
        other
        for other in known
        if other.object_id != candidate.object_id
        and overlaps(candidate, other)
        and not _tolerated(candidate, other)
    ]
    return sorted(found, key=lambda r: (IPNetwork(r.cidr).prefixlen, r.cidr))


def report(ranges: Sequence[AddressRange]) -> list[Overlap]:
    """Every pair of colliding ranges: sorted by first address, each range is compared
    with those that start before it ends."""
    ordered = sorted(ranges, key=_bounds)
    bounds = [_bounds(r) for r in ordered]
    found: list[Overlap] = []
    for i, (version, _first, last) in enumerate(bounds):
        for j in range(i + 1, len(ordered)):
            v2, f2, _l2 = bounds[j]
            if v2 != version or f2 > last:
                break
            if not _tolerated(ordered[i], ordered[j]):
                found.append(Overlap(ordered[i], ordered[j]))
    return found
