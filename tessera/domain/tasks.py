"""Task vocabulary shared by the service, the API and the CLI: no I/O."""

from __future__ import annotations

from enum import StrEnum


class TaskState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in {TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED}


class TaskKind(StrEnum):
    VM_CREATE = "vm.create"
    VM_DELETE = "vm.delete"
    VM_POWER = "vm.power"
    VM_RENAME = "vm.rename"
    VM_RESIZE = "vm.resize"
    VM_NIC_ADD = "vm.nic.add"
    VM_NIC_REMOVE = "vm.nic.remove"
    VM_DISK_ADD = "vm.disk.add"
    VM_DISK_GROW = "vm.disk.grow"
    VM_DISK_REMOVE = "vm.disk.remove"
    VM_SNAPSHOT_CREATE = "vm.snapshot.create"
    VM_SNAPSHOT_REVERT = "vm.snapshot.revert"
    VM_SNAPSHOT_DELETE = "vm.snapshot.delete"
    VM_CLONE = "vm.clone"
    VM_TEMPLATE = "vm.template"
    VM_UNTEMPLATE = "vm.untemplate"
    VM_MIGRATE = "vm.migrate"
    VM_BULK_POWER = "vm.bulk.power"
    VM_BULK_DELETE = "vm.bulk.delete"
    VM_BULK_TAG = "vm.bulk.tag"
    VM_ADOPT = "vm.adopt"
    VM_RELEASE = "vm.release"
    PROVIDER_SYNC = "provider.sync"
    SEGMENT_CREATE = "segment.create"
    SEGMENT_UPDATE = "segment.update"
    SEGMENT_DELETE = "segment.delete"
    ROUTER_SYNC = "router.sync"
    INTERCONNECT_SYNC = "interconnect.sync"
    MIGRATION_RUN = "migration.run"
    MIGRATION_ROLLBACK = "migration.rollback"

    @property
    def bulk(self) -> bool:
        """A parent over many VMs: its outcome is per VM, in task items."""
        return self in {
            TaskKind.VM_BULK_POWER,
            TaskKind.VM_BULK_DELETE,
            TaskKind.VM_BULK_TAG,
            TaskKind.VM_ADOPT,
            TaskKind.VM_RELEASE,
        }


class StepState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


class ItemState(StrEnum):
    """One VM of a bulk task."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in {ItemState.SUCCEEDED, ItemState.FAILED, ItemState.CANCELLED}


class PowerAction(StrEnum):
    START = "start"
    STOP = "stop"
    REBOOT = "reboot"
    SUSPEND = "suspend"


# The provider operation of each power action (its capability: OPERATION_CAPABILITIES).
POWER_OPERATIONS: dict[PowerAction, str] = {
    PowerAction.START: "start_vm",
    PowerAction.STOP: "stop_vm",
    PowerAction.REBOOT: "reboot_vm",
    PowerAction.SUSPEND: "suspend_vm",
}
