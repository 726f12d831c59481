"""FRR per gateway router: zebra plus bgpd or ospfd, started inside the router's
namespace with their own config, pid files, zebra socket and vty sockets under `home`
(no TCP vty), run as FRR's own user as its Debian package expects.

What a side announces is one prefix list, TESSERA-ANNOUNCE, that a route map applies to
the redistribution of connected routes: a tenant subnet is announced only once Tessera
lists it *and* the gateway reaches it, the transit link never. A change of announcements
is applied to the running daemons through vtysh (entries added and removed one by one, so
the others stay announced) and written to the config file for the next start.
"""

from __future__ import annotations

import json
import pwd
import shutil
from collections.abc import Sequence
from pathlib import Path

from netaddr import IPNetwork  # type: ignore[import-untyped]

from tessera.network.dataplane import daemons
from tessera.network.interconnect.model import InterconnectKind, Plan

FRR_LIB = Path("/usr/lib/frr")
# FRR reads its config and opens its sockets after dropping to its own user, so each
# instance's files live where that user reaches them (as the package's /run/frr).
RUN_ROOT = Path("/run/tessera-frr")
PREFIX_LIST = "TESSERA-ANNOUNCE"
# FRR's default user; its vty sockets belong to the group frrvty.
FRR_USER = "frr"
# Hello/keepalive timers short enough that a lost peer shows within seconds.
BGP_KEEPALIVE_S, BGP_HOLD_S = 1, 3
OSPF_HELLO_S, OSPF_DEAD_S = 1, 3


def available() -> str | None:
    """None when FRR is installed, else the missing piece (for a skip message)."""
    for tool in (FRR_LIB / "zebra", FRR_LIB / "bgpd", FRR_LIB / "ospfd"):
        if not tool.exists():
            return f"{tool} (Debian package frr)"
    if shutil.which("vtysh") is None:
        return "vtysh (Debian package frr)"
    return None


def _announce_lines(prefixes: Sequence[str]) -> list[str]:
    return [f"ip prefix-list {PREFIX_LIST} permit {p}" for p in prefixes]


def render(plan: Plan, interface: str, transit: str, home: Path) -> str:
    """The routing daemon's whole config for `plan`; `interface` holds the transit link
    `transit` (a CIDR) toward the peer."""
    local, peer = plan.local, plan.peer
    lines = [f"hostname {plan.name}-{local.region}", f"log file {home / 'frr.log'}"]
    lines += _announce_lines(plan.local_prefixes)
    lines += [f"route-map {PREFIX_LIST} permit 10", f" match ip address prefix-list {PREFIX_LIST}"]
    if plan.kind is InterconnectKind.BGP:
        lines += [
            f"router bgp {local.asn}",
            f" bgp router-id {local.underlay_ip}",
            " no bgp ebgp-requires-policy",
            " bgp route-map delay-timer 1",
            f" timers bgp {BGP_KEEPALIVE_S} {BGP_HOLD_S}",
            f" neighbor {peer.underlay_ip} remote-as {peer.asn}",
            f" neighbor {peer.underlay_ip} timers connect 1",
            " address-family ipv4 unicast",
            f"  redistribute connected route-map {PREFIX_LIST}",
            " exit-address-family",
        ]
    else:
        lines += [
            f"interface {interface}",
            f" ip ospf hello-interval {OSPF_HELLO_S}",
            f" ip ospf dead-interval {OSPF_DEAD_S}",
            " ip ospf network point-to-point",
            "router ospf",
            f" ospf router-id {local.underlay_ip}",
            f" network {IPNetwork(transit).cidr} area {plan.ospf_area}",
            f" redistribute connected route-map {PREFIX_LIST}",
        ]
    return "\n".join(lines) + "\n"


