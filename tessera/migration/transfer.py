"""Reading a source disk and converting it with qemu-img, by one of two transports:

- a `DatastoreFile`: vCenter's datastore HTTP interface. qemu-img's https driver reads
  the source in ranges as it converts; the session cookie reaches qemu-img as a secret
  object read from a 0600 file, never on its command line (removed when qemu-img ends).
- a `MountedFile`: the datastore mounted on this (conversion) host, an NFS datastore as
  virt-v2v's `-i vmx` reads it; qemu-img reads the file itself. `mounted_file` resolves
  the path (no symlink left) and refuses one outside the VM's folder under the mount
  before anything is opened.

Nothing is staged: qemu-img converts straight into the target volume (made empty by
libvirt, so `-n --target-is-zero`). The source format is always explicit (`driver=` of
--image-opts, set from our own header check).

Why qemu-img's https driver for the HTTPS road: docs/benchmarks.md compares it with an
NBD export (nbdkit's curl plugin, or our own single-GET streaming plugin) read by
qemu-img. On 2 cores the NBD hop (64 KiB per request) and a second TLS reader cost more
than the driver's ranged requests; it reads in-process with 2 MiB readahead, 16 requests
in flight. Through a mount the copy runs close to plain qemu-img (0.89 of it in
bench/convert.py's last run); over TLS on 2 cores it cannot.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import select
import ssl
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload
from urllib.parse import urlsplit

from tessera.migration.disks import DiskRefused
from tessera.migration.model import DatastoreFile

READAHEAD = 2 << 20
# One request at a time over https. With parallel requests QEMU 7.2's curl driver can
# end up polling none of its connections, all of them idle, and wait forever (it seems
# to lose a socket that libcurl moved between its handles). Measured here on a 256 MiB
# disk over the lab's TLS: -m 4, 8 and 16 hung in 3 to 8 of 16 runs; -m 1 in none of 24
# and was the fastest too (0.5-0.6 s; -m 16 took 0.9-2 s when it finished). A mounted
# file is read as plain qemu-img reads it (bench/convert.py compares the two).
CONVERT_FLAGS = ("-m", "1")
# qemu-img's progress moves in 1 % steps; one step taking longer than this, and longer
# than the step's bytes need at STALL_MIB_S, is a stall: its curl driver can hang on
# connections the network dropped, so convert ends it (a TransferError) rather than wait.
STALL_S = 120.0
STALL_MIB_S = 1.0
_PROGRESS = re.compile(rb"\((\d+(?:\.\d+)?)/100%\)")
_OFFSET = re.compile(r"\d+")
_SECRET_ID = "tsrcookie"  # noqa: S105 - the id of qemu's secret object, not a secret


class TransferError(Exception):
    """qemu-img or the datastore failed; `message` is safe to show (no cookie)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Cancelled(Exception):
    """The copy was stopped because the task was asked to cancel."""


@dataclass(frozen=True, slots=True)
class MountedFile:
    """A datastore file on this host's mount of the datastore: `path` resolved (no
    symlink left) and directly in `folder`, the VM's resolved folder under the mount.
    Made by `mounted_file`, which refuses any other path."""

    path: Path
    folder: Path


# How the copy reaches one source file.
Source = DatastoreFile | MountedFile


@dataclass(frozen=True, slots=True)
class Progress:
    done_bytes: int
    total_bytes: int
    mib_s: float
    eta_s: float | None


def _context(source: DatastoreFile) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if not source.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _connection(source: DatastoreFile, timeout_s: float) -> http.client.HTTPConnection:
    parts = urlsplit(source.url)
    if parts.scheme == "https":
        return http.client.HTTPSConnection(
            parts.hostname or "", parts.port, context=_context(source), timeout=timeout_s
        )
    return http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout_s)


def mounted_file(mount: Path, folder: str, file_name: str) -> MountedFile:
    """`<mount>/<folder>/<file_name>` resolved; DiskRefused (before anything is opened)
    when the folder resolves outside the mount or the file outside the folder: a `..`
    or a symlink on the datastore must not make qemu-img read a host file."""
    root = Path(os.path.realpath(mount))
    home = Path(os.path.realpath(root / folder))
    if home != root and root not in home.parents:
        raise DiskRefused(
            f"the VM's folder {folder!r} resolves to {home}, outside the mounted datastore "
            f"{root}; refused"
        )
    path = Path(os.path.realpath(home / file_name))
    if path.parent != home:
        raise DiskRefused(f"{file_name} resolves to {path}, outside its folder {home}; refused")
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise TransferError(
            f"the mounted datastore has no readable {path}: {exc.strerror}"
        ) from None
    if not stat.S_ISREG(mode):
        raise DiskRefused(f"{path} on the mounted datastore is not a regular file; refused")
    return MountedFile(path, home)


def describe(source: Source) -> str:
    """The transport, as the readiness report and the copy's events name it."""
    if isinstance(source, MountedFile):
        return f"mounted datastore {source.path}"
    return "datastore HTTPS"


