"""Segments on a KVM host: a flat or VLAN segment lives on the host's Open vSwitch bridge
for its physical network (`br-<physical network>`, made with the userspace datapath), and
the VLAN tag sits on each VM port, as libvirt puts it there from the interface XML
(`nic`: the driver writes `<virtualport type='openvswitch'>` and `<vlan><tag/>`). The
bridge's uplink to the physical network is the host's plumbing, added by its operator
(or the lab), as with Neutron's bridge mappings.

The host's OVS database is the pool's `ovsdb` network setting (tessera.network.
poolsettings), else `tcp:<libvirt host>:6640`, OVS's usual manager port
(`ovs-vsctl set-manager ptcp:6640`), since Tessera runs no agent on KVM hosts.

The segment's VM ports are found by their tag on the bridge (a VLAN id is unique per
physical network, which validation guarantees): `update` moves them to the new tag,
`remove` unplugs whatever is left of them, so no guest keeps a dead segment.

A VXLAN segment is a Linux bridge with a VXLAN device (tessera.network.dataplane.vxlan),
made by `ip` in the host's namespace: only where the pool names one (`netns`, the lab's
hosts) with its tunnel address and group; elsewhere its task fails saying so.
"""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import urlsplit

from tessera.domain.operations import BridgeTarget, NicSpec
from tessera.errors import InvalidInputError
from tessera.network.dataplane.iproute import IFNAME_MAX
from tessera.network.dataplane.ovs import Ovs
from tessera.network.dataplane.vxlan import VxlanHost
from tessera.network.model import DEFAULT_PHYSICAL_NETWORK, NetworkType, Segmentation
from tessera.network.poolsettings import PoolNetworkSettings
from tessera.network.realise import Realised, Realiser, SegmentSpec
from tessera.providers.base import Provider

OVSDB_PORT = 6640
VXLAN_LOCATION = "vxlan"


def ovsdb_remote(libvirt_uri: str, settings: PoolNetworkSettings | None = None) -> str:
    """The OVS database of the host behind a libvirt URI: the pool's setting, else OVS's
    manager port on the host."""
    if settings is not None and settings.ovsdb:
        return settings.ovsdb
    return f"tcp:{urlsplit(libvirt_uri).hostname or '127.0.0.1'}:{OVSDB_PORT}"


def bridge_for(physical_network: str | None) -> str:
    """The OVS bridge of a physical network on every KVM host: `br-<name>`, cut to fit."""
    return f"br-{physical_network or DEFAULT_PHYSICAL_NETWORK}"[:IFNAME_MAX]


class LibvirtRealiser(Realiser):
    network_types: ClassVar[frozenset[NetworkType]] = frozenset(
        {NetworkType.FLAT, NetworkType.VLAN, NetworkType.VXLAN}
    )

    def __init__(self, provider: Provider, settings: PoolNetworkSettings | None = None) -> None:
        if provider.kind != "libvirt":
            raise TypeError(f"a KVM realiser needs a libvirt provider, not {provider.kind}")
        super().__init__(provider, settings)
        self.ovs = Ovs(ovsdb_remote(provider.endpoint.url, self.settings))

    def vxlan(self) -> VxlanHost:
        """The host's VXLAN plumbing; refused when the pool does not say where it is."""
        s = self.settings
        if s.netns is None or s.vxlan_local_ip is None or s.vxlan_group is None:
            raise InvalidInputError(
                f"pool {self.provider.endpoint.url} has no VXLAN settings: set its netns,"
                " vxlan_local_ip and vxlan_group (tessera provider network-settings)"
            )
        return VxlanHost(s.netns, s.vxlan_local_ip, s.vxlan_group)

    def ensure(self, spec: SegmentSpec) -> Realised:
        if spec.segmentation.network_type is NetworkType.VXLAN:
            vni = spec.segmentation.segmentation_id or 0
            return Realised(_native_id(VXLAN_LOCATION, vni), self.vxlan().ensure(vni))
        bridge = bridge_for(spec.segmentation.physical_network)
        self.ovs.ensure_bridge(bridge)
        return Realised(_native_id(bridge, spec.segmentation.vlan_id), bridge)

    def update(self, realised: Realised, spec: SegmentSpec) -> None:
        if spec.segmentation.network_type is NetworkType.VXLAN:
            raise InvalidInputError("a VXLAN segment keeps its VNI")
        old = _tag_of(realised.native_id)
        new = spec.segmentation.vlan_id
        for port in self._ports(realised.location, old):
            self.ovs.set_tag(port, new)

    def remove(self, realised: Realised, spec: SegmentSpec) -> None:
        if spec.segmentation.network_type is NetworkType.VXLAN:
            self.vxlan().remove(_tag_of(realised.native_id))
            return
        if realised.location not in self.ovs.bridges():
            return
        for port in self._ports(realised.location, _tag_of(realised.native_id)):
            self.ovs.delete_port(port)

    @classmethod
    def nic(
        cls, realised: Realised, segmentation: Segmentation, *, mac: str, port_id: str
    ) -> NicSpec:
        """On the OVS bridge, tagged, with the port's id as its iface-id; a VXLAN
        segment's NIC on its Linux bridge."""
        if segmentation.network_type is NetworkType.VXLAN:
            return NicSpec(mac=mac, bridge=BridgeTarget(realised.location))
        tag = _tag_of(realised.native_id)
        return NicSpec(mac=mac, bridge=BridgeTarget(realised.location, tag, port_id))

    def _ports(self, bridge: str, tag: int) -> list[str]:
        """The bridge's access ports of VLAN `tag`. A flat segment's VM ports cannot be
        told from the bridge's untagged uplink here, so they are left to libvirt."""
        if not tag:
            return []
        ports = set(self.ovs.vsctl("list-ports", bridge).split())
        tagged = self.ovs.vsctl("--bare", "--columns=name", "find", "Port", f"tag={tag}")
        return sorted(ports & set(tagged.split()))


def _native_id(bridge: str, vlan_id: int) -> str:
    return f"{bridge}:{vlan_id}"


def _tag_of(native_id: str) -> int:
    return int(native_id.rpartition(":")[2] or 0)
