"""The readiness report: per VM, what would stop or endanger its migration, read now from
the source VM's configuration (pyvmomi), its disks' headers (datastore HTTP) and the
target host (libvirt). Nothing is changed anywhere.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tessera.migration import disks, transfer
from tessera.migration.model import Finding, Severity, SourceVM, guest_family
from tessera.providers.faults import ProviderError
from tessera.providers.libvirt import imports
from tessera.providers.libvirt.driver import LibvirtProvider
from tessera.providers.vsphere import export
from tessera.providers.vsphere.driver import VSphereProvider

# What the estimate assumes the copy reaches: bench/convert.py measures it on this
# machine kind (qemu-img reading over the datastore's HTTPS interface).
ESTIMATE_MIB_S = 400.0
_MIB = 1 << 20


@dataclass(frozen=True, slots=True)
class PlanTargets:
    """A plan's maps in native ids: source network -> target network name, source
    datastore name -> target pool native id, the target format and the plan's mode."""

    networks: dict[str, str]
    pools: dict[str, str]
    target_format: str
    mode: str = "cold"


@dataclass
class VMReport:
    vm_id: str
    name: str
    findings: list[Finding] = field(default_factory=list)
    transfer_bytes: int = 0
    virtual_bytes: int = 0

    def add(self, severity: Severity, code: str, message: str) -> None:
        self.findings.append(Finding(severity, code, message))

    @property
    def blocking(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.BLOCKING]

    def as_dict(self) -> dict[str, Any]:
        return {
            "vm_id": self.vm_id,
            "name": self.name,
            "ready": not self.blocking,
            "findings": [f.as_dict() for f in self.findings],
            "transfer_bytes": self.transfer_bytes,
            "virtual_bytes": self.virtual_bytes,
            "estimate_s": round(self.transfer_bytes / (ESTIMATE_MIB_S * _MIB), 1),
        }


@contextlib.contextmanager
def _reader(source: Any) -> Iterator[transfer.RangeReader]:
    reader = transfer.RangeReader(source)
    try:
        yield reader
    finally:
        reader.close()


def check_disk(
    src: VSphereProvider, vm: SourceVM, index: int, free_bytes: int
) -> tuple[disks.DiskImage, int]:
    """The disk's image facts after every safety check (DiskRefused otherwise), and the
    bytes its copy reads. Only a self-contained image reaches qemu-img info."""
    disk = vm.disks[index]
    source = export.datastore_file(src, vm.datacenter, disk.ds_path)
    with _reader(source) as reader:
        file_bytes = reader.size()
        image = disks.inspect(reader, disk.file_name)
    what = f"disk {index} ({disk.ds_path})"
    disks.check_size(image, disk.capacity_bytes, free_bytes, what)
    if image.data_file:
        source = transfer.with_name(source, image.data_file)
        with _reader(source) as reader:
            file_bytes = reader.size()
        if file_bytes < image.virtual_size:
            raise disks.DiskRefused(f"{what}'s flat extent is shorter than its descriptor says")
    info = transfer.remote_info(source, image.fmt)
    if int(str(info.get("virtual-size", -1))) != image.virtual_size:
        raise disks.DiskRefused(f"{what}: qemu-img and the header disagree on its size")
    return image, file_bytes


def vm_report(
    src: VSphereProvider,
    dst: LibvirtProvider,
    vm_id: str,
    native_id: str,
    targets: PlanTargets,
    free: dict[str, int],
) -> VMReport:
    """One VM's findings; `free` (pool native id -> bytes) is charged with its disks, so
    VMs later in the plan see what earlier ones take."""
    vm = export.source_vm(src, native_id)
    report = VMReport(vm_id, vm.name)
    family = guest_family(vm.guest_id)
    if family == "linux":
        report.add(
            Severity.INFO,
            "guest_os",
            f"{vm.guest_id}: Linux; the virtio step checks its drivers after the copy",
        )
    else:
        report.add(
            Severity.WARNING,
            "guest_os",
            f"{vm.guest_id} ({family}): no virtio conversion is available here "
            "(virt-v2v-in-place is not run); it may not boot on virtio",
        )
    report.add(Severity.INFO, "firmware", f"firmware {vm.firmware}, kept on the target")
    warm = targets.mode == "warm"
    report.add(
        Severity.INFO,
        "cbt",
        f"changed block tracking is {'on' if vm.cbt_enabled else 'off'} "
        + ("(warm mode turns it on, then back as it was)" if warm else "(cold mode needs none)"),
    )
    if vm.snapshot_count:
        report.add(
            Severity.BLOCKING,
            "snapshots",
            f"the VM has {vm.snapshot_count} snapshot(s): delete or consolidate them first",
        )
    if imports.domain_named(dst, vm.name) is not None:
        report.add(
            Severity.BLOCKING, "name_clash", f"the target host already has a VM named {vm.name!r}"
        )
    for nic in vm.nics:
        if nic.network_native_id not in targets.networks:
            report.add(
                Severity.BLOCKING,
                "unmapped_network",
                f"NIC {nic.order} ({nic.mac}) is on {nic.network_name or nic.network_native_id}, "
                "which the network map does not map",
            )
    for index, disk in enumerate(vm.disks):
        what = f"disk {index} ({disk.ds_path})"
        if disk.raw_mapping:
            report.add(Severity.BLOCKING, "rdm_disk", f"{what} is a raw device mapping")
            continue
        if disk.disk_mode.startswith("independent"):
            report.add(Severity.BLOCKING, "independent_disk", f"{what} is {disk.disk_mode}")
            continue
        if disk.sharing not in ("sharingNone", ""):
            report.add(Severity.BLOCKING, "shared_disk", f"{what} is shared ({disk.sharing})")
            continue
        pool = targets.pools.get(disk.datastore)
        if pool is None:
            report.add(
                Severity.BLOCKING,
                "unmapped_datastore",
                f"{what} is on datastore {disk.datastore}, which the storage map does not map",
            )
            continue
        try:
            image, file_bytes = check_disk(src, vm, index, free.get(pool, 0))
        except disks.DiskRefused as exc:
            report.add(Severity.BLOCKING, "disk_refused", exc.message)
            continue
        except (transfer.TransferError, ProviderError) as exc:
            report.add(Severity.BLOCKING, "disk_unreadable", f"{what}: {exc}")
            continue
        if warm and not image.data_file:
            report.add(
                Severity.BLOCKING,
                "warm_needs_flat_disk",
                f"{what} is {image.subformat}: warm mode reads changed areas at their offsets, "
                "which needs a flat extent (a VMFS disk); migrate it cold",
            )
            continue
        free[pool] = free.get(pool, 0) - image.virtual_size
        report.transfer_bytes += file_bytes
        report.virtual_bytes += image.virtual_size
        report.add(
            Severity.INFO,
            "disk",
            f"{what}: {image.subformat}, {image.virtual_size} bytes, {file_bytes} to transfer",
        )
    return report
