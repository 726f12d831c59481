"""Refusing hostile disks before any of their data is read.

A datastore file is untrusted input: a VMDK descriptor can name extents anywhere on the
machine that opens it (a host file, `../../etc/shadow`), a qcow2 can name a backing file
or an external data file, and any header can claim a size far beyond the target. qemu-img
would follow all of these. So we read the headers ourselves (a few KiB at the start of
the file, over the same HTTP interface the copy uses), accept only self-contained
layouts, and only then let `qemu-img info -f <fmt>` open the file to confirm its size.

Accepted: a VMDK sparse extent (monolithicSparse, streamOptimized) whose embedded
descriptor names one sparse extent, by a plain name; a descriptor naming one flat extent in its own
folder (read as raw); a qcow2 without backing file, external data file or encryption.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from dataclasses import dataclass

SECTOR = 512
_VMDK_MAGIC = b"KDMV"
_QCOW_MAGIC = b"QFI\xfb"
_DESCRIPTOR_START = b"# Disk DescriptorFile"
_MAX_DESCRIPTOR = 64 * 1024
# magic, version, flags, capacity, grainSize, descriptorOffset, descriptorSize (sectors)
_SPARSE_HEADER = struct.Struct("<4sIIQQQQ")
_COMPRESSED_GRAINS = 1 << 16
_EXTENT = re.compile(r'^\s*(RW|RDONLY|NOACCESS)\s+(\d+)\s+(\w+)\s+"([^"]*)"(?:\s+(\d+))?\s*$')
_CREATE_TYPE = re.compile(r'^\s*createType\s*=\s*"([^"]*)"', re.MULTILINE)
_PARENT = re.compile(r'^\s*parentFileNameHint\s*=\s*"([^"]+)"', re.MULTILINE)
_PARENT_CID = re.compile(r"^\s*parentCID\s*=\s*([0-9a-fA-F]+)", re.MULTILINE)
_QCOW_DATA_FILE_EXT = 0x44415441
_QCOW_EXTERNAL_DATA = 1 << 2

# Reads `length` bytes at `offset` of the file (fewer at its end).
Reader = Callable[[int, int], bytes]


class DiskRefused(Exception):
    """The disk is not one we will open; `message` says why, for the plan's report."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class DiskImage:
    """What the headers say: the format qemu-img must be told (`fmt`), the layout, the
    size the guest sees, and which file holds the data (a flat extent's own name)."""

    fmt: str
    subformat: str
    virtual_size: int
    data_file: str = ""


def inspect(read: Reader, file_name: str) -> DiskImage:
    """The image behind `file_name`, from its headers; DiskRefused when it is not
    self-contained or not a format we convert."""
    head = read(0, SECTOR)
    if head.startswith(_VMDK_MAGIC):
        return _sparse_vmdk(read, head, file_name)
    if head.startswith(_QCOW_MAGIC):
        return _qcow2(read, head)
    if head.startswith(_DESCRIPTOR_START):
        return _descriptor_vmdk(read(0, _MAX_DESCRIPTOR), file_name)
    raise DiskRefused(f"{file_name} is neither a VMDK nor a qcow2 image")


def check_extent_name(name: str, own_name: str) -> None:
    """An extent must be a plain file name in the descriptor's own folder."""
    if not name or "/" in name or "\\" in name or name.startswith(".") or "\0" in name:
        raise DiskRefused(f"{own_name} names an extent outside its folder ({name!r}); refused")


def _descriptor_text(raw: bytes, own_name: str) -> str:
    text = raw.split(b"\0", 1)[0]
    try:
        return text.decode("utf-8")
    except UnicodeDecodeError:
        raise DiskRefused(f"{own_name} has a descriptor that is not text") from None


def _extents(text: str, own_name: str) -> list[tuple[str, int, str]]:
    """(type, sectors, file) of each extent line; a parent (delta disk) is refused."""
    if _PARENT.search(text) or (
        (cid := _PARENT_CID.search(text)) is not None and cid.group(1).lower() != "ffffffff"
    ):
        raise DiskRefused(f"{own_name} is a delta disk with a parent (a snapshot); refused")
    found = []
    for line in text.splitlines():
        match = _EXTENT.match(line)
        if match:
            _access, sectors, kind, name, _offset = match.groups()
            check_extent_name(name, own_name)
            found.append((kind.upper(), int(sectors), name))
    return found


