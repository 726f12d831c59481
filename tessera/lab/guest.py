"""The lab's tiny bootable guest, and a way to give lab vCenter VMs real disk contents.

The lab vCenter stores empty disk files, so nothing could prove a migration copied a disk
or that the copy boots. This guest is small enough to build in seconds and boots under
QEMU/TCG in about 8 s: a FAT image (no partition table; SeaBIOS boots the FAT boot
sector) with SYSLINUX, a Debian kernel and a busybox initramfs. Its init loads the
virtio NIC drivers, prints MARKER and one `NIC_PREFIX <name> <mac>` line per NIC (in
probe order, which is the NIC order of the VM) to the serial console, then powers off.

With `tessera.ip=<addr/prefix>` on its kernel command line (`guest_with_network`), it
first puts that address on its first NIC and pings each address of `tessera.ping=<a,b>`,
printing `PING_OK <addr>` or `PING_FAIL <addr>`: this is how a test proves a guest's NIC
reaches (or does not reach) a peer on the switch it was plugged into.

Nothing is mounted to build it: mkfs.vfat, `syslinux --install` and mcopy work on the
image file. The build is cached under the lab cache dir, keyed by every input. The
kernel comes from the `linux-image-*-amd64` package `scripts/bootstrap.sh` downloads
into KERNEL_DEB_DIR (`apt-get download`; it is not installed).

The guest's root holds MANIFEST_NAME, naming the virtio drivers its initramfs carries:
the migration's virtio step reads it (see tessera.migration.virtio).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import re
import shutil
import ssl
import subprocess
import tempfile
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from tessera.lab import LabError
from tessera.lab.vcsim import RunningVcsim

MARKER = "TESSERA-LAB-GUEST-BOOTED"
NIC_PREFIX = "TESSERA-NIC"
DONE = "TESSERA-LAB-GUEST-DONE"
PING_OK = "TESSERA-PING-OK"
PING_FAIL = "TESSERA-PING-FAIL"
# Each peer gets this many one-second pings; the first answer ends them.
PING_TRIES = 5
MANIFEST_NAME = "TESSERA.TXT"
GUEST_SIZE = 64 << 20
# The drivers the guest needs on virtio; their dependencies are found in the modules.
VIRTIO_DRIVERS = ("virtio_pci", "virtio_net", "virtio_blk")
_BUSYBOX = Path("/bin/busybox")
_INIT = f"""#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in /lib/tessera/*.ko; do insmod "$m" 2>/dev/null; done
sleep 1
echo {MARKER} > /dev/ttyS0
for dev in $(ls /sys/class/net | sort); do
  [ "$dev" = lo ] && continue
  echo "{NIC_PREFIX} $dev $(cat /sys/class/net/$dev/address)" > /dev/ttyS0
done
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    tessera.ip=*) addr="${{arg#tessera.ip=}}" ;;
    tessera.ping=*) peers="${{arg#tessera.ping=}}" ;;
  esac
done
if [ -n "$addr" ]; then
  nic=$(ls /sys/class/net | sort | grep -v '^lo$' | head -n 1)
  ip link set "$nic" up
  ip addr add "$addr" dev "$nic"
  for peer in $(echo "$peers" | tr , ' '); do
    result={PING_FAIL}
    for try in $(seq {PING_TRIES}); do
      if ping -c 1 -W 1 "$peer" >/dev/null 2>&1; then result={PING_OK}; break; fi
    done
    echo "$result $peer" > /dev/ttyS0
  done
fi
echo {DONE} > /dev/ttyS0
poweroff -f
"""
_SYSLINUX_CFG = """SERIAL 0 115200
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  KERNEL vmlinuz
  INITRD initrd.gz
  APPEND console=ttyS0,115200 quiet loglevel=3 panic=-1
