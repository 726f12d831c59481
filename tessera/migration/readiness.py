"""The readiness report: per VM, what would stop or endanger its migration, read now from
the source VM's configuration (pyvmomi), its disks' headers (datastore HTTPS, or the
datastore's mount on this host) and the target host (libvirt). Nothing is changed
anywhere.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tessera.migration import disks, transfer
from tessera.migration.model import Finding, Severity, SourceVM, guest_family
from tessera.providers.faults import ProviderError
from tessera.providers.libvirt import imports
from tessera.providers.libvirt.driver import LibvirtProvider
from tessera.providers.vsphere import export
from tessera.providers.vsphere.driver import VSphereProvider

# What the estimate assumes the copy reaches: bench/convert.py measures it on this
# machine kind (qemu-img reading over the datastore's HTTPS interface, or a mount).
ESTIMATE_MIB_S = 400.0
ESTIMATE_MOUNTED_MIB_S = 1000.0
_MIB = 1 << 20


@dataclass(frozen=True, slots=True)
class PlanTargets:
    """A plan's maps in native ids: source network -> target network name, source
    datastore name -> target pool native id, the target format, the plan's mode, and
    the source pool's datastore mounts on this host (datastore name -> folder)."""

    networks: dict[str, str]
    pools: dict[str, str]
    target_format: str
    mode: str = "cold"
    mounts: dict[str, str] = field(default_factory=dict)

    @property
    def copy_mounts(self) -> dict[str, str]:
        """The mounts the copy reads through: cold mode's (warm mode's range reads stay
        on the datastore's HTTPS interface)."""
        return {} if self.mode == "warm" else self.mounts


@dataclass
class VMReport:
    vm_id: str
    name: str
    findings: list[Finding] = field(default_factory=list)
    transfer_bytes: int = 0
    virtual_bytes: int = 0
    estimate_s: float = 0.0

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
            "estimate_s": round(self.estimate_s, 1),
        }


@dataclass(frozen=True, slots=True)
class CheckedDisk:
    """A disk that passed every check: its image facts, the bytes its copy reads, and
    the file qemu-img reads (a flat extent's own file) by its transport."""

    image: disks.DiskImage
    file_bytes: int
    source: transfer.Source

    @property
    def transport(self) -> str:
        return transfer.describe(self.source)


def check_source(
    src: VSphereProvider, vm: SourceVM, index: int, free_bytes: int, mounts: dict[str, str]
) -> CheckedDisk:
    """The disk after every safety check (DiskRefused otherwise), read from its
    datastore's mount on this host when `mounts` names one, else over HTTPS. Only a
    self-contained image reaches qemu-img info; on a mount, no file outside the VM's
    folder is even opened."""
    disk = vm.disks[index]
    mount = mounts.get(disk.datastore)
    source: transfer.Source = (
        transfer.mounted_file(Path(mount), disk.folder, disk.file_name)
        if mount
        else export.datastore_file(src, vm.datacenter, disk.ds_path)
    )
    with transfer.opened(source) as reader:
        file_bytes = reader.size()
        image = disks.inspect(reader, disk.file_name)
    what = f"disk {index} ({disk.ds_path})"
    disks.check_size(image, disk.capacity_bytes, free_bytes, what)
    if image.data_file:
        source = transfer.with_name(source, image.data_file)
        with transfer.opened(source) as reader:
            file_bytes = reader.size()
        if file_bytes < image.virtual_size:
            raise disks.DiskRefused(f"{what}'s flat extent is shorter than its descriptor says")
    info = transfer.remote_info(source, image.fmt)
    if int(str(info.get("virtual-size", -1))) != image.virtual_size:
        raise disks.DiskRefused(f"{what}: qemu-img and the header disagree on its size")
    return CheckedDisk(image, file_bytes, source)


def check_disk(
    src: VSphereProvider, vm: SourceVM, index: int, free_bytes: int
) -> tuple[disks.DiskImage, int]:
    """`check_source` over the datastore's HTTPS interface (warm mode's road): the
    image facts and the bytes its copy reads."""
    checked = check_source(src, vm, index, free_bytes, {})
    return checked.image, checked.file_bytes


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
            f"{vm.guest_id}: Linux; after the copy, virt-v2v-in-place converts it to virtio "
            "if libguestfs inspection finds its package database (the lab's tiny guest "
            "passes by its manifest); otherwise it boots on virtio only with its own drivers",
        )
    else:
        report.add(
            Severity.WARNING,
            "guest_os",
            f"{vm.guest_id} ({family}): virt-v2v-in-place converts only Linux guests here "
            "(no virtio-win drivers); it may not boot on virtio",
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
            checked = check_source(src, vm, index, free.get(pool, 0), targets.copy_mounts)
        except disks.DiskRefused as exc:
            report.add(Severity.BLOCKING, "disk_refused", exc.message)
            continue
        except (transfer.TransferError, ProviderError) as exc:
            report.add(Severity.BLOCKING, "disk_unreadable", f"{what}: {exc}")
            continue
        image, file_bytes = checked.image, checked.file_bytes
        if warm and not image.data_file:
            report.add(
                Severity.BLOCKING,
                "warm_needs_flat_disk",
                f"{what} is {image.subformat}: warm mode reads changed areas at their offsets, "
                "which needs a flat extent (a VMFS disk); migrate it cold",
            )
            continue
        free[pool] = free.get(pool, 0) - image.virtual_size
        mounted = isinstance(checked.source, transfer.MountedFile)
        transport = checked.transport
        if warm and disk.datastore in targets.mounts:
            transport += " (warm mode reads over HTTPS, not the mount)"
        report.transfer_bytes += file_bytes
        report.virtual_bytes += image.virtual_size
        report.estimate_s += file_bytes / (
            (ESTIMATE_MOUNTED_MIB_S if mounted else ESTIMATE_MIB_S) * _MIB
        )
        report.add(
            Severity.INFO,
            "disk",
            f"{what}: {image.subformat}, {image.virtual_size} bytes, {file_bytes} to transfer; "
            f"transport: {transport}",
        )
    return report


# How many of a source pool's latest disk copies a measured estimate takes the median of.
RECENT_COPIES = 20


@dataclass(frozen=True, slots=True)
class CopySpeed:
    """The speed a transfer estimate assumes: measured, the median MiB/s of the source
    pool's recent disk copies (latest first), or with none yet the defaults above."""

    mib_s: float | None
    copies: int

    @property
    def basis(self) -> str:
        return f"measured over {self.copies} copies" if self.copies else "default"

    def estimate_s(self, transfer_bytes: int, default_s: float) -> float:
        """Seconds to copy `transfer_bytes`; `default_s` is the defaults' figure."""
        if self.mib_s is None:
            return round(default_s, 1)
        return round(transfer_bytes / (self.mib_s * _MIB), 1)


def copy_speed(recent_mib_s: Sequence[float]) -> CopySpeed:
    """The median of the latest RECENT_COPIES measured speeds (a copy that measured
    nothing is left out): one slow or fast copy does not swing it."""
    measured = [s for s in recent_mib_s if s > 0][:RECENT_COPIES]
    if not measured:
        return CopySpeed(None, 0)
    return CopySpeed(round(statistics.median(measured), 1), len(measured))