@overload
def with_name(source: DatastoreFile, file_name: str) -> DatastoreFile: ...
@overload
def with_name(source: MountedFile, file_name: str) -> MountedFile: ...
@overload
def with_name(source: Source, file_name: str) -> Source: ...
def with_name(source: Source, file_name: str) -> Source:
    """The same datastore folder's file `file_name` (a flat extent of a descriptor),
    by the same transport; on a mount, confined to the folder as `mounted_file` does."""
    if isinstance(source, MountedFile):
        return mounted_file(source.folder, "", file_name)
    parts = urlsplit(source.url)
    folder = parts.path.rpartition("/")[0]
    url = f"{parts.scheme}://{parts.netloc}{folder}/{file_name}?{parts.query}"
    return DatastoreFile(url, source.cookie, source.verify_tls)


class RangeReader:
    """Reads byte ranges of one datastore file over one kept-alive connection."""

    def __init__(self, source: DatastoreFile, timeout_s: float = 30.0) -> None:
        self.source = source
        self._conn = _connection(source, timeout_s)
        parts = urlsplit(source.url)
        self._target = f"{parts.path}?{parts.query}"

    def _ask(self, method: str, headers: dict[str, str]) -> tuple[http.client.HTTPResponse, bytes]:
        """One request; a broken connection is a TransferError saying so (one attempt:
        the caller's phase fails and is resumed, rather than retrying here)."""
        try:
            self._conn.request(
                method, self._target, headers={"Cookie": self.source.cookie, **headers}
            )
            answer = self._conn.getresponse()
            return answer, answer.read()
        except (OSError, http.client.HTTPException) as exc:
            self._conn.close()
            raise TransferError(
                f"reading the disk from the datastore failed: {type(exc).__name__}: {exc}"
            ) from None

    def size(self) -> int:
        answer, _ = self._ask("HEAD", {})
        if answer.status != 200:
            raise TransferError(f"the datastore answered {answer.status} for the disk file")
        return int(answer.getheader("Content-Length") or 0)

    def __call__(self, offset: int, length: int) -> bytes:
        answer, body = self._ask("GET", {"Range": f"bytes={offset}-{offset + length - 1}"})
        if answer.status == 416:
            return b""
        if answer.status not in (200, 206):
            raise TransferError(f"the datastore answered {answer.status} reading the disk file")
        return body[:length] if answer.status == 200 else body

    def close(self) -> None:
        self._conn.close()


