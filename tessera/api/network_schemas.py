"""API schemas of Tessera's own networks (tessera.network): segments, subnets, ports,
routers, floating IPs, security groups, address ranges and the overlap report."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tessera.api.schemas import MAC_PATTERN, NAME_PATTERN, TaskPublic, UtcDateTime
from tessera.network.model import (
    Direction,
    Ethertype,
    NetworkType,
    RangeKind,
    RealisationState,
    RuleProtocol,
    SegmentStatus,
)

Id = Field(min_length=1, max_length=64)
OptionalId = Field(default=None, min_length=1, max_length=64)
Cidr = Field(min_length=1, max_length=64, description="Such as 10.0.0.0/24 or fd00::/64.")
Address = Field(min_length=1, max_length=64, description="An IPv4 or IPv6 address.")
LABEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,127}$"
PHYSNET_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class SegmentCreate(BaseModel):
    """An L2 network: flat, VLAN (1-4094, unique per physical network) or VXLAN (VNI
    1-16777215), realised on each pool of `provider_ids` by a task."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    description: str = Field(default="", max_length=1024)
    network_type: NetworkType
    segmentation_id: int | None = Field(
        default=None, ge=1, le=16_777_215, description="VLAN id or VXLAN VNI."
    )
    physical_network: str | None = Field(
        default=None,
        pattern=PHYSNET_PATTERN,
        description="For flat and VLAN: `default` unless named. On vSphere it names the "
        "DVS (or standard vSwitch) that carries it; `default` is the first DVS, else vSwitch0.",
    )
    provider_ids: list[str] = Field(
        default_factory=list, max_length=16, description="The pools to realise it on."
    )
    shared: bool = Field(default=False, description="Every project may use it (admins).")
    external: bool = Field(
        default=False, description="Floating IPs and router gateways come from it (admins)."
    )
    region: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Region name or id; default: the region of its pools when they share one.",
    )
    project_id: str | None = Field(
        default=None, min_length=1, max_length=64, description="Platform admins only."
    )


class SegmentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, pattern=NAME_PATTERN)
    description: str | None = Field(default=None, max_length=1024)
    segmentation_id: int | None = Field(
        default=None,
        ge=1,
        le=16_777_215,
        description="A new VLAN id (or VNI): taken to every pool the segment is on, by a task.",
    )


class RealisationPublic(BaseModel):
    provider_id: str
    state: RealisationState
    native_name: str = Field(description="Its name on the pool (a portgroup's, on vSphere).")
    location: str = Field(description="Where on the pool: the switch it is on.")


class SegmentPublic(BaseModel):
    id: str
    name: str
    description: str
    project_id: str | None
    network_type: NetworkType
    segmentation_id: int | None
    physical_network: str | None
    shared: bool
    external: bool
    region_id: str | None
    status: SegmentStatus
    realisations: list[RealisationPublic]
    subnet_ids: list[str]
    created_at: UtcDateTime
    updated_at: UtcDateTime


class SegmentAccepted(BaseModel):
    """The segment as saved, and the task taking it to its pools (none without pools)."""

    segment: SegmentPublic
    task: TaskPublic | None


class AllocationPoolBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: str = Address
    end: str = Address


class SubnetCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    segment_id: str = Id
    cidr: str = Cidr
    name: str = Field(default="", max_length=128)
    ip_version: Literal[4, 6] | None = None
    gateway_ip: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Default: the first host address. Must be inside the CIDR.",
    )
    no_gateway: bool = False
    allocation_pools: list[AllocationPoolBody] = Field(default_factory=list, max_length=32)
    dns_nameservers: list[str] = Field(default_factory=list, max_length=5)
    enable_dhcp: bool = True


class SubnetPublic(BaseModel):
    id: str
    segment_id: str
    project_id: str | None
    name: str
    cidr: str
    ip_version: int
    gateway_ip: str | None
    allocation_pools: list[AllocationPoolBody]
    dns_nameservers: list[str]
    enable_dhcp: bool
    addresses_used: int
    addresses_total: int = Field(description="The size of its allocation pools.")
    created_at: UtcDateTime


class FixedIPBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subnet_id: str = Id
    ip_address: str | None = Field(default=None, min_length=1, max_length=64)


class PortCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    segment_id: str = Id
    name: str = Field(default="", max_length=128)
    mac: str | None = Field(default=None, pattern=MAC_PATTERN, description="Default: a new one.")
    fixed_ips: list[FixedIPBody] | None = Field(
        default=None,
        max_length=8,
        description="Default: an address of the segment's first subnet of each IP version.",
    )
    vm_id: str | None = Field(default=None, min_length=1, max_length=64)
    security_group_ids: list[str] = Field(default_factory=list, max_length=16)


class FixedIPPublic(BaseModel):
    subnet_id: str
    ip_address: str


class PortPublic(BaseModel):
    id: str
    segment_id: str
    project_id: str | None
    name: str
    mac: str
    fixed_ips: list[FixedIPPublic]
    device_owner: str = Field(description="compute, router_interface, router_gateway or empty.")
    device_id: str | None = Field(description="The VM or router it serves.")
    security_group_ids: list[str]
    created_at: UtcDateTime


class RouterCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    external_segment_id: str | None = OptionalId
    enable_snat: bool = True


