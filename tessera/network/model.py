"""The network vocabulary, as operators know it from Neutron: segments (L2 networks, flat,
VLAN or VXLAN), subnets, ports, routers, floating IPs and security groups. Plain values,
no I/O; the rows live in tessera.db.rows and the wire shapes in tessera.api."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

VLAN_MIN, VLAN_MAX = 1, 4094
VNI_MIN, VNI_MAX = 1, 16_777_215
DEFAULT_PHYSICAL_NETWORK = "default"


class NetworkType(StrEnum):
    FLAT = "flat"
    VLAN = "vlan"
    VXLAN = "vxlan"


class SegmentStatus(StrEnum):
    """`building` while its pools are being given it, `error` when that failed (and what
    was made was taken back), `deleting` while it is taken off its pools."""

    BUILDING = "building"
    ACTIVE = "active"
    ERROR = "error"
    DELETING = "deleting"


class RealisationState(StrEnum):
    """A segment on one pool."""

    PENDING = "pending"
    REALISED = "realised"
    REMOVED = "removed"


class DeviceOwner(StrEnum):
    """What a port is for (Neutron's device_owner)."""

    NONE = ""
    COMPUTE = "compute"
    ROUTER_INTERFACE = "router_interface"
    ROUTER_GATEWAY = "router_gateway"


class Direction(StrEnum):
    INGRESS = "ingress"
    EGRESS = "egress"


class Ethertype(StrEnum):
    IPV4 = "IPv4"
    IPV6 = "IPv6"

    @property
    def version(self) -> int:
        return 4 if self is Ethertype.IPV4 else 6


class RuleProtocol(StrEnum):
    TCP = "tcp"
    UDP = "udp"
    ICMP = "icmp"
    ICMPV6 = "icmpv6"

    @property
    def has_ports(self) -> bool:
        return self in {RuleProtocol.TCP, RuleProtocol.UDP}


class RangeKind(StrEnum):
    """Whose address range it is. Subnets are Tessera's own; the others are recorded by
    admins: a region's address space, a VPN peer's range, a routed announcement (a prefix
    a region announces to its peers) and a migration target's range."""

    SUBNET = "subnet"
    REGION = "region"
    VPN_PEER = "vpn-peer"
    ANNOUNCEMENT = "announcement"
    MIGRATION_TARGET = "migration-target"

    @property
    def refused_on_overlap(self) -> bool:
        """Subnets, peers and announcements are refused when they overlap another range;
        region and migration-target ranges describe what exists, so they are recorded
        and the overlap report shows what they collide with."""
        return self in {RangeKind.SUBNET, RangeKind.VPN_PEER, RangeKind.ANNOUNCEMENT}


@dataclass(frozen=True, slots=True)
class Segmentation:
    """How a segment is separated on the wire."""

    network_type: NetworkType
    segmentation_id: int | None
    physical_network: str | None

    @property
    def key(self) -> str:
        """Unique among segments: a VLAN id per physical network, one flat segment per
        physical network, a VNI overall."""
        if self.network_type is NetworkType.VXLAN:
            return f"vxlan:{self.segmentation_id}"
        if self.network_type is NetworkType.VLAN:
            return f"vlan:{self.physical_network}:{self.segmentation_id}"
        return f"flat:{self.physical_network}"

    @property
    def vlan_id(self) -> int:
        """The 802.1Q tag a pool's switch puts on it: none (0) for a flat segment."""
        if self.network_type is NetworkType.VLAN and self.segmentation_id:
            return self.segmentation_id
        return 0

    def describe(self) -> str:
        if self.network_type is NetworkType.VXLAN:
            return f"VXLAN VNI {self.segmentation_id}"
        if self.network_type is NetworkType.VLAN:
            return f"VLAN {self.segmentation_id} on physical network {self.physical_network!r}"
        return f"the flat segment of physical network {self.physical_network!r}"


@dataclass(frozen=True, slots=True)
class AllocationPool:
    start: str
    end: str


@dataclass(frozen=True, slots=True)
class SubnetPlan:
    """A subnet as validated: canonical CIDR, its version, gateway (None: no gateway) and
    the pools addresses are handed out from."""

    cidr: str
    ip_version: int
    gateway_ip: str | None
    allocation_pools: tuple[AllocationPool, ...]
    dns_nameservers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AddressRange:
    """One range the overlap checker knows, with its owner: `owner` names it for those
    who may see it (a subnet's name and its project's), `project_id` is the project it
    belongs to (None: the platform's), `region_id` the region it lives in, if any."""

    cidr: str
    kind: RangeKind
    object_id: str
    owner: str
    project_id: str | None = None
    region_id: str | None = None


@dataclass(frozen=True, slots=True)
class Overlap:
    first: AddressRange
    second: AddressRange