def _sparse_vmdk(read: Reader, head: bytes, own_name: str) -> DiskImage:
    if len(head) < _SPARSE_HEADER.size:
        raise DiskRefused(f"{own_name} has a truncated VMDK header")
    _magic, version, flags, capacity, _grain, desc_offset, desc_size = _SPARSE_HEADER.unpack_from(
        head
    )
    if version not in (1, 2, 3):
        raise DiskRefused(f"{own_name} is a VMDK of unknown version {version}")
    subformat = "streamOptimized" if flags & _COMPRESSED_GRAINS else "monolithicSparse"
    if desc_offset and desc_size:
        if desc_size * SECTOR > _MAX_DESCRIPTOR:
            raise DiskRefused(f"{own_name} claims a descriptor of {desc_size} sectors")
        text = _descriptor_text(read(desc_offset * SECTOR, desc_size * SECTOR), own_name)
        create = _CREATE_TYPE.search(text)
        if create and create.group(1) not in ("monolithicSparse", "streamOptimized"):
            raise DiskRefused(
                f"{own_name} embeds a {create.group(1)} descriptor; only a self-contained "
                "sparse disk is accepted"
            )
        # qemu reads a sparse file as its own one extent; the name it embeds (the one it
        # was created under) must still be a plain name in this folder, and one extent.
        extents = _extents(text, own_name)
        if len(extents) > 1 or any(kind != "SPARSE" for kind, _s, _n in extents):
            raise DiskRefused(f"{own_name} embeds a descriptor of other extents; refused")
    return DiskImage("vmdk", subformat, capacity * SECTOR)


def _descriptor_vmdk(raw: bytes, own_name: str) -> DiskImage:
    text = _descriptor_text(raw, own_name)
    create = _CREATE_TYPE.search(text)
    extents = _extents(text, own_name)
    if len(extents) != 1 or extents[0][0] not in ("FLAT", "VMFS"):
        kind = create.group(1) if create else "unknown"
        raise DiskRefused(
            f"{own_name} is a {kind} disk of {len(extents)} extents; only one flat extent "
            "(monolithicFlat, vmfs) or a sparse disk is accepted"
        )
    _kind, sectors, name = extents[0]
    return DiskImage("raw", create.group(1) if create else "monolithicFlat", sectors * SECTOR, name)


def _qcow2(read: Reader, head: bytes) -> DiskImage:
    header = read(0, 4096)
    if len(header) < 72:
        raise DiskRefused("the qcow2 header is truncated")
    version, backing_offset, backing_size = struct.unpack_from(">IQI", header, 4)
    size, crypt = struct.unpack_from(">QI", header, 24)
    if backing_offset or backing_size:
        raise DiskRefused("the qcow2 image names a backing file; refused")
    if crypt:
        raise DiskRefused("the qcow2 image is encrypted; refused")
    if version >= 3 and len(header) >= 104:
        (incompatible,) = struct.unpack_from(">Q", header, 72)
        if incompatible & _QCOW_EXTERNAL_DATA:
            raise DiskRefused("the qcow2 image keeps its data in an external file; refused")
        (header_length,) = struct.unpack_from(">I", header, 100)
        offset = header_length
        while offset + 8 <= len(header):
            ext_type, ext_len = struct.unpack_from(">II", header, offset)
            if ext_type == 0:
                break
            if ext_type == _QCOW_DATA_FILE_EXT:
                raise DiskRefused("the qcow2 image names an external data file; refused")
            offset += 8 + (ext_len + 7) // 8 * 8
    return DiskImage("qcow2", f"qcow2 v{version}", size)


def check_size(image: DiskImage, configured_bytes: int, free_bytes: int, what: str) -> None:
    """Refuse a disk larger than the target can hold, or one whose header claims far more
    than vCenter configured (a forged header)."""
    if image.virtual_size > free_bytes:
        raise DiskRefused(
            f"{what} is {image.virtual_size} bytes, more than the target pool's free "
            f"{free_bytes} bytes; refused"
        )
    if configured_bytes and image.virtual_size > 2 * configured_bytes:
        raise DiskRefused(
            f"{what} claims {image.virtual_size} bytes but vCenter configures "
            f"{configured_bytes}; refused"
        )
