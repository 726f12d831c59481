"""What a migration reads from a vSphere source, and the one mark it leaves there.

The source is never modified beyond its power state (the VM operations already do that)
and a migration annotation: `annotate` appends or removes one line of ours, keeping the
rest of the VM's notes as they were.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from pyVmomi import vim as _vim

from tessera.migration.model import DatastoreFile, SourceDisk, SourceNic, SourceVM
from tessera.providers.vsphere.driver import VSphereProvider

vim: Any = _vim

ANNOTATION_PREFIX = "[tessera-migration]"
_CONFIG = (
    "config.hardware.device",
    "config.firmware",
    "config.guestId",
    "config.changeTrackingEnabled",
    "config.annotation",
    "snapshot",
)


def _snapshot_count(snapshot: Any) -> int:
    stack, count = list(getattr(snapshot, "rootSnapshotList", None) or []), 0
    while stack:
        node = stack.pop()
        count += 1
        stack.extend(node.childSnapshotList or [])
    return count


def source_vm(provider: VSphereProvider, vm_id: str) -> SourceVM:
    """The source VM's configuration as the migration needs it, read now."""
    info = provider.get_vm(vm_id)
    vm = provider._vm_ref(vm_id)
    props = provider._props(vm, *_CONFIG)
    disks = []
    for device in props.get("config.hardware.device") or []:
        if not isinstance(device, vim.vm.device.VirtualDisk):
            continue
        backing = device.backing
        disks.append(
            SourceDisk(
                key=str(device.key),
                ds_path=str(backing.fileName),
                datastore=str(backing.fileName).partition("]")[0].lstrip("["),
                capacity_bytes=int(device.capacityInBytes or device.capacityInKB * 1024),
                disk_mode=str(getattr(backing, "diskMode", "") or "persistent"),
                sharing=str(getattr(backing, "sharing", "") or "sharingNone"),
                raw_mapping=isinstance(
                    backing, vim.vm.device.VirtualDisk.RawDiskMappingVer1BackingInfo
                ),
            )
        )
    datacenter = provider._call(lambda: provider._datacenter_of(vm).name)
    return SourceVM(
        native_id=vm_id,
        name=info.name,
        power_state=info.power_state.value,
        cpu_count=info.cpu_count,
        memory_mib=info.memory_mib,
        firmware=str(props.get("config.firmware") or "bios"),
        guest_id=str(props.get("config.guestId") or ""),
        datacenter=str(datacenter),
        disks=tuple(disks),
        nics=tuple(
            SourceNic(n.mac, n.order, n.network_native_id or "", n.network_name, n.model)
            for n in info.nics
        ),
        snapshot_count=_snapshot_count(props.get("snapshot")),
        cbt_enabled=bool(props.get("config.changeTrackingEnabled")),
        annotation=str(props.get("config.annotation") or ""),
    )


def datastore_file(provider: VSphereProvider, datacenter: str, ds_path: str) -> DatastoreFile:
    """The datastore file `[ds] folder/file` on vCenter's HTTP file interface, with this
    session's cookie."""
    provider._content()  # raises when not connected
    datastore, _, path = ds_path.partition("] ")
    parts = urlsplit(provider.endpoint.url)
    query = urlencode({"dcPath": datacenter, "dsName": datastore.lstrip("[")})
    cookie = str(provider._si._stub.cookie).split(";")[0]
    return DatastoreFile(
        url=f"{parts.scheme}://{parts.netloc}/folder/{quote(path)}?{query}",
        cookie=cookie,
        verify_tls=provider.endpoint.verify_tls,
    )


def annotate(provider: VSphereProvider, vm_id: str, line: str | None) -> None:
    """Set our one annotation line (None removes it); repeating is harmless."""
    vm = provider._vm_ref(vm_id)
    current = str(provider._props(vm, "config.annotation").get("config.annotation") or "")
    kept = [ln for ln in current.splitlines() if not ln.startswith(ANNOTATION_PREFIX)]
    if line is not None:
        kept.append(f"{ANNOTATION_PREFIX} {line}")
    wanted = "\n".join(kept)
    if wanted != current:
        provider._reconfigure(vm, f"annotate VM {vm_id}", annotation=wanted)