class FrrInstance:
    """zebra + one routing daemon for one side of a routed interconnect: config, sockets
    and pid files in RUN_ROOT/`name`; `stop` removes that folder and keeps the log in
    `log_dir`."""

    def __init__(self, name: str, netns: str, log_dir: Path) -> None:
        self.home = RUN_ROOT / name
        self.netns = netns
        self.log_dir = log_dir
        self.kind: InterconnectKind | None = None
        self.interface = self.transit = ""

    def _daemons(self) -> list[str]:
        assert self.kind is not None
        return ["zebra", "bgpd" if self.kind is InterconnectKind.BGP else "ospfd"]

    def _pidfile(self, daemon: str) -> Path:
        return self.home / f"{daemon}.pid"

    def running(self) -> bool:
        return self.kind is not None and all(
            daemons.read_pid(self._pidfile(d)) for d in self._daemons()
        )

    def start(self, plan: Plan, interface: str, transit: str) -> None:
        """Write the configs and start zebra and the routing daemon (a running one is
        kept); `interface` holds the transit link `transit` toward the peer."""
        self.kind, self.interface, self.transit = plan.kind, interface, transit
        RUN_ROOT.mkdir(mode=0o755, exist_ok=True)
        self.home.mkdir(mode=0o750, exist_ok=True)
        user = pwd.getpwnam(FRR_USER)
        shutil.chown(self.home, user.pw_uid, user.pw_gid)
        routing, hostname = self._daemons()[1], f"{plan.name}-{plan.local.region}"
        files = {
            "zebra": f"hostname {hostname}\nlog file {self.home / 'frr.log'}\n",
            routing: render(plan, interface, transit, self.home),
        }
        for daemon, text in files.items():
            path = self.home / f"{daemon}.conf"
            path.write_text(text)
            shutil.chown(path, user.pw_uid, user.pw_gid)
        for daemon in self._daemons():
            if daemons.read_pid(self._pidfile(daemon)):
                continue
            daemons.run(
                [
                    str(FRR_LIB / daemon), "-d",
                    "-f", str(self.home / f"{daemon}.conf"),
                    "-i", str(self._pidfile(daemon)),
                    "-z", str(self.home / "zserv.api"),
                    "--vty_socket", str(self.home),
                    "-P", "0",
                ],
                netns=self.netns,
            )  # fmt: skip
            vty = self.home / f"{daemon}.vty"
            daemons.wait_for(vty.exists, f"FRR {daemon} in {self.netns}")

    def vtysh(self, *commands: str) -> str:
        args = ["vtysh", "--vty_socket", str(self.home)]
        for command in commands:
            args += ["-c", command]
        return daemons.run(args).stdout

    def announced(self) -> dict[str, int]:
        """The prefixes the running daemons' TESSERA-ANNOUNCE list permits, with the
        sequence number of each entry."""
        found = {}
        for line in self.vtysh("show running-config").splitlines():
            words = line.split()
            if words[:4] == ["ip", "prefix-list", PREFIX_LIST, "seq"] and "permit" in words:
                found[words[-1]] = int(words[4])
        return found

    def session_up(self, plan: Plan) -> bool:
        """Whether the BGP session to the peer is established (OSPF: a neighbour is full)."""
        if plan.kind is InterconnectKind.BGP:
            found = json.loads(self.vtysh(f"show bgp neighbors {plan.peer.underlay_ip} json"))
            return bool(found.get(plan.peer.underlay_ip, {}).get("bgpState") == "Established")
        found = json.loads(self.vtysh("show ip ospf neighbor json"))
        return any(
            str(entry.get("nbrState") or entry.get("state") or "").startswith("Full")
            for entries in found.get("neighbors", {}).values()
            for entry in entries
        )

    def announce(self, plan: Plan) -> tuple[list[str], list[str]]:
        """Make the running daemons announce exactly `plan.local_prefixes`; (added,
        withdrawn). The config file is rewritten for the next start."""
        have = self.announced()
        wanted = list(plan.local_prefixes)
        added = [p for p in wanted if p not in have]
        gone = [p for p in have if p not in wanted]
        commands = [f"no ip prefix-list {PREFIX_LIST} seq {have[p]} permit {p}" for p in gone]
        commands += _announce_lines(added)
        if commands:
            self.vtysh("configure terminal", *commands)
        routing = self._daemons()[1]
        (self.home / f"{routing}.conf").write_text(
            render(plan, self.interface, self.transit, self.home)
        )
        return added, gone

    def stop(self) -> None:
        """Stop the routing daemon, then zebra (which removes the routes it installed)."""
        for daemon in ("bgpd", "ospfd", "zebra"):
            daemons.stop(self._pidfile(daemon))
        if (self.home / "frr.log").exists():
            self.log_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.home / "frr.log", self.log_dir / "frr.log")
        shutil.rmtree(self.home, ignore_errors=True)
