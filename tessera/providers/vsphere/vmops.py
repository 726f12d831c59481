"""VM operations of the vSphere provider (see base.py for the contract and op_key rules).

pyvmomi makes the calls; each vCenter task is followed to its end by reading its `info`
through the property collector until it succeeds, fails (its fault is translated) or
`task_timeout_s` passes (ProviderTimeout). Results are read back the way list_inventory
reads them, so callers see one VMInfo shape.

Keys that make repeats safe: a created or cloned VM carries op_key in
config.extraConfig["tessera.op"] (set by the same CreateVM/CloneVM call); an added NIC
carries it in its externalId, an added disk in its file name.

Known gaps of the lab vCenter (govmomi's simulator), not of this driver: CloneVM ignores
CPU and memory of the clone spec's config, and RelocateVM does not move the VM in the
hosts' `vm` lists (runtime.host, which Tessera reads, is right).
"""

from __future__ import annotations

import hashlib
import logging
import time
from abc import abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from pyVmomi import vim as _vim

from tessera.domain.inventory import DiskInfo, NicInfo, VMInfo
from tessera.domain.operations import (
    DiskSpec,
    NicSpec,
    Placement,
    SnapshotInfo,
    VMCreateSpec,
)
from tessera.providers.base import Provider
from tessera.providers.faults import (
    ProviderConflict,
    ProviderError,
    ProviderInvalidRequest,
    ProviderNotFound,
    ProviderTimeout,
)
from tessera.providers.vsphere import parse
from tessera.providers.vsphere.faults import translate
from tessera.providers.vsphere.soap import MoRef, SoapClient

log = logging.getLogger(__name__)
# pyVmomi's stubs leave data-object constructors untyped; this handle says so once.
vim: Any = _vim

OP_KEY_OPTION = "tessera.op"
# What get_vm needs to know beyond the VM: its NICs' network names, its folder's path.
_CONTEXT_PROPERTIES: dict[str, tuple[str, ...]] = {
    "Network": ("name",),
    "DistributedVirtualPortgroup": ("key",),
    "Folder": ("name", "parent"),
    "Datacenter": ("name", "parent"),
}
_TASK_POLL_S = (0.05, 0.1, 0.2, 0.5)
_SCSI_UNITS = [u for u in range(16) if u != 7]  # unit 7 is the controller itself
_NEW_CONTROLLER_KEY = -100


def _digest(op_key: str) -> str:
    return hashlib.sha256(op_key.encode()).hexdigest()[:16]


def nic_external_id(op_key: str) -> str:
    """The externalId of the NIC `op_key` added."""
    return f"tessera:{_digest(op_key)}"


def disk_file_stem(op_key: str) -> str:
    """The file name (without .vmdk) of the disk `op_key` added."""
    return f"tsr-{_digest(op_key)}"


def _network_class(native_id: str) -> Any:
    """The managed type of a network moref value; vCenter names DVS portgroups
    "dvportgroup-N" and standard networks "network-N"."""
    if native_id.startswith("dvportgroup-"):
        return vim.dvs.DistributedVirtualPortgroup
    return vim.Network


