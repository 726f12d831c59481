"""What a migration needs from a libvirt target that the VM verbs do not offer: empty
volumes to convert into, and a domain defined with the source's exact hardware (its
MACs in its NIC order, its firmware, its disks in order, a serial log file).

Every call is safe to repeat: volumes are found by name, the domain by the UUID its
op_key gives (as create_vm), and removals succeed on what is already gone.
"""

from __future__ import annotations

import libvirt
from lxml import etree

from tessera.migration.model import TargetDomain, TargetPool
from tessera.providers.faults import ProviderConflict
from tessera.providers.libvirt import domxml
from tessera.providers.libvirt.driver import LibvirtProvider
from tessera.providers.libvirt.vmops import op_uuid


def target_pool(provider: LibvirtProvider, pool_id: str) -> TargetPool:
    conn = provider._live()
    pool = provider._pool(conn, pool_id)
    with provider._errors(f"read storage pool {pool_id}"):
        pool.refresh(0)
        path = etree.fromstring(pool.XMLDesc(0).encode()).findtext("target/path") or ""
        return TargetPool(pool_id, pool.name(), path, int(pool.info()[3]))


def network_names(provider: LibvirtProvider) -> dict[str, str]:
    """Network UUID -> name."""
    conn = provider._live()
    with provider._errors("list networks"):
        return {net.UUIDString(): net.name() for net in conn.listAllNetworks()}


def domain_named(provider: LibvirtProvider, name: str) -> str | None:
    """The UUID of the domain called `name`, if there is one (a name clash)."""
    conn = provider._live()
    try:
        return str(conn.lookupByName(name).UUIDString())
    except libvirt.libvirtError as err:
        if err.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return None
        raise


def fresh_volume(
    provider: LibvirtProvider, pool_id: str, name: str, capacity: int, fmt: str
) -> str:
    """An empty volume `name` of `capacity` bytes (one left by an interrupted attempt is
    deleted first: its content is unknown); its path."""
    conn = provider._live()
    pool = provider._pool(conn, pool_id)
    with provider._errors(f"create volume {name}"):
        drop_volume(provider, pool_id, name)
        vol = pool.createXML(domxml.volume_xml(name, capacity, fmt), 0)
        return str(vol.path())


def drop_volume(provider: LibvirtProvider, pool_id: str, name: str) -> None:
    conn = provider._live()
    pool = provider._pool(conn, pool_id)
    with provider._errors(f"delete volume {name}"):
        try:
            pool.storageVolLookupByName(name).delete(0)
        except libvirt.libvirtError as err:
            if err.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_VOL:
                raise


def _domain_xml(spec: TargetDomain, uuid: str, op_key: str) -> str:
    root = etree.Element("domain", type="qemu")
    etree.SubElement(root, "name").text = spec.name
    etree.SubElement(root, "uuid").text = uuid
    if spec.description:
        etree.SubElement(root, "description").text = spec.description
    domxml.set_op_key(root, op_key)
    etree.SubElement(root, "memory", unit="MiB").text = str(spec.memory_mib)
    etree.SubElement(root, "vcpu").text = str(spec.cpu_count)
    os_el = etree.SubElement(root, "os")
    if spec.firmware == "efi":
        os_el.set("firmware", "efi")
    etree.SubElement(os_el, "type", arch="x86_64", machine="pc").text = "hvm"
    etree.SubElement(os_el, "boot", dev="hd")
    features = etree.SubElement(root, "features")
    etree.SubElement(features, "acpi")
    etree.SubElement(features, "apic")
    devices = etree.SubElement(root, "devices")
    for index, disk in enumerate(spec.disks):
        devices.append(
            domxml.disk_element(
                domxml.NewDisk(disk.pool, disk.volume, f"vd{chr(ord('a') + index)}", disk.fmt)
            )
        )
    for nic in spec.nics:
        devices.append(domxml.nic_element(domxml.NewNic(nic.network, nic.mac)))
    serial = etree.SubElement(devices, "serial", type="file")
    etree.SubElement(serial, "source", path=spec.serial_log)
    etree.SubElement(devices, "console", type="file").append(
        etree.Element("source", path=spec.serial_log)
    )
    return domxml.to_xml(root)


def define(provider: LibvirtProvider, spec: TargetDomain, *, op_key: str) -> str:
    """Define the domain (stopped); the one an earlier call with `op_key` defined is
    returned as it is. Its UUID."""
    conn = provider._live()
    existing = provider._by_op_key(conn, op_key)
    if existing is not None:
        return str(existing.UUIDString())
    if domain_named(provider, spec.name) is not None:
        raise ProviderConflict(f"a domain named {spec.name!r} already exists on the host")
    with provider._errors(f"define VM {spec.name}"):
        dom = conn.defineXML(_domain_xml(spec, op_uuid(op_key), op_key))
        return str(dom.UUIDString())


def state(provider: LibvirtProvider, uuid: str) -> str:
    """ "running", "stopped" or "gone"."""
    conn = provider._live()
    dom = provider._find(conn, uuid)
    if dom is None:
        return "gone"
    return "running" if dom.isActive() else "stopped"


def set_autostart(provider: LibvirtProvider, uuid: str) -> None:
    conn = provider._live()
    with provider._errors(f"set autostart of {uuid}"):
        conn.lookupByUUIDString(uuid).setAutostart(1)
