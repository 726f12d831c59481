"""Build and run the lab vCenter (tessera/lab/vcsim/main.go over govmomi's simulator).

The Go main is built against Debian's govmomi sources in GOPATH mode, cached by the hash
of main.go, and run detached so a lab outlives the CLI call that started it. It prints one
JSON line once it serves requests; that line is how we learn the URL and port.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pyVim.connect import Disconnect, SmartConnect

from tessera.lab import LabError

# pyVim's connect helpers are untyped; these are their typed handles.
_smart_connect: Callable[..., Any] = SmartConnect
_disconnect: Callable[[Any], None] = Disconnect

GOPATH = Path("/usr/share/gocode")
MAIN_GO = Path(__file__).with_name("vcsim") / "main.go"


class VcsimError(LabError):
    """The lab vCenter could not be built or did not come up."""


def lab_password() -> str:
    """A lab vCenter's password: `TESSERA_LAB_PASSWORD` when set (the test suite plants a
    known canary there and searches the run's output for it), else a fresh random one."""
    return os.environ.get("TESSERA_LAB_PASSWORD") or secrets.token_urlsafe(12)


@dataclass(frozen=True, slots=True)
class VcsimSpec:
    """Inventory size and access of one lab vCenter; defaults make a small lab."""

    datacenters: int = 1
    clusters: int = 1
    hosts_per_cluster: int = 2
    standalone_hosts: int = 1
    vms: int = 10
    templates: int = 0
    datastores: int = 2
    dvs_portgroups: int = 2
    dvs_vlan_base: int = 100
    standard_portgroups: int = 1
    standard_vlan_base: int = 200
    username: str = "admin@vsphere.local"
    password: str = field(default_factory=lab_password, repr=False)
    tls: bool = True
    listen: str = "127.0.0.1:0"
    # Empty: each start picks a random one, so one spec can start several instances.
    instance_uuid: str = ""

    def args(self) -> list[str]:
        """Command-line flags of main.go (the password goes through the environment)."""
        return [
            f"-dc={self.datacenters}",
            f"-cluster={self.clusters}",
            f"-host={self.hosts_per_cluster}",
            f"-standalone-host={self.standalone_hosts}",
            f"-vm={self.vms}",
            f"-template={self.templates}",
            f"-ds={self.datastores}",
            f"-dvpg={self.dvs_portgroups}",
            f"-dvpg-vlan-base={self.dvs_vlan_base}",
            f"-stdpg={self.standard_portgroups}",
            f"-stdpg-vlan-base={self.standard_vlan_base}",
            f"-username={self.username}",
            f"-tls={'true' if self.tls else 'false'}",
            f"-listen={self.listen}",
            f"-uuid={self.instance_uuid or uuid.uuid4()}",
        ]


@dataclass(slots=True)
class RunningVcsim:
    """A started lab vCenter; `stop()` ends it and removes its datastore files."""

    url: str
    username: str
    password: str = field(repr=False)
    instance_uuid: str
    pid: int
    start_seconds: float
    workdir: Path

    def stop(self, timeout_s: float = 10.0) -> None:
        stop_pid(self.pid, timeout_s)

    @contextlib.contextmanager
    def operator_session(self) -> Iterator[Any]:
        """A pyvmomi ServiceInstance straight to this vCenter: someone working in vCenter
        itself, behind Tessera's back (tests and benchmarks make changes this way)."""
        parts = urlsplit(self.url)
        si = _smart_connect(
            host=parts.hostname,
            port=parts.port,
            user=self.username,
            pwd=self.password,
            sslContext=ssl._create_unverified_context(),  # noqa: S323 - the lab cert is self-signed
        )
        try:
            yield si
        finally:
            _disconnect(si)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tessera" / "bin"


def build_vcsim(force: bool = False) -> Path:
    """Return the lab vCenter binary, building it when main.go changed since the last build."""
    digest = hashlib.sha256(MAIN_GO.read_bytes()).hexdigest()[:16]
    target = cache_dir() / f"tessera-vcsim-{digest}"
    if target.exists() and not force:
        return target
    go = shutil.which("go")
    if go is None:
        raise VcsimError("the Go toolchain is missing (apt-get install golang-go)")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".tmp{os.getpid()}")
    # GOPATH mode resolves imports from Debian's source tree; naming the file builds it
    # where it lives, outside GOPATH.
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": str(GOPATH), "GOFLAGS": ""}
    proc = subprocess.run(
        [go, "build", "-o", str(partial), str(MAIN_GO)],
        env=env,
        cwd=target.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        partial.unlink(missing_ok=True)
        raise VcsimError(f"go build failed:\n{proc.stderr[-4000:]}")
    partial.replace(target)
    for old in target.parent.glob("tessera-vcsim-*"):
        if old != target and old.is_file():
            old.unlink(missing_ok=True)
    return target


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return ""


def start_vcsim(spec: VcsimSpec, workdir: Path, timeout_s: float = 300.0) -> RunningVcsim:
    """Start a lab vCenter detached from us and wait for its ready line."""
    binary = build_vcsim()
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    tmp = workdir / "datastores"
    tmp.mkdir(exist_ok=True)
    stdout_path = workdir / "vcsim.out"
    stderr_path = workdir / "vcsim.err"
    env = {**os.environ, "TMPDIR": str(tmp), "TESSERA_VCSIM_PASSWORD": spec.password}
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        proc = subprocess.Popen(
            [str(binary), *spec.args()],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=env,
            cwd=workdir,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = stdout_path.read_text().partition("\n")
        if line[1]:
            ready = json.loads(line[0])
            return RunningVcsim(
                url=ready["url"],
                username=ready["username"],
                password=spec.password,
                instance_uuid=ready["instance_uuid"],
                pid=proc.pid,
                start_seconds=float(ready["start_seconds"]),
                workdir=workdir,
            )
        if proc.poll() is not None:
            raise VcsimError(
                f"lab vCenter exited with {proc.returncode} before it was ready:\n"
                f"{_tail(stderr_path)}"
            )
        time.sleep(0.05)
    stop_pid(proc.pid)
    raise VcsimError(f"lab vCenter not ready after {timeout_s:.0f} s:\n{_tail(stderr_path)}")


def _alive(pid: int) -> bool:
    # Reap it if it is our child, so a zombie does not look alive.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_pid(pid: int, timeout_s: float = 10.0) -> None:
    """Stop a lab vCenter by pid (e.g. read from a state file); SIGKILL after `timeout_s`."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    while _alive(pid):
        time.sleep(0.05)
