"""The lab vCenter's disk command (tessera/lab/vcsim/main.go, /tessera/lab/disk/): give a
lab VM's disk a flat layout (a descriptor and a flat extent, as on VMFS) and write bytes
into it as its guest would. While the VM has changed block tracking on, the lab logs
each write, so QueryChangedDiskAreas reports it: this is how tests and benchmarks change
a running source VM during a warm migration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from pyVmomi import vim

from tessera.lab import LabError
from tessera.lab.guest import build_guest
from tessera.lab.vcsim import RunningVcsim

_CHUNK = 4 << 20


class LabDiskError(LabError):
    """The lab refused a disk command; the message is its answer."""


@dataclass(frozen=True, slots=True)
class LabDisk:
    """One disk of a lab VM: the VM's moref, the disk's device key, its size."""

    vm_id: str
    key: int
    capacity: int


def first_disk(lab: RunningVcsim, vm_name: str) -> LabDisk:
    with lab.operator_session() as si:
        view = si.content.viewManager.CreateContainerView(
            si.content.rootFolder, [vim.VirtualMachine], True
        )
        try:
            vm = next((v for v in view.view if v.name == vm_name), None)
            if vm is None:
                raise LabDiskError(f"the lab has no VM named {vm_name}")
            disk = next(
                d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)
            )
            return LabDisk(str(vm._moId), int(disk.key), int(disk.capacityInBytes or 0))
        finally:
            view.DestroyView()


def _post(
    lab: RunningVcsim, action: str, params: dict[str, str], body: bytes = b""
) -> dict[str, Any]:
    parts = urlsplit(lab.url)
    answer = httpx.post(
        f"{parts.scheme}://{parts.netloc}/tessera/lab/disk/{action}",
        params=params,
        content=body,
        auth=(lab.username, lab.password),
        verify=False,  # noqa: S501 - the lab's certificate is self-signed
        timeout=120,
    )
    if answer.status_code != 200:
        raise LabDiskError(f"lab disk {action}: {answer.status_code} {answer.text.strip()}")
    found: dict[str, Any] = answer.json()
    return found


def make_flat(lab: RunningVcsim, disk: LabDisk, size: int | None = None) -> LabDisk:
    """Give the disk a flat layout of `size` bytes (default: its capacity), all zeros."""
    params = {"vm": disk.vm_id, "key": str(disk.key)}
    if size is not None:
        params["size"] = str(size)
    made = _post(lab, "flat", params)
    return LabDisk(disk.vm_id, disk.key, int(made["size"]))


def write(lab: RunningVcsim, disk: LabDisk, offset: int, data: bytes) -> str:
    """Write `data` at `offset` of the disk; the change id after it ("" if CBT is off)."""
    params = {"vm": disk.vm_id, "key": str(disk.key), "offset": str(offset)}
    return str(_post(lab, "write", params, data)["change_id"])


def install_flat_guest(lab: RunningVcsim, vm_name: str, size: int | None = None) -> LabDisk:
    """The lab guest (tessera.lab.guest) as the contents of the VM's first disk, in a flat
    layout; only the guest's non-zero chunks are written, so the rest stays a hole."""
    disk = make_flat(lab, first_disk(lab, vm_name), size)
    with build_guest().open("rb") as image:
        offset = 0
        while chunk := image.read(_CHUNK):
            if chunk.count(0) != len(chunk):
                write(lab, disk, offset, chunk)
            offset += len(chunk)
    return disk
