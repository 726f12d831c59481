"""What we read from vCenter and how its XML becomes Tessera's domain objects.

Only the properties the domain dataclasses need are requested (PROPERTIES). Values are
decoded straight from lxml elements by per-property decoders. Bulk pages of VMs are read
without lxml by scan.py when they have vCenter's usual shape; these decoders are the
reference it must agree with.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from tessera.domain.inventory import (
    ClusterInfo,
    DatastoreInfo,
    DiskInfo,
    HostInfo,
    InventoryObject,
    NetworkInfo,
    NetworkKind,
    NicInfo,
    ObjectKind,
    PowerState,
    VMInfo,
)
from tessera.providers.vsphere.soap import VIM, XSI_TYPE

Element = etree._Element
# One ObjectContent decoded: (vSphere type, moid, {property path: value}).
ObjectProps = tuple[str, str, dict[str, Any]]

VM_PROPERTIES = (
    "name",
    "runtime.powerState",
    "runtime.host",
    "config.hardware.numCPU",
    "config.hardware.memoryMB",
    "config.hardware.device",
    "config.guestFullName",
    "config.guestId",
    "config.template",
    "config.instanceUuid",
    "config.annotation",
    "parent",
)

INFRA_PROPERTIES: dict[str, tuple[str, ...]] = {
    "Folder": ("name", "parent"),
    "Datacenter": ("name", "parent"),
    "ClusterComputeResource": ("name", "parent"),
    "HostSystem": (
        "name",
        "parent",
        "summary.hardware.numCpuCores",
        "summary.hardware.cpuMhz",
        "summary.hardware.memorySize",
        "summary.config.product.fullName",
        "runtime.inMaintenanceMode",
        "runtime.connectionState",
        "config.network.portgroup",
    ),
    "Datastore": ("name", "summary.type", "summary.capacity", "summary.freeSpace", "host"),
    # Network's properties also apply to its subtypes; DVS portgroups add their own.
    "Network": ("name", "host"),
    "DistributedVirtualPortgroup": ("key", "config.defaultPortConfig"),
    "OpaqueNetwork": (),
}

ALL_PROPERTIES: dict[str, tuple[str, ...]] = {**INFRA_PROPERTIES, "VirtualMachine": VM_PROPERTIES}
NETWORK_TYPES = {
    "Network": NetworkKind.STANDARD_PORTGROUP,
    "DistributedVirtualPortgroup": NetworkKind.DVS_PORTGROUP,
    "OpaqueNetwork": NetworkKind.OPAQUE,
}

_POWER = {
    "poweredOn": PowerState.RUNNING,
    "poweredOff": PowerState.STOPPED,
    "suspended": PowerState.SUSPENDED,
}
NIC_MODELS = {
    "VirtualE1000": "e1000",
    "VirtualE1000e": "e1000e",
    "VirtualPCNet32": "pcnet32",
    "VirtualVmxnet": "vmxnet",
    "VirtualVmxnet2": "vmxnet2",
    "VirtualVmxnet3": "vmxnet3",
    "VirtualVmxnet3Vrdma": "vmxnet3vrdma",
    "VirtualSriovEthernetCard": "sriov",
}
DISK_FORMATS = {
    "VirtualDiskFlatVer2BackingInfo": "flat",
    "VirtualDiskFlatVer1BackingInfo": "flat",
    "VirtualDiskSparseVer2BackingInfo": "sparse",
    "VirtualDiskSparseVer1BackingInfo": "sparse",
    "VirtualDiskSeSparseBackingInfo": "sesparse",
    "VirtualDiskRawDiskMappingVer1BackingInfo": "rdm",
    "VirtualDiskRawDiskVer2BackingInfo": "raw",
}

_KEY = VIM + "key"
_DEVICE_INFO = VIM + "deviceInfo"
_LABEL = VIM + "label"
_BACKING = VIM + "backing"
_FILE_NAME = VIM + "fileName"
_DATASTORE = VIM + "datastore"
_THIN = VIM + "thinProvisioned"
_CAPACITY_BYTES = VIM + "capacityInBytes"
_CAPACITY_KB = VIM + "capacityInKB"
_MAC = VIM + "macAddress"
_NETWORK = VIM + "network"
_DEVICE_NAME = VIM + "deviceName"
_PORT = VIM + "port"
_PORTGROUP_KEY = VIM + "portgroupKey"
_OPAQUE_ID = VIM + "opaqueNetworkId"
_VLAN = VIM + "vlan"
_VLAN_ID = VIM + "vlanId"
_SPEC = VIM + "spec"
_NAME = VIM + "name"
_OBJ = VIM + "obj"
_PROP_SET = VIM + "propSet"
_CHANGE_SET = VIM + "changeSet"
_VAL = VIM + "val"
_OP = VIM + "op"
_RETURNVAL = VIM + "returnval"
_OBJECTS = VIM + "objects"


def _xsi(el: Element) -> str:
    kind = el.get(XSI_TYPE) or ""
    return kind.rpartition(":")[2] if ":" in kind else kind


@dataclass(frozen=True, slots=True)
class RawNic:
    """A NIC before its network is resolved (DVS NICs name a portgroup key)."""

    key: str
    mac: str
    order: int
    model: str
    network_ref: str | None
    portgroup_key: str | None
    device_name: str


def _disk(d: Element) -> DiskInfo:
    key = label = path = fmt = ""
    datastore: str | None = None
    size = 0
    size_kb = 0
    for c in d:
        tag = c.tag
        if tag == _KEY:
            key = c.text or ""
        elif tag == _DEVICE_INFO:
            label = c.findtext(_LABEL) or ""
        elif tag == _BACKING:
            path = c.findtext(_FILE_NAME) or ""
            datastore = c.findtext(_DATASTORE)
            fmt = DISK_FORMATS.get(_xsi(c), "")
            if fmt == "flat":
                fmt = "thin" if c.findtext(_THIN) == "true" else "thick"
        elif tag == _CAPACITY_BYTES:
            size = int(c.text or 0)
        elif tag == _CAPACITY_KB:
            size_kb = int(c.text or 0)
    return DiskInfo(
        key=key,
        size_bytes=size or size_kb * 1024,
        label=label,
        datastore_native_id=datastore,
        path=path,
        format=fmt,
    )


def _nic(d: Element, model: str, order: int) -> RawNic:
    key = mac = device_name = ""
    network: str | None = None
    portgroup: str | None = None
    for c in d:
        tag = c.tag
        if tag == _KEY:
            key = c.text or ""
        elif tag == _MAC:
            mac = c.text or ""
        elif tag == _BACKING:
            network = c.findtext(_NETWORK)
            device_name = c.findtext(_DEVICE_NAME) or ""
            port = c.find(_PORT)
            if port is not None:
                portgroup = port.findtext(_PORTGROUP_KEY)
            elif network is None:
                network = c.findtext(_OPAQUE_ID)
    return RawNic(key, mac, order, model, network, portgroup, device_name)


def _devices(val: Element) -> tuple[tuple[DiskInfo, ...], tuple[RawNic, ...]]:
    disks: list[DiskInfo] = []
    nics: list[RawNic] = []
    for d in val:
        kind = _xsi(d)
        if kind == "VirtualDisk":
            disks.append(_disk(d))
        else:
            model = NIC_MODELS.get(kind)
            if model is not None:
                nics.append(_nic(d, model, len(nics)))
    return tuple(disks), tuple(nics)


def _text(val: Element) -> str:
    return val.text or ""


def _int(val: Element) -> int:
    return int(val.text or 0)


def _bool(val: Element) -> bool:
    return val.text == "true"


def _moref(val: Element) -> tuple[str, str]:
    return (val.get("type") or "", val.text or "")


def _morefs(val: Element) -> tuple[str, ...]:
    return tuple(c.text or "" for c in val)


def _mount_hosts(val: Element) -> tuple[str, ...]:
    return tuple(m.findtext(_KEY) or "" for m in val)


def _dvs_vlan(val: Element) -> int | None:
    vlan = val.find(_VLAN)
    if vlan is None or _xsi(vlan) != "VmwareDistributedVirtualSwitchVlanIdSpec":
        return None
    return int(vlan.findtext(_VLAN_ID) or 0)


def _host_portgroups(val: Element) -> tuple[tuple[str, int], ...]:
    out = []
    for pg in val:
        spec = pg.find(_SPEC)
        if spec is not None:
            out.append((spec.findtext(_NAME) or "", int(spec.findtext(_VLAN_ID) or 0)))
    return tuple(out)


DECODERS: dict[str, Callable[[Element], Any]] = {
    "name": _text,
    "parent": _moref,
    "runtime.powerState": _text,
    "runtime.host": _text,
    "config.hardware.numCPU": _int,
    "config.hardware.memoryMB": _int,
    "config.hardware.device": _devices,
    "config.guestFullName": _text,
    "config.guestId": _text,
    "config.template": _bool,
    "config.instanceUuid": _text,
    "config.annotation": _text,
    "summary.hardware.numCpuCores": _int,
    "summary.hardware.cpuMhz": _int,
    "summary.hardware.memorySize": _int,
    "summary.config.product.fullName": _text,
    "runtime.inMaintenanceMode": _bool,
    "runtime.connectionState": _text,
    "config.network.portgroup": _host_portgroups,
    "summary.type": _text,
    "summary.capacity": _int,
    "summary.freeSpace": _int,
    "host": _morefs,
    "key": _text,
    "config.defaultPortConfig": _dvs_vlan,
}
# Datastore.host is an array of mounts, Network.host an array of morefs.
_DATASTORE_DECODERS = {**DECODERS, "host": _mount_hosts}


def decode_object(el: Element, kind: str) -> dict[str, Any]:
    """The propSet of one ObjectContent as {path: decoded value}."""
    decoders = _DATASTORE_DECODERS if kind == "Datastore" else DECODERS
    props: dict[str, Any] = {}
    for ps in el.iterchildren(_PROP_SET):
        name = ps[0].text or ""
        props[name] = decoders[name](ps[1])
    return props


def decode_changes(el: Element, kind: str) -> dict[str, Any]:
    """The changeSet of one ObjectUpdate; removed or unset values decode to None."""
    decoders = _DATASTORE_DECODERS if kind == "Datastore" else DECODERS
    props: dict[str, Any] = {}
    for ch in el.iterchildren(_CHANGE_SET):
        name = ch.findtext(_NAME) or ""
        val = ch.find(_VAL)
        op = ch.findtext(_OP)
        props[name] = (
            None if val is None or op in ("remove", "indirectRemove") else (decoders[name](val))
        )
    return props


def decode_page(page: bytes) -> list[ObjectProps]:
    """Every ObjectContent of a RetrievePropertiesEx answer."""
    returnval = etree.fromstring(page)[0][0].find(_RETURNVAL)
    if returnval is None:
        return []
    out: list[ObjectProps] = []
    for el in returnval.iterchildren(_OBJECTS):
        kind, moid = obj_of(el)
        out.append((kind, moid, decode_object(el, kind)))
    return out


def obj_of(el: Element) -> tuple[str, str]:
    """(type, value) of an ObjectContent's or ObjectUpdate's `obj`."""
    obj = el.find(_OBJ)
    if obj is None:
        return ("", "")
    return (obj.get("type") or "", obj.text or "")


@dataclass(slots=True)
class Resolver:
    """Cross-object facts needed to translate one object: network names, DVS portgroup
    keys, folder parents for a cluster's datacenter and a VM's folder path, standard
    portgroup VLANs."""

    network_names: dict[str, str] = field(default_factory=dict)
    portgroup_keys: dict[str, str] = field(default_factory=dict)
    parents: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    standard_vlans: dict[str, int] = field(default_factory=dict)

    def learn(self, kind: str, moid: str, props: dict[str, Any]) -> None:
        if kind in ("Folder", "Datacenter") and ("parent" in props or "name" in props):
            # A change set may carry only one of them (a folder renamed or moved).
            _, name, parent = self.parents.get(moid, (kind, "", ""))
            if "name" in props:
                name = props["name"] or ""
            if "parent" in props:
                parent = (props["parent"] or ("", ""))[1]
            self.parents[moid] = (kind, name, parent)
        elif kind in NETWORK_TYPES and "name" in props:
            self.network_names[moid] = props["name"] or ""
        if kind == "DistributedVirtualPortgroup" and props.get("key"):
            self.portgroup_keys[props["key"]] = moid
        if kind == "HostSystem":
            for name, vlan in props.get("config.network.portgroup") or ():
                self.standard_vlans.setdefault(name, vlan)

    def datacenter_of(self, parent: str) -> str | None:
        seen = 0
        while parent in self.parents and seen < 64:
            kind, name, parent_of = self.parents[parent]
            if kind == "Datacenter":
                return name
            parent, seen = parent_of, seen + 1
        return None

    def folder_path(self, parent: tuple[str, str] | None) -> str:
        """A VM's folder as its inventory path, "/DC0/vm/web": the folder names up to
        and with its datacenter. Empty when the parent is no folder known here (a vApp)."""
        kind, moid = parent or ("", "")
        if kind != "Folder" or moid not in self.parents:
            return ""
        names: list[str] = []
        while moid in self.parents and len(names) < 64:
            kind, name, moid = self.parents[moid]
            names.append(name)
            if kind == "Datacenter":
                return "/" + "/".join(reversed(names))
        return ""

    def nics(self, raw: Iterable[RawNic]) -> tuple[NicInfo, ...]:
        out = []
        for n in raw:
            network = n.network_ref
            if n.portgroup_key is not None:
                network = self.portgroup_keys.get(n.portgroup_key, n.portgroup_key)
            name = self.network_names.get(network or "", n.device_name)
            out.append(NicInfo(n.key, n.mac, n.order, network, name, n.model))
        return tuple(out)


def vm_fields(props: dict[str, Any], resolver: Resolver) -> dict[str, Any]:
    """VMInfo fields present in `props` (a full object or a change set)."""
    f: dict[str, Any] = {}
    for path, value in props.items():
        if path == "name":
            f["name"] = value or ""
        elif path == "runtime.powerState":
            f["power_state"] = _POWER.get(value or "", PowerState.UNKNOWN)
        elif path == "config.hardware.numCPU":
            f["cpu_count"] = value or 0
        elif path == "config.hardware.memoryMB":
            f["memory_mib"] = value or 0
        elif path == "runtime.host":
            f["host_native_id"] = value
        elif path == "config.template":
            f["is_template"] = bool(value)
        elif path == "config.instanceUuid":
            f["instance_uuid"] = value or ""
        elif path == "config.annotation":
            f["annotation"] = value or ""
        elif path == "config.hardware.device":
            disks, nics = value or ((), ())
            f["disks"] = disks
            f["nics"] = resolver.nics(nics)
        elif path == "parent":
            f["folder"] = resolver.folder_path(value)
    guest = props.get("config.guestFullName") or props.get("config.guestId")
    if "config.guestFullName" in props or "config.guestId" in props:
        f["guest_os"] = guest or ""
    return f


def build_vm(moid: str, props: dict[str, Any], resolver: Resolver) -> VMInfo:
    """A VMInfo from a full property set; the bulk path, so no generic field mapping."""
    get = props.get
    disks, nics = get("config.hardware.device") or ((), ())
    return VMInfo(
        native_id=moid,
        name=get("name") or "",
        power_state=_POWER.get(get("runtime.powerState") or "", PowerState.UNKNOWN),
        cpu_count=get("config.hardware.numCPU") or 0,
        memory_mib=get("config.hardware.memoryMB") or 0,
        guest_os=get("config.guestFullName") or get("config.guestId") or "",
        host_native_id=get("runtime.host"),
        is_template=bool(get("config.template")),
        instance_uuid=get("config.instanceUuid") or "",
        annotation=get("config.annotation") or "",
        disks=disks,
        nics=resolver.nics(nics),
        folder=resolver.folder_path(get("parent")),
    )


def host_fields(props: dict[str, Any]) -> dict[str, Any]:
    f: dict[str, Any] = {}
    for path, value in props.items():
        if path == "name":
            f["name"] = value or ""
        elif path == "parent":
            kind, moid = value or ("", "")
            f["cluster_native_id"] = moid if kind == "ClusterComputeResource" else None
        elif path == "summary.hardware.numCpuCores":
            f["cpu_cores"] = value or 0
        elif path == "summary.hardware.cpuMhz":
            f["cpu_mhz"] = value or 0
        elif path == "summary.hardware.memorySize":
            f["memory_mib"] = (value or 0) // (1024 * 1024)
        elif path == "summary.config.product.fullName":
            f["hypervisor"] = value or ""
        elif path == "runtime.inMaintenanceMode":
            f["in_maintenance"] = bool(value)
        elif path == "runtime.connectionState":
            f["connected"] = value == "connected"
    return f


def datastore_fields(props: dict[str, Any]) -> dict[str, Any]:
    f: dict[str, Any] = {}
    for path, value in props.items():
        if path == "name":
            f["name"] = value or ""
        elif path == "summary.type":
            f["kind"] = value or ""
        elif path == "summary.capacity":
            f["capacity_bytes"] = value or 0
        elif path == "summary.freeSpace":
            f["free_bytes"] = value or 0
        elif path == "host":
            f["host_native_ids"] = value or ()
    return f


def network_fields(kind: str, props: dict[str, Any], resolver: Resolver) -> dict[str, Any]:
    f: dict[str, Any] = {}
    for path, value in props.items():
        if path == "name":
            f["name"] = value or ""
            if kind == "Network":
                f["vlan_id"] = resolver.standard_vlans.get(value or "")
        elif path == "host":
            f["host_native_ids"] = value or ()
        elif path == "config.defaultPortConfig":
            f["vlan_id"] = value
    return f


def cluster_fields(props: dict[str, Any], resolver: Resolver) -> dict[str, Any]:
    f: dict[str, Any] = {}
    if "name" in props:
        f["name"] = props["name"] or ""
    if "parent" in props:
        f["datacenter"] = resolver.datacenter_of((props["parent"] or ("", ""))[1])
    return f


OBJECT_KINDS = {
    "VirtualMachine": ObjectKind.VM,
    "HostSystem": ObjectKind.HOST,
    "ClusterComputeResource": ObjectKind.CLUSTER,
    "Datastore": ObjectKind.DATASTORE,
    **{t: ObjectKind.NETWORK for t in NETWORK_TYPES},
}


def fields_of(kind: str, props: dict[str, Any], resolver: Resolver) -> dict[str, Any]:
    """Domain fields for a vSphere type; empty for types we only read for context."""
    if kind == "VirtualMachine":
        return vm_fields(props, resolver)
    if kind == "HostSystem":
        return host_fields(props)
    if kind == "Datastore":
        return datastore_fields(props)
    if kind == "ClusterComputeResource":
        return cluster_fields(props, resolver)
    if kind in NETWORK_TYPES:
        return network_fields(kind, props, resolver)
    return {}


def build(kind: str, moid: str, props: dict[str, Any], resolver: Resolver) -> InventoryObject:
    """A whole domain object from a full property set."""
    if kind == "VirtualMachine":
        return build_vm(moid, props, resolver)
    f = fields_of(kind, props, resolver)
    f.setdefault("name", "")
    if kind == "HostSystem":
        return HostInfo(native_id=moid, **f)
    if kind == "Datastore":
        return DatastoreInfo(native_id=moid, **f)
    if kind == "ClusterComputeResource":
        return ClusterInfo(native_id=moid, **f)
    return NetworkInfo(native_id=moid, kind=NETWORK_TYPES[kind], **f)
