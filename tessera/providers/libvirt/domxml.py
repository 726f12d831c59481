"""Reading libvirt XML documents (domain, network, pool, capabilities) with lxml.

Pure functions over one document each, so the driver parses every domain exactly once
and the parsing is testable without a daemon.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lxml import etree

from tessera.domain.operations import BridgeTarget

LIBOSINFO_NS = "http://libosinfo.org/xmlns/libvirt/domain/1.0"
# Our own <metadata> namespace: the op key of the call that created the domain.
TESSERA_NS = "https://tessera.dev/xmlns/libvirt/domain/1"

_UNIT_BYTES: dict[str, int] = {
    "b": 1,
    "bytes": 1,
    "kb": 1000,
    "k": 1024,
    "kib": 1024,
    "mb": 1000**2,
    "m": 1024**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "g": 1024**3,
    "gib": 1024**3,
    "tb": 1000**4,
    "t": 1024**4,
    "tib": 1024**4,
}
_DISK_DEVICES = frozenset({"disk", "lun"})


@dataclass(frozen=True, slots=True)
class DiskDoc:
    """A disk as the domain XML states it; size and pool are resolved by the driver."""

    target: str
    bus: str
    path: str
    fmt: str
    pool: str = ""
    volume: str = ""
    alias: str = ""


@dataclass(frozen=True, slots=True)
class NicDoc:
    mac: str
    order: int
    source_kind: str
    source: str
    model: str
    alias: str = ""


@dataclass(frozen=True, slots=True)
class DomainDoc:
    name: str
    uuid: str
    cpu_count: int
    memory_mib: int
    guest_os: str
    annotation: str
    disks: tuple[DiskDoc, ...]
    nics: tuple[NicDoc, ...]
    op_key: str = ""


@dataclass(frozen=True, slots=True)
class NetworkDoc:
    name: str
    uuid: str
    bridge: str
    forward_mode: str
    vlan_id: int | None


def _root(xml: str) -> etree._Element:
    return etree.fromstring(xml.encode())


def _text(node: etree._Element, path: str) -> str:
    found = node.find(path)
    return (found.text or "").strip() if found is not None else ""


def _attr(node: etree._Element, path: str, name: str) -> str:
    found = node.find(path)
    return str(found.get(name, "")) if found is not None else ""


def to_bytes(value: str, unit: str | None) -> int:
    """libvirt's scaled integers (`<memory unit='KiB'>`); no unit means `default_unit`."""
    return int(value) * _UNIT_BYTES[(unit or "b").lower()]


def _memory_mib(node: etree._Element) -> int:
    mem = node.find("memory")
    if mem is None or not (mem.text or "").strip():
        return 0
    return to_bytes((mem.text or "").strip(), mem.get("unit", "KiB")) // 1024**2


def _cpu_count(node: etree._Element) -> int:
    vcpu = node.find("vcpu")
    if vcpu is None:
        return 0
    return int(vcpu.get("current") or (vcpu.text or "0").strip())


def _guest_os(node: etree._Element) -> str:
    osinfo = node.find(f"metadata/{{{LIBOSINFO_NS}}}libosinfo/{{{LIBOSINFO_NS}}}os")
    if osinfo is not None and osinfo.get("id"):
        return str(osinfo.get("id"))
    return _text(node, "os/type")


def _disk(disk: etree._Element) -> DiskDoc:
    source = disk.find("source")
    path = ""
    pool = volume = ""
    if source is not None:
        path = str(
            source.get("file") or source.get("dev") or source.get("dir") or source.get("name") or ""
        )
        pool = str(source.get("pool", ""))
        volume = str(source.get("volume", ""))
    return DiskDoc(
        target=_attr(disk, "target", "dev"),
        bus=_attr(disk, "target", "bus"),
        path=path,
        fmt=_attr(disk, "driver", "type"),
        pool=pool,
        volume=volume,
        alias=_attr(disk, "alias", "name"),
    )


def _nic(iface: etree._Element, order: int) -> NicDoc:
    kind = str(iface.get("type", ""))
    source = iface.find("source")
    name = ""
    if source is not None:
        name = str(source.get("network") or source.get("bridge") or source.get("dev") or "")
    return NicDoc(
        mac=_attr(iface, "mac", "address").lower(),
        order=order,
        source_kind=kind,
        source=name,
        model=_attr(iface, "model", "type"),
        alias=_attr(iface, "alias", "name"),
    )


