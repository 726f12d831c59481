"""strongSwan per VPN router: charon with the kernel-libipsec plugin (ESP in userspace
through a TUN device, `ipsec0`, since kernel ESP is absent here), its own
strongswan.conf, vici socket and pid file under `home`, configured through swanctl.

charon's pid file path is fixed at build time (/run/charon.pid), so each instance runs in
a private mount namespace with `home/run` mounted over /run. ESP is UDP-encapsulated
(libipsec sends and receives it through charon's sockets). The pre-shared key is written
only into `secrets.conf` (0600), which swanctl.conf includes; it never reaches a log.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from tessera.network.dataplane import daemons
from tessera.network.dataplane.iproute import DataplaneError

CHARON = Path("/usr/lib/ipsec/charon")
LIBIPSEC = Path("/usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so")
# Plugins charon needs for PSK IKEv2 with AES/SHA-2 and X25519, routes through libipsec.
PLUGINS = (
    "random nonce aes sha1 sha2 hmac kdf pem pkcs1 pubkey x509 curve25519 gmp"
    " kernel-libipsec kernel-netlink socket-default vici"
)
IKE_PROPOSALS = "aes128-sha256-x25519"
ESP_PROPOSALS = "aes128-sha256"
_QUOTE = re.compile(r'["\\\n]')
_COUNTERS = re.compile(r"^\s*(in|out)\s+\S+,\s+(\d+) bytes,\s+(\d+) packets", re.MULTILINE)


def available() -> str | None:
    """None when strongSwan with kernel-libipsec is installed, else what is missing."""
    if not CHARON.exists():
        return f"{CHARON} (Debian package strongswan-charon)"
    if shutil.which("swanctl") is None:
        return "swanctl (Debian package strongswan-swanctl)"
    if not LIBIPSEC.exists():
        return f"{LIBIPSEC} (Debian package libcharon-extra-plugins)"
    return None


def _ts(prefixes: Sequence[str]) -> str:
    return ",".join(prefixes)


class StrongswanInstance:
    """charon for one VPN router; one IKE connection (the interconnect) on it."""

    def __init__(self, home: Path, netns: str) -> None:
        self.home = home.resolve()
        self.netns = netns
        self.vici = self.home / "charon.vici"
        self.pidfile = self.home / "run" / "charon.pid"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def _env(self) -> dict[str, str]:
        return {"STRONGSWAN_CONF": str(self.home / "strongswan.conf")}

    def running(self) -> bool:
        return daemons.read_pid(self.pidfile) is not None

    def start(self) -> None:
        """Start charon (a running one is kept) and wait for its vici socket."""
        if self.running():
            return
        (self.home / "run").mkdir(parents=True, exist_ok=True)
        self.vici.unlink(missing_ok=True)
        (self.home / "strongswan.conf").write_text(
            "charon {\n"
            f"  load = {PLUGINS}\n"
            "  install_routes = yes\n"
            "  filelog {\n"
            f"    charon {{\n      path = {self.home / 'charon.log'}\n      default = 1\n    }}\n"
            "  }\n"
            "  plugins {\n"
            f"    vici {{\n      socket = unix://{self.vici}\n    }}\n"
            "  }\n"
            "}\n"
            "swanctl {\n  load = pem pkcs1 x509 pubkey aes sha1 sha2 hmac random nonce\n}\n"
        )
        script = f'mount --bind "$1" /run && exec {CHARON}'
        self._process = daemons.spawn(
            ["unshare", "--mount", "--propagation", "private",
             "sh", "-c", script, "charon", str(self.home / "run")],
            netns=self.netns,
            log=self.home / "charon.out",
            env=self._env,
        )  # fmt: skip
        daemons.wait_for(self.vici.exists, f"charon in {self.netns}")

    def swanctl(self, *args: str, timeout: float = 30.0) -> str:
        return daemons.run(
            ["swanctl", *args, "--uri", f"unix://{self.vici}"], env=self._env, timeout=timeout
        ).stdout

    def configure(
        self,
        name: str,
        *,
        local_addr: str,
        remote_addr: str,
        local_ts: Sequence[str],
        remote_ts: Sequence[str],
        psk: str,
    ) -> None:
        """Load the connection `name` (replacing an older one of that name)."""
        if _QUOTE.search(psk):
            raise DataplaneError("the pre-shared key may not hold quotes, backslashes or newlines")
        secrets = self.home / "secrets.conf"
        fd = os.open(secrets, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(
                f"secrets {{\n  ike-{name} {{\n    id-local = {local_addr}\n"
                f'    id-remote = {remote_addr}\n    secret = "{psk}"\n  }}\n}}\n'
            )
        os.chmod(secrets, 0o600)
        conf = self.home / "swanctl.conf"
        conf.write_text(
            f"connections {{\n  {name} {{\n    version = 2\n"
            f"    local_addrs = {local_addr}\n    remote_addrs = {remote_addr}\n"
            f"    proposals = {IKE_PROPOSALS}\n    encap = yes\n    dpd_delay = 5s\n"
            f"    local {{\n      auth = psk\n      id = {local_addr}\n    }}\n"
            f"    remote {{\n      auth = psk\n      id = {remote_addr}\n    }}\n"
            f"    children {{\n      {name} {{\n"
            f"        local_ts = {_ts(local_ts)}\n        remote_ts = {_ts(remote_ts)}\n"
            f"        esp_proposals = {ESP_PROPOSALS}\n        start_action = trap\n"
            f"        dpd_action = restart\n      }}\n    }}\n  }}\n}}\n"
            f"include {secrets}\n"
        )
        self.swanctl("--load-all", "--clear", "--file", str(conf))

    def initiate(self, name: str) -> None:
        """Bring the connection's child SA up now (else the first packet does)."""
        self.swanctl("--initiate", "--child", name, "--timeout", "20", timeout=30)

    def rekey(self, name: str) -> None:
        """After a change of traffic selectors: the old SA goes, a new one comes up."""
        self.swanctl("--terminate", "--ike", name, "--timeout", "10", timeout=20)
        self.initiate(name)

    def counters(self) -> dict[str, tuple[int, int]]:
        """Bytes and packets of the established child SAs: {"in": (bytes, packets),
        "out": ...}, summed."""
        found = {"in": (0, 0), "out": (0, 0)}
        for way, size, packets in _COUNTERS.findall(self.swanctl("--list-sas")):
            have = found[way]
            found[way] = (have[0] + int(size), have[1] + int(packets))
        return found

    def established(self, name: str) -> bool:
        return "INSTALLED" in self.swanctl("--list-sas", "--ike", name)

    def stop(self) -> None:
        """Stop charon: its SAs, the ipsec0 device and its routes go with it."""
        daemons.stop(self.pidfile)
        if self._process is not None:  # reap it: it was our child
            self._process.wait(timeout=daemons.STOP_TIMEOUT_S)
            self._process = None
