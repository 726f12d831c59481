"""The pure parts: validation of what callers ask, IPAM's free-address search and MACs,
and the overlap checker's rules."""

from __future__ import annotations

import re

import pytest

from tessera.errors import InvalidInputError
from tessera.network import ipam, overlap, validation
from tessera.network.model import (
    AddressRange,
    AllocationPool,
    Ethertype,
    NetworkType,
    RangeKind,
    RuleProtocol,
)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cidr": "10.0.0.5/24"}, "has host bits set; did you mean 10.0.0.0/24?"),
        ({"cidr": "10.0.0.0"}, "has no prefix length"),
        ({"cidr": "banana"}, "is not a CIDR"),
        ({"cidr": "10.0.0.0/31"}, "too small"),
        ({"cidr": "10.0.0.0/24", "gateway_ip": "10.0.1.1"}, "outside subnet 10.0.0.0/24"),
        ({"cidr": "10.0.0.0/24", "gateway_ip": "10.0.0.255"}, "outside subnet"),
        ({"cidr": "10.0.0.0/24", "ip_version": 6}, "is IPv4, not IPv6"),
        (
            {"cidr": "10.0.0.0/24", "allocation_pools": [AllocationPool("10.0.0.200", "10.0.1.5")]},
            "outside subnet",
        ),
        (
            {
                "cidr": "10.0.0.0/24",
                "allocation_pools": [
                    AllocationPool("10.0.0.10", "10.0.0.20"),
                    AllocationPool("10.0.0.20", "10.0.0.30"),
                ],
            },
            "overlap",
        ),
        (
            {"cidr": "10.0.0.0/24", "allocation_pools": [AllocationPool("10.0.0.1", "10.0.0.9")]},
            "gateway_ip 10.0.0.1 is inside an allocation pool",
        ),
        (
            {"cidr": "10.0.0.0/24", "allocation_pools": [AllocationPool("10.0.0.9", "10.0.0.2")]},
            "ends before it starts",
        ),
        ({"cidr": "fd00::/64", "gateway_ip": "10.0.0.1"}, "outside subnet"),
        ({"cidr": "10.0.0.0/24", "dns_nameservers": ["dns.example"]}, "not an IP address"),
    ],
)
def test_a_bad_subnet_is_refused_saying_why(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        validation.subnet(**kwargs)  # type: ignore[arg-type]


def test_a_subnets_defaults_leave_out_the_gateway_and_the_networks_own_addresses() -> None:
    v4 = validation.subnet("192.168.10.0/24", gateway_ip="192.168.10.254")
    assert v4.gateway_ip == "192.168.10.254"
    assert v4.allocation_pools == (AllocationPool("192.168.10.1", "192.168.10.253"),)
    v6 = validation.subnet("2001:db8:1::/64", dns_nameservers=["2001:db8::53"])
    assert (v6.ip_version, v6.gateway_ip) == (6, "2001:db8:1::1")
    assert v6.allocation_pools == (
        AllocationPool("2001:db8:1::2", "2001:db8:1:0:ffff:ffff:ffff:ffff"),
    )
    bare = validation.subnet("10.9.0.0/29", no_gateway=True)
    assert bare.gateway_ip is None
    assert bare.allocation_pools == (AllocationPool("10.9.0.1", "10.9.0.6"),)


@pytest.mark.parametrize(
    ("network_type", "segmentation_id", "physical", "message"),
    [
        (NetworkType.VLAN, 0, None, "from 1 to 4094 (got 0)"),
        (NetworkType.VLAN, 4095, None, "from 1 to 4094 (got 4095)"),
        (NetworkType.VLAN, None, None, "needs a segmentation_id"),
        (NetworkType.VXLAN, 16_777_216, None, "from 1 to 16777215"),
        (NetworkType.VXLAN, 5000, "physnet1", "not on a physical network"),
        (NetworkType.FLAT, 7, None, "a flat segment has no segmentation_id"),
    ],
)
def test_segmentation_ids_are_checked(
    network_type: NetworkType, segmentation_id: int | None, physical: str | None, message: str
) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        validation.segmentation(network_type, segmentation_id, physical)


def test_segment_keys_make_vlans_unique_per_physical_network_and_vnis_overall() -> None:
    a = validation.segmentation(NetworkType.VLAN, 100, None)
    b = validation.segmentation(NetworkType.VLAN, 100, "physnet2")
    assert (a.key, b.key) == ("vlan:default:100", "vlan:physnet2:100")
    assert validation.segmentation(NetworkType.VXLAN, 100, None).key == "vxlan:100"
    assert validation.segmentation(NetworkType.FLAT, None, None).vlan_id == 0


def test_rule_ports() -> None:
    assert validation.rule_ports(RuleProtocol.TCP, 22, None) == (22, 22)
    assert validation.rule_ports(RuleProtocol.ICMP, 8, 0) == (8, 0)
    for args in [(None, 22, 22), (RuleProtocol.UDP, 0, 10), (RuleProtocol.TCP, 90, 80)]:
        with pytest.raises(InvalidInputError):
            validation.rule_ports(*args)
    with pytest.raises(InvalidInputError, match="is not IPv6"):
        validation.remote_prefix("10.0.0.0/8", Ethertype.IPV6)


def test_ipam_hands_out_the_lowest_free_address_until_the_pools_run_out() -> None:
    pools = [AllocationPool("10.0.0.2", "10.0.0.3"), AllocationPool("10.0.0.10", "10.0.0.10")]
    used: list[str] = []
    while (found := ipam.first_free(pools, used)) is not None:
        used.append(found)
    assert used == ["10.0.0.2", "10.0.0.3", "10.0.0.10"]
    assert ipam.pool_size(pools) == 3


def test_ipam_on_an_ipv6_slash_64_costs_only_what_is_taken() -> None:
    pools = list(validation.subnet("2001:db8::/64").allocation_pools)
    taken = ["2001:db8::2", "2001:db8::3", "2001:db8::5"]
    assert ipam.first_free(pools, taken) == "2001:db8::4"
    assert ipam.pool_size(pools) == 2**64 - 2


def test_macs_are_locally_administered_and_differ() -> None:
    macs = {ipam.random_mac() for _ in range(200)}
    assert len(macs) == 200
    assert all(re.fullmatch(r"fa:16:3e(:[0-9a-f]{2}){3}", mac) for mac in macs)


def _range(cidr: str, kind: RangeKind, oid: str, region: str | None = None) -> AddressRange:
    return AddressRange(cidr, kind, oid, f"{kind.value} {oid}", None, region)


def test_a_range_may_overlap_its_own_region_only() -> None:
    eu = _range("10.1.0.0/16", RangeKind.REGION, "eu", "r-eu")
    us = _range("10.2.0.0/16", RangeKind.REGION, "us", "r-us")
    peer = _range("172.16.0.0/12", RangeKind.VPN_PEER, "peer")
    inside_eu = _range("10.1.5.0/24", RangeKind.SUBNET, "s1", "r-eu")
    assert overlap.collisions(inside_eu, [eu, us, peer]) == []
    strayed = _range("10.2.5.0/24", RangeKind.SUBNET, "s2", "r-eu")
    assert overlap.collisions(strayed, [eu, us, peer]) == [us]
    announcement = _range("172.16.1.0/24", RangeKind.ANNOUNCEMENT, "a", "r-eu")
    assert overlap.collisions(announcement, [eu, us, peer]) == [peer]
    v6 = _range("fd00::/8", RangeKind.SUBNET, "s3")
    assert overlap.collisions(v6, [eu, us, peer]) == []


def test_the_report_lists_every_colliding_pair_once() -> None:
    ranges = [
        _range("10.0.0.0/8", RangeKind.MIGRATION_TARGET, "dc-old"),
        _range("10.1.0.0/16", RangeKind.REGION, "eu", "r-eu"),
        _range("10.1.2.0/24", RangeKind.SUBNET, "web", "r-eu"),
        _range("192.168.0.0/16", RangeKind.VPN_PEER, "branch"),
        _range("192.168.0.0/24", RangeKind.MIGRATION_TARGET, "lab"),
    ]
    found = overlap.report(ranges)
    pairs = {frozenset((o.first.object_id, o.second.object_id)) for o in found}
    assert len(found) == len(pairs) == 3
    assert pairs == {frozenset(p) for p in [("dc-old", "eu"), ("dc-old", "web"), ("branch", "lab")]}
