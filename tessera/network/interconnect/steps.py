"""The step of an `interconnect.sync` task (tessera.network.interconnect.tasks):
`interconnect-N` brings the N-th interconnect's sides that this node runs to the database
as it is then, or stops them when the interconnect is gone. The task's result says, per
interconnect and side, what was done: `applied`, `unchanged`, `stopped`, or `not run
here` (its agent, on another node or not started yet, applies it itself)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from tessera.db.rows import InterconnectRow, TaskRow
from tessera.network.dataplane.iproute import DataplaneError
from tessera.network.interconnect import agent, service, sides
from tessera.runtime import Runtime

log = logging.getLogger(__name__)
NOT_HERE = "not run here"


def run_step(rt: Runtime, task_id: str, params: dict[str, Any], step: str) -> None:
    """Apply one interconnect's sides run on this node (stop them when it is gone)."""
    interconnect_id = params["interconnect_ids"][int(step.rpartition("-")[2])]
    with rt.sessions() as session:
        row = session.get(InterconnectRow, interconnect_id)
        named = repr(row.name) if row is not None else interconnect_id
    named = f"interconnect {named}"
    done = {
        which: _with_retries(
            rt, partial(_sync_side, rt, interconnect_id, which), f"side {which} of {named}"
        )
        for which in service.SIDES
    }
    with rt.sessions.begin() as session:
        task = session.get(TaskRow, task_id)
        if task is not None:
            task.result = {**(task.result or {}), interconnect_id: done}


def _sync_side(rt: Runtime, interconnect_id: str, which: str) -> str:
    """What was done to the side here."""
    data_dir = rt.settings.data_dir
    with sides.side_lock(data_dir, interconnect_id, which):
        realised = sides.load(data_dir, interconnect_id, which)
        if realised is None:
            return NOT_HERE
        with rt.sessions() as session:
            row = session.get(InterconnectRow, interconnect_id)
            current = service.plan(session, row, which) if row is not None else None
        if current is None:
            realised.stop()
            sides.forget(data_dir, interconnect_id, which)
            agent.forget_status(data_dir, interconnect_id, which)
            return "stopped"
        changed = sides.apply(realised, current, partial(_psk, rt, interconnect_id))
        sides.save(data_dir, interconnect_id, which, realised)
    return "applied" if changed else "unchanged"


def _psk(rt: Runtime, interconnect_id: str) -> str:
    with rt.sessions() as session:
        return service.psk(rt, service.get(session, interconnect_id))


def _with_retries(rt: Runtime, call: Callable[[], str], what: str) -> str:
    """Run `call`, waiting (doubling) and trying again while a daemon does not answer; the
    last failure is raised naming `what`."""
    wait = rt.settings.task_retry_interval_s
    for _ in range(rt.settings.task_retry_attempts - 1):
        try:
            return call()
        except DataplaneError as exc:
            log.warning("%s: %s; trying again in %.1fs", what, exc.message, wait)
            time.sleep(wait)
            wait *= 2
    try:
        return call()
    except DataplaneError as exc:
        raise DataplaneError(f"{what}: {exc.message}") from None
