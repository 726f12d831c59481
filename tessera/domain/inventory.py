"""What a pool contains, in Tessera's own vocabulary.

Providers translate their native objects into these; `native_id` is the provider's own
opaque key (a vSphere moref value, a libvirt UUID) and is interpreted by that provider only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class PowerState(StrEnum):
    """One power-state vocabulary for every hypervisor; drivers map theirs into it."""

    RUNNING = "running"
    STOPPED = "stopped"
    SUSPENDED = "suspended"
    PAUSED = "paused"
    UNKNOWN = "unknown"


class ObjectKind(StrEnum):
    """Kinds of inventory object a provider reports."""

    CLUSTER = "cluster"
    HOST = "host"
    DATASTORE = "datastore"
    NETWORK = "network"
    VM = "vm"


class NetworkKind(StrEnum):
    DVS_PORTGROUP = "dvs_portgroup"
    STANDARD_PORTGROUP = "standard_portgroup"
    OPAQUE = "opaque"
    LIBVIRT_NETWORK = "libvirt_network"
    BRIDGE = "bridge"


@dataclass(frozen=True, slots=True)
class ClusterInfo:
    native_id: str
    name: str
    datacenter: str | None = None


@dataclass(frozen=True, slots=True)
class HostInfo:
    native_id: str
    name: str
    cluster_native_id: str | None = None
    cpu_cores: int = 0
    cpu_mhz: int = 0
    memory_mib: int = 0
    in_maintenance: bool = False
    connected: bool = True
    hypervisor: str = ""


@dataclass(frozen=True, slots=True)
class DatastoreInfo:
    native_id: str
    name: str
    kind: str = ""
    capacity_bytes: int = 0
    free_bytes: int = 0
    host_native_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NetworkInfo:
    native_id: str
    name: str
    kind: NetworkKind
    vlan_id: int | None = None
    host_native_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DiskInfo:
    """A virtual disk; `key` is stable within its VM (vSphere device key, libvirt target)."""

    key: str
    size_bytes: int
    label: str = ""
    datastore_native_id: str | None = None
    path: str = ""
    format: str = ""


@dataclass(frozen=True, slots=True)
class NicInfo:
    """A virtual NIC; `order` is its position among the VM's NICs, starting at 0."""

    key: str
    mac: str
    order: int
    network_native_id: str | None = None
    network_name: str = ""
    model: str = ""


@dataclass(frozen=True, slots=True)
class VMInfo:
    native_id: str
    name: str
    power_state: PowerState
    cpu_count: int = 0
    memory_mib: int = 0
    guest_os: str = ""
    host_native_id: str | None = None
    is_template: bool = False
    instance_uuid: str = ""
    annotation: str = ""
    disks: tuple[DiskInfo, ...] = ()
    nics: tuple[NicInfo, ...] = ()
    # Where the VM sits in the pool's own inventory tree: a vSphere VM folder's path
    # ("/DC0/vm/web"); empty where the pool has no folders.
    folder: str = ""


InventoryObject = ClusterInfo | HostInfo | DatastoreInfo | NetworkInfo | VMInfo


@dataclass(slots=True)
class InventorySnapshot:
    """Everything one provider holds, read at (approximately) one moment."""

    clusters: list[ClusterInfo] = field(default_factory=list)
    hosts: list[HostInfo] = field(default_factory=list)
    datastores: list[DatastoreInfo] = field(default_factory=list)
    networks: list[NetworkInfo] = field(default_factory=list)
    vms: list[VMInfo] = field(default_factory=list)

    def extend(self, other: InventorySnapshot) -> None:
        """Append another chunk of the same pool's inventory."""
        self.clusters += other.clusters
        self.hosts += other.hosts
        self.datastores += other.datastores
        self.networks += other.networks
        self.vms += other.vms


@dataclass(frozen=True, slots=True)
class ObjectUpserted:
    """An object appeared or was re-read in full."""

    kind: ObjectKind
    obj: InventoryObject


@dataclass(frozen=True, slots=True)
class ObjectUpdated:
    """Some fields of a known object changed.

    `fields` uses the attribute names of the matching *Info dataclass (for a VM:
    "name", "power_state", "disks", ...); list-valued fields are replaced whole.
    """

    kind: ObjectKind
    native_id: str
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ObjectRemoved:
    kind: ObjectKind
    native_id: str


InventoryChange = ObjectUpserted | ObjectUpdated | ObjectRemoved
