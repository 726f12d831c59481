"""Segments on a vCenter: a flat or VLAN segment becomes a portgroup with its VLAN id (0
for flat), on the DVS named after its physical network (`default`: the pool's first DVS)
or, where there is no DVS, on the standard vSwitch of that name (`default`: vSwitch0) of
every host. VXLAN needs NSX, which Tessera does not drive: refused up front."""

from __future__ import annotations

from typing import ClassVar

from tessera.domain.operations import NicSpec
from tessera.network.model import DEFAULT_PHYSICAL_NETWORK, NetworkType, Segmentation
from tessera.network.poolsettings import PoolNetworkSettings
from tessera.network.realise import Realised, Realiser, SegmentSpec
from tessera.providers.base import Provider
from tessera.providers.vsphere.driver import VSphereProvider


class VSphereRealiser(Realiser):
    network_types: ClassVar[frozenset[NetworkType]] = frozenset(
        {NetworkType.FLAT, NetworkType.VLAN}
    )

    def __init__(self, provider: Provider, settings: PoolNetworkSettings | None = None) -> None:
        if not isinstance(provider, VSphereProvider):
            raise TypeError(f"a vSphere realiser needs a vSphere provider, not {provider.kind}")
        super().__init__(provider, settings)
        self.vcenter = provider

    @staticmethod
    def _switch(spec: SegmentSpec) -> str | None:
        physical = spec.segmentation.physical_network
        return None if physical in (None, DEFAULT_PHYSICAL_NETWORK) else physical

    def ensure(self, spec: SegmentSpec) -> Realised:
        native_id, switch = self.vcenter.ensure_portgroup(
            spec.name, spec.segmentation.vlan_id, switch=self._switch(spec), marker=spec.marker
        )
        return Realised(native_id, switch)

    def update(self, realised: Realised, spec: SegmentSpec) -> None:
        self.vcenter.update_portgroup(
            realised.native_id, spec.name, spec.segmentation.vlan_id, switch=realised.location
        )

    def remove(self, realised: Realised, spec: SegmentSpec) -> None:
        self.vcenter.remove_portgroup(realised.native_id, spec.name, switch=realised.location)

    @classmethod
    def nic(
        cls, realised: Realised, segmentation: Segmentation, *, mac: str, port_id: str
    ) -> NicSpec:
        """On the portgroup (its Network moref); vCenter keeps no port id of ours."""
        return NicSpec(realised.native_id, mac)
