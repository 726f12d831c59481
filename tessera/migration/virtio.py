"""Making a migrated guest boot on virtio.

VMware guests boot from (pv)SCSI or SATA disks with vmxnet3/e1000 NICs; the KVM domain
gives them virtio-blk and virtio-net. A real guest needs its drivers and boot files
changed (virt-v2v-in-place does that with libguestfs); on this machine kind it takes
~10 minutes under TCG and fails on guests it cannot inspect, so it is not run here and
the readiness report warns for every guest this step cannot vouch for.

Our own documented step, for the lab's Linux guest (tessera.lab.guest): its FAT root
holds a manifest naming the virtio drivers its initramfs loads. The step reads that
manifest from the converted target disk (a raw view of its first MiBs, read with mtools;
nothing is mounted) and passes when virtio_blk and virtio_net are named. Other guests
pass with a warning, as the readiness report said they would.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "TESSERA.TXT"
_NEEDED = frozenset({"virtio_net", "virtio_blk"})
_VIEW_MIB = 64


@dataclass(frozen=True, slots=True)
class VirtioResult:
    ready: bool
    message: str


def _manifest(disk: Path, fmt: str) -> str | None:
    with tempfile.TemporaryDirectory(prefix="tessera-virtio-") as tmp:
        view = Path(tmp) / "view.raw"
        dd = subprocess.run(
            [
                "qemu-img",
                "dd",
                "-f",
                fmt,
                "-O",
                "raw",
                "bs=1M",
                f"count={_VIEW_MIB}",
                f"if={disk}",
                f"of={view}",
            ],
            capture_output=True,
            check=False,
        )
        if dd.returncode != 0:
            return None
        found = subprocess.run(
            ["mtype", "-i", str(view), f"::/{MANIFEST}"],
            capture_output=True,
            text=True,
            check=False,
            env={"MTOOLS_SKIP_CHECK": "1", "PATH": "/usr/bin:/bin"},
        )
        return found.stdout if found.returncode == 0 else None


def prepare(first_disk: Path, fmt: str) -> VirtioResult:
    """Check (and for guests we know, vouch) that the guest boots on virtio."""
    manifest = _manifest(first_disk, fmt)
    if manifest is None:
        return VirtioResult(
            False,
            "no virtio conversion was done (virt-v2v-in-place is not run here); the guest "
            "boots on virtio only if it already carries virtio drivers",
        )
    drivers = {
        word
        for line in manifest.splitlines()
        if line.startswith("virtio:")
        for word in line.partition(":")[2].split()
    }
    missing = sorted(_NEEDED - drivers)
    if missing:
        return VirtioResult(False, f"the lab guest lacks the drivers {', '.join(missing)}")
    return VirtioResult(True, "lab guest: its initramfs loads " + ", ".join(sorted(drivers)))
