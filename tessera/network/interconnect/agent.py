"""The agent that makes a gateway router's namespace match the database: it starts the
side's daemons (FRR, charon, or OVS for GRE), applies what the side must announce or
reach, and stops them. A region's network node runs one for its own side; the tests run
both sides on one machine.

Each side it starts is recorded in the node's data folder (tessera.network.interconnect.
sides), where the `interconnect.sync` task that a subnet change queues finds it and
applies the change at once. The agent's own `sync` stays the reconciler: it is cheap when
nothing changed (it compares with what was applied last, by either of them), so it may
run every few seconds to catch what a failed task left behind. An interconnect deleted
since is stopped (the task stops the sides it finds recorded, too).

Each `sync` also reads whether each side's tunnel or session is up and leaves it in the
node's data folder (one small file per side, with the agent's pid), where the API of the
same node reads it (`read_status`): a side no live agent here runs is `unknown`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from netaddr import IPNetwork  # type: ignore[import-untyped]

from tessera.errors import NotFoundError
from tessera.network.dataplane import daemons
from tessera.network.dataplane.iproute import DataplaneError
from tessera.network.interconnect import service, sides
from tessera.network.interconnect.frr import FrrInstance
from tessera.network.interconnect.gre import GreEndpoint
from tessera.network.interconnect.model import InterconnectKind, Plan, TunnelState
from tessera.network.interconnect.sides import Realised
from tessera.network.interconnect.strongswan import StrongswanInstance
from tessera.runtime import Runtime

STATUS_DIR = "interconnect-status"


@dataclass(frozen=True, slots=True)
class SideStatus:
    """One side's tunnel state, and when the agent read it (None: never here)."""

    state: TunnelState = TunnelState.UNKNOWN
    checked_at: datetime | None = None


def _status_file(data_dir: Path, interconnect_id: str, which: str) -> Path:
    return data_dir / STATUS_DIR / f"{interconnect_id}-{which}.json"


def forget_status(data_dir: Path, interconnect_id: str, which: str) -> None:
    _status_file(data_dir, interconnect_id, which).unlink(missing_ok=True)


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
        self.plans: dict[tuple[str, str], Plan] = {}

    @property
    def _data_dir(self) -> Path:
        return self.rt.settings.data_dir

    def _plan(self, interconnect_id: str, which: str) -> Plan:
        with self.rt.sessions() as session:
            return service.plan(session, service.get(session, interconnect_id), which)

    def _psk(self, interconnect_id: str) -> str:
        with self.rt.sessions() as session:
            return service.psk(self.rt, service.get(session, interconnect_id))

    def up(self, interconnect_id: str, which_sides: tuple[str, ...] = service.SIDES) -> None:
        """Start and configure the given sides, recorded as run here; an IPsec tunnel is
        then initiated from the first."""
        plans = [self._plan(interconnect_id, which) for which in which_sides]
        for which, plan in zip(which_sides, plans, strict=True):
            home = (self.home / f"{plan.name}-{which}").resolve()
            realised = Realised(plan.kind, plan.local.namespace, home)
            key = (plan.interconnect_id, which)
            self.sides[key], self.plans[key] = realised, plan
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
            with sides.side_lock(self._data_dir, *key):
                sides.save(self._data_dir, *key, realised)
            self._apply(key)
        first = self.sides.get((plans[0].interconnect_id, which_sides[0])) if plans else None
        if first is not None and first.ipsec is not None:
            first.ipsec.initiate(plans[0].name)

    def _apply(self, key: tuple[str, str]) -> bool:
        """Bring one side to what the database says now, unless that was applied already
        (here or by a task); whether anything changed."""
        realised = self.sides[key]
        with sides.side_lock(self._data_dir, *key):
            recorded = sides.load(self._data_dir, *key)
            realised.applied = recorded.applied if recorded is not None else {}
            plan = self._plan(*key)
            self.plans[key] = plan
            changed = sides.apply(realised, plan, lambda: self._psk(key[0]))
            sides.save(self._data_dir, *key, realised)
        return changed

    def sync(self, interconnect_id: str) -> list[str]:
        """Apply what changed in the database to the running sides; the sides changed.
        An interconnect deleted since is stopped here."""
        changed = []
        try:
            for key in [k for k in self.sides if k[0] == interconnect_id]:
                if self._apply(key):
                    changed.append(key[1])
        except NotFoundError:
            self.down(interconnect_id)
            return []
        self.report(interconnect_id)
        return changed

    def status(self, interconnect_id: str) -> dict[str, TunnelState]:
        """Whether each side run here has its tunnel or session up, read live."""
        found = {}
        for (ic, which), realised in self.sides.items():
            if ic != interconnect_id:
                continue
            plan = self.plans[(ic, which)]
            try:
                if realised.frr is not None:
                    up = realised.frr.session_up(plan)
                elif realised.ipsec is not None:
                    up = realised.ipsec.established(plan.name)
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
            path = _status_file(self._data_dir, interconnect_id, which)
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
            self.plans.pop(key, None)
            with sides.side_lock(self._data_dir, *key):
                sides.forget(self._data_dir, *key)
            forget_status(self._data_dir, *key)
            realised.stop()

    def close(self) -> None:
        for interconnect_id in {k[0] for k in self.sides}:
            self.down(interconnect_id)