def parse_domain(xml: str) -> DomainDoc:
    """What Tessera needs from a domain's XML (live XML for a running domain)."""
    root = _root(xml)
    devices = root.find("devices")
    disks: tuple[DiskDoc, ...] = ()
    nics: tuple[NicDoc, ...] = ()
    if devices is not None:
        disks = tuple(
            _disk(d) for d in devices.iterfind("disk") if d.get("device", "disk") in _DISK_DEVICES
        )
        nics = tuple(_nic(n, i) for i, n in enumerate(devices.iterfind("interface")))
    return DomainDoc(
        name=_text(root, "name"),
        uuid=_text(root, "uuid"),
        cpu_count=_cpu_count(root),
        memory_mib=_memory_mib(root),
        guest_os=_guest_os(root),
        annotation=_text(root, "description"),
        disks=disks,
        nics=nics,
        op_key=_attr(root, f"metadata/{{{TESSERA_NS}}}vm", "op"),
    )


def parse_network(xml: str) -> NetworkDoc:
    root = _root(xml)
    tag = _attr(root, "vlan/tag", "id")
    return NetworkDoc(
        name=_text(root, "name"),
        uuid=_text(root, "uuid"),
        bridge=_attr(root, "bridge", "name"),
        forward_mode=_attr(root, "forward", "mode"),
        vlan_id=int(tag) if tag else None,
    )


def pool_type(xml: str) -> str:
    """The pool's backend (`dir`, `logical`, `rbd`, ...)."""
    return str(_root(xml).get("type", ""))


def host_uuid(capabilities_xml: str) -> str:
    """The host UUID from `<capabilities><host><uuid>`; empty when the driver has none."""
    return _text(_root(capabilities_xml), "host/uuid")


# -- documents we write ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewDisk:
    pool: str
    volume: str
    target: str
    fmt: str = "qcow2"
    alias: str = ""


@dataclass(frozen=True, slots=True)
class NewNic:
    """On a libvirt network by name, or on a host bridge when `bridge` is given."""

    network: str
    mac: str | None = None
    alias: str = ""
    bridge: BridgeTarget | None = None


def _alias(parent: etree._Element, alias: str) -> None:
    if alias:
        etree.SubElement(parent, "alias", name=alias)


def disk_element(disk: NewDisk) -> etree._Element:
    el = etree.Element("disk", type="volume", device="disk")
    etree.SubElement(el, "driver", name="qemu", type=disk.fmt)
    etree.SubElement(el, "source", pool=disk.pool, volume=disk.volume)
    etree.SubElement(el, "target", dev=disk.target, bus="virtio")
    _alias(el, disk.alias)
    return el


def nic_element(nic: NewNic) -> etree._Element:
    """libvirt adds the tap of a bridge NIC to the bridge itself; on Open vSwitch it also
    records the port's id (iface-id) and tags the port (no <vlan> for untagged)."""
    el = etree.Element("interface", type="bridge" if nic.bridge else "network")
    if nic.mac:
        etree.SubElement(el, "mac", address=nic.mac)
    if nic.bridge is None:
        etree.SubElement(el, "source", network=nic.network)
    else:
        etree.SubElement(el, "source", bridge=nic.bridge.bridge)
        if nic.bridge.interface_id is not None:
            port = etree.SubElement(el, "virtualport", type="openvswitch")
            etree.SubElement(port, "parameters", interfaceid=nic.bridge.interface_id)
        if nic.bridge.vlan_id:
            etree.SubElement(etree.SubElement(el, "vlan"), "tag", id=str(nic.bridge.vlan_id))
    etree.SubElement(el, "model", type="virtio")
    _alias(el, nic.alias)
    return el


def interface_by_mac(domain_xml: str, mac: str) -> str | None:
    """The <interface> element with `mac`, as libvirt wants it back for a detach."""
    for iface in _root(domain_xml).iterfind("devices/interface"):
        if _attr(iface, "mac", "address").lower() == mac.lower():
            return to_xml(iface)
    return None


def to_xml(el: etree._Element) -> str:
    return etree.tostring(el, encoding="unicode")


