"""VM operations of the libvirt provider (see base.py for the contract and op_key rules).

libvirt calls are synchronous, so each operation is done when its call returns. Keys
that make repeats safe live on the objects themselves: a created or cloned domain gets a
UUID derived from op_key plus the key in our <metadata>; an added NIC or disk gets a user
alias (`ua-tsr-...`) derived from op_key, and a disk's volume a name derived from it.

What this backend refuses, and why:
- templates: libvirt has none (a "template" is a stopped domain you clone).
- migration: a libvirt provider is one host, so there is no second host in its pool;
  moving a VM to another libvirtd is a move between pools, not a migrate_vm.
- suspend is managedsave, not virDomainSuspend: the guest's memory goes to disk and QEMU
  exits, like a vSphere suspend, so the state survives a daemon or host restart and
  frees the host's memory; start_vm restores it. (virDomainSuspend only pauses vCPUs.)
- resize changes the persistent definition; a running domain runs with its old size
  until its next power-on (guests without an OS cannot take hot-plugged CPUs/memory).
- removing a device from a running domain also asks QEMU to unplug it, which completes
  only when the guest OS cooperates; the definition changes at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
import uuid
from abc import abstractmethod
from collections.abc import Callable
from datetime import UTC, datetime

import libvirt

from tessera.domain.inventory import DiskInfo, NicInfo, VMInfo
from tessera.domain.operations import (
    ConsoleInfo,
    DiskSpec,
    NicSpec,
    Placement,
    SnapshotInfo,
    VMCreateSpec,
)
from tessera.providers.base import Provider
from tessera.providers.faults import (
    ProviderConflict,
    ProviderInvalidRequest,
    ProviderNotFound,
)
from tessera.providers.libvirt import domxml

_OP_NAMESPACE = uuid.UUID("6f3c2a4e-8d1b-5c7a-9e0f-1a2b3c4d5e6f")
_CONFIG = libvirt.VIR_DOMAIN_AFFECT_CONFIG
_LIVE = libvirt.VIR_DOMAIN_AFFECT_LIVE
_SHUTDOWN_POLL_S = 0.2
_NOT_FOUND = (libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT)


def _digest(op_key: str) -> str:
    return hashlib.sha256(op_key.encode()).hexdigest()


def op_uuid(op_key: str) -> str:
    """The UUID a domain created by `op_key` gets: finding it again is one lookup."""
    return str(uuid.uuid5(_OP_NAMESPACE, op_key))


def op_alias(op_key: str) -> str:
    """A libvirt user alias (QEMU wants `ua-` and [A-Za-z0-9_-]) naming the device an
    `op_key` added."""
    return f"ua-tsr-{_digest(op_key)[:16]}"


def _is_not_found(err: libvirt.libvirtError) -> bool:
    return err.get_error_code() in _NOT_FOUND


def _next_target(used: set[str]) -> str:
    for letter in "abcdefghijklmnopqrstuvwxyz":
        if f"vd{letter}" not in used:
            return f"vd{letter}"
    raise ProviderConflict("the VM has no free virtio disk slot (vda..vdz)")


class LibvirtVMOps(Provider):
    """The VM verbs; the driver class supplies the connection and the VM reader."""

    _host_id: str

    @abstractmethod
    def _live(self) -> libvirt.virConnect: ...

    @abstractmethod
    def _errors(self, what: str) -> contextlib.AbstractContextManager[None]: ...

    @abstractmethod
    def _read_vm(self, conn: libvirt.virConnect, dom: libvirt.virDomain) -> VMInfo: ...

    # -- helpers -------------------------------------------------------------------

    def _domain(self, conn: libvirt.virConnect, vm_id: str) -> libvirt.virDomain:
        with self._errors(f"look up VM {vm_id}"):
            return conn.lookupByUUIDString(vm_id)

    def _find(self, conn: libvirt.virConnect, vm_id: str) -> libvirt.virDomain | None:
        try:
            return conn.lookupByUUIDString(vm_id)
        except libvirt.libvirtError as err:
            if _is_not_found(err):
                return None
            raise

    def _by_op_key(self, conn: libvirt.virConnect, op_key: str) -> libvirt.virDomain | None:
        with self._errors("look for an earlier attempt"):
            dom = self._find(conn, op_uuid(op_key))
            if dom is None:
                return None
            doc = domxml.parse_domain(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        if doc.op_key != op_key:
            raise ProviderConflict(f"domain {doc.name} holds this op key's UUID but not the key")
        return dom

    @staticmethod
    def _config(dom: libvirt.virDomain) -> domxml.DomainDoc:
        return domxml.parse_domain(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))

    @staticmethod
    def _flags(dom: libvirt.virDomain) -> int:
        return int(_CONFIG | (_LIVE if dom.isActive() else 0))

    def _info(self, dom: libvirt.virDomain) -> VMInfo:
        conn = self._live()
        with self._errors("read VM"):
            return self._read_vm(conn, dom)

    def _check_device_edit(
        self, dom: libvirt.virDomain, operation: str, flag: str, hot_flag: str
    ) -> None:
        self.require(flag, operation)
        if dom.isActive():
            self.require(hot_flag, f"{operation} on a running VM")

    def _network_name(self, conn: libvirt.virConnect, network_id: str) -> str:
        with self._errors(f"look up network {network_id}"):
            return str(conn.networkLookupByUUIDString(network_id).name())

    def _new_nic(self, conn: libvirt.virConnect, nic: NicSpec, alias: str = "") -> domxml.NewNic:
        if nic.bridge is not None:
            return domxml.NewNic("", nic.mac, alias, nic.bridge)
        return domxml.NewNic(self._network_name(conn, nic.network_native_id), nic.mac, alias)

    def _pool(self, conn: libvirt.virConnect, pool_id: str) -> libvirt.virStoragePool:
        with self._errors(f"look up storage pool {pool_id}"):
            return conn.storagePoolLookupByUUIDString(pool_id)

    @staticmethod
    def _ensure_volume(pool: libvirt.virStoragePool, name: str, size: int) -> None:
        try:
            pool.storageVolLookupByName(name)
        except libvirt.libvirtError as err:
            if err.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_VOL:
                raise
            pool.createXML(domxml.volume_xml(name, size), 0)

    @staticmethod
    def _volume_of(conn: libvirt.virConnect, disk: domxml.DiskDoc) -> libvirt.virStorageVol | None:
        try:
            if disk.pool and disk.volume:
                return conn.storagePoolLookupByName(disk.pool).storageVolLookupByName(disk.volume)
            if disk.path:
                return conn.storageVolLookupByPath(disk.path)
        except libvirt.libvirtError as err:
            if err.get_error_code() not in (
                libvirt.VIR_ERR_NO_STORAGE_VOL,
                libvirt.VIR_ERR_NO_STORAGE_POOL,
            ):
                raise
        return None

    def _check_placement(self, placement: Placement | None) -> None:
        if placement is None:
            return
        if placement.host_native_id not in (None, self._host_id):
            raise ProviderInvalidRequest(
                f"host {placement.host_native_id} is not this libvirt host ({self._host_id})"
            )
        if placement.cluster_native_id is not None:
            raise ProviderInvalidRequest("libvirt hosts have no clusters")

    # -- create / delete -----------------------------------------------------------

    def get_vm(self, vm_id: str) -> VMInfo:
        conn = self._live()
        return self._info(self._domain(conn, vm_id))

    def create_vm(self, spec: VMCreateSpec, *, op_key: str) -> VMInfo:
        self.require("supports_vm_create", "create_vm")
        if spec.from_template_native_id is not None:
            self.require("supports_templates", "create_vm from a template")
        self._check_placement(spec.placement)
        conn = self._live()
        existing = self._by_op_key(conn, op_key)
        if existing is not None:
            return self._info(existing)
        digest = _digest(op_key)[:12]
        disks: list[domxml.NewDisk] = []
        with self._errors(f"create the disks of {spec.name}"):
            for index, disk in enumerate(spec.disks):
                pool_id = disk.datastore_native_id or spec.placement.datastore_native_id
                if pool_id is None:
                    raise ProviderInvalidRequest(f"disk {index} names no storage pool")
                pool = self._pool(conn, pool_id)
                # Empty volumes: one left by a crashed earlier attempt is as good as new.
                volume = f"tsr-{digest}-{index}.qcow2"
                self._ensure_volume(pool, volume, disk.size_bytes)
                disks.append(domxml.NewDisk(pool.name(), volume, f"vd{chr(ord('a') + index)}"))
        nics = [self._new_nic(conn, nic) for nic in spec.nics]
        xml = domxml.new_domain_xml(
            name=spec.name,
            uuid=op_uuid(op_key),
            op_key=op_key,
            cpu_count=spec.cpu_count,
            memory_mib=spec.memory_mib,
            disks=disks,
            nics=nics,
            guest_os=spec.guest_os,
        )
        with self._errors(f"define VM {spec.name}"):
            dom = conn.defineXML(xml)
        return self._info(dom)

    def delete_vm(self, vm_id: str, *, op_key: str) -> None:
        """Volumes go before the definition, so a repeat after a crash still knows them."""
        self.require("supports_vm_create", "delete_vm")
        conn = self._live()
        with self._errors(f"delete VM {vm_id}"):
            dom = self._find(conn, vm_id)
            if dom is None:
                return
            if dom.isActive():
                dom.destroy()
            for disk in self._config(dom).disks:
                vol = self._volume_of(conn, disk)
                if vol is not None:
                    vol.delete(0)
            dom.undefineFlags(
                libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
            )

    # -- power ---------------------------------------------------------------------

    def start_vm(self, vm_id: str, *, op_key: str) -> VMInfo:
        self.require("supports_power_ops", "start_vm")
        dom = self._domain(self._live(), vm_id)
        with self._errors(f"start VM {vm_id}"):
            state = dom.state()[0]
            if state == libvirt.VIR_DOMAIN_PAUSED:
                dom.resume()
            elif not dom.isActive():
                dom.create()  # restores a managedsave image when there is one
        return self._info(dom)

    def stop_vm(self, vm_id: str, *, op_key: str, graceful_timeout_s: float = 0.0) -> VMInfo:
        """ACPI shutdown first when asked; guests without an OS ignore it, hence destroy."""
        self.require("supports_power_ops", "stop_vm")
        dom = self._domain(self._live(), vm_id)
        with self._errors(f"stop VM {vm_id}"):
            if dom.isActive() and graceful_timeout_s > 0:
                dom.shutdown()
                deadline = time.monotonic() + graceful_timeout_s
                while dom.isActive() and time.monotonic() < deadline:
                    time.sleep(_SHUTDOWN_POLL_S)
            if dom.isActive():
                dom.destroy()
            if dom.hasManagedSaveImage(0):
                dom.managedSaveRemove(0)  # powering off a suspended VM drops its state
        return self._info(dom)

    def reboot_vm(self, vm_id: str, *, op_key: str) -> VMInfo:
        """A hard reset, like vSphere's ResetVM: needs no guest cooperation."""
        self.require("supports_power_ops", "reboot_vm")
        dom = self._domain(self._live(), vm_id)
        with self._errors(f"reboot VM {vm_id}"):
            if not dom.isActive():
                raise ProviderConflict(f"VM {vm_id} is not running; start it instead")
            dom.reset(0)
        return self._info(dom)

    def suspend_vm(self, vm_id: str, *, op_key: str) -> VMInfo:
        self.require("supports_suspend", "suspend_vm")
        dom = self._domain(self._live(), vm_id)
        with self._errors(f"suspend VM {vm_id}"):
            if not dom.isActive():
                if dom.hasManagedSaveImage(0):
                    return self._info(dom)
                raise ProviderConflict(f"VM {vm_id} is not running")
            dom.managedSave(0)
        return self._info(dom)

    # -- configuration -------------------------------------------------------------

    def rename_vm(
        self, vm_id: str, new_name: str, *, op_key: str, stop_if_running: bool = False
    ) -> VMInfo:
        """libvirt renames inactive domains only."""
        self.require("supports_rename", "rename_vm")
        dom = self._domain(self._live(), vm_id)
        with self._errors(f"rename VM {vm_id}"):
            if dom.name() == new_name:
                return self._info(dom)
            if dom.isActive():
                if not stop_if_running:
                    raise ProviderConflict(
                        f"VM {vm_id} is running and libvirt renames stopped VMs only; "
                        "stop it first or ask to stop it"
                    )
                self.stop_vm(vm_id, op_key=op_key)
            dom.rename(new_name, 0)
        return self._info(dom)

    def resize_vm(
        self,
        vm_id: str,
        *,
        op_key: str,
        cpu_count: int | None = None,
        memory_mib: int | None = None,
    ) -> VMInfo:
        self.require("supports_resize", "resize_vm")
        dom = self._domain(self._live(), vm_id)
        with self._errors(f"resize VM {vm_id}"):
            doc = self._config(dom)
            if cpu_count is not None and cpu_count != doc.cpu_count:
                _grow_or_shrink(
                    cpu_count > doc.cpu_count,
                    lambda: dom.setVcpusFlags(cpu_count, _CONFIG | libvirt.VIR_DOMAIN_VCPU_MAXIMUM),
                    lambda: dom.setVcpusFlags(cpu_count, _CONFIG),
                )
            if memory_mib is not None and memory_mib != doc.memory_mib:
                kib = memory_mib * 1024
                _grow_or_shrink(
                    memory_mib > doc.memory_mib,
                    lambda: dom.setMemoryFlags(kib, _CONFIG | libvirt.VIR_DOMAIN_MEM_MAXIMUM),
                    lambda: dom.setMemoryFlags(kib, _CONFIG),
                )
        return self._info(dom)

    def add_nic(self, vm_id: str, nic: NicSpec, *, op_key: str) -> NicInfo:
        conn = self._live()
        dom = self._domain(conn, vm_id)
        self._check_device_edit(dom, "add_nic", "supports_nic_edit", "supports_hot_add_nic")
        alias = op_alias(op_key)
        with self._errors(f"add a NIC to VM {vm_id}"):
            if not any(n.alias == alias for n in self._config(dom).nics):
                element = domxml.nic_element(self._new_nic(conn, nic, alias))
                dom.attachDeviceFlags(domxml.to_xml(element), self._flags(dom))
            mac = next(n.mac for n in self._config(dom).nics if n.alias == alias)
        return next(n for n in self._info(dom).nics if n.mac == mac)

    def remove_nic(self, vm_id: str, nic_key: str, *, op_key: str) -> None:
        conn = self._live()
        dom = self._domain(conn, vm_id)
        self._check_device_edit(dom, "remove_nic", "supports_nic_edit", "supports_hot_add_nic")
        with self._errors(f"remove NIC {nic_key} from VM {vm_id}"):
            xml = domxml.interface_by_mac(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), nic_key)
            if xml is not None:
                dom.detachDeviceFlags(xml, self._flags(dom))

    def add_disk(self, vm_id: str, disk: DiskSpec, *, op_key: str) -> DiskInfo:
        conn = self._live()
        dom = self._domain(conn, vm_id)
        self._check_device_edit(dom, "add_disk", "supports_disk_edit", "supports_hot_add_disk")
        alias = op_alias(op_key)
        with self._errors(f"add a disk to VM {vm_id}"):
            doc = self._config(dom)
            found = next((d for d in doc.disks if d.alias == alias), None)
            if found is None:
                pool = self._disk_pool(conn, doc, disk.datastore_native_id)
                volume = f"tsr-{_digest(op_key)[:12]}.qcow2"
                self._ensure_volume(pool, volume, disk.size_bytes)
                target = _next_target({d.target for d in doc.disks})
                element = domxml.disk_element(
                    domxml.NewDisk(pool.name(), volume, target, alias=alias)
                )
                dom.attachDeviceFlags(domxml.to_xml(element), self._flags(dom))
                found = next(d for d in self._config(dom).disks if d.alias == alias)
        return next(d for d in self._info(dom).disks if d.key == found.target)

    def _disk_pool(
        self, conn: libvirt.virConnect, doc: domxml.DomainDoc, pool_id: str | None
    ) -> libvirt.virStoragePool:
        if pool_id is not None:
            return self._pool(conn, pool_id)
        for existing in doc.disks:
            vol = self._volume_of(conn, existing)
            if vol is not None:
                return vol.storagePoolLookupByVolume()
        raise ProviderInvalidRequest("name a storage pool: the VM has no disk in one")

    def _disk(self, dom: libvirt.virDomain, disk_key: str) -> domxml.DiskDoc | None:
        return next((d for d in self._config(dom).disks if d.target == disk_key), None)

    def grow_disk(self, vm_id: str, disk_key: str, size_bytes: int, *, op_key: str) -> DiskInfo:
        conn = self._live()
        dom = self._domain(conn, vm_id)
        self._check_device_edit(dom, "grow_disk", "supports_disk_edit", "supports_hot_add_disk")
        with self._errors(f"grow disk {disk_key} of VM {vm_id}"):
            doc = self._disk(dom, disk_key)
            vol = self._volume_of(conn, doc) if doc is not None else None
            if doc is None or vol is None:
                raise ProviderNotFound(f"VM {vm_id} has no disk {disk_key} in a storage pool")
            current = int(vol.info()[1])
            if size_bytes < current:
                raise ProviderInvalidRequest(
                    f"disk {disk_key} is {current} bytes; shrinking to {size_bytes} is refused"
                )
            if size_bytes > current:
                if dom.isActive():
                    dom.blockResize(disk_key, size_bytes, libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES)
                else:
                    vol.resize(size_bytes, 0)
        return next(d for d in self._info(dom).disks if d.key == disk_key)

    def remove_disk(self, vm_id: str, disk_key: str, *, op_key: str) -> None:
        """The volume goes first: a repeat after a crash still finds the disk to detach."""
        conn = self._live()
        dom = self._domain(conn, vm_id)
        self._check_device_edit(dom, "remove_disk", "supports_disk_edit", "supports_hot_add_disk")
        with self._errors(f"remove disk {disk_key} from VM {vm_id}"):
            doc = self._disk(dom, disk_key)
            if doc is None:
                return
            vol = self._volume_of(conn, doc)
            if vol is not None:
                vol.delete(0)
            element = domxml.disk_element(domxml.NewDisk(doc.pool, doc.volume, doc.target))
            dom.detachDeviceFlags(domxml.to_xml(element), self._flags(dom))

    # -- snapshots -----------------------------------------------------------------

    def create_snapshot(
        self, vm_id: str, name: str, *, op_key: str, description: str = ""
    ) -> SnapshotInfo:
        """An internal qcow2 snapshot (with memory when running). Names are unique per
        domain in libvirt, so a repeat finds the snapshot by name."""
        self.require("supports_snapshots", "create_snapshot")
        dom = self._domain(self._live(), vm_id)
        with self._errors(f"snapshot VM {vm_id}"):
            try:
                snap = dom.snapshotLookupByName(name, 0)
            except libvirt.libvirtError as err:
                if not _is_not_found(err):
                    raise
                snap = dom.snapshotCreateXML(domxml.snapshot_xml(name, description), 0)
            return _snapshot_info(snap)

    def list_snapshots(self, vm_id: str) -> list[SnapshotInfo]:
        self.require("supports_snapshots", "list_snapshots")
        dom = self._domain(self._live(), vm_id)
        with self._errors(f"list snapshots of VM {vm_id}"):
            return [
                _snapshot_info(s)
                for s in dom.listAllSnapshots(libvirt.VIR_DOMAIN_SNAPSHOT_LIST_TOPOLOGICAL)
            ]

    def revert_snapshot(self, vm_id: str, snapshot_id: str, *, op_key: str) -> VMInfo:
        self.require("supports_snapshots", "revert_snapshot")
        dom = self._domain(self._live(), vm_id)
        with self._errors(f"revert VM {vm_id} to snapshot {snapshot_id}"):
            dom.revertToSnapshot(dom.snapshotLookupByName(snapshot_id, 0), 0)
        return self._info(dom)

    def delete_snapshot(self, vm_id: str, snapshot_id: str, *, op_key: str) -> None:
        self.require("supports_snapshots", "delete_snapshot")
        dom = self._domain(self._live(), vm_id)
        with self._errors(f"delete snapshot {snapshot_id} of VM {vm_id}"):
            try:
                snap = dom.snapshotLookupByName(snapshot_id, 0)
            except libvirt.libvirtError as err:
                if _is_not_found(err):
                    return
                raise
            snap.delete(0)

    # -- clone, console --------------------------------------------------------------

    def clone_vm(
        self, vm_id: str, name: str, *, op_key: str, placement: Placement | None = None
    ) -> VMInfo:
        """Volumes are copied (qemu-img, the source's format stated explicitly) before the
        domain is defined; copies left by a crashed attempt may be partial, so a repeat
        that finds no domain makes them again."""
        self.require("supports_clone", "clone_vm")
        self._check_placement(placement)
        conn = self._live()
        existing = self._by_op_key(conn, op_key)
        if existing is not None:
            return self._info(existing)
        source = self._domain(conn, vm_id)
        digest = _digest(op_key)[:12]
        with self._errors(f"clone VM {vm_id}"):
            if source.isActive():
                raise ProviderConflict(f"VM {vm_id} is running; stop it before cloning")
            inactive = source.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
            copies: dict[str, tuple[str, str]] = {}
            for index, disk in enumerate(domxml.parse_domain(inactive).disks):
                vol = self._volume_of(conn, disk)
                if vol is None:
                    raise ProviderConflict(f"disk {disk.target} is not in a storage pool")
                pool = vol.storagePoolLookupByVolume()
                copy = f"tsr-{digest}-{index}.qcow2"
                with contextlib.suppress(libvirt.libvirtError):
                    pool.storageVolLookupByName(copy).delete(0)
                fmt = domxml.volume_format(vol.XMLDesc(0)) or "raw"
                pool.createXMLFrom(domxml.volume_xml(copy, int(vol.info()[1]), fmt), vol, 0)
                copies[disk.target] = (pool.name(), copy)
            xml = domxml.clone_domain_xml(
                inactive, name=name, uuid=op_uuid(op_key), op_key=op_key, volumes=copies
            )
            dom = conn.defineXML(xml)
        return self._info(dom)

    def console(self, vm_id: str) -> ConsoleInfo:
        """The serial console, opened with libvirt's console stream
        (`virsh -c <uri> console <uuid>`): lab guests have no graphics."""
        self.require("supports_console", "console")
        dom = self._domain(self._live(), vm_id)
        with self._errors(f"read the console of VM {vm_id}"):
            if not dom.isActive():
                raise ProviderConflict(f"VM {vm_id} is not running")
            if "<console" not in dom.XMLDesc(0):
                raise ProviderConflict(f"VM {vm_id} has no serial console")
            return ConsoleInfo(protocol="libvirt-console", url=f"{self.endpoint.url}#{vm_id}")


def _grow_or_shrink(
    grow: bool, set_maximum: Callable[[], object], set_current: Callable[[], object]
) -> None:
    """A maximum never below the current value: raise it first, or lower it last."""
    if grow:
        set_maximum()
        set_current()
    else:
        set_current()
        set_maximum()


def _snapshot_info(snap: libvirt.virDomainSnapshot) -> SnapshotInfo:
    doc = domxml.parse_snapshot(snap.getXMLDesc(0))
    return SnapshotInfo(
        native_id=doc.name,
        name=doc.name,
        description=doc.description,
        created_at=datetime.fromtimestamp(doc.created_epoch, UTC) if doc.created_epoch else None,
        parent_native_id=doc.parent or None,
        is_current=bool(snap.isCurrent(0)),
    )
