"""Checks of what a caller asks for, before anything is stored or made: a bad value is a
clear InvalidInputError (422) naming it. Addresses are parsed by netaddr; no I/O here."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from netaddr import AddrFormatError, IPAddress, IPNetwork, IPRange  # type: ignore[import-untyped]

from tessera.errors import InvalidInputError
from tessera.network.model import (
    DEFAULT_PHYSICAL_NETWORK,
    VLAN_MAX,
    VLAN_MIN,
    VNI_MAX,
    VNI_MIN,
    AllocationPool,
    Ethertype,
    NetworkType,
    RuleProtocol,
    Segmentation,
    SubnetPlan,
)

MAX_NAMESERVERS = 5
# The smallest subnets that still hold an address besides the network's own ones.
_LONGEST_PREFIX = {4: 30, 6: 126}


def segmentation(
    network_type: NetworkType, segmentation_id: int | None, physical_network: str | None
) -> Segmentation:
    """A VLAN id in 1-4094 on a physical network (`default` unless named), a VXLAN VNI in
    1-16777215 and no physical network, a flat segment with neither id."""
    if network_type is NetworkType.FLAT:
        if segmentation_id is not None:
            raise InvalidInputError("a flat segment has no segmentation_id")
        return Segmentation(network_type, None, physical_network or DEFAULT_PHYSICAL_NETWORK)
    if network_type is NetworkType.VLAN:
        if segmentation_id is None or not VLAN_MIN <= segmentation_id <= VLAN_MAX:
            raise InvalidInputError(
                f"a VLAN segment needs a segmentation_id from {VLAN_MIN} to {VLAN_MAX}"
                f" (got {segmentation_id})"
            )
        physical = physical_network or DEFAULT_PHYSICAL_NETWORK
        return Segmentation(network_type, segmentation_id, physical)
    if physical_network is not None:
        raise InvalidInputError("a VXLAN segment is not on a physical network")
    if segmentation_id is None or not VNI_MIN <= segmentation_id <= VNI_MAX:
        raise InvalidInputError(
            f"a VXLAN segment needs a segmentation_id (VNI) from {VNI_MIN} to {VNI_MAX}"
            f" (got {segmentation_id})"
        )
    return Segmentation(network_type, segmentation_id, None)


def network(cidr: str, what: str = "cidr") -> IPNetwork:
    """A CIDR in canonical form; host bits set is refused with the canonical one named."""
    try:
        parsed = IPNetwork(cidr, flags=0)
    except (AddrFormatError, ValueError, TypeError):
        raise InvalidInputError(f"{what} {cidr!r} is not a CIDR such as 10.0.0.0/24") from None
    if "/" not in cidr:
        raise InvalidInputError(f"{what} {cidr!r} has no prefix length (such as /24)")
    if parsed.ip != parsed.network:
        raise InvalidInputError(f"{what} {cidr} has host bits set; did you mean {parsed.cidr}?")
    return parsed.cidr


def address(value: str, what: str) -> IPAddress:
    try:
        return IPAddress(value, flags=0)
    except (AddrFormatError, ValueError, TypeError):
        raise InvalidInputError(f"{what} {value!r} is not an IP address") from None


def _usable(net: IPNetwork) -> IPRange:
    """The addresses hosts may have: not the network's own address, nor (IPv4) its
    broadcast address."""
    last = net.last - 1 if net.version == 4 else net.last
    return IPRange(IPAddress(net.first + 1, net.version), IPAddress(last, net.version))


def subnet(
    cidr: str,
    *,
    ip_version: int | None = None,
    gateway_ip: str | None = None,
    no_gateway: bool = False,
    allocation_pools: Sequence[AllocationPool] = (),
    dns_nameservers: Sequence[str] = (),
) -> SubnetPlan:
    """A subnet's plan: the gateway inside the CIDR (its first host address unless given,
    none with `no_gateway`), allocation pools inside the CIDR, clear of the gateway and of
    each other (by default, every other host address), nameservers that are addresses."""
    net = network(cidr)
    if ip_version is not None and ip_version != net.version:
        raise InvalidInputError(f"cidr {net} is IPv{net.version}, not IPv{ip_version}")
    if net.prefixlen > _LONGEST_PREFIX[net.version]:
        raise InvalidInputError(
            f"cidr {net} is too small: IPv{net.version} subnets go up to"
            f" /{_LONGEST_PREFIX[net.version]}"
        )
    usable = _usable(net)
    gateway: IPAddress | None = None
    if no_gateway and gateway_ip is not None:
        raise InvalidInputError("give gateway_ip or no_gateway, not both")
    if not no_gateway:
        gateway = address(gateway_ip, "gateway_ip") if gateway_ip else usable[0]
        if gateway not in usable:
            raise InvalidInputError(
                f"gateway_ip {gateway} is outside subnet {net}'s host addresses"
            )
    pools = [_pool(p, net, usable) for p in allocation_pools] or _default_pools(usable, gateway)
    ordered = sorted(pools, key=lambda r: r.first)
    for before, after in itertools.pairwise(ordered):
        if after.first <= before.last:
            raise InvalidInputError(f"allocation pools {_text(before)} and {_text(after)} overlap")
    if gateway is not None and any(gateway in pool for pool in pools):
        raise InvalidInputError(f"gateway_ip {gateway} is inside an allocation pool")
    if len(dns_nameservers) > MAX_NAMESERVERS:
        raise InvalidInputError(f"at most {MAX_NAMESERVERS} dns_nameservers")
    servers = tuple(str(address(s, "dns nameserver")) for s in dns_nameservers)
    return SubnetPlan(
        cidr=str(net),
        ip_version=net.version,
        gateway_ip=str(gateway) if gateway is not None else None,
        allocation_pools=tuple(AllocationPool(str(p[0]), str(p[-1])) for p in ordered),
        dns_nameservers=servers,
    )


def _text(pool: IPRange) -> str:
    return f"{pool[0]}-{pool[-1]}"


def _pool(pool: AllocationPool, net: IPNetwork, usable: IPRange) -> IPRange:
    start, end = address(pool.start, "pool start"), address(pool.end, "pool end")
    if start.version != net.version or end.version != net.version:
        raise InvalidInputError(f"allocation pool {pool.start}-{pool.end} is not IPv{net.version}")
    if start > end:
        raise InvalidInputError(f"allocation pool {pool.start}-{pool.end} ends before it starts")
    if start not in usable or end not in usable:
        raise InvalidInputError(
            f"allocation pool {start}-{end} is outside subnet {net}'s host addresses"
        )
    return IPRange(start, end)


def _default_pools(usable: IPRange, gateway: IPAddress | None) -> list[IPRange]:
    """Every host address but the gateway's."""
    if gateway is None:
        return [usable]
    pools = []
    if gateway > usable[0]:
        pools.append(IPRange(usable[0], gateway - 1))
    if gateway < usable[-1]:
        pools.append(IPRange(gateway + 1, usable[-1]))
    if not pools:
        raise InvalidInputError("the subnet has no address left besides its gateway")
    return pools


def rule_ports(
    protocol: RuleProtocol | None, port_min: int | None, port_max: int | None
) -> tuple[int | None, int | None]:
    """Port ranges only for TCP and UDP (1-65535, min <= max; one alone means that port);
    for ICMP they are the type and code (0-255)."""
    if port_min is None and port_max is None:
        return None, None
    if protocol is None:
        raise InvalidInputError("a port range needs a protocol")
    low = port_min if port_min is not None else port_max or 0
    high = port_max if port_max is not None else low
    if protocol.has_ports:
        if not (1 <= low <= 65535 and 1 <= high <= 65535):
            raise InvalidInputError("ports are from 1 to 65535")
        if low > high:
            raise InvalidInputError(f"port_range_min {low} is above port_range_max {high}")
        return low, high
    if not (0 <= low <= 255 and 0 <= high <= 255):
        raise InvalidInputError(f"{protocol.value} type and code are from 0 to 255")
    return low, high


def remote_prefix(prefix: str | None, ethertype: Ethertype) -> str | None:
    if prefix is None:
        return None
    net = network(prefix, "remote_ip_prefix")
    if net.version != ethertype.version:
        raise InvalidInputError(f"remote_ip_prefix {net} is not {ethertype.value}")
    return str(net)
