"""Realising a segment on a pool: one Realiser per kind of pool, registered by name and
imported lazily (as the drivers are), so a pool kind without one is refused up front.

vSphere makes portgroups on a DVS or standard vSwitches (vsphere.py); KVM hosts put
segments on their Open vSwitch bridges (libvirt.py).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from tessera.domain.operations import NicSpec
from tessera.network.model import NetworkType, Segmentation
from tessera.network.poolsettings import PoolNetworkSettings
from tessera.providers.base import Provider


@dataclass(frozen=True, slots=True)
class SegmentSpec:
    """What a pool is asked to carry: the segment, the name its object gets there."""

    segment_id: str
    name: str
    segmentation: Segmentation

    @property
    def marker(self) -> str:
        """Written on the pool's object where it has room, to know it again as ours."""
        return f"tessera segment {self.segment_id}"


@dataclass(frozen=True, slots=True)
class Realised:
    """The pool's object for a segment: its native id and where it lives (a switch)."""

    native_id: str
    location: str


class Realiser(ABC):
    """The verbs on one connected pool. Each is safe to repeat (durable tasks re-run an
    interrupted step): ensure finds what an earlier call made, remove of what is gone
    succeeds."""

    network_types: ClassVar[frozenset[NetworkType]]

    def __init__(self, provider: Provider, settings: PoolNetworkSettings | None = None) -> None:
        self.provider = provider
        self.settings = settings or PoolNetworkSettings()

    @abstractmethod
    def ensure(self, spec: SegmentSpec) -> Realised:
        """Make (or find) the segment's object on the pool."""

    @abstractmethod
    def update(self, realised: Realised, spec: SegmentSpec) -> None:
        """Bring an existing object to `spec` (a new VLAN id)."""

    @abstractmethod
    def remove(self, realised: Realised, spec: SegmentSpec) -> None:
        """Take the object off the pool."""

    @classmethod
    @abstractmethod
    def nic(
        cls, realised: Realised, segmentation: Segmentation, *, mac: str, port_id: str
    ) -> NicSpec:
        """A VM NIC on the realised segment, for the port `port_id` with its MAC (no
        connection needed: the task's driver plugs it in)."""


REALISERS: dict[str, str] = {
    "vsphere": "tessera.network.realise.vsphere:VSphereRealiser",
    "libvirt": "tessera.network.realise.libvirt:LibvirtRealiser",
}


def realiser_class(kind: str) -> type[Realiser] | None:
    """The realiser of a pool kind; None when that kind has none yet."""
    target = REALISERS.get(kind)
    if target is None:
        return None
    module_name, _, class_name = target.partition(":")
    cls: type[Realiser] = getattr(importlib.import_module(module_name), class_name)
    return cls
