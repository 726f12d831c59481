"""The lab's Debian guest: a minimal Debian that libguestfs can inspect and virt-v2v can
convert, for the slow end-to-end conversion test.

The tiny guest (tessera.lab.guest) has no package database, so virt-v2v refuses it; this
one is a real Debian of the host's own suite: `debootstrap --variant=minbase` with only a
kernel, initramfs-tools and grub-pc (virt-v2v needs a bootloader config to convert). It
has no init system: the kernel runs INIT_PATH, which loads the drivers of the devices
present (there is no udev after the initramfs), prints the lab guest's MARKER, one
`NIC_PREFIX <name> <driver> <mac>` line per NIC in probe order (the VM's NIC order: the
MAC stays last, as the tiny guest prints it), the block devices it sees and DONE to
ttyS0, then powers off. The root stays read-only, so a boot changes nothing on the disk.
Docs, locales and driver families no VM has are dropped, which keeps the disk small.

Nothing is mounted on the host: debootstrap fills a folder (in a mount namespace of its
own, for the /proc it mounts there), the initramfs is rebuilt in a chroot of it, and
guestfish (the libguestfs appliance, under TCG) partitions a disk file, unpacks the
folder into it and runs grub-install and update-grub inside it. Fresh, the build takes
~3 minutes (most of it debootstrap's downloads and package setup); it is cached under
~/.cache/tessera/debian/<key>/, keyed by a hash of the recipe, so scripts/bootstrap.sh
builds it once and later runs find it. It needs root (debootstrap),
the host's Debian apt source (read from /etc/apt at run time) and the packages
scripts/bootstrap.sh installs.

`python -m tessera.lab.debian_guest` builds it (or finds it) and prints its path.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tessera.lab.guest import DONE, MARKER, NIC_PREFIX, GuestError
from tessera.migration.virtio import LAB_GUEST_FILE, libguestfs_env

DISK_SIZE = 1 << 30
DISK_PREFIX = "TESSERA-DISK"
INIT_PATH = "/usr/local/sbin/tessera-init"
PACKAGES = ("linux-image-amd64", "initramfs-tools", "grub-pc")
BUILD_TIMEOUT_S = 1800
# Bump when the build steps change in a way the texts below do not show.
_RECIPE_VERSION = "1"
_INIT = f"""#!/bin/sh
# The Tessera lab's Debian guest as PID 1: prove what it booted on, then power off.
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
# No udev here: load the drivers of the devices present, as a coldplug would.
sort -u /sys/bus/*/devices/*/modalias | xargs modprobe -q -a 2>/dev/null
sleep 1
echo {MARKER} > /dev/ttyS0
for dev in $(ls /sys/class/net | sort); do
  [ "$dev" = lo ] && continue
  driver=$(basename "$(readlink /sys/class/net/$dev/device/driver)")
  echo "{NIC_PREFIX} $dev $driver $(cat /sys/class/net/$dev/address)" > /dev/ttyS0
