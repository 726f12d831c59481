"""The typed contract between Tessera and a hypervisor pool.

Like Nova's ComputeDriver and Libcloud's NodeDriver: one class per backend, capability
flags declared up front so callers refuse what a backend cannot do before trying it, and
native ids that only the driver interprets.

VM operations and idempotency
-----------------------------
Durable tasks may run a step again after a crash, so every mutating VM operation takes
`op_key`, the caller's stable step id, and is safe to repeat with the same key:

- `create_vm` and `clone_vm` record the key on the new VM in the same call that creates
  it (vSphere: extraConfig "tessera.op"; libvirt: domain metadata) and first look for a
  VM carrying it, which they return instead of creating a second one.
- `add_nic` and `add_disk` record the key on the device they add (vSphere: the NIC's
  externalId, the disk's file name; libvirt: the device's user alias, the volume name)
  and return the existing device when the key is already there.
- Everything else converges on a target state: stopping a stopped VM, renaming to the
  current name, resizing to the current size, deleting a VM that is gone, removing a
  device that is gone and migrating to the host the VM is on all succeed doing nothing.

Each operation needs a capability flag (OPERATION_CAPABILITIES); a provider without it
refuses with ProviderUnsupported naming the flag before it touches anything. Operations
wait for completion; a backend task that does not finish in time is ProviderTimeout.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import ClassVar

from tessera.domain.inventory import DiskInfo, InventoryChange, InventorySnapshot, NicInfo, VMInfo
from tessera.domain.operations import (
    ConsoleInfo,
    DiskSpec,
    NicSpec,
    Placement,
    SnapshotInfo,
    VMCreateSpec,
)
from tessera.providers.faults import ProviderNotFound, ProviderUnsupported


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a provider can do; the scheduler filters on these and the API checks them."""

    supports_snapshots: bool = False
    supports_live_migration: bool = False
    supports_cold_migration: bool = False
    supports_cbt: bool = False
    supports_dvs: bool = False
    supports_templates: bool = False
    supports_clone: bool = False
    supports_console: bool = False
    supports_hot_add_nic: bool = False
    supports_hot_add_disk: bool = False
    supports_push_events: bool = False
    supports_vm_create: bool = False
    supports_power_ops: bool = False
    supports_suspend: bool = False
    supports_rename: bool = False
    supports_resize: bool = False
    supports_nic_edit: bool = False
    supports_disk_edit: bool = False

    def as_dict(self) -> dict[str, bool]:
        return {name: bool(getattr(self, name)) for name in self.__dataclass_fields__}


# Which flag each VM operation needs. Device edits on a running VM also need
# supports_hot_add_nic / supports_hot_add_disk; migrating a running VM needs
# supports_live_migration, a stopped one supports_cold_migration; creating from a
# template also needs supports_templates.
OPERATION_CAPABILITIES: dict[str, str] = {
    "create_vm": "supports_vm_create",
    "delete_vm": "supports_vm_create",
    "start_vm": "supports_power_ops",
    "stop_vm": "supports_power_ops",
    "reboot_vm": "supports_power_ops",
    "suspend_vm": "supports_suspend",
    "rename_vm": "supports_rename",
    "resize_vm": "supports_resize",
    "add_nic": "supports_nic_edit",
    "remove_nic": "supports_nic_edit",
    "add_disk": "supports_disk_edit",
    "grow_disk": "supports_disk_edit",
    "remove_disk": "supports_disk_edit",
    "create_snapshot": "supports_snapshots",
    "list_snapshots": "supports_snapshots",
    "revert_snapshot": "supports_snapshots",
    "delete_snapshot": "supports_snapshots",
    "clone_vm": "supports_clone",
    "convert_to_template": "supports_templates",
    "convert_to_vm": "supports_templates",
    "migrate_vm": "supports_cold_migration",
    "console": "supports_console",
}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and how to reach a pool. The password never leaves this object in clear text
    except to the driver's own login call."""

    url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    verify_tls: bool = True
    timeout_s: float = 30.0


@dataclass(frozen=True, slots=True)
class ProviderAbout:
    """What a connection test reports about the endpoint."""

    product: str
    version: str
    instance_uuid: str = ""


