"""Daemons Tessera starts itself (there is no systemd): each one inside a network
namespace, known by its pid file in its own run folder, stopped with SIGTERM (SIGKILL
after a grace period). Nothing here is specific to one daemon."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from tessera.network.dataplane import iproute
from tessera.network.dataplane.iproute import DataplaneError

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0


def in_netns(netns: str | None, argv: Sequence[str]) -> list[str]:
    return (["ip", "netns", "exec", netns] if netns else []) + list(argv)


def run(
    argv: Sequence[str],
    *,
    netns: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a tool (inside `netns`); a failure names the tool and its stderr."""
    done = subprocess.run(
        in_netns(netns, argv),
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and done.returncode != 0:
        where = f" in {netns}" if netns else ""
        raise DataplaneError(
            f"{Path(argv[0]).name}{where} failed ({done.returncode}): {done.stderr.strip()}"
        )
    return done


def read_pid(pidfile: Path) -> int | None:
    """The pid in `pidfile` when that process is alive (not a zombie)."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if alive(pid) else None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def wait_for(ready: Callable[[], bool], what: str, timeout: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise DataplaneError(f"{what} did not come up in {timeout:.0f} s")
        time.sleep(0.05)


def stop(pidfile: Path, timeout: float = STOP_TIMEOUT_S) -> None:
    """End the daemon of `pidfile` (safe to repeat) and remove the file."""
    pid = read_pid(pidfile)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)


def spawn(
    argv: Sequence[str],
    *,
    netns: str | None,
    log: Path,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start a foreground daemon in its own session, its output appended to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            in_netns(netns, argv),
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def interface_of(address: str, netns: str) -> tuple[str, int] | None:
    """The interface holding IPv4 `address` in `netns`, with its prefix length."""
    for entry in iproute.ip_json("-4", "addr", "show", netns=netns):
        for info in entry.get("addr_info", []):
            if info.get("local") == address:
                return str(entry["ifname"]), int(info["prefixlen"])
    return None
