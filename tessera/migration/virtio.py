"""Making a migrated guest boot on virtio.

VMware guests boot from (pv)SCSI or SATA disks with vmxnet3/e1000 NICs; the KVM domain
gives them virtio-blk and virtio-net. Three roads, tried in this order on the converted
target disks (nothing is mounted on the host):

1. The lab's tiny guest (tessera.lab.guest): its FAT root holds a manifest naming the
   virtio drivers its initramfs loads, read with mtools from a raw view of the disk's
   first MiBs. It passes when virtio_blk and virtio_net are named; no appliance starts.
2. A Linux guest that libguestfs inspection finds with a package database (deb, rpm...):
   `virt-v2v-in-place` converts the target disks in place (virtio drivers into its
   initramfs, device names remapped, VMware tools removed). On this machine kind the
   libguestfs appliance runs under TCG (LIBGUESTFS_BACKEND_SETTINGS=force_tcg: with KVM
   it hangs), so this takes minutes; V2V_TIMEOUT_S bounds it. Its output is kept in the
   phase's message (the plan task's events); it runs with an environment of its own, so
   no credential of this process can reach it or its output.
3. Anything else (no OS found, Windows: no virtio-win drivers here, no package
   database): nothing is changed; the guest boots on virtio only if it already carries
   the drivers, as the readiness report warned.

A guest whose root holds LAB_GUEST_FILE is the lab's Debian guest (tessera.lab.
debian_guest): like the tiny one, it prints the lab markers and its MACs to the serial
console, so the verify phase reads them.
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

log = logging.getLogger(__name__)

MANIFEST = "TESSERA.TXT"
LAB_GUEST_FILE = "/etc/tessera-lab-guest"
V2V_TIMEOUT_S = 1200.0
INSPECT_TIMEOUT_S = 300.0
_NEEDED = frozenset({"virtio_net", "virtio_blk"})
_VIEW_MIB = 64
_TAIL_CHARS = 4000
# libguestfs tools read their settings from the environment; they get these and no more
# (TMPDIR also places libguestfs' appliance cache: the same one on every run).
_PASSED_ENV = ("PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "XDG_CACHE_HOME")
# Lines virt-v2v prints to say what it does ("[  42.3] Inspecting the source"), its
# warnings and errors: the rest of its output is noise for an operator.
_PROGRESS = re.compile(r"^(\[\s*[\d.]+\]|virt-v2v-in-place: )")


class Road(enum.Enum):
    """How the guest was made to boot on virtio."""

    LAB_GUEST = "lab_guest"
    VIRT_V2V = "virt_v2v_in_place"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class VirtioResult:
    road: Road
    message: str
    # The guest prints the lab markers and its MACs on the serial console.
    prints_markers: bool = False


@dataclass(frozen=True, slots=True)
class Inspection:
    """What libguestfs inspection found on the disks' first operating system."""

    os_type: str
    distro: str
    version: str
    package_format: str
    lab_guest: bool

    def describe(self) -> str:
        return f"{self.distro} {self.version} ({self.os_type})".strip()

    @property
    def convertible(self) -> bool:
        """virt-v2v-in-place can convert it here: Linux with a known package database
        (Windows would need virtio-win drivers, which this machine kind lacks)."""
        return self.os_type == "linux" and self.package_format not in ("", "unknown")


