"""The agent that makes a gateway router's namespace match the database: it starts the
side's daemons (FRR, charon, or OVS for GRE), applies what the side must announce or
reach, and stops them. A region's network node runs one for its own side; the tests run
both sides on one machine.

`sync` is cheap when nothing changed (it compares and applies only differences), so it is
meant to be called whenever subnets change, or every few seconds.

Each `sync` also reads whether each side's tunnel or session is up and leaves it in the
node's data folder (one small file per side, with the agent's pid), where the API of the
same node reads it (`read_status`): a side no live agent here runs is `unknown`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from netaddr import IPNetwork  # type: ignore[import-untyped]

from tessera.network.dataplane import daemons
from tessera.network.dataplane.iproute import DataplaneError
from tessera.network.interconnect import service
from tessera.network.interconnect.frr import FrrInstance
from tessera.network.interconnect.gre import GreEndpoint
from tessera.network.interconnect.model import InterconnectKind, Plan, TunnelState
from tessera.network.interconnect.strongswan import StrongswanInstance
from tessera.runtime import Runtime


@dataclass
class Realised:
    """One side's daemons, as started."""

    plan: Plan
    frr: FrrInstance | None = None
    ipsec: StrongswanInstance | None = None
    gre: GreEndpoint | None = None
    applied: dict[str, tuple[str, ...]] = field(default_factory=dict)


STATUS_DIR = "interconnect-status"


@dataclass(frozen=True, slots=True)
class SideStatus:
    """One side's tunnel state, and when the agent read it (None: never here)."""

    state: TunnelState = TunnelState.UNKNOWN
    checked_at: datetime | None = None


def _status_file(data_dir: Path, interconnect_id: str, which: str) -> Path:
    return data_dir / STATUS_DIR / f"{interconnect_id}-{which}.json"


def read_status(data_dir: Path, interconnect_id: str, which: str) -> SideStatus:
    """What the agent running this side on this node saw last; unknown when none runs it
    here (no file, or the agent that wrote it is gone)."""
    try:
        found = json.loads(_status_file(data_dir, interconnect_id, which).read_text())
        if not daemons.alive(int(found["pid"])):
            return SideStatus()
        return SideStatus(TunnelState(found["state"]), datetime.fromisoformat(found["checked_at"]))
    except (OSError, ValueError, KeyError, TypeError):
        return SideStatus()


class InterconnectAgent:
    """Realises sides of interconnects under `home` (one folder per side)."""

    def __init__(self, rt: Runtime, home: Path) -> None:
        self.rt = rt
        self.home = home
        self.sides: dict[tuple[str, str], Realised] = {}

    def _plan(self, interconnect_id: str, which: str) -> Plan:
        with self.rt.sessions() as session:
            return service.plan(session, service.get(session, interconnect_id), which)

    def _psk(self, interconnect_id: str) -> str:
        with self.rt.sessions() as session:
            return service.psk(self.rt, service.get(session, interconnect_id))

    def up(self, interconnect_id: str, sides: tuple[str, ...] = service.SIDES) -> None:
        """Start and configure the given sides; an IPsec tunnel is then initiated from
        the first."""
        plans = [self._plan(interconnect_id, which) for which in sides]
        for which, plan in zip(sides, plans, strict=True):
            home = self.home / f"{plan.name}-{which}"
            realised = Realised(plan)
            self.sides[(plan.interconnect_id, which)] = realised
            if plan.kind.routed:
                held = daemons.interface_of(plan.local.underlay_ip, plan.local.namespace)
                if held is None:
                    raise DataplaneError(
                        f"no interface in {plan.local.namespace} holds {plan.local.underlay_ip}"
                    )
                transit = str(IPNetwork(f"{plan.local.underlay_ip}/{held[1]}").cidr)
                realised.frr = FrrInstance(
                    f"{plan.interconnect_id}-{which}", plan.local.namespace, home
                )
                realised.frr.start(plan, held[0], transit)
            elif plan.kind is InterconnectKind.IPSEC:
                realised.ipsec = StrongswanInstance(home, plan.local.namespace)
                realised.ipsec.start()
            else:
                assert plan.local.tunnel_ip is not None
                realised.gre = GreEndpoint(home, plan.local.namespace)
                realised.gre.start(
                    plan.local.underlay_ip, plan.peer.underlay_ip, plan.local.tunnel_ip
                )
            self._apply(realised, plan)
        first = self.sides.get((plans[0].interconnect_id, sides[0])) if plans else None
        if first is not None and first.ipsec is not None:
            first.ipsec.initiate(first.plan.name)

    def _apply(self, realised: Realised, plan: Plan) -> bool:
        """Bring one side's daemons to `plan`; whether anything changed."""
        wanted = {"local": plan.local_prefixes, "remote": plan.remote_prefixes}
        if realised.applied == wanted:
            return False
        if realised.frr is not None:
            realised.frr.announce(plan)
        elif realised.ipsec is not None:
            realised.ipsec.configure(
                plan.name,
                local_addr=plan.local.underlay_ip,
                remote_addr=plan.peer.underlay_ip,
                local_ts=plan.local_prefixes,
                remote_ts=plan.remote_prefixes,
                psk=self._psk(plan.interconnect_id),
            )
            if realised.applied:  # selectors changed on a live tunnel
                realised.ipsec.rekey(plan.name)
        elif realised.gre is not None:
            assert plan.peer.tunnel_ip
            realised.gre.route(plan.remote_prefixes, plan.peer.tunnel_ip.split("/")[0])
        realised.plan = plan
        realised.applied = wanted
        return True

    def sync(self, interconnect_id: str) -> list[str]:
        """Apply what changed in the database to the running sides; the sides changed."""
        changed = []
        for (ic, which), realised in self.sides.items():
            if ic == interconnect_id and self._apply(realised, self._plan(ic, which)):
                changed.append(which)
        self.report(interconnect_id)
        return changed

    def status(self, interconnect_id: str) -> dict[str, TunnelState]:
        """Whether each side run here has its tunnel or session up, read live."""
        found = {}
        for (ic, which), realised in self.sides.items():
            if ic != interconnect_id:
                continue
            try:
                if realised.frr is not None:
                    up = realised.frr.session_up(realised.plan)
                elif realised.ipsec is not None:
                    up = realised.ipsec.established(realised.plan.name)
                else:
                    up = realised.gre is not None and realised.gre.up()
            except (DataplaneError, ValueError):  # a daemon that does not answer
                up = False
            found[which] = TunnelState.UP if up else TunnelState.DOWN
        return found

    def report(self, interconnect_id: str) -> dict[str, TunnelState]:
        """Read the sides' state (`status`) and leave it for the API (read_status)."""
        found = self.status(interconnect_id)
        now = datetime.now(UTC).isoformat()
        for which, state in found.items():
            path = _status_file(self.rt.settings.data_dir, interconnect_id, which)
            path.parent.mkdir(parents=True, exist_ok=True)
            body = {"pid": os.getpid(), "state": state.value, "checked_at": now}
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(body))
            tmp.replace(path)
        return found

    def down(self, interconnect_id: str) -> None:
        """Stop every daemon of the interconnect's sides (safe to repeat)."""
        for key in [k for k in self.sides if k[0] == interconnect_id]:
            realised = self.sides.pop(key)
            _status_file(self.rt.settings.data_dir, *key).unlink(missing_ok=True)
            for daemon in (realised.frr, realised.ipsec, realised.gre):
                if daemon is not None:
                    daemon.stop()

    def close(self) -> None:
        for interconnect_id in {k[0] for k in self.sides}:
            self.down(interconnect_id)