class Provider(ABC):
    """One connection to one pool (a vCenter, a libvirt host)."""

    kind: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    @abstractmethod
    def connect(self) -> ProviderAbout:
        """Open the session (log in); doubles as the connection test."""

    @abstractmethod
    def close(self) -> None:
        """Release the session; safe to call twice."""

    @abstractmethod
    def list_inventory(self) -> InventorySnapshot:
        """Read everything the pool holds, in bulk."""

    def stream_inventory(self) -> Iterator[InventorySnapshot]:
        """The same inventory as list_inventory, in chunks as it arrives, so a caller can
        store one chunk while the next is read. An object only references objects of its
        own or an earlier chunk. By default, one chunk."""
        yield self.list_inventory()

    @abstractmethod
    def watch(self, stop: threading.Event) -> Iterator[list[InventoryChange]]:
        """Yield batches of changes until `stop` is set.

        The first batch is yielded once the watch is established and may be empty; every
        change after that point is reported. While nothing changes, an empty batch comes
        at least every few seconds, so the caller can act on time (stop, periodic resync).
        Raises ProviderError when the connection is lost.
        """

    # -- capabilities ----------------------------------------------------------------

    def require(self, capability: str, operation: str = "") -> None:
        """Refuse up front: ProviderUnsupported naming `capability` unless it is declared.

        ValueError for a name that is not a capability flag (a caller bug)."""
        if capability not in Capabilities.__dataclass_fields__:
            raise ValueError(f"unknown capability {capability!r}")
        if not getattr(self.capabilities, capability):
            raise self._unsupported(capability, operation)

    def _unsupported(self, capability: str, operation: str) -> ProviderUnsupported:
        what = f" {operation}" if operation else " this"
        return ProviderUnsupported(
            f"the {self.kind} provider cannot{what}: it lacks {capability}",
            capability=capability,
        )

    def _refuse(self, operation: str) -> ProviderUnsupported:
        """The default body of an operation this driver does not implement."""
        return self._unsupported(OPERATION_CAPABILITIES[operation], operation)

    # -- VM operations (defaults refuse; see the module docstring for op_key) ---------

    def get_vm(self, vm_id: str) -> VMInfo:
        """One VM as list_inventory reports it; drivers override with a single read."""
        for vm in self.list_inventory().vms:
            if vm.native_id == vm_id:
                return vm
        raise ProviderNotFound(f"VM {vm_id} not found")

    def create_vm(self, spec: VMCreateSpec, *, op_key: str) -> VMInfo:
        """A new VM, stopped; or the VM an earlier call with `op_key` created."""
        raise self._refuse("create_vm")

    def delete_vm(self, vm_id: str, *, op_key: str) -> None:
        """Power off if needed and delete the VM with its disks."""
        raise self._refuse("delete_vm")

    def start_vm(self, vm_id: str, *, op_key: str) -> VMInfo:
        """Power on (a suspended VM resumes)."""
        raise self._refuse("start_vm")

    def stop_vm(self, vm_id: str, *, op_key: str, graceful_timeout_s: float = 0.0) -> VMInfo:
        """Power off: ask the guest first for up to `graceful_timeout_s`, then force."""
        raise self._refuse("stop_vm")

    def reboot_vm(self, vm_id: str, *, op_key: str) -> VMInfo:
        """Reset a running VM."""
        raise self._refuse("reboot_vm")

    def suspend_vm(self, vm_id: str, *, op_key: str) -> VMInfo:
        """Save the running VM's state and stop it; start_vm resumes it."""
        raise self._refuse("suspend_vm")

    def rename_vm(
        self, vm_id: str, new_name: str, *, op_key: str, stop_if_running: bool = False
    ) -> VMInfo:
        """Rename; a backend that renames stopped VMs only refuses a running one with
        ProviderConflict unless `stop_if_running`."""
        raise self._refuse("rename_vm")

    def resize_vm(
        self,
        vm_id: str,
        *,
        op_key: str,
        cpu_count: int | None = None,
        memory_mib: int | None = None,
    ) -> VMInfo:
        """Set CPU count and/or memory (absolute values, so repeating is harmless)."""
        raise self._refuse("resize_vm")

    def add_nic(self, vm_id: str, nic: NicSpec, *, op_key: str) -> NicInfo:
        """Add a NIC as the VM's last one."""
        raise self._refuse("add_nic")

    def remove_nic(self, vm_id: str, nic_key: str, *, op_key: str) -> None:
        """Remove the NIC whose NicInfo.key is `nic_key`."""
        raise self._refuse("remove_nic")

    def add_disk(self, vm_id: str, disk: DiskSpec, *, op_key: str) -> DiskInfo:
        """Add a new empty disk."""
        raise self._refuse("add_disk")

    def grow_disk(self, vm_id: str, disk_key: str, size_bytes: int, *, op_key: str) -> DiskInfo:
        """Grow a disk to `size_bytes`; shrinking is refused (ProviderInvalidRequest)."""
        raise self._refuse("grow_disk")

    def remove_disk(self, vm_id: str, disk_key: str, *, op_key: str) -> None:
        """Detach the disk and delete its storage."""
        raise self._refuse("remove_disk")

    def create_snapshot(
        self, vm_id: str, name: str, *, op_key: str, description: str = ""
    ) -> SnapshotInfo:
        """Snapshot the VM (disks and configuration; memory too where the backend must)."""
        raise self._refuse("create_snapshot")

    def list_snapshots(self, vm_id: str) -> list[SnapshotInfo]:
        """Every snapshot of the VM, parents before children."""
        raise self._refuse("list_snapshots")

    def revert_snapshot(self, vm_id: str, snapshot_id: str, *, op_key: str) -> VMInfo:
        """Return the VM to the snapshot's state."""
        raise self._refuse("revert_snapshot")

    def delete_snapshot(self, vm_id: str, snapshot_id: str, *, op_key: str) -> None:
        """Delete one snapshot, keeping its children and the VM's current state."""
        raise self._refuse("delete_snapshot")

    def clone_vm(
        self, vm_id: str, name: str, *, op_key: str, placement: Placement | None = None
    ) -> VMInfo:
        """A stopped full copy of a stopped VM, with new MACs."""
        raise self._refuse("clone_vm")

    def convert_to_template(self, vm_id: str, *, op_key: str) -> VMInfo:
        """Turn a stopped VM into a template."""
        raise self._refuse("convert_to_template")

    def convert_to_vm(
        self, vm_id: str, *, op_key: str, placement: Placement | None = None
    ) -> VMInfo:
        """Turn a template back into a VM, on `placement`'s host or cluster."""
        raise self._refuse("convert_to_vm")

    def migrate_vm(self, vm_id: str, host_id: str, *, op_key: str) -> VMInfo:
        """Move the VM to another host of the same pool."""
        raise self._refuse("migrate_vm")

    def console(self, vm_id: str) -> ConsoleInfo:
        """Where to open the VM's console."""
        raise self._refuse("console")

    def __enter__(self) -> Provider:
        self.connect()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