class ConversionFailed(Exception):
    """virt-v2v-in-place (or the inspection before it) failed; the message says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def libguestfs_env() -> dict[str, str]:
    """The environment libguestfs tools run with here: the direct backend on TCG (the
    machine's /dev/kvm hangs guests), and nothing else of this process's environment."""
    env = {k: os.environ[k] for k in _PASSED_ENV if k in os.environ}
    env.setdefault("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    env["LIBGUESTFS_BACKEND"] = "direct"
    env["LIBGUESTFS_BACKEND_SETTINGS"] = "force_tcg"
    return env


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


def _lab_guest(manifest: str) -> VirtioResult:
    drivers = {
        word
        for line in manifest.splitlines()
        if line.startswith("virtio:")
        for word in line.partition(":")[2].split()
    }
    missing = sorted(_NEEDED - drivers)
    if missing:
        return VirtioResult(Road.NONE, f"the lab guest lacks the drivers {', '.join(missing)}")
    return VirtioResult(
        Road.LAB_GUEST,
        "lab guest: its initramfs loads " + ", ".join(sorted(drivers)),
        prints_markers=True,
    )


def _blank(disks: Sequence[Path], fmt: str) -> bool:
    """No disk holds data: nothing to inspect, and no appliance is started for it."""
    for disk in disks:
        mapped = subprocess.run(
            ["qemu-img", "map", "--output=json", "-f", fmt, str(disk)],
            capture_output=True,
            text=True,
            check=False,
        )
        if mapped.returncode != 0:
            return False
        if any(extent.get("data") for extent in json.loads(mapped.stdout)):
            return False
    return True


@contextlib.contextmanager
def _guestfish(disks: Sequence[Path], fmt: str) -> Iterator[list[str]]:
    """A read-only guestfish server on the disks (one appliance launch for every
    query); yields the command prefix that talks to it."""
    adds = [arg for d in disks for arg in ("-a", str(d))]
    # The server it leaves behind keeps its stdout and stderr: a file, not a pipe, or we
    # would wait for the end of a pipe that stays open.
    with tempfile.TemporaryFile("w+") as said:
        started = subprocess.run(
            ["guestfish", "--listen", "--ro", f"--format={fmt}", *adds],
            stdin=subprocess.DEVNULL,
            stdout=said,
            stderr=subprocess.STDOUT,
            env=libguestfs_env(),
            timeout=60,
            check=False,
        )
        said.seek(0)
        text = said.read()
    found = re.search(r"GUESTFISH_PID=(\d+)", text)
    if started.returncode != 0 or found is None:
        raise ConversionFailed(f"guestfish did not start: {text.strip()[-500:]}")
    pid = int(found.group(1))
    remote = ["guestfish", f"--remote={pid}", "--"]
    try:
        yield remote
    finally:
        try:
            done = subprocess.run(
                [*remote, "exit"],
                capture_output=True,
                env=libguestfs_env(),
                timeout=60,
                check=False,
            ).returncode
        except subprocess.TimeoutExpired:
            done = -1
        if done != 0:  # the server would keep its appliance running
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)


def _ask(remote: list[str], *command: str, deadline: float) -> str:
    proc = subprocess.run(
        [*remote, *command],
        capture_output=True,
        text=True,
        env=libguestfs_env(),
        timeout=max(1.0, deadline - time.monotonic()),
        check=False,
    )
    if proc.returncode != 0:
        raise ConversionFailed(f"inspection ({command[0]}) failed: {proc.stderr.strip()[-500:]}")
    return proc.stdout.strip()


def inspect(disks: Sequence[Path], fmt: str) -> Inspection | None:
    """libguestfs inspection of the disks (read-only): the first OS found, or None."""
    deadline = time.monotonic() + INSPECT_TIMEOUT_S
    try:
        with _guestfish(disks, fmt) as remote:
            _ask(remote, "run", deadline=deadline)
            roots = _ask(remote, "inspect-os", deadline=deadline).split()
            if not roots:
                return None
            root = roots[0]

            def get(what: str) -> str:
                return _ask(remote, f"inspect-get-{what}", root, deadline=deadline)

            os_type = get("type")
            lab_guest = False
            if os_type == "linux":
                with contextlib.suppress(ConversionFailed):  # unreadable: not the lab's
                    _ask(remote, "mount-ro", root, "/", deadline=deadline)
                    lab_guest = _ask(remote, "is-file", LAB_GUEST_FILE, deadline=deadline) == "true"
            return Inspection(
                os_type=os_type,
                distro=get("distro"),
                version=f"{get('major-version')}.{get('minor-version')}",
                package_format=get("package-format"),
                lab_guest=lab_guest,
            )
    except subprocess.TimeoutExpired:
        raise ConversionFailed(
            f"libguestfs inspection took more than {INSPECT_TIMEOUT_S:.0f} s"
        ) from None


def _domain_xml(name: str, disks: Sequence[Path], fmt: str) -> str:
    """The minimal libvirt XML virt-v2v-in-place reads its disks from, in order."""
    devices = "".join(
        f"<disk type='file' device='disk'><driver name='qemu' type={quoteattr(fmt)}/>"
        f"<source file={quoteattr(str(d))}/><target dev='sd{chr(ord('a') + i)}' bus='scsi'/>"
        "</disk>"
        for i, d in enumerate(disks)
    )
    return (
        f"<domain type='kvm'><name>{escape(name)}</name><memory unit='MiB'>1024</memory>"
        "<vcpu>1</vcpu><os><type>hvm</type><boot dev='hd'/></os>"
        f"<devices>{devices}</devices></domain>"
    )


def _progress(output: str) -> str:
    """virt-v2v's own progress lines and warnings, the tail if long."""
    lines = [ln.rstrip() for ln in output.splitlines() if _PROGRESS.match(ln)]
    return "\n".join(lines)[-_TAIL_CHARS:]


def convert_in_place(name: str, disks: Sequence[Path], fmt: str) -> str:
    """Run virt-v2v-in-place on the disks; its progress lines (ConversionFailed with its
    output's tail if it fails or outlives V2V_TIMEOUT_S)."""
    with tempfile.TemporaryDirectory(prefix="tessera-v2v-") as tmp:
        xml = Path(tmp) / "domain.xml"
        xml.write_text(_domain_xml(name, disks, fmt))
        try:
            proc = subprocess.run(
                ["virt-v2v-in-place", "-i", "libvirtxml", str(xml)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env=libguestfs_env(),
                timeout=V2V_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else ""
            raise ConversionFailed(
                f"virt-v2v-in-place took more than {V2V_TIMEOUT_S:.0f} s; its output:\n"
                + (_progress(out) or out[-_TAIL_CHARS:])
            ) from None
    if proc.returncode != 0:
        raise ConversionFailed(
            f"virt-v2v-in-place failed (exit {proc.returncode}):\n"
            + (_progress(proc.stdout) or proc.stdout[-_TAIL_CHARS:])
        )
    return _progress(proc.stdout)


def prepare(name: str, disks: Sequence[Path], fmt: str) -> VirtioResult:
    """Make the guest on the target `disks` (in the VM's order) boot on virtio, by the
    first road that fits it; ConversionFailed if virt-v2v-in-place was tried and failed."""
    manifest = _manifest(disks[0], fmt)
    if manifest is not None:
        return _lab_guest(manifest)
    if _blank(disks, fmt):
        return VirtioResult(Road.NONE, "no virtio conversion was done: the disks hold no data")
    missing = [tool for tool in ("guestfish", "virt-v2v-in-place") if not shutil.which(tool)]
    if missing:
        return VirtioResult(
            Road.NONE,
            f"no virtio conversion was done: {' and '.join(missing)} not installed here "
            "(scripts/bootstrap.sh installs them); the guest boots on virtio only if it "
            "already carries virtio drivers",
        )
    started = time.monotonic()
    found = inspect(disks, fmt)
    log.info("libguestfs inspection of %s: %s (%.0f s)", name, found, time.monotonic() - started)
    if found is None:
        return VirtioResult(
            Road.NONE,
            "no virtio conversion was done: libguestfs inspection found no operating "
            "system; the guest boots on virtio only if it already carries virtio drivers",
        )
    if not found.convertible:
        return VirtioResult(
            Road.NONE,
            f"no virtio conversion was done: {found.describe()} is not a Linux guest with a "
            "package database, which virt-v2v-in-place needs here; the guest boots on "
            "virtio only if it already carries virtio drivers",
        )
    started = time.monotonic()
    progress = convert_in_place(name, disks, fmt)
    took = time.monotonic() - started
    log.info("virt-v2v-in-place converted %s in %.0f s:\n%s", name, took, progress)
    return VirtioResult(
        Road.VIRT_V2V,
        f"virt-v2v-in-place converted {found.describe()} in {took:.0f} s:\n{progress}",
        prints_markers=found.lab_guest,
    )