done
echo "{DISK_PREFIX} $(ls /sys/block | tr '\\n' ' ')" > /dev/ttyS0
echo {DONE} > /dev/ttyS0
echo o > /proc/sysrq-trigger
while :; do sleep 1; done
"""
# net.ifnames=0: the kernel's eth0, eth1... in probe order, as the tiny guest has them.
_GRUB_DEFAULT = f"""GRUB_DEFAULT=0
GRUB_TIMEOUT=0
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT="quiet"
GRUB_CMDLINE_LINUX="console=ttyS0,115200 net.ifnames=0 init={INIT_PATH}"
GRUB_TERMINAL=serial
GRUB_SERIAL_COMMAND="serial --speed=115200"
GRUB_DISABLE_OS_PROBER=true
"""
_FSTAB = "LABEL=tessera-root / ext4 errors=remount-ro 0 1\n"
# The initramfs holds the drivers it boots with, on VMware (SCSI, SATA) and on KVM
# (virtio), not Debian's default "most": virt-v2v rebuilds it inside its appliance
# under TCG, ~50 s for this list and many minutes for "most".
_INITRAMFS_MODULES = (
    "virtio_pci", "virtio_blk", "virtio_scsi", "virtio_net",
    "sd_mod", "ahci", "ata_piix", "mptspi", "vmw_pvscsi", "ext4",
)  # fmt: skip
# Dropped from the root: what no lab VM reads, and driver families no VM has.
_TRIM = (
    "var/cache/apt/archives",
    "var/lib/apt/lists",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/locale",
    "usr/share/info",
)
_TRIM_MODULES = (
    "sound",
    "net/wireless",
    "net/mac80211",
    "net/bluetooth",
    "drivers/gpu",
    "drivers/media",
    "drivers/infiniband",
    "drivers/iio",
    "drivers/staging",
    "drivers/isdn",
    "drivers/comedi",
    "drivers/bluetooth",
    "drivers/net/wireless",
    "drivers/usb",
    "drivers/hwmon",
    "drivers/mtd",
    "drivers/thunderbolt",
    "drivers/video",
    "drivers/platform",
)
# Run in the appliance: a partitioned disk, the root unpacked, GRUB installed on it.
_GUESTFISH = """run
part-disk /dev/sda mbr
part-set-bootable /dev/sda 1 true
mkfs ext4 /dev/sda1 label:tessera-root
mount /dev/sda1 /
tar-in {tar} /
command "grub-install --target=i386-pc /dev/sda"
command "update-grub"
"""


@dataclass(frozen=True, slots=True)
class AptSource:
    """Where the host's own Debian packages come from: the archive URI and suite."""

    uri: str
    suite: str


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tessera" / "debian"


def _codename(os_release: Path) -> str:
    found = re.search(r"^VERSION_CODENAME=\"?([a-z]+)", os_release.read_text(), re.M)
    if found is None:
        raise GuestError(f"{os_release} names no Debian codename")
    return found.group(1)


def _entries(apt_dir: Path) -> Iterator[tuple[str, list[str], list[str]]]:
    """(uri, suites, components) of every `deb` entry, one-line and deb822 alike."""
    lists = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list"))]
    for path in lists:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
            if len(words) >= 4 and words[0] == "deb":
                yield words[1], [words[2]], words[3:]
    for path in sorted((apt_dir / "sources.list.d").glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", path.read_text()):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                key, sep, value = line.partition(":")
                if sep and not line.startswith(("#", " ", "\t")):
                    fields[key.strip().lower()] = value.strip()
            if "deb" in fields.get("types", "").split() and fields.get("enabled") != "no":
                for uri in fields.get("uris", "").split():
                    yield (
                        uri,
                        fields.get("suites", "").split(),
                        fields.get("components", "").split(),
                    )


def apt_source(
    apt_dir: Path = Path("/etc/apt"), os_release: Path = Path("/etc/os-release")
) -> AptSource:
    """The host's main Debian archive: the first `deb` entry carrying the host's own
    suite (not -updates or -security) with the main component."""
    suite = _codename(os_release)
    for uri, suites, components in _entries(apt_dir):
        if suite in suites and "main" in components:
            return AptSource(uri, suite)
    raise GuestError(f"no apt source in {apt_dir} serves Debian {suite} main")


def _cache_key(suite: str) -> str:
    """Every input of the recipe; the archive's address is not one (any mirror serves
    the same suite)."""
    digest = hashlib.sha256()
    texts = (_INIT, _GRUB_DEFAULT, _FSTAB, _GUESTFISH, *_INITRAMFS_MODULES)
    for part in (_RECIPE_VERSION, suite, *PACKAGES, *texts):
        digest.update(part.encode() + b"\0")
    digest.update(" ".join((*_TRIM, *_TRIM_MODULES, LAB_GUEST_FILE, str(DISK_SIZE))).encode())
    return digest.hexdigest()[:16]


def image_path(source: AptSource | None = None) -> Path:
    """Where the image of this recipe is (or would be) cached."""
    suite = (source or apt_source()).suite
    return cache_root() / _cache_key(suite) / "debian.raw"


def missing_tools() -> list[str]:
    """What this machine lacks to build the image (empty: it can)."""
    tools = ("debootstrap", "unshare", "guestfish", "depmod", "chroot", "tar")
    missing = [t for t in tools if shutil.which(t) is None]
    if os.geteuid() != 0:
        missing.append("root (debootstrap runs as root)")
    return missing


def _run(args: list[str], *, env: dict[str, str] | None = None, stdin: str | None = None) -> None:
    try:
        proc = subprocess.run(
            args,
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise GuestError(f"{args[0]} took more than {BUILD_TIMEOUT_S} s") from None
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr).strip()
        raise GuestError(f"{args[0]} failed: {output[-2000:]}")


@contextlib.contextmanager
def _build_lock(folder: Path) -> Iterator[None]:
    """One build at a time (bootstrap and a test may ask together); the second waits."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def build_debian_guest() -> Path:
    """The guest's raw disk image (DISK_SIZE bytes, sparse), built once per recipe."""
    source = apt_source()
    target = image_path(source)
    if target.exists():
        return target
    missing = missing_tools()
    if missing:
        raise GuestError(f"cannot build the Debian guest, missing: {', '.join(missing)}")
    with _build_lock(target.parent):
        if target.exists():
            return target
        with tempfile.TemporaryDirectory(dir=target.parent, prefix="build-") as tmp:
            work = Path(tmp)
            root = work / "root"
            _debootstrap(source, root)
            _configure(root)
            tar = work / "root.tar"
            _run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(tar), "."])
            shutil.rmtree(root)
            image = work / "debian.raw"
            with image.open("wb") as fh:
                fh.truncate(DISK_SIZE)
            _run(
                ["guestfish", "--format=raw", "-a", str(image)],
                env=libguestfs_env(),
                stdin=_GUESTFISH.format(tar=tar),
            )
            image.replace(target)
    return target


