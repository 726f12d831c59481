"""`ip` as a function: links, addresses, routes and namespaces, with JSON output parsed.

Every call names its namespace explicitly (None is the caller's own), so nothing here
touches the host's interfaces unless asked to.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from typing import Any

from tessera.errors import TesseraError

# Linux limits interface names to 15 bytes.
IFNAME_MAX = 15


class DataplaneError(TesseraError):
    """A data-plane command failed; the message carries the command and its stderr."""

    code = "dataplane_failed"


def run(
    cmd: Sequence[str],
    *,
    netns: str | None = None,
    check: bool = True,
    stdin: str | None = None,
    timeout: float = 30.0,
) -> subprocess.CompletedProcess[str]:
    """Run a command, inside `netns` when given."""
    argv = (["ip", "netns", "exec", netns] if netns else []) + list(cmd)
    done = subprocess.run(
        argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and done.returncode != 0:
        where = f" in {netns}" if netns else ""
        raise DataplaneError(
            f"{' '.join(cmd)}{where} failed ({done.returncode}): {done.stderr.strip()}"
        )
    return done


def ip(*args: str, netns: str | None = None, check: bool = True) -> str:
    """`ip [-n netns] args...`; its stdout."""
    prefix = ["ip", "-n", netns] if netns else ["ip"]
    done = run([*prefix, *args], check=check)
    return done.stdout


def ip_json(*args: str, netns: str | None = None) -> list[dict[str, Any]]:
    """`ip -json ...` parsed; an empty list when it prints nothing."""
    prefix = ["ip", "-json"] + (["-n", netns] if netns else [])
    out = run([*prefix, *args]).stdout.strip()
    found: list[dict[str, Any]] = json.loads(out) if out else []
    return found


def namespaces() -> set[str]:
    return {entry["name"] for entry in ip_json("netns", "list")}


def add_namespace(name: str) -> None:
    """Make a namespace with its loopback up; an existing one is kept."""
    if name not in namespaces():
        ip("netns", "add", name)
    ip("link", "set", "lo", "up", netns=name)


def delete_namespace(name: str) -> None:
    """Delete a namespace and, with it, every interface it holds; a missing one is fine."""
    if name in namespaces():
        ip("netns", "delete", name)


def links(netns: str | None = None) -> dict[str, dict[str, Any]]:
    return {entry["ifname"]: entry for entry in ip_json("link", "show", netns=netns)}


def link_exists(name: str, netns: str | None = None) -> bool:
    return name in links(netns)


def delete_link(name: str, netns: str | None = None) -> None:
    if link_exists(name, netns):
        ip("link", "delete", name, netns=netns)


def add_veth(a: str, b: str, *, a_netns: str | None = None, b_netns: str | None = None) -> None:
    """A veth pair with end `a` in `a_netns` and end `b` in `b_netns`, both up; each name
    only needs to be free in its own namespace."""
    check_ifname(a)
    check_ifname(b)
    a_where = ["netns", a_netns] if a_netns else []
    b_where = ["netns", b_netns] if b_netns else []
    ip("link", "add", a, *a_where, "type", "veth", "peer", "name", b, *b_where)
    set_up(a, a_netns)
    set_up(b, b_netns)


def no_tx_checksum(name: str, netns: str | None = None) -> None:
    """Have the kernel fill in checksums before a frame leaves `name`. A veth hands its
    peer frames whose TCP/UDP checksum is left to offload; OVS's userspace datapath reads
    them raw and forwards them unfixed, so the receiver drops them (ping still passes)."""
    run(["ethtool", "-K", name, "tx", "off"], netns=netns)


def move_link(name: str, netns: str) -> None:
    ip("link", "set", name, "netns", netns)
    ip("link", "set", name, "up", netns=netns)


def set_up(name: str, netns: str | None = None) -> None:
    ip("link", "set", name, "up", netns=netns)


def addresses(name: str, netns: str | None = None) -> set[str]:
    """The addresses on an interface as `addr/prefix`."""
    found = set()
    for entry in ip_json("addr", "show", "dev", name, netns=netns):
        for info in entry.get("addr_info", []):
            if info.get("scope") != "link":
                found.add(f"{info['local']}/{info['prefixlen']}")
    return found


def set_addresses(name: str, wanted: set[str], netns: str | None = None) -> None:
    """Make `wanted` the interface's exact (non-link-local) addresses."""
    have = addresses(name, netns)
    for cidr in have - wanted:
        ip("addr", "del", cidr, "dev", name, netns=netns)
    for cidr in wanted - have:
        ip("addr", "add", cidr, "dev", name, netns=netns)


def replace_default_route(gateway: str | None, netns: str, *, family: int = 4) -> None:
    """The namespace's default route via `gateway`, or none."""
    flag = "-6" if family == 6 else "-4"
    if gateway is None:
        ip(flag, "route", "flush", "default", netns=netns, check=False)
    else:
        ip(flag, "route", "replace", "default", "via", gateway, netns=netns)


def sysctl(key: str, value: str, netns: str) -> None:
    run(["sysctl", "-qw", f"{key}={value}"], netns=netns)


def check_ifname(name: str) -> None:
    if not name or len(name.encode()) > IFNAME_MAX:
        raise DataplaneError(f"interface name {name!r} must be 1-{IFNAME_MAX} bytes")