class VSphereVMOps(Provider):
    """The VM verbs; the driver class supplies the session."""

    task_timeout_s: float = 600.0
    _si: Any

    @abstractmethod
    def _content(self) -> Any: ...

    @abstractmethod
    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any: ...

    @abstractmethod
    def _soap(self, timeout_s: float | None = None) -> SoapClient: ...

    @abstractmethod
    def _collector(self) -> MoRef: ...

    @abstractmethod
    def _view(self, types: list[Any]) -> Any: ...

    @abstractmethod
    def _start_pages(
        self,
        view: Any,
        properties: Mapping[str, Sequence[str]],
        decode: Callable[[bytes], list[parse.ObjectProps]],
    ) -> Iterator[list[parse.ObjectProps]]: ...

    # -- plumbing ------------------------------------------------------------------

    def _ref(self, cls: Any, moid: str) -> Any:
        self._content()  # raises when not connected
        return cls(moid, self._si._stub)

    def _vm_ref(self, vm_id: str) -> Any:
        return self._ref(vim.VirtualMachine, vm_id)

    def _wait(self, task: Any, what: str) -> Any:
        """Follow a task to its end; its result, or its fault translated."""
        deadline = time.monotonic() + self.task_timeout_s
        polls = 0
        while True:
            # Only these three: a whole TaskInfo also carries entity fields that some
            # servers fill with non-entities (the lab's snapshot tasks do).
            info = self._props(task, "info.state", "info.error", "info.result")
            state = info.get("info.state")
            if state == vim.TaskInfo.State.success:
                return info.get("info.result")
            if state == vim.TaskInfo.State.error:
                raise translate(info["info.error"].fault, self.endpoint.password)
            if time.monotonic() > deadline:
                raise ProviderTimeout(f"{what}: vCenter task {task._moId} still {state}")
            time.sleep(_TASK_POLL_S[min(polls, len(_TASK_POLL_S) - 1)])
            polls += 1

    def _run(self, what: str, start: Callable[[], Any]) -> Any:
        return self._wait(self._call(start), what)

    def _props(self, vm: Any, *paths: str) -> dict[str, Any]:
        """Several properties of one object in one round trip."""
        pc = self._content().propertyCollector
        spec = vim.PropertyCollector.FilterSpec(
            objectSet=[vim.PropertyCollector.ObjectSpec(obj=vm)],
            propSet=[vim.PropertyCollector.PropertySpec(type=type(vm), pathSet=list(paths))],
        )
        found = self._call(pc.RetrieveContents, [spec])
        return {p.name: p.val for p in found[0].propSet} if found else {}

    def _power(self, vm: Any) -> str:
        return str(self._props(vm, "runtime.powerState")["runtime.powerState"])

    def _devices(self, vm: Any) -> list[Any]:
        return list(self._props(vm, "config.hardware.device")["config.hardware.device"])

    def _reconfigure(self, vm: Any, what: str, **spec: Any) -> None:
        self._run(what, lambda: vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(**spec)))

    def _datacenter_of(self, entity: Any) -> Any:
        seen = 0
        while entity is not None and seen < 64:
            if isinstance(entity, vim.Datacenter):
                return entity
            entity = self._call(lambda e=entity: e.parent)
            seen += 1
        raise ProviderNotFound("the object is in no datacenter")

    def _pool_and_host(self, placement: Placement | None, source: Any) -> tuple[Any, Any]:
        """(resource pool, host or None) for a placement; none given: the source's."""
        if placement is not None and placement.host_native_id:
            host = self._ref(vim.HostSystem, placement.host_native_id)
            return self._call(lambda: host.parent.resourcePool), host
        if placement is not None and placement.cluster_native_id:
            cluster = self._ref(vim.ClusterComputeResource, placement.cluster_native_id)
            return self._call(lambda: cluster.resourcePool), None
        if source is None:
            raise ProviderInvalidRequest("name a host or a cluster to place the VM on")
        host = self._call(lambda: source.runtime.host)
        return self._call(lambda: host.parent.resourcePool), host

    def _by_op_key(self, folder: Any, name: str, op_key: str) -> Any | None:
        """The VM an earlier call with `op_key` made: vCenter names are unique per
        folder, so it is the one of that name, if it carries the key."""
        index = self._content().searchIndex
        vm = self._call(index.FindChild, folder, name)
        if vm is None:
            return None
        options = self._props(vm, "config.extraConfig").get("config.extraConfig") or []
        if not any(o.key == OP_KEY_OPTION and o.value == op_key for o in options):
            raise ProviderConflict(f"a VM named {name!r} exists and was not made by this step")
        return vm

    def _context(self) -> parse.Resolver:
        resolver = parse.Resolver()
        view = self._view([vim.Network, vim.Folder, vim.Datacenter])
        try:
            for page in self._start_pages(view, _CONTEXT_PROPERTIES, parse.decode_page):
                for kind, moid, props in page:
                    resolver.learn(kind, moid, props)
        finally:
            self._call(view.DestroyView)
        return resolver

    # -- reads ---------------------------------------------------------------------

    def get_vm(self, vm_id: str) -> VMInfo:
        paths = "".join(f"<pathSet>{p}</pathSet>" for p in parse.VM_PROPERTIES)
        spec = (
            f"<propSet><type>VirtualMachine</type>{paths}</propSet>"
            f"<objectSet>{MoRef('VirtualMachine', vm_id).xml('obj')}</objectSet>"
        )
        client = self._soap()
        try:
            page = client.call_raw(
                "RetrievePropertiesEx",
                f"{self._collector().xml('_this')}<specSet>{spec}</specSet><options/>",
            )
        finally:
            client.close()
        objects = parse.decode_page(page)
        if not objects:
            raise ProviderNotFound(f"VM {vm_id} not found")
        _kind, moid, props = objects[0]
        return parse.build_vm(moid, props, self._context())

    # -- create / delete -----------------------------------------------------------

    def create_vm(self, spec: VMCreateSpec, *, op_key: str) -> VMInfo:
        self.require("supports_vm_create", "create_vm")
        if spec.from_template_native_id is not None:
            self.require("supports_templates", "create_vm from a template")
            return self._clone(
                self._vm_ref(spec.from_template_native_id), spec.name, op_key, spec.placement, spec
            )
        pool, host = self._pool_and_host(spec.placement, None)
        folder = self._call(lambda: self._datacenter_of(pool).vmFolder)
        existing = self._by_op_key(folder, spec.name, op_key)
        if existing is not None:
            return self.get_vm(existing._moId)
        if not spec.placement.datastore_native_id:
            raise ProviderInvalidRequest("name a datastore for the VM's files")
        datastore = self._datastore_name(spec.placement.datastore_native_id)
        devices: list[Any] = []
        if spec.disks:
            devices.append(_add(_new_scsi_controller()))
        for unit, disk in zip(_SCSI_UNITS, spec.disks, strict=False):
            ds = self._datastore_name(disk.datastore_native_id) if disk.datastore_native_id else ""
            devices.append(
                _add(
                    _new_disk(_NEW_CONTROLLER_KEY, unit, disk.size_bytes, f"[{ds or datastore}]"),
                    create=True,
                )
            )
        devices += [_add(self._new_nic(nic)) for nic in spec.nics]
        config = vim.vm.ConfigSpec(
            name=spec.name,
            numCPUs=spec.cpu_count,
            memoryMB=spec.memory_mib,
            guestId=spec.guest_os or "otherGuest64",
            files=vim.vm.FileInfo(vmPathName=f"[{datastore}]"),
            extraConfig=[vim.option.OptionValue(key=OP_KEY_OPTION, value=op_key)],
            deviceChange=devices,
        )
        ref = self._run(
            f"create VM {spec.name}",
            lambda: folder.CreateVM_Task(config=config, pool=pool, host=host),
        )
        return self.get_vm(ref._moId)

    def _datastore_name(self, datastore_id: str) -> str:
        ds = self._ref(vim.Datastore, datastore_id)
        return str(self._call(lambda: ds.name))

    def _new_nic(self, nic: NicSpec, external_id: str = "") -> Any:
        network = self._ref(_network_class(nic.network_native_id), nic.network_native_id)
        card = vim.vm.device.VirtualVmxnet3()
        if isinstance(network, vim.dvs.DistributedVirtualPortgroup):
            props = self._props(network, "key", "config.distributedVirtualSwitch")
            switch = props["config.distributedVirtualSwitch"]
            card.backing = vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo(
                port=vim.dvs.PortConnection(
                    portgroupKey=props["key"], switchUuid=self._call(lambda: switch.uuid)
                )
            )
        else:
            card.backing = vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(
                network=network, deviceName=self._call(lambda: network.name)
            )
        card.connectable = vim.vm.device.VirtualDevice.ConnectInfo(
            startConnected=True, allowGuestControl=True
        )
        if nic.mac:
            card.addressType = "manual"
            card.macAddress = nic.mac
        else:
            card.addressType = "generated"
        if external_id:
            card.externalId = external_id
        return card

    def delete_vm(self, vm_id: str, *, op_key: str) -> None:
        self.require("supports_vm_create", "delete_vm")
        vm = self._vm_ref(vm_id)
        try:
            state = self._power(vm)
        except ProviderNotFound:
            return
        if state == "poweredOn":
            self._run(f"power off VM {vm_id}", vm.PowerOffVM_Task)
        self._run(f"delete VM {vm_id}", vm.Destroy_Task)

    # -- power ---------------------------------------------------------------------

    def start_vm(self, vm_id: str, *, op_key: str) -> VMInfo:
        self.require("supports_power_ops", "start_vm")
        vm = self._vm_ref(vm_id)
        if self._power(vm) != "poweredOn":
            self._run(f"power on VM {vm_id}", vm.PowerOnVM_Task)
        return self.get_vm(vm_id)

    def stop_vm(self, vm_id: str, *, op_key: str, graceful_timeout_s: float = 0.0) -> VMInfo:
        """ShutdownGuest first when asked (it needs VMware Tools; without them, or when
        the guest ignores it, the VM is powered off)."""
        self.require("supports_power_ops", "stop_vm")
        vm = self._vm_ref(vm_id)
        state = self._power(vm)
        if state == "poweredOn" and graceful_timeout_s > 0:
            try:
                self._call(vm.ShutdownGuest)
            except ProviderError as exc:  # no VMware Tools, guest busy: force below
                if isinstance(exc, ProviderNotFound):
                    raise
                log.debug("ShutdownGuest refused (%s); powering off", exc.message)
            deadline = time.monotonic() + graceful_timeout_s
            while state == "poweredOn" and time.monotonic() < deadline:
                time.sleep(_TASK_POLL_S[-1])
                state = self._power(vm)
        if state != "poweredOff":
            self._run(f"power off VM {vm_id}", vm.PowerOffVM_Task)
        return self.get_vm(vm_id)

    def reboot_vm(self, vm_id: str, *, op_key: str) -> VMInfo:
        self.require("supports_power_ops", "reboot_vm")
        vm = self._vm_ref(vm_id)
        if self._power(vm) != "poweredOn":
            raise ProviderConflict(f"VM {vm_id} is not running; start it instead")
        self._run(f"reset VM {vm_id}", vm.ResetVM_Task)
        return self.get_vm(vm_id)

    def suspend_vm(self, vm_id: str, *, op_key: str) -> VMInfo:
        self.require("supports_suspend", "suspend_vm")
        vm = self._vm_ref(vm_id)
        state = self._power(vm)
        if state == "poweredOff":
            raise ProviderConflict(f"VM {vm_id} is not running")
        if state == "poweredOn":
            self._run(f"suspend VM {vm_id}", vm.SuspendVM_Task)
        return self.get_vm(vm_id)

    # -- configuration -------------------------------------------------------------

    def rename_vm(
        self, vm_id: str, new_name: str, *, op_key: str, stop_if_running: bool = False
    ) -> VMInfo:
        """vCenter renames running VMs too, so `stop_if_running` is never needed."""
        self.require("supports_rename", "rename_vm")
        vm = self._vm_ref(vm_id)
        if self._call(lambda: vm.name) != new_name:
            self._run(f"rename VM {vm_id}", lambda: vm.Rename_Task(newName=new_name))
        return self.get_vm(vm_id)

    def resize_vm(
        self,
        vm_id: str,
        *,
        op_key: str,
        cpu_count: int | None = None,
        memory_mib: int | None = None,
    ) -> VMInfo:
        self.require("supports_resize", "resize_vm")
        vm = self._vm_ref(vm_id)
        change: dict[str, int] = {}
        if cpu_count is not None:
            change["numCPUs"] = cpu_count
        if memory_mib is not None:
            change["memoryMB"] = memory_mib
        if change:
            self._reconfigure(vm, f"resize VM {vm_id}", **change)
        return self.get_vm(vm_id)

    def _check_device_edit(self, vm: Any, operation: str, flag: str, hot_flag: str) -> None:
        self.require(flag, operation)
        if self._power(vm) != "poweredOff":
            self.require(hot_flag, f"{operation} on a running VM")

    def add_nic(self, vm_id: str, nic: NicSpec, *, op_key: str) -> NicInfo:
        vm = self._vm_ref(vm_id)
        self._check_device_edit(vm, "add_nic", "supports_nic_edit", "supports_hot_add_nic")
        external_id = nic_external_id(op_key)
        if _nic_by_external_id(self._devices(vm), external_id) is None:
            self._reconfigure(
                vm, f"add a NIC to VM {vm_id}", deviceChange=[_add(self._new_nic(nic, external_id))]
            )
        card = _nic_by_external_id(self._devices(vm), external_id)
        if card is None:
            raise ProviderError(f"vCenter added no NIC to VM {vm_id}")
        return next(n for n in self.get_vm(vm_id).nics if n.key == str(card.key))

    def remove_nic(self, vm_id: str, nic_key: str, *, op_key: str) -> None:
        vm = self._vm_ref(vm_id)
        self._check_device_edit(vm, "remove_nic", "supports_nic_edit", "supports_hot_add_nic")
        device = _device_by_key(self._devices(vm), nic_key, vim.vm.device.VirtualEthernetCard)
        if device is not None:
            self._reconfigure(
                vm, f"remove NIC {nic_key} from VM {vm_id}", deviceChange=[_remove(device)]
            )

    def add_disk(self, vm_id: str, disk: DiskSpec, *, op_key: str) -> DiskInfo:
        vm = self._vm_ref(vm_id)
        self._check_device_edit(vm, "add_disk", "supports_disk_edit", "supports_hot_add_disk")
        stem = disk_file_stem(op_key)
        devices = self._devices(vm)
        found = _disk_by_stem(devices, stem)
        if found is None:
            vmx = str(self._props(vm, "config.files.vmPathName")["config.files.vmPathName"])
            folder = vmx.partition("] ")[2].rpartition("/")[0]
            datastore = (
                self._datastore_name(disk.datastore_native_id)
                if disk.datastore_native_id
                else vmx.partition("]")[0].lstrip("[")
            )
            changes, controller, unit = _free_scsi_slot(devices)
            path = f"[{datastore}] {folder}/{stem}.vmdk"
            changes.append(_add(_new_disk(controller, unit, disk.size_bytes, path), create=True))
            self._reconfigure(vm, f"add a disk to VM {vm_id}", deviceChange=changes)
            found = _disk_by_stem(self._devices(vm), stem)
            if found is None:
                raise ProviderError(f"vCenter added no disk to VM {vm_id}")
        return next(d for d in self.get_vm(vm_id).disks if d.key == str(found.key))

    def grow_disk(self, vm_id: str, disk_key: str, size_bytes: int, *, op_key: str) -> DiskInfo:
        vm = self._vm_ref(vm_id)
        self._check_device_edit(vm, "grow_disk", "supports_disk_edit", "supports_hot_add_disk")
        disk = _device_by_key(self._devices(vm), disk_key, vim.vm.device.VirtualDisk)
        if disk is None:
            raise ProviderNotFound(f"VM {vm_id} has no disk {disk_key}")
        current = int(disk.capacityInBytes or disk.capacityInKB * 1024)
        if size_bytes < current:
            raise ProviderInvalidRequest(
                f"disk {disk_key} is {current} bytes; shrinking to {size_bytes} is refused"
            )
        if size_bytes > current:
            disk.capacityInBytes = size_bytes
            disk.capacityInKB = size_bytes // 1024
            edit = vim.vm.device.VirtualDeviceSpec(operation="edit", device=disk)
            self._reconfigure(vm, f"grow disk {disk_key} of VM {vm_id}", deviceChange=[edit])
        return next(d for d in self.get_vm(vm_id).disks if d.key == disk_key)

    def remove_disk(self, vm_id: str, disk_key: str, *, op_key: str) -> None:
        vm = self._vm_ref(vm_id)
        self._check_device_edit(vm, "remove_disk", "supports_disk_edit", "supports_hot_add_disk")
        disk = _device_by_key(self._devices(vm), disk_key, vim.vm.device.VirtualDisk)
        if disk is not None:
            change = _remove(disk)
            change.fileOperation = "destroy"
            self._reconfigure(vm, f"remove disk {disk_key} from VM {vm_id}", deviceChange=[change])

    # -- snapshots -----------------------------------------------------------------

    def _snapshot_trees(self, vm: Any) -> tuple[list[tuple[Any, Any]], str | None]:
        """[(tree node, parent node or None)] parents first, and the current moid."""
        info = self._props(vm, "snapshot").get("snapshot")
        if info is None:
            return [], None
        out: list[tuple[Any, Any]] = []
        todo: list[tuple[Any, Any]] = [(node, None) for node in info.rootSnapshotList]
        while todo:
            node, parent = todo.pop(0)
            out.append((node, parent))
            todo += [(child, node) for child in node.childSnapshotList or []]
        current = info.currentSnapshot._moId if info.currentSnapshot is not None else None
        return out, current

    def create_snapshot(
        self, vm_id: str, name: str, *, op_key: str, description: str = ""
    ) -> SnapshotInfo:
        """Disks and configuration, no memory (a running VM's snapshot powers off on
        revert). A repeat finds the snapshot by name, so names are unique per VM here."""
        self.require("supports_snapshots", "create_snapshot")
        vm = self._vm_ref(vm_id)
        if not any(s.name == name for s in self.list_snapshots(vm_id)):
            self._run(
                f"snapshot VM {vm_id}",
                lambda: vm.CreateSnapshot_Task(
                    name=name, description=description, memory=False, quiesce=False
                ),
            )
        return next(s for s in self.list_snapshots(vm_id) if s.name == name)

    def list_snapshots(self, vm_id: str) -> list[SnapshotInfo]:
        self.require("supports_snapshots", "list_snapshots")
        nodes, current = self._snapshot_trees(self._vm_ref(vm_id))
        return [
            SnapshotInfo(
                native_id=node.snapshot._moId,
                name=node.name or "",
                description=node.description or "",
                created_at=node.createTime,
                parent_native_id=parent.snapshot._moId if parent is not None else None,
                is_current=node.snapshot._moId == current,
            )
            for node, parent in nodes
        ]

    def revert_snapshot(self, vm_id: str, snapshot_id: str, *, op_key: str) -> VMInfo:
        self.require("supports_snapshots", "revert_snapshot")
        snapshot = self._ref(vim.vm.Snapshot, snapshot_id)
        self._run(f"revert VM {vm_id} to {snapshot_id}", snapshot.RevertToSnapshot_Task)
        return self.get_vm(vm_id)

    def delete_snapshot(self, vm_id: str, snapshot_id: str, *, op_key: str) -> None:
        self.require("supports_snapshots", "delete_snapshot")
        if not any(s.native_id == snapshot_id for s in self.list_snapshots(vm_id)):
            return
        snapshot = self._ref(vim.vm.Snapshot, snapshot_id)
        self._run(
            f"delete snapshot {snapshot_id}",
            lambda: snapshot.RemoveSnapshot_Task(removeChildren=False),
        )

    # -- clone, templates, migration, console --------------------------------------

    def clone_vm(
        self, vm_id: str, name: str, *, op_key: str, placement: Placement | None = None
    ) -> VMInfo:
        self.require("supports_clone", "clone_vm")
        return self._clone(self._vm_ref(vm_id), name, op_key, placement, None)

    def _clone(
        self,
        source: Any,
        name: str,
        op_key: str,
        placement: Placement | None,
        spec: VMCreateSpec | None,
    ) -> VMInfo:
        """CloneVM_Task; for create_vm from a template, `spec` adds hardware on top."""
        pool, host = self._pool_and_host(placement, source)
        folder = self._call(lambda: self._datacenter_of(pool).vmFolder)
        existing = self._by_op_key(folder, name, op_key)
        if existing is not None:
            return self.get_vm(existing._moId)
        devices = self._devices(source)
        # vCenter copies manual MACs into a clone: let it generate new ones instead.
        changes = [_regenerate_mac(d) for d in devices if _has_manual_mac(d)]
        config = vim.vm.ConfigSpec(
            extraConfig=[vim.option.OptionValue(key=OP_KEY_OPTION, value=op_key)],
            deviceChange=changes,
        )
        if spec is not None:
            config.numCPUs = spec.cpu_count or None
            config.memoryMB = spec.memory_mib or None
            config.deviceChange += [_add(self._new_nic(nic)) for nic in spec.nics]
            if spec.disks:
                changes, controller, unit = _free_scsi_slot(devices)
                for offset, disk in enumerate(spec.disks):
                    ds = (
                        self._datastore_name(disk.datastore_native_id)
                        if disk.datastore_native_id
                        else ""
                    )
                    new = _new_disk(
                        controller,
                        _SCSI_UNITS[_SCSI_UNITS.index(unit) + offset],
                        disk.size_bytes,
                        f"[{ds}]" if ds else "",
                    )
                    changes.append(_add(new, create=True))
                config.deviceChange += changes
        location = vim.vm.RelocateSpec(pool=pool, host=host)
        if placement is not None and placement.datastore_native_id:
            location.datastore = self._ref(vim.Datastore, placement.datastore_native_id)
        clone_spec = vim.vm.CloneSpec(
            location=location, powerOn=False, template=False, config=config
        )
        ref = self._run(
            f"clone VM {source._moId}",
            lambda: source.CloneVM_Task(folder=folder, name=name, spec=clone_spec),
        )
        return self.get_vm(ref._moId)

    def convert_to_template(self, vm_id: str, *, op_key: str) -> VMInfo:
        self.require("supports_templates", "convert_to_template")
        vm = self._vm_ref(vm_id)
        props = self._props(vm, "config.template", "runtime.powerState")
        if not props["config.template"]:
            if props["runtime.powerState"] != "poweredOff":
                raise ProviderConflict(f"VM {vm_id} must be powered off to become a template")
            self._call(vm.MarkAsTemplate)
        return self.get_vm(vm_id)

    def convert_to_vm(
        self, vm_id: str, *, op_key: str, placement: Placement | None = None
    ) -> VMInfo:
        self.require("supports_templates", "convert_to_vm")
        vm = self._vm_ref(vm_id)
        if self._props(vm, "config.template")["config.template"]:
            pool, host = self._pool_and_host(placement, vm)
            self._call(vm.MarkAsVirtualMachine, pool=pool, host=host)
        return self.get_vm(vm_id)

    def migrate_vm(self, vm_id: str, host_id: str, *, op_key: str) -> VMInfo:
        """RelocateVM_Task to the host and its cluster's (or its own) root resource pool:
        vMotion when running, a cold migration when not; storage stays where it is."""
        vm = self._vm_ref(vm_id)
        props = self._props(vm, "runtime.powerState", "runtime.host")
        running = props["runtime.powerState"] != "poweredOff"
        self.require(
            "supports_live_migration" if running else "supports_cold_migration", "migrate_vm"
        )
        if props["runtime.host"]._moId != host_id:
            host = self._ref(vim.HostSystem, host_id)
            pool = self._call(lambda: host.parent.resourcePool)
            relocate = vim.vm.RelocateSpec(host=host, pool=pool)
            self._run(f"migrate VM {vm_id}", lambda: vm.RelocateVM_Task(spec=relocate))
        return self.get_vm(vm_id)