def set_op_key(root: etree._Element, op_key: str) -> None:
    """Record `op_key` in the domain's <metadata>, replacing an earlier one."""
    metadata = root.find("metadata")
    if metadata is None:
        metadata = etree.SubElement(root, "metadata")
    for old in metadata.findall(f"{{{TESSERA_NS}}}vm"):
        metadata.remove(old)
    etree.SubElement(metadata, f"{{{TESSERA_NS}}}vm", nsmap={"tessera": TESSERA_NS}, op=op_key)


def new_domain_xml(
    *,
    name: str,
    uuid: str,
    op_key: str,
    cpu_count: int,
    memory_mib: int,
    disks: Sequence[NewDisk],
    nics: Sequence[NewNic],
    guest_os: str = "",
) -> str:
    """A TCG (`type='qemu'`) domain: KVM guests fail in the lab, and TCG runs anywhere.

    No <graphics> (libvirt rejects type='none'); a serial console is the console."""
    root = etree.Element("domain", type="qemu")
    etree.SubElement(root, "name").text = name
    etree.SubElement(root, "uuid").text = uuid
    set_op_key(root, op_key)
    if guest_os:
        metadata = root.find("metadata")
        assert metadata is not None  # set_op_key made it
        info = etree.SubElement(
            metadata, f"{{{LIBOSINFO_NS}}}libosinfo", nsmap={"libosinfo": LIBOSINFO_NS}
        )
        etree.SubElement(info, f"{{{LIBOSINFO_NS}}}os", id=guest_os)
    etree.SubElement(root, "memory", unit="MiB").text = str(memory_mib)
    etree.SubElement(root, "vcpu").text = str(cpu_count)
    os_el = etree.SubElement(root, "os")
    etree.SubElement(os_el, "type", arch="x86_64", machine="pc").text = "hvm"
    etree.SubElement(os_el, "boot", dev="hd")
    # ACPI carries both graceful shutdown and PCI hot-plug on the 'pc' machine.
    features = etree.SubElement(root, "features")
    etree.SubElement(features, "acpi")
    etree.SubElement(features, "apic")
    devices = etree.SubElement(root, "devices")
    devices.extend(disk_element(d) for d in disks)
    devices.extend(nic_element(n) for n in nics)
    etree.SubElement(devices, "serial", type="pty")
    etree.SubElement(devices, "console", type="pty")
    return to_xml(root)


def clone_domain_xml(
    inactive_xml: str, *, name: str, uuid: str, op_key: str, volumes: dict[str, tuple[str, str]]
) -> str:
    """The source's persistent definition under a new name and UUID, with libvirt picking
    new MACs, and each disk target in `volumes` pointed at its (pool, volume) copy."""
    root = _root(inactive_xml)
    for tag, text in (("name", name), ("uuid", uuid)):
        found = root.find(tag)
        if found is None:
            found = etree.SubElement(root, tag)
        found.text = text
    set_op_key(root, op_key)
    for mac in root.iterfind("devices/interface/mac"):
        mac.getparent().remove(mac)  # type: ignore[union-attr]
    for disk in root.iterfind("devices/disk"):
        target = _attr(disk, "target", "dev")
        if target in volumes:
            pool, volume = volumes[target]
            for source in disk.findall("source"):
                disk.remove(source)
            disk.set("type", "volume")
            disk.insert(1, etree.Element("source", pool=pool, volume=volume))
    return to_xml(root)


def snapshot_xml(name: str, description: str) -> str:
    root = etree.Element("domainsnapshot")
    etree.SubElement(root, "name").text = name
    if description:
        etree.SubElement(root, "description").text = description
    return to_xml(root)


@dataclass(frozen=True, slots=True)
class SnapshotDoc:
    name: str
    description: str
    created_epoch: int
    parent: str


def parse_snapshot(xml: str) -> SnapshotDoc:
    root = _root(xml)
    created = _text(root, "creationTime")
    return SnapshotDoc(
        name=_text(root, "name"),
        description=_text(root, "description"),
        created_epoch=int(created) if created else 0,
        parent=_text(root, "parent/name"),
    )


def volume_format(xml: str) -> str:
    """A storage volume's format (`qcow2`, `raw`, ...)."""
    return _attr(_root(xml), "target/format", "type")


def volume_xml(name: str, capacity_bytes: int, fmt: str = "qcow2") -> str:
    root = etree.Element("volume")
    etree.SubElement(root, "name").text = name
    etree.SubElement(root, "capacity", unit="bytes").text = str(capacity_bytes)
    etree.SubElement(etree.SubElement(root, "target"), "format", type=fmt)
    return to_xml(root)
