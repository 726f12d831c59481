"""VXLAN segments on a KVM host, as Neutron's Linux bridge agent lays them out: per VNI a
Linux bridge (`brq-vx<VNI>`) and a VXLAN device (`vx-<VNI>`) enslaved to it; libvirt puts
each VM's tap on the bridge. The device joins a multicast group on the interface holding
the host's tunnel address, so every host of the segment floods unknown frames to the
others without a per-peer list (Linux learns unicast endpoints from what it receives).

Everything runs with `ip` in the host's namespace (None: this machine's own).
"""

from __future__ import annotations

from dataclasses import dataclass

from tessera.network.dataplane import iproute
from tessera.network.dataplane.iproute import DataplaneError

VXLAN_PORT = 4789  # IANA's; Linux still defaults to the older 8472


def bridge_name(vni: int) -> str:
    return f"brq-vx{vni}"


def device_name(vni: int) -> str:
    return f"vx-{vni}"


@dataclass(frozen=True, slots=True)
class VxlanHost:
    """One host's VXLAN plumbing: its namespace, tunnel address and multicast group."""

    netns: str | None
    local_ip: str
    group: str

    def underlay(self) -> str:
        """The interface that holds the tunnel address (multicast leaves through it)."""
        for entry in iproute.ip_json("addr", "show", netns=self.netns):
            for info in entry.get("addr_info", []):
                if info.get("local") == self.local_ip:
                    return str(entry["ifname"])
        where = f" in namespace {self.netns}" if self.netns else ""
        raise DataplaneError(f"no interface holds the VXLAN address {self.local_ip}{where}")

    def ensure(self, vni: int) -> str:
        """The VNI's bridge with its VXLAN device, made unless there; the bridge's name."""
        bridge, device = bridge_name(vni), device_name(vni)
        if not iproute.link_exists(bridge, self.netns):
            iproute.ip("link", "add", bridge, "type", "bridge", netns=self.netns)
        if not iproute.link_exists(device, self.netns):
            iproute.ip(
                "link", "add", device, "type", "vxlan", "id", str(vni),
                "group", self.group, "local", self.local_ip, "dev", self.underlay(),
                "dstport", str(VXLAN_PORT), netns=self.netns,
            )  # fmt: skip
        iproute.ip("link", "set", device, "master", bridge, netns=self.netns)
        iproute.set_up(device, self.netns)
        iproute.set_up(bridge, self.netns)
        return bridge

    def remove(self, vni: int) -> None:
        """Take the VNI off the host; VM taps left on its bridge are cut off with it."""
        iproute.delete_link(device_name(vni), self.netns)
        iproute.delete_link(bridge_name(vni), self.netns)
