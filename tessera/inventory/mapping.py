"""Domain objects → database row values. The one place these conversions live."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tessera.db.rows import (
    ClusterRow,
    DatastoreRow,
    HostRow,
    NetworkRow,
    VMRow,
)
from tessera.domain.inventory import (
    ClusterInfo,
    DatastoreInfo,
    DiskInfo,
    HostInfo,
    InventoryObject,
    NetworkInfo,
    NicInfo,
    ObjectKind,
    VMInfo,
)

ROW_CLASS: dict[ObjectKind, type[Any]] = {
    ObjectKind.CLUSTER: ClusterRow,
    ObjectKind.HOST: HostRow,
    ObjectKind.DATASTORE: DatastoreRow,
    ObjectKind.NETWORK: NetworkRow,
    ObjectKind.VM: VMRow,
}

KIND_OF: dict[type[Any], ObjectKind] = {
    ClusterInfo: ObjectKind.CLUSTER,
    HostInfo: ObjectKind.HOST,
    DatastoreInfo: ObjectKind.DATASTORE,
    NetworkInfo: ObjectKind.NETWORK,
    VMInfo: ObjectKind.VM,
}


def fingerprint(obj: InventoryObject) -> str:
    """A digest of everything the provider said about `obj`: equal means unchanged."""
    return hashlib.blake2b(repr(obj).encode(), digest_size=16).hexdigest()


@dataclass
class IdMaps:
    """native id → Tessera id, per kind, for one provider; resolves references between rows."""

    by_kind: dict[ObjectKind, dict[str, str]] = field(default_factory=dict)

    def get(self, kind: ObjectKind, native_id: str | None) -> str | None:
        if native_id is None:
            return None
        return self.by_kind.get(kind, {}).get(native_id)


def row_values(obj: InventoryObject, maps: IdMaps, now: datetime) -> dict[str, Any]:
    """Column values for the row of `obj` (without id, provider_id, fingerprint); `now`
    stamps changed VMs, one value per sync."""
    match obj:
        case ClusterInfo():
            return {"native_id": obj.native_id, "name": obj.name, "datacenter": obj.datacenter}
        case HostInfo():
            return {
                "native_id": obj.native_id,
                "name": obj.name,
                "cluster_id": maps.get(ObjectKind.CLUSTER, obj.cluster_native_id),
                "cpu_cores": obj.cpu_cores,
                "cpu_mhz": obj.cpu_mhz,
                "memory_mib": obj.memory_mib,
                "in_maintenance": obj.in_maintenance,
                "connected": obj.connected,
                "hypervisor": obj.hypervisor,
            }
        case DatastoreInfo():
            return {
                "native_id": obj.native_id,
                "name": obj.name,
                "kind": obj.kind,
                "capacity_bytes": obj.capacity_bytes,
                "free_bytes": obj.free_bytes,
            }
        case NetworkInfo():
            return {
                "native_id": obj.native_id,
                "name": obj.name,
                "kind": obj.kind.value,
                "vlan_id": obj.vlan_id,
            }
        case VMInfo():
            return {
                "native_id": obj.native_id,
                "name": obj.name,
                "power_state": obj.power_state.value,
                "cpu_count": obj.cpu_count,
                "memory_mib": obj.memory_mib,
                "guest_os": obj.guest_os,
                "host_id": maps.get(ObjectKind.HOST, obj.host_native_id),
                "is_template": obj.is_template,
                "instance_uuid": obj.instance_uuid,
                "annotation": obj.annotation,
                "folder": obj.folder,
                "updated_at": now,
            }
    raise TypeError(f"not an inventory object: {type(obj).__name__}")


def disk_rows(vm_id: str, disks: Iterable[DiskInfo], maps: IdMaps) -> list[dict[str, Any]]:
    return [
        {
            "vm_id": vm_id,
            "position": position,
            "key": disk.key,
            "label": disk.label,
            "size_bytes": disk.size_bytes,
            "datastore_id": maps.get(ObjectKind.DATASTORE, disk.datastore_native_id),
            "path": disk.path,
            "format": disk.format,
        }
        for position, disk in enumerate(disks)
    ]


def nic_rows(vm_id: str, nics: Iterable[NicInfo], maps: IdMaps) -> list[dict[str, Any]]:
    return [
        {
            "vm_id": vm_id,
            "position": nic.order,
            "key": nic.key,
            "mac": nic.mac.lower(),
            "network_id": maps.get(ObjectKind.NETWORK, nic.network_native_id),
            "network_name": nic.network_name,
            "model": nic.model,
        }
        for nic in nics
    ]


# Partial updates: a field of a domain object → the row columns it sets.
_REFERENCE_FIELDS: dict[str, tuple[str, ObjectKind]] = {
    "host_native_id": ("host_id", ObjectKind.HOST),
    "cluster_native_id": ("cluster_id", ObjectKind.CLUSTER),
}
_CHILD_FIELDS = frozenset({"disks", "nics", "host_native_ids"})


def partial_row_values(fields: Mapping[str, Any], maps: IdMaps) -> dict[str, Any]:
    """Row columns for the scalar fields of a partial update; child lists are handled apart."""
    values: dict[str, Any] = {}
    for name, value in fields.items():
        if name in _CHILD_FIELDS:
            continue
        if name in _REFERENCE_FIELDS:
            column, kind = _REFERENCE_FIELDS[name]
            values[column] = maps.get(kind, value)
        else:
            values[name] = value
    return values
