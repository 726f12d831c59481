"""Typed requests and results of VM operations, in Tessera's own vocabulary.

Providers take these and answer with VMInfo (tessera.domain.inventory) or the small
results below. Every `*_native_id` is the provider's own opaque key, as in the inventory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class DiskSpec:
    """A new virtual disk; no datastore (storage pool) means the VM's placement datastore."""

    size_bytes: int
    datastore_native_id: str | None = None


@dataclass(frozen=True, slots=True)
class BridgeTarget:
    """A KVM NIC plugged straight into a host bridge rather than a libvirt network: an
    Open vSwitch bridge (with `interface_id`, the port's id OVS records, and the VLAN tag
    on the VM's port; 0 for none) or, without `interface_id`, a Linux bridge."""

    bridge: str
    vlan_id: int = 0
    interface_id: str | None = None


@dataclass(frozen=True, slots=True)
class NicSpec:
    """A new virtual NIC on a network of the pool, or (KVM) on a host bridge; no MAC
    means the provider picks one."""

    network_native_id: str = ""
    mac: str | None = None
    bridge: BridgeTarget | None = None


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a VM goes: a host or a cluster, and the datastore for its files. Unset
    fields let the provider choose (libvirt: its one host, the disk's pool)."""

    host_native_id: str | None = None
    cluster_native_id: str | None = None
    datastore_native_id: str | None = None


@dataclass(frozen=True, slots=True)
class VMCreateSpec:
    """A VM to create: blank with these disks and NICs, or cloned from a template.

    From a template, the template's hardware is kept and cpu_count/memory_mib (when not
    0) are applied on top; `disks` and `nics` are added to the template's own.
    """

    name: str
    cpu_count: int
    memory_mib: int
    disks: tuple[DiskSpec, ...] = ()
    nics: tuple[NicSpec, ...] = ()
    placement: Placement = field(default_factory=Placement)
    guest_os: str = ""
    from_template_native_id: str | None = None


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """A point-in-time snapshot of one VM; `parent_native_id` is None for a root."""

    native_id: str
    name: str
    description: str = ""
    created_at: datetime | None = None
    parent_native_id: str | None = None
    is_current: bool = False


@dataclass(frozen=True, slots=True)
class ConsoleInfo:
    """How to reach a VM's console. `url` may embed a short-lived, single-VM ticket: hand
    it to the user who asked, never log or store it."""

    protocol: str
    url: str = field(repr=False)
    expires_at: datetime | None = None