class RouterGateway(BaseModel):
    model_config = ConfigDict(extra="forbid")

    segment_id: str = Id
    enable_snat: bool = True


class RouterInterfacePublic(BaseModel):
    port_id: str
    subnet_id: str
    ip_address: str


class RouterPublic(BaseModel):
    id: str
    name: str
    project_id: str | None
    external_segment_id: str | None
    enable_snat: bool
    gateway_ips: list[str]
    interfaces: list[RouterInterfacePublic]
    created_at: UtcDateTime


class FloatingIPCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    segment_id: str = Field(min_length=1, max_length=64, description="An external segment.")
    port_id: str | None = OptionalId
    fixed_ip: str | None = Field(default=None, min_length=1, max_length=64)


class FloatingIPAssociate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    port_id: str | None = Field(
        default=None, min_length=1, max_length=64, description="null: dissociate."
    )
    fixed_ip: str | None = Field(default=None, min_length=1, max_length=64)


class FloatingIPPublic(BaseModel):
    id: str
    project_id: str | None
    segment_id: str
    subnet_id: str
    address: str
    port_id: str | None
    fixed_ip: str | None
    router_id: str | None
    created_at: UtcDateTime


class SecurityGroupCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    description: str = Field(default="", max_length=1024)


class RuleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    direction: Direction
    ethertype: Ethertype = Ethertype.IPV4
    protocol: RuleProtocol | None = Field(default=None, description="null: any protocol.")
    port_range_min: int | None = Field(default=None, ge=0, le=65535)
    port_range_max: int | None = Field(default=None, ge=0, le=65535)
    remote_ip_prefix: str | None = Field(default=None, min_length=1, max_length=64)
    remote_group_id: str | None = OptionalId


class RulePublic(BaseModel):
    id: str
    security_group_id: str
    direction: Direction
    ethertype: Ethertype
    protocol: RuleProtocol | None
    port_range_min: int | None
    port_range_max: int | None
    remote_ip_prefix: str | None
    remote_group_id: str | None


class SecurityGroupPublic(BaseModel):
    id: str
    name: str
    description: str
    project_id: str | None
    rules: list[RulePublic]
    created_at: UtcDateTime


RecordedKind = Literal["region", "vpn-peer", "announcement", "migration-target"]


class AddressRangeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=LABEL_PATTERN)
    kind: RecordedKind
    cidr: str = Cidr
    region: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Region name or id: needed for a region's range and an announcement.",
    )
    description: str = Field(default="", max_length=1024)


class AddressRangePublic(BaseModel):
    id: str
    name: str
    kind: RangeKind
    cidr: str
    region_id: str | None
    description: str
    created_at: UtcDateTime


class RangeOwner(BaseModel):
    cidr: str
    kind: RangeKind
    object_id: str
    owner: str
    project_id: str | None


class OverlapPublic(BaseModel):
    first: RangeOwner
    second: RangeOwner


# -- interconnects between regions (tessera.network.interconnect) -------------------

InterconnectKindName = Literal["bgp", "ospf", "ipsec", "gre"]


class InterconnectSide(BaseModel):
    """One end: a region (made when new) and its gateway (or VPN) router."""

    model_config = ConfigDict(extra="forbid")

    region: str = Field(min_length=1, max_length=64, description="Region name or id.")
    namespace: str = Field(
        pattern=PHYSNET_PATTERN, description="The router's network namespace on its node."
    )
    underlay_ip: str = Field(
        min_length=1, max_length=64, description="Its IPv4 address toward the other side."
    )
    asn: int | None = Field(default=None, ge=1, le=4_294_967_295, description="BGP only.")
    tunnel_ip: str | None = Field(
        default=None, max_length=64, description="GRE only: its tunnel address, 10.255.0.1/30."
    )
    ranges: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="Prefixes behind it besides its region's subnets: announced (routed) or"
        " a VPN peer's range; each is checked against the whole address space.",
    )


class InterconnectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=PHYSNET_PATTERN)
    kind: InterconnectKindName
    a: InterconnectSide
    b: InterconnectSide
    ospf_area: str | None = Field(default=None, max_length=16, description="OSPF only: 0.0.0.0.")
    psk: str | None = Field(
        default=None,
        min_length=16,
        max_length=128,
        description="IPsec only: the pre-shared key (made when absent); stored encrypted,"
        " never shown again.",
    )


class InterconnectSidePublic(BaseModel):
    region_id: str
    region: str
    namespace: str
    underlay_ip: str
    asn: int | None
    tunnel_ip: str | None
    ranges: list[str]
    prefixes: list[str] = Field(
        description="What it announces (routed) or reaches through the tunnel (VPN) now:"
        " its region's IPv4 subnets and its ranges."
    )
    tunnel_state: Literal["up", "down", "unknown"] = Field(
        description="Whether its tunnel or session is up (IPsec SA established, GRE port up,"
        " BGP session established, OSPF neighbour full), as the interconnect agent running"
        " this side on the API's node saw it last; unknown when no agent runs it there."
    )
    tunnel_checked_at: UtcDateTime | None = Field(
        description="When the agent read `tunnel_state`; null when unknown."
    )


class InterconnectPublic(BaseModel):
    id: str
    name: str
    kind: InterconnectKindName
    a: InterconnectSidePublic
    b: InterconnectSidePublic
    ospf_area: str | None
    has_psk: bool
    created_at: UtcDateTime
