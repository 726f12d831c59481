"""Open vSwitch, one instance per KVM host (or network node), started by Tessera itself.

There is no systemd here and each simulated host needs its own switch, so an instance
runs `ovsdb-server` and `ovs-vswitchd` with its own database, run and log folder under
`home`. `ovs-vswitchd` runs inside the host's network namespace (when given), so the
taps of its bridges and the ports it opens live there; bridges use the userspace
(`netdev`) datapath, the one that works on this machine.

`Ovs` speaks to any OVS database by its remote (`unix:<path>` here, `tcp:<host>:6640`
for a real host): the realiser needs nothing else.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tessera.network.dataplane import daemons
from tessera.network.dataplane.iproute import run

SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")


@dataclass(frozen=True)
class Ovs:
    """`ovs-vsctl` against one database. Every command waits at most `timeout_s`, and
    `--no-wait` spares waiting for ovs-vswitchd to apply it (ports are checked by use)."""

    remote: str
    timeout_s: int = 10

    def vsctl(self, *args: str) -> str:
        done = run(
            ["ovs-vsctl", f"--db={self.remote}", f"--timeout={self.timeout_s}", *args],
            timeout=self.timeout_s + 5,
        )
        return done.stdout.strip()

    def ensure_bridge(self, bridge: str, external_ids: Mapping[str, str] | None = None) -> None:
        ids = [f"external_ids:{k}={v}" for k, v in (external_ids or {}).items()]
        self.vsctl(
            "--may-exist", "add-br", bridge, "--",
            "set", "Bridge", bridge, "datapath_type=netdev", *ids,
        )  # fmt: skip

    def delete_bridge(self, bridge: str) -> None:
        self.vsctl("--if-exists", "del-br", bridge)

    def bridges(self) -> list[str]:
        return self.vsctl("list-br").split()

    def add_port(
        self,
        bridge: str,
        port: str,
        *,
        tag: int | None = None,
        external_ids: Mapping[str, str] | None = None,
    ) -> None:
        """Add (or re-set) a port; `tag` makes it an access port of that VLAN, none a trunk."""
        settings = [f"external_ids:{k}={v}" for k, v in (external_ids or {}).items()]
        settings.append(f"tag={tag}" if tag else "tag=[]")
        self.vsctl("--may-exist", "add-port", bridge, port, "--", "set", "Port", port, *settings)

    def delete_port(self, port: str) -> None:
        self.vsctl("--if-exists", "del-port", port)

    def set_tag(self, port: str, tag: int | None) -> None:
        self.vsctl("set", "Port", port, f"tag={tag}" if tag else "tag=[]")


class OvsInstance:
    """A private ovsdb-server + ovs-vswitchd. `start` is idempotent for a running
    instance; `stop` ends both and leaves `home` for the logs. With `manager_port`, the
    database also listens on 127.0.0.1:<port>, where Tessera reaches a host's switch."""

    def __init__(
        self, home: Path, *, netns: str | None = None, manager_port: int | None = None
    ) -> None:
        self.home = home.resolve()
        self.netns = netns
        self.manager_port = manager_port
        self.db_socket = self.home / "db.sock"
        self.ovs = Ovs(f"unix:{self.db_socket}")

    @property
    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "OVS_RUNDIR": str(self.home),
            "OVS_LOGDIR": str(self.home),
            "OVS_DBDIR": str(self.home),
            "OVS_SYSCONFDIR": str(self.home),
        }

    def _pid(self, daemon: str) -> int | None:
        return daemons.read_pid(self.home / f"{daemon}.pid")

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        db = self.home / "conf.db"
        if not db.exists():
            self._run(["ovsdb-tool", "create", str(db), str(SCHEMA)])
        if self._pid("ovsdb-server") is None:
            tcp = [f"--remote=ptcp:{self.manager_port}:127.0.0.1"] if self.manager_port else []
            self._run([
                "ovsdb-server", str(db), *tcp,
                f"--remote=punix:{self.db_socket}",
                "--remote=db:Open_vSwitch,Open_vSwitch,manager_options",
                f"--pidfile={self.home / 'ovsdb-server.pid'}",
                f"--unixctl={self.home / 'ovsdb-server.ctl'}",
                f"--log-file={self.home / 'ovsdb-server.log'}",
                "--detach", "--no-chdir",
            ])  # fmt: skip
            self._wait(self.db_socket.exists, "ovsdb-server's socket")
            self.ovs.vsctl("--no-wait", "init")
        if self._pid("ovs-vswitchd") is None:
            self._run(
                [
                    "ovs-vswitchd", f"unix:{self.db_socket}",
                    f"--pidfile={self.home / 'ovs-vswitchd.pid'}",
                    f"--unixctl={self.home / 'ovs-vswitchd.ctl'}",
                    f"--log-file={self.home / 'ovs-vswitchd.log'}",
                    "--detach", "--no-chdir",
                ],
                netns=self.netns,
            )  # fmt: skip
            self._wait(lambda: self._pid("ovs-vswitchd") is not None, "ovs-vswitchd")

    def stop(self) -> None:
        """End both daemons (vswitchd first, so it removes its taps); safe to repeat."""
        for daemon in ("ovs-vswitchd", "ovsdb-server"):
            daemons.stop(self.home / f"{daemon}.pid")

    def _run(self, cmd: list[str], netns: str | None = None) -> None:
        daemons.run(cmd, netns=netns, env=self._env)

    def _wait(self, ready: Callable[[], bool], what: str) -> None:
        daemons.wait_for(ready, what)
