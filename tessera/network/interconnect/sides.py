"""The sides of interconnects a node runs, recorded in its data folder, so that any
process of the node can bring a side up to date: the agent that started its daemons and
the `interconnect.sync` task a subnet change queues (tessera.network.interconnect.tasks).

A side's record names its daemons (where their files are) and what was last applied to
them. Applying takes the side's file lock, computes the side's plan from the database
then, and changes the daemons only where that plan differs from the record: whoever comes
second finds nothing to do, so an IPsec tunnel is not rekeyed twice for one change, and
the last to apply leaves the latest subnets applied whatever order changes came in.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tessera.network.dataplane.iproute import DataplaneError
from tessera.network.interconnect.frr import FrrInstance
from tessera.network.interconnect.gre import GreEndpoint
from tessera.network.interconnect.model import InterconnectKind, Plan
from tessera.network.interconnect.strongswan import StrongswanInstance

SIDES_DIR = "interconnect-sides"
Applied = dict[str, tuple[str, ...]]


@dataclass
class Realised:
    """One side's daemons, as started (or found again from its record); `home` is their
    folder (FRR's keeps its log there)."""

    kind: InterconnectKind
    netns: str
    home: Path
    frr: FrrInstance | None = None
    ipsec: StrongswanInstance | None = None
    gre: GreEndpoint | None = None
    applied: Applied = field(default_factory=dict)

    def running(self) -> bool:
        if self.frr is not None:
            return self.frr.running()
        if self.ipsec is not None:
            return self.ipsec.running()
        return self.gre is not None and self.gre.running()

    def stop(self) -> None:
        for daemon in (self.frr, self.ipsec, self.gre):
            if daemon is not None:
                daemon.stop()


def _record(data_dir: Path, interconnect_id: str, which: str) -> Path:
    return data_dir / SIDES_DIR / f"{interconnect_id}-{which}.json"


@contextmanager
def side_lock(data_dir: Path, interconnect_id: str, which: str) -> Iterator[None]:
    """Held while a side's daemons are changed or its record written."""
    path = _record(data_dir, interconnect_id, which).with_suffix(".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def save(data_dir: Path, interconnect_id: str, which: str, realised: Realised) -> None:
    """Record a side as run here (the lock held)."""
    body: dict[str, object] = {
        "kind": realised.kind.value,
        "netns": realised.netns,
        "home": str(realised.home),
        "applied": {k: list(v) for k, v in realised.applied.items()},
    }
    if realised.frr is not None:
        body["frr"] = {
            "name": realised.frr.home.name,
            "interface": realised.frr.interface,
            "transit": realised.frr.transit,
        }
    path = _record(data_dir, interconnect_id, which)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(body))
    tmp.replace(path)


def load(data_dir: Path, interconnect_id: str, which: str) -> Realised | None:
    """The side as recorded here; None when this node does not run it."""
    try:
        found = json.loads(_record(data_dir, interconnect_id, which).read_text())
    except FileNotFoundError:
        return None
    kind, netns, home = InterconnectKind(found["kind"]), str(found["netns"]), Path(found["home"])
    applied = {k: tuple(v) for k, v in found["applied"].items()}
    realised = Realised(kind, netns, home, applied=applied)
    if kind.routed:
        frr = found["frr"]
        realised.frr = FrrInstance(frr["name"], netns, home)
        realised.frr.kind, realised.frr.interface = kind, frr["interface"]
        realised.frr.transit = frr["transit"]
    elif kind is InterconnectKind.IPSEC:
        realised.ipsec = StrongswanInstance(home, netns)
    else:
        realised.gre = GreEndpoint(home, netns)
    return realised


def forget(data_dir: Path, interconnect_id: str, which: str) -> None:
    """This node runs the side no more (the lock held)."""
    _record(data_dir, interconnect_id, which).unlink(missing_ok=True)


def apply(realised: Realised, plan: Plan, psk: Callable[[], str]) -> bool:
    """Bring one side's running daemons to `plan` where it differs from what was applied
    last (the lock held, `realised.applied` read from the record); whether anything
    changed. Daemons that do not run are a DataplaneError (retried by the task)."""
    wanted = {"local": plan.local_prefixes, "remote": plan.remote_prefixes}
    if realised.applied == wanted:
        return False
    if not realised.running():
        raise DataplaneError(
            f"its daemons in {realised.netns} are not running (is its agent stopped?)"
        )
    if realised.frr is not None:
        realised.frr.announce(plan)
    elif realised.ipsec is not None:
        realised.ipsec.configure(
            plan.name,
            local_addr=plan.local.underlay_ip,
            remote_addr=plan.peer.underlay_ip,
            local_ts=plan.local_prefixes,
            remote_ts=plan.remote_prefixes,
            psk=psk(),
        )
        if realised.applied:  # selectors changed on a live tunnel
            realised.ipsec.rekey(plan.name)
    elif realised.gre is not None:
        assert plan.peer.tunnel_ip
        realised.gre.route(plan.remote_prefixes, plan.peer.tunnel_ip.split("/")[0])
    realised.applied = wanted
    return True
