"""Address and MAC allocation, the pure part: which address of a subnet's pools is free.

The service makes it race-free: each allocation runs in a transaction that starts with
`serialize(session, lock_name(subnet_id))` (an advisory lock per subnet on PostgreSQL,
the write lock on SQLite), and the allocation table's primary key (subnet, address)
refuses a second holder should anything slip past. Free addresses are found with netaddr
IP sets, so an IPv6 /64 costs no more than the addresses taken.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence

from netaddr import IPAddress, IPRange, IPSet  # type: ignore[import-untyped]

from tessera.network.model import AllocationPool

# Neutron's default base MAC prefix (fa:16:3e), locally administered, so a port's MAC
# never collides with a vendor's.
MAC_PREFIX = (0xFA, 0x16, 0x3E)


def lock_name(subnet_id: str) -> str:
    return f"ipam:{subnet_id}"


def _pool_set(pools: Sequence[AllocationPool]) -> IPSet:
    found = IPSet()
    for pool in pools:
        found.add(IPRange(pool.start, pool.end))
    return found


def first_free(pools: Sequence[AllocationPool], used: Iterable[str]) -> str | None:
    """The lowest address of the pools nobody holds; None when they are exhausted."""
    free = _pool_set(pools) - IPSet(used)
    for block in free.iter_ipranges():
        return str(IPAddress(block.first, block.version))
    return None


def in_pools(pools: Sequence[AllocationPool], address: str) -> bool:
    return IPAddress(address) in _pool_set(pools)


def pool_size(pools: Sequence[AllocationPool]) -> int:
    return int(_pool_set(pools).size)


def random_mac() -> str:
    """A MAC under MAC_PREFIX; the ports table's unique constraint settles the rare clash
    (the caller draws again)."""
    tail = secrets.token_bytes(3)
    return ":".join(f"{b:02x}" for b in (*MAC_PREFIX, *tail))