"""


class GuestError(LabError):
    """The lab guest could not be built or installed; the message says what is missing."""


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tessera" / "guest"


KERNEL_DEB_DIR = cache_root() / "debs"


def kernel_deb() -> Path:
    """The Debian kernel package bootstrap downloaded (the newest, if several)."""
    found = sorted(KERNEL_DEB_DIR.glob("linux-image-*-amd64_*.deb"))
    if not found:
        raise GuestError(
            f"no kernel package in {KERNEL_DEB_DIR}; run scripts/bootstrap.sh "
            "(it runs `apt-get download linux-image-<version>-amd64` there)"
        )
    return found[-1]


def _run(*args: str, cwd: Path | None = None) -> None:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise GuestError(f"{args[0]} failed: {proc.stderr.strip()[-2000:]}")


def _cache_key(deb: Path) -> str:
    """Every input of the build: kernel package, busybox, the scripts, syslinux."""
    digest = hashlib.sha256()
    digest.update(deb.name.encode())
    digest.update(_BUSYBOX.read_bytes())
    digest.update(_INIT.encode() + _SYSLINUX_CFG.encode() + " ".join(VIRTIO_DRIVERS).encode())
    syslinux = shutil.which("syslinux")
    if syslinux:
        digest.update(Path(syslinux).read_bytes())
    return digest.hexdigest()[:16]


def build_guest() -> Path:
    """The guest's raw disk image (GUEST_SIZE bytes), built once per set of inputs."""
    deb = kernel_deb()
    target = cache_root() / _cache_key(deb) / "guest.raw"
    if target.exists():
        return target
    for tool in ("mkfs.vfat", "syslinux", "mcopy", "cpio", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise GuestError(f"{tool} is missing; run scripts/bootstrap.sh")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        work = Path(tmp)
        _run("dpkg-deb", "-x", str(deb), str(work / "pkg"))
        vmlinuz = next((work / "pkg" / "boot").glob("vmlinuz-*"))
        modules = next((work / "pkg" / "lib" / "modules").iterdir()) / "kernel"
        initrd = _initramfs(work / "initrd", modules)
        (work / "syslinux.cfg").write_text(_SYSLINUX_CFG)
        manifest = "tessera lab guest\nvirtio: " + " ".join(VIRTIO_DRIVERS)
        (work / MANIFEST_NAME).write_text(manifest + "\n")
        image = work / "guest.raw"
        with image.open("wb") as fh:
            fh.truncate(GUEST_SIZE)
        _run("mkfs.vfat", "-n", "TESSERA", str(image))
        _run("syslinux", "--install", str(image))
        shutil.copy(vmlinuz, work / "vmlinuz")
        (work / "initrd.gz").write_bytes(initrd)
        for name in ("vmlinuz", "initrd.gz", "syslinux.cfg", MANIFEST_NAME):
            _run("mcopy", "-i", str(image), str(work / name), "::/")
        image.replace(target)
    return target


def _initramfs(root: Path, modules: Path) -> bytes:
    """A newc cpio of busybox, the virtio modules and our init, gzipped."""
    for sub in ("bin", "proc", "sys", "dev", "lib/tessera"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy(_BUSYBOX, root / "bin" / "busybox")
    for index, module in enumerate(load_order(modules, VIRTIO_DRIVERS)):
        # Numbered so the shell's glob loads them in dependency order.
        shutil.copy(module, root / "lib" / "tessera" / f"{index:02d}-{module.name}")
    init = root / "init"
    init.write_text(_INIT)
    init.chmod(0o755)
    names = subprocess.run(
        ["find", "."], cwd=root, capture_output=True, text=True, check=True
    ).stdout
    archive = subprocess.run(
        ["cpio", "-o", "-H", "newc", "--quiet"],
        cwd=root,
        input=names.encode(),
        capture_output=True,
        check=True,
    ).stdout
    return gzip.compress(archive, compresslevel=9)


def load_order(modules: Path, wanted: tuple[str, ...]) -> list[Path]:
    """The module files for `wanted`, dependencies first, from each module's own
    `depends=` field (no modules.dep: the package ships none, and depmod is not needed)."""
    by_name = {ko.stem.replace("-", "_"): ko for ko in modules.rglob("*.ko")}
    order: list[Path] = []

    def visit(name: str) -> None:
        ko = by_name.get(name.replace("-", "_"))
        if ko is None:
            raise GuestError(f"the kernel package has no module {name}")
        if ko in order:
            return
        found = re.search(rb"depends=([^\0]*)\0", ko.read_bytes())
        for dep in found.group(1).decode().split(",") if found else []:
            if dep:
                visit(dep)
        order.append(ko)

    for name in wanted:
        visit(name)
    return order


def guest_with_network(dest: Path, address: str, peers: Sequence[str]) -> Path:
    """A raw copy of the guest at `dest` that puts `address` (`addr/prefix`) on its first
    NIC and pings `peers` at boot: the kernel command line in its syslinux.cfg says so,
    the way a cloud image reads its network from a config drive."""
    extra = f" tessera.ip={address}" + (f" tessera.ping={','.join(peers)}" if peers else "")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(build_guest(), dest)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        config = Path(tmp) / "syslinux.cfg"
        config.write_text(_SYSLINUX_CFG.replace("panic=-1\n", f"panic=-1{extra}\n"))
        _run("mcopy", "-o", "-i", str(dest), str(config), "::/")
    return dest


def guest_vmdk(capacity_bytes: int, dest: Path) -> Path:
    """The guest as a monolithicSparse VMDK of `capacity_bytes` (the VM's configured disk
    size; only the first GUEST_SIZE bytes hold data, the rest stays unallocated)."""
    if capacity_bytes < GUEST_SIZE:
        raise GuestError(f"a disk of {capacity_bytes} bytes cannot hold the guest")
    raw = build_guest()
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        sized = Path(tmp) / "sized.raw"
        shutil.copyfile(raw, sized)
        with sized.open("r+b") as fh:
            fh.truncate(capacity_bytes)
        _run(
            "qemu-img", "convert", "-f", "raw", "-O", "vmdk",
            "-o", "subformat=monolithicSparse", str(sized), str(dest),
        )  # fmt: skip
    return dest


def datastore_url(vc_url: str, datacenter: str, datastore: str, path: str) -> str:
    """A datastore file's URL on vCenter's HTTP file interface (`/folder`)."""
    parts = urlsplit(vc_url)
    query = urlencode({"dcPath": datacenter, "dsName": datastore})
    return f"{parts.scheme}://{parts.netloc}/folder/{quote(path)}?{query}"


def put_datastore_file(lab: RunningVcsim, ds_path: str, source: Path) -> None:
    """Upload `source` as the datastore file `[ds] folder/file` of the lab's first
    datacenter, through vCenter's HTTP file interface with an operator session."""
    datastore, _, path = ds_path.partition("] ")
    with lab.operator_session() as si:
        cookie = si._stub.cookie.split(";")[0]
        datacenter = si.content.rootFolder.childEntity[0].name
    url = datastore_url(lab.url, datacenter, datastore.lstrip("["), path)
    context = ssl._create_unverified_context()  # noqa: S323 - the lab cert is self-signed
    with source.open("rb") as body:
        request = urllib.request.Request(  # noqa: S310 - the lab's own https URL
            url,
            data=body,
            method="PUT",
            headers={"Cookie": cookie, "Content-Length": str(source.stat().st_size)},
        )
        with urllib.request.urlopen(request, context=context, timeout=300) as answer:  # noqa: S310
            if answer.status >= 300:
                raise GuestError(f"uploading {ds_path} answered {answer.status}")


def _vm_disks(lab: RunningVcsim, vm_name: str) -> list[tuple[str, int]]:
    """The lab VM's disks in order: (datastore path, configured size in bytes)."""
    from pyVmomi import vim

    with lab.operator_session() as si:
        view = si.content.viewManager.CreateContainerView(
            si.content.rootFolder, [vim.VirtualMachine], True
        )
        try:
            vm = next((v for v in view.view if v.name == vm_name), None)
            if vm is None:
                raise GuestError(f"the lab has no VM named {vm_name}")
            devices: list[Any] = list(vm.config.hardware.device)
            return [
                (str(getattr(d.backing, "fileName", "")), int(d.capacityInBytes or 0))
                for d in devices
                if isinstance(d, vim.vm.device.VirtualDisk)
            ]
        finally:
            view.DestroyView()


def install_guest(lab: RunningVcsim, vm_name: str, workdir: Path) -> list[str]:
    """Give the lab VM `vm_name` the guest as its first disk's contents (other disks get
    an empty VMDK of their size); the datastore paths written."""
    disks = _vm_disks(lab, vm_name)
    written = []
    for index, (ds_path, capacity) in enumerate(disks):
        local = workdir / f"{index}" / ds_path.rpartition("/")[2]  # the name it embeds
        local.parent.mkdir(parents=True, exist_ok=True)
        if index == 0:
            guest_vmdk(capacity, local)
        else:
            _run("qemu-img", "create", "-q", "-f", "vmdk", "-o",
                 "subformat=monolithicSparse", str(local), str(capacity))  # fmt: skip
        put_datastore_file(lab, ds_path, local)
        with contextlib.suppress(OSError):
            local.unlink()
        written.append(ds_path)
    return written


def install_image(lab: RunningVcsim, vm_name: str, raw_image: Path, workdir: Path) -> str:
    """A raw disk image (e.g. tessera.lab.debian_guest's) as the contents of the lab VM's
    first disk: a monolithicSparse VMDK of the disk's configured size (only the image's
    data allocated), uploaded over the disk's file; the datastore path written."""
    disks = _vm_disks(lab, vm_name)
    if not disks:
        raise GuestError(f"the lab VM {vm_name} has no disk")
    ds_path, capacity = disks[0]
    if raw_image.stat().st_size > capacity:
        raise GuestError(f"{raw_image} does not fit the {capacity}-byte disk of {vm_name}")
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        sized = Path(tmp) / "sized.raw"
        _run("cp", "--sparse=always", str(raw_image), str(sized))
        with sized.open("r+b") as fh:
            fh.truncate(capacity)
        vmdk = Path(tmp) / ds_path.rpartition("/")[2]
        _run("qemu-img", "convert", "-f", "raw", "-O", "vmdk",
             "-o", "subformat=monolithicSparse", str(sized), str(vmdk))  # fmt: skip
        put_datastore_file(lab, ds_path, vmdk)
    return ds_path
