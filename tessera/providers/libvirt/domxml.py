"""Reading libvirt XML documents (domain, network, pool, capabilities) with lxml.

Pure functions over one document each, so the driver parses every domain exactly once
and the parsing is testable without a daemon.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

LIBOSINFO_NS = "http://libosinfo.org/xmlns/libvirt/domain/1.0"

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


@dataclass(frozen=True, slots=True)
class NicDoc:
    mac: str
    order: int
    source_kind: str
    source: str
    model: str


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