class FileReader:
    """Reads byte ranges of a mounted datastore file. O_NOFOLLOW: a symlink swapped in
    for the checked file since `mounted_file` is not followed."""

    def __init__(self, source: MountedFile) -> None:
        try:
            self._fd = os.open(source.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise TransferError(f"opening {source.path} failed: {exc.strerror}") from None

    def size(self) -> int:
        return os.fstat(self._fd).st_size

    def __call__(self, offset: int, length: int) -> bytes:
        try:
            return os.pread(self._fd, length, offset)
        except OSError as exc:
            raise TransferError(f"reading the mounted disk file failed: {exc.strerror}") from None

    def close(self) -> None:
        os.close(self._fd)


@contextlib.contextmanager
def opened(source: Source) -> Iterator[RangeReader | FileReader]:
    """A reader of the source's byte ranges, closed after."""
    reader = FileReader(source) if isinstance(source, MountedFile) else RangeReader(source)
    try:
        yield reader
    finally:
        reader.close()


def _escape(value: str) -> str:
    """A value inside qemu's option syntax, where a comma is written twice."""
    return value.replace(",", ",,")


def source_opts(source: Source, fmt: str) -> str:
    """--image-opts for `fmt` over the source: the mounted file, or the datastore URL
    with the cookie as the secret object."""
    if isinstance(source, MountedFile):
        return f"driver={fmt},file.driver=file,file.filename={_escape(str(source.path))}"
    scheme = urlsplit(source.url).scheme
    opts = [
        f"driver={fmt}",
        f"file.driver={scheme}",
        f"file.url={_escape(source.url)}",
        f"file.cookie-secret={_SECRET_ID}",
        f"file.readahead={READAHEAD}",
        f"file.timeout={60}",
    ]
    if scheme == "https":
        opts.append(f"file.sslverify={'on' if source.verify_tls else 'off'}")
    return ",".join(opts)


def convert_flags(source: Source) -> tuple[str, ...]:
    """qemu-img convert's tuning for the transport (see CONVERT_FLAGS)."""
    return () if isinstance(source, MountedFile) else CONVERT_FLAGS


@contextlib.contextmanager
def cookie_object(source: Source) -> Iterator[list[str]]:
    """qemu-img arguments defining the cookie secret from a 0600 file, removed after;
    none for a mounted file."""
    if isinstance(source, MountedFile):
        yield []
        return
    fd, path = tempfile.mkstemp(prefix="tessera-cookie-")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(source.cookie)
        yield ["--object", f"secret,id={_SECRET_ID},file={path}"]
    finally:
        Path(path).unlink(missing_ok=True)


def _scrub(text: str, source: Source) -> str:
    """qemu-img's errors without the cookie, each kind once and the first (the cause)
    kept: a broken connection fails every read in flight, one line per byte offset."""
    if isinstance(source, DatastoreFile):
        text = text.replace(source.cookie, "<cookie>")
    lines = text.strip().splitlines()
    kinds: dict[str, str] = {}
    for line in lines:
        kinds.setdefault(_OFFSET.sub("", line), line)
    return "\n".join(kinds.values())[:1500]


def remote_info(source: Source, fmt: str) -> dict[str, object]:
    """`qemu-img info` of a file we already checked is self-contained."""
    with cookie_object(source) as secret:
        proc = subprocess.run(
            [
                "qemu-img",
                "info",
                *secret,
                "--output=json",
                "--image-opts",
                source_opts(source, fmt),
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
    if proc.returncode != 0:
        raise TransferError(f"qemu-img info failed: {_scrub(proc.stderr, source)}")
    info: dict[str, object] = json.loads(proc.stdout)
    return info


def convert(
    source: Source,
    fmt: str,
    target: Path,
    target_fmt: str,
    *,
    total_bytes: int,
    on_progress: Callable[[Progress], None],
    should_stop: Callable[[], bool],
    poll_s: float = 0.5,
) -> Progress:
    """Convert the source file into the existing empty `target`; progress every
    `poll_s`, stopping qemu-img (Cancelled) as soon as `should_stop` says so."""
    with cookie_object(source) as secret:
        args = [
            "qemu-img", "convert", "-p", *convert_flags(source), *secret,
            "--image-opts", source_opts(source, fmt),
            "-n", "--target-is-zero", "-O", target_fmt, str(target),
        ]  # fmt: skip
        started = time.monotonic()
        proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        assert proc.stdout is not None
        assert proc.stderr is not None
        os.set_blocking(proc.stdout.fileno(), False)
        percent, last_report, buffer = 0.0, 0.0, b""
        stall_s = max(STALL_S, total_bytes / 100 / (STALL_MIB_S * (1 << 20)))
        moved = started
        # Waiting on qemu-img's output and its exit (a pidfd), not a fixed sleep: the
        # exit is seen at once, which counts when a local copy takes a second.
        exited = os.pidfd_open(proc.pid)
        watched: list[Any] = [proc.stdout, exited]
        try:
            while True:
                readable, _, _ = select.select(watched, [], [], 0.05)
                if exited in readable:
                    break
                chunk = proc.stdout.read() if readable else None
                if chunk == b"":  # output closed before the exit: wait on the exit alone
                    watched = [exited]
                buffer = (buffer + (chunk or b""))[-256:]
                found = _PROGRESS.findall(buffer)
                now = time.monotonic()
                if found and float(found[-1]) != percent:
                    percent, moved = float(found[-1]), now
                elif now - moved > stall_s:
                    raise TransferError(
                        f"reading the disk from the datastore stalled: no progress for "
                        f"{stall_s:.0f} s at {percent:.0f} %"
                    )
                if now - last_report >= poll_s:
                    last_report = now
                    if should_stop():
                        proc.kill()
                        proc.wait()
                        raise Cancelled
                    on_progress(_progress(percent, total_bytes, now - started))
            # What it wrote is all in the pipe now; not waiting for the pipe to close.
            os.set_blocking(proc.stderr.fileno(), False)
            stderr = (proc.stderr.read() or b"").decode(errors="replace")
            proc.wait()
        finally:
            os.close(exited)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if proc.returncode != 0:
        raise TransferError(f"qemu-img convert failed: {_scrub(stderr, source)}")
    final = _progress(100.0, total_bytes, time.monotonic() - started)
    on_progress(final)
    return final


def _progress(percent: float, total: int, elapsed: float) -> Progress:
    done = int(total * percent / 100)
    rate = done / elapsed / (1 << 20) if elapsed > 0 else 0.0
    eta = (total - done) / (rate * (1 << 20)) if rate > 0 else None
    return Progress(done, total, round(rate, 1), round(eta, 1) if eta is not None else None)


def compare(source: Source, fmt: str, target: Path, target_fmt: str) -> bool:
    """Whether the guest sees the same bytes in both (`qemu-img compare`, formats given)."""
    with cookie_object(source) as secret:
        proc = subprocess.run(
            [
                "qemu-img",
                "compare",
                *secret,
                "--image-opts",
                source_opts(source, fmt),
                f"driver={target_fmt},file.filename={_escape(str(target))}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode in (0, 1):
        return proc.returncode == 0
    raise TransferError(f"qemu-img compare failed: {_scrub(proc.stderr, source)}")
