"""GRE between two VPN routers through Open vSwitch's userspace datapath (kernel GRE is
absent here), one OVS instance per router, running inside its namespace.

The userspace datapath routes a tunnel's outer packets itself and sends them out of an
OVS bridge, so the router's underlay interface becomes a port of `br-phy` and its address
moves onto br-phy's own interface. `br-tun` carries the GRE port (Ethernet over GRE to
the peer's underlay address); its own interface holds this side's tunnel address, and
the routes to the peer's subnets go via the peer's tunnel address. `stop` puts the
underlay address back on its interface.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from pathlib import Path

from netaddr import IPNetwork  # type: ignore[import-untyped]

from tessera.network.dataplane import daemons, iproute
from tessera.network.dataplane.iproute import DataplaneError
from tessera.network.dataplane.ovs import OvsInstance

PHYS_BRIDGE, TUNNEL_BRIDGE, GRE_PORT = "br-phy", "br-tun", "gre0"
# Routes Tessera installs toward the peer carry this protocol number (see rt_protos),
# so a resync replaces exactly them.
ROUTE_PROTO = "177"
_PORT_STATS = re.compile(r"(rx|tx) pkts=(\d+), bytes=(\d+)")


def available() -> str | None:
    for tool, package in (
        ("ovs-vswitchd", "openvswitch-switch"),
        ("ovs-ofctl", "openvswitch-common"),
    ):
        if shutil.which(tool) is None:
            return f"{tool} (Debian package {package})"
    return None


class GreEndpoint:
    """One router's end of a GRE interconnect."""

    def __init__(self, home: Path, netns: str) -> None:
        self.home = home.resolve()
        self.netns = netns
        self.switch = OvsInstance(self.home / "ovs", netns=netns)
        self._underlay = self.home / "underlay"

    def start(self, underlay_ip: str, remote_ip: str, tunnel_ip: str) -> None:
        """Start OVS, take the underlay interface into br-phy and open the tunnel."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.switch.start()
        ovs = self.switch.ovs
        held = daemons.interface_of(underlay_ip, self.netns)
        if held is None:
            raise DataplaneError(f"no interface in {self.netns} holds {underlay_ip}")
        device, prefixlen = held
        if device != PHYS_BRIDGE:
            self._underlay.write_text(f"{device} {underlay_ip}/{prefixlen}\n")
            ovs.ensure_bridge(PHYS_BRIDGE)
            ovs.add_port(PHYS_BRIDGE, device)
            iproute.ip("addr", "del", f"{underlay_ip}/{prefixlen}", "dev", device, netns=self.netns)
            daemons.wait_for(
                lambda: iproute.link_exists(PHYS_BRIDGE, self.netns),
                f"{PHYS_BRIDGE} in {self.netns}",
            )
            iproute.set_addresses(PHYS_BRIDGE, {f"{underlay_ip}/{prefixlen}"}, self.netns)
            iproute.set_up(PHYS_BRIDGE, self.netns)
        ovs.ensure_bridge(TUNNEL_BRIDGE)
        ovs.vsctl(
            "--may-exist", "add-port", TUNNEL_BRIDGE, GRE_PORT, "--",
            "set", "Interface", GRE_PORT, "type=gre", f"options:remote_ip={remote_ip}",
        )  # fmt: skip
        daemons.wait_for(
            lambda: iproute.link_exists(TUNNEL_BRIDGE, self.netns),
            f"{TUNNEL_BRIDGE} in {self.netns}",
        )
        iproute.set_addresses(TUNNEL_BRIDGE, {str(IPNetwork(tunnel_ip))}, self.netns)
        iproute.set_up(TUNNEL_BRIDGE, self.netns)

    def running(self) -> bool:
        return all(
            daemons.read_pid(self.switch.home / f"{daemon}.pid")
            for daemon in ("ovsdb-server", "ovs-vswitchd")
        )

    def route(self, prefixes: Sequence[str], via: str) -> None:
        """Exactly `prefixes` routed via the peer's tunnel address."""
        have = {
            str(r["dst"])
            for r in iproute.ip_json("-4", "route", "show", "proto", ROUTE_PROTO, netns=self.netns)
        }
        for prefix in have - set(prefixes):
            iproute.ip("route", "del", prefix, "proto", ROUTE_PROTO, netns=self.netns)
        for prefix in prefixes:
            iproute.ip(
                "route", "replace", prefix, "via", via, "dev", TUNNEL_BRIDGE,
                "proto", ROUTE_PROTO, netns=self.netns,
            )  # fmt: skip

    def up(self) -> bool:
        """Whether OVS has the GRE port's link up (it has a route to the peer)."""
        state = self.switch.ovs.vsctl("get", "Interface", GRE_PORT, "link_state")
        return state.strip().strip('"') == "up"

    def counters(self) -> dict[str, tuple[int, int]]:
        """Packets and bytes through the GRE port: {"rx": (packets, bytes), "tx": ...}."""
        out = daemons.run(
            ["ovs-ofctl", "dump-ports", f"unix:{self.switch.home / TUNNEL_BRIDGE}.mgmt", GRE_PORT]
        ).stdout
        return {way: (int(p), int(b)) for way, p, b in _PORT_STATS.findall(out)}

    def stop(self) -> None:
        """Close the tunnel, stop OVS and give the underlay address back to its interface."""
        if daemons.read_pid(self.switch.home / "ovsdb-server.pid") is not None:
            for bridge in (TUNNEL_BRIDGE, PHYS_BRIDGE):
                self.switch.ovs.delete_bridge(bridge)
        self.switch.stop()
        if self._underlay.exists():
            device, cidr = self._underlay.read_text().split()
            if iproute.link_exists(device, self.netns):
                iproute.set_addresses(device, {cidr}, self.netns)
                iproute.set_up(device, self.netns)
            self._underlay.unlink()