def _debootstrap(source: AptSource, root: Path) -> None:
    """debootstrap mounts /proc in the root while packages configure: in a mount
    namespace of its own, so the mount never shows on the host nor outlives a failure."""
    _run(
        [
            "unshare",
            "--mount",
            "--propagation=private",
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(PACKAGES)}",
            source.suite,
            str(root),
            source.uri,
        ]
    )


def _configure(root: Path) -> None:
    """The guest's own files, the trim, and the module index of what is left."""
    init = root / INIT_PATH.lstrip("/")
    init.parent.mkdir(parents=True, exist_ok=True)
    init.write_text(_INIT)
    init.chmod(0o755)
    (root / "etc/default/grub").write_text(_GRUB_DEFAULT)
    (root / "etc/fstab").write_text(_FSTAB)
    (root / "etc/hostname").write_text("tessera-debian\n")
    (root / LAB_GUEST_FILE.lstrip("/")).write_text("tessera lab guest (debian)\n")
    for folder in _TRIM:
        for child in (root / folder).glob("*"):
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    for modules in (root / "usr/lib/modules").iterdir():
        for family in _TRIM_MODULES:
            shutil.rmtree(modules / "kernel" / family, ignore_errors=True)
        _run(["depmod", "-b", str(root), modules.name])
    conf = root / "etc/initramfs-tools/initramfs.conf"
    text = re.sub(r"^MODULES=.*$", "MODULES=list", conf.read_text(), flags=re.M)
    conf.write_text(re.sub(r"^COMPRESS=.*$", "COMPRESS=gzip", text, flags=re.M))
    with (root / "etc/initramfs-tools/modules").open("a") as listed:
        listed.write("\n".join(_INITRAMFS_MODULES) + "\n")
    # The guest's own tools, natively (a chroot, nothing mounted): seconds, not minutes.
    _run(["chroot", str(root), "update-initramfs", "-u", "-k", "all"])


def main() -> None:
    """Build (or find) the image and print its path; exit 1 with the reason if not."""
    try:
        print(build_debian_guest())
    except GuestError as exc:
        print(f"the Debian lab guest was not built: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
