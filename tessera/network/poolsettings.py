"""A KVM pool's network settings: where Tessera reaches the host's switch, and the host's
VXLAN endpoint. They are the pool's, not its libvirt URI's: the URL policy refuses unknown
URI options on purpose, and the switch is not libvirt's.

- `ovsdb`: the host's Open vSwitch database, `unix:<absolute path>` or `tcp:<host>:<port>`
  (OVS's own remote syntax). Unset: `tcp:<libvirt host>:6640`, OVS's usual manager port.
- `netns`: the network namespace on this machine that stands for the host (the lab's
  simulated hosts); Tessera runs the host's Linux bridge and VXLAN commands there. A
  real remote host has no such place (Tessera runs no agent on it), so VXLAN segments
  need this setting.
- `vxlan_local_ip`: the host's tunnel endpoint address; `vxlan_group`: the multicast group
  its VXLAN devices join (head-end free flooding: no per-peer list to keep).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from tessera.errors import InvalidInputError
from tessera.inventory.pools import get_provider
from tessera.runtime import Runtime

_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
_NETNS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_PATH = re.compile(r"^/[A-Za-z0-9_./-]{1,255}$")
KEYS = ("ovsdb", "netns", "vxlan_local_ip", "vxlan_group")


@dataclass(frozen=True, slots=True)
class PoolNetworkSettings:
    ovsdb: str | None = None
    netns: str | None = None
    vxlan_local_ip: str | None = None
    vxlan_group: str | None = None

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def parse(raw: Mapping[str, object] | None) -> PoolNetworkSettings:
    """Settings from the API or the row; a clear 422 for anything else."""
    if not raw:
        return PoolNetworkSettings()
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise InvalidInputError(
            f"unknown network setting(s) {', '.join(unknown)}; known: {', '.join(KEYS)}"
        )
    values: dict[str, str | None] = {}
    for key in KEYS:
        value = raw.get(key)
        if value is not None and not isinstance(value, str):
            raise InvalidInputError(f"network setting {key} must be a string")
        values[key] = value or None
    if values["ovsdb"] is not None:
        check_ovsdb(values["ovsdb"])
    if values["netns"] is not None and not _NETNS.match(values["netns"]):
        raise InvalidInputError("netns must be a namespace name: letters, digits, '_.-'")
    local, group = values["vxlan_local_ip"], values["vxlan_group"]
    if local is not None:
        _address(local, "vxlan_local_ip", multicast=False)
    if group is not None:
        _address(group, "vxlan_group", multicast=True)
    return PoolNetworkSettings(**values)


def check_ovsdb(remote: str) -> None:
    """`unix:/absolute/path` or `tcp:<host>:<port>`: nothing else (no `ssl:`, no
    passive `p...:` remotes, no options)."""
    scheme, _, rest = remote.partition(":")
    if scheme == "unix":
        if not _PATH.match(rest) or "/../" in f"{rest}/":
            raise InvalidInputError(
                f"ovsdb {remote!r}: a unix socket is unix:/absolute/path (letters, digits, '_./-')"
            )
        return
    if scheme == "tcp":
        host, _, port = rest.rpartition(":")
        host = host.strip("[]")
        if host and port.isdigit() and 0 < int(port) < 65536 and _host_ok(host):
            return
    raise InvalidInputError(f"ovsdb {remote!r} must be unix:/path/to/db.sock or tcp:<host>:<port>")


def _host_ok(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return bool(_HOST.match(host))
    return True


def _address(value: str, key: str, *, multicast: bool) -> None:
    try:
        address = ipaddress.IPv4Address(value)
    except ValueError:
        raise InvalidInputError(f"{key} must be an IPv4 address, not {value!r}") from None
    if address.is_multicast != multicast:
        kind = "a multicast" if multicast else "a unicast"
        raise InvalidInputError(f"{key} must be {kind} address, not {value}")


def store(rt: Runtime, provider_id: str, settings: PoolNetworkSettings) -> None:
    """Replace a KVM pool's settings; a vSphere pool takes none (its switches are
    vCenter's)."""
    with rt.sessions.begin() as session:
        row = get_provider(session, provider_id)
        if row.kind != "libvirt":
            raise InvalidInputError(f"pool {row.name!r} ({row.kind}) takes no network settings")
        row.network_settings = settings.as_dict() or None