def _add(device: Any, *, create: bool = False) -> Any:
    change = vim.vm.device.VirtualDeviceSpec(operation="add", device=device)
    if create:
        change.fileOperation = "create"
    return change


def _remove(device: Any) -> Any:
    return vim.vm.device.VirtualDeviceSpec(operation="remove", device=device)


def _new_scsi_controller(key: int = _NEW_CONTROLLER_KEY, bus: int = 0) -> Any:
    return vim.vm.device.ParaVirtualSCSIController(key=key, busNumber=bus, sharedBus="noSharing")


def _new_disk(controller_key: int, unit: int, size_bytes: int, file_name: str) -> Any:
    backing = vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
        diskMode="persistent", thinProvisioned=True, fileName=file_name
    )
    return vim.vm.device.VirtualDisk(
        controllerKey=controller_key,
        unitNumber=unit,
        capacityInKB=size_bytes // 1024,
        capacityInBytes=size_bytes,
        backing=backing,
    )


def _free_scsi_slot(devices: Sequence[Any]) -> tuple[list[Any], int, int]:
    """(changes to make first, controller key, unit number) for one more disk."""
    for controller in devices:
        if isinstance(controller, vim.vm.device.VirtualSCSIController):
            used = {d.unitNumber for d in devices if d.controllerKey == controller.key}
            free = [u for u in _SCSI_UNITS if u not in used]
            if free:
                return [], controller.key, free[0]
    buses = {d.busNumber for d in devices if isinstance(d, vim.vm.device.VirtualSCSIController)}
    bus = min(b for b in range(4) if b not in buses)
    return [_add(_new_scsi_controller(bus=bus))], _NEW_CONTROLLER_KEY, _SCSI_UNITS[0]


def _has_manual_mac(device: Any) -> bool:
    return (
        isinstance(device, vim.vm.device.VirtualEthernetCard)
        and (device.addressType or "").lower() == "manual"
    )


def _regenerate_mac(card: Any) -> Any:
    card.addressType = "generated"
    card.macAddress = None
    return vim.vm.device.VirtualDeviceSpec(operation="edit", device=card)


def _device_by_key(devices: Sequence[Any], key: str, cls: Any) -> Any | None:
    return next((d for d in devices if isinstance(d, cls) and str(d.key) == key), None)


def _nic_by_external_id(devices: Sequence[Any], external_id: str) -> Any | None:
    return next(
        (
            d
            for d in devices
            if isinstance(d, vim.vm.device.VirtualEthernetCard) and d.externalId == external_id
        ),
        None,
    )


def _disk_by_stem(devices: Sequence[Any], stem: str) -> Any | None:
    return next(
        (
            d
            for d in devices
            if isinstance(d, vim.vm.device.VirtualDisk)
            and str(getattr(d.backing, "fileName", "")).endswith(f"/{stem}.vmdk")
        ),
        None,
    )
