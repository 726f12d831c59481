"""Interconnects as plain values: what each side (a region's gateway router) announces or
reaches through the tunnel, computed from the database by `service`, realised by `agent`."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

BACKBONE = "0.0.0.0"  # noqa: S104 (OSPF's area 0, not an address to bind)


class TunnelState(StrEnum):
    """Whether one side's tunnel or session is up: an IPsec SA established, the GRE port
    up, the BGP session established or an OSPF neighbour full. `unknown` where no agent
    runs that side on this node."""

    UP = "up"
    DOWN = "down"
    UNKNOWN = "unknown"


class InterconnectKind(StrEnum):
    BGP = "bgp"
    OSPF = "ospf"
    IPSEC = "ipsec"
    GRE = "gre"

    @property
    def routed(self) -> bool:
        """Routed kinds announce prefixes; the others carry them through a tunnel."""
        return self in {InterconnectKind.BGP, InterconnectKind.OSPF}


@dataclass(frozen=True, slots=True)
class Side:
    """One end: a region's gateway (or VPN) router. `namespace` is the router's network
    namespace, `underlay_ip` its address toward the other side, `asn` its BGP AS,
    `tunnel_ip` (address/prefix) its end of a GRE tunnel, `ranges` the prefixes behind it
    besides its region's subnets (a routed announcement or a VPN peer's range)."""

    region_id: str
    region: str
    namespace: str
    underlay_ip: str
    asn: int | None = None
    tunnel_ip: str | None = None
    ranges: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Plan:
    """What one side must look like now: its peer, what it announces (routed) or
    protects (VPN), and what lies behind the peer."""

    interconnect_id: str
    name: str
    kind: InterconnectKind
    local: Side
    peer: Side
    local_prefixes: tuple[str, ...]
    remote_prefixes: tuple[str, ...]
    ospf_area: str = BACKBONE
