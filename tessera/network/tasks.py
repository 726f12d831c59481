"""The steps of the segment tasks (and, handed on, of the router tasks in
tessera.network.l3tasks and the interconnect tasks in tessera.network.interconnect.tasks),
run by the task workflow (tessera.tasks.workflows).

One step per pool, so a crash re-runs the pool it interrupted only (each realiser verb is
safe to repeat): `realise-N` makes the segment on the N-th pool of the task, `update-N`
gives it its new VLAN id there, `unrealise-N` takes it off; then `activate` marks the
segment active, or `forget` deletes it. When a create or an update fails (or is
cancelled), `rollback` undoes it on every pool it had reached, so the pools are left as
they were: a create removes what it made, an update puts the old VLAN id back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from sqlalchemy.exc import IntegrityError

from tessera.db.rows import ProviderRow, SegmentRealisationRow, SegmentRow, TaskRow, utcnow
from tessera.domain.tasks import TaskKind
from tessera.errors import NotFoundError
from tessera.inventory.pools import endpoint_for
from tessera.network import l3tasks, poolsettings
from tessera.network.interconnect import steps as interconnect_steps
from tessera.network.interconnect import tasks as interconnect_tasks
from tessera.network.model import NetworkType, RealisationState, Segmentation, SegmentStatus
from tessera.network.realise import Realised, Realiser, SegmentSpec, realiser_class
from tessera.network.segments import segmentation_of
from tessera.providers import open_provider
from tessera.providers.base import Provider
from tessera.runtime import Runtime

log = logging.getLogger(__name__)

KINDS = frozenset(
    {
        TaskKind.SEGMENT_CREATE,
        TaskKind.SEGMENT_UPDATE,
        TaskKind.SEGMENT_DELETE,
        TaskKind.ROUTER_SYNC,
        TaskKind.INTERCONNECT_SYNC,
    }
)
_POOL_ACTIONS = {
    TaskKind.SEGMENT_CREATE: "realise",
    TaskKind.SEGMENT_UPDATE: "update",
    TaskKind.SEGMENT_DELETE: "unrealise",
}
_LAST = {
    TaskKind.SEGMENT_CREATE: "activate",
    TaskKind.SEGMENT_UPDATE: "activate",
    TaskKind.SEGMENT_DELETE: "forget",
}
# Runs a provider call, retrying transient faults (the workflow's policy); raises when it
# gives up.
Retry = Callable[[Runtime, Callable[[], None]], None]


def plan(kind: TaskKind, params: dict[str, Any]) -> list[str]:
    if kind is TaskKind.ROUTER_SYNC:
        return l3tasks.plan(params)
    if kind is TaskKind.INTERCONNECT_SYNC:
        return interconnect_tasks.plan(params)
    action = _POOL_ACTIONS[kind]
    return [f"{action}-{i}" for i in range(len(params["pools"]))] + [_LAST[kind]]


def owns(step: str) -> bool:
    """Whether a step of a plan is one of these (the workflow hands it here)."""
    if step in {"activate", "forget"} or l3tasks.owns(step) or interconnect_tasks.owns(step):
        return True
    action, _, index = step.rpartition("-")
    return action in _POOL_ACTIONS.values() and index.isdigit()


def _task(rt: Runtime, task_id: str) -> tuple[TaskKind, dict[str, Any]]:
    with rt.sessions() as session:
        row = session.get(TaskRow, task_id)
        if row is None:
            raise NotFoundError(f"task {task_id} is gone")
        return TaskKind(row.kind), dict(row.params)


def _connect(
    rt: Runtime, provider_id: str
) -> tuple[Provider, Callable[[Provider], Realiser]] | None:
    """A driver for the pool (not connected yet) and how to make its realiser (with the
    pool's network settings); None when the pool was removed from Tessera since."""
    with rt.sessions() as session:
        row = session.get(ProviderRow, provider_id)
        if row is None:
            return None
        kind, endpoint = row.kind, endpoint_for(rt, row)
        settings = poolsettings.parse(row.network_settings)
    cls = realiser_class(kind)
    if cls is None:
        raise NotFoundError(f"pool kind {kind} has no realiser")
    return open_provider(kind, endpoint), partial(cls, settings=settings)


def _spec(
    segment: SegmentRow, realisation: SegmentRealisationRow, seg: Segmentation
) -> SegmentSpec:
    return SegmentSpec(segment.id, realisation.native_name, seg)


def run_step(rt: Runtime, task_id: str, step: str, retry: Retry) -> None:
    kind, params = _task(rt, task_id)
    if kind is TaskKind.ROUTER_SYNC:
        l3tasks.run_step(rt, params, step)
        return
    if kind is TaskKind.INTERCONNECT_SYNC:
        interconnect_steps.run_step(rt, task_id, params, step)
        return
    segment_id = params["segment_id"]
    if step == "activate":
        _set_status(rt, segment_id, SegmentStatus.ACTIVE)
        return
    if step == "forget":
        with rt.sessions.begin() as session:
            segment = session.get(SegmentRow, segment_id)
            if segment is not None:
                session.delete(segment)
        return
    action, _, index = step.rpartition("-")
    provider_id = params["pools"][int(index)]
    with rt.sessions() as session:
        segment = session.get(SegmentRow, segment_id)
        realisation = session.get(SegmentRealisationRow, (segment_id, provider_id))
        if segment is None or realisation is None:
            raise NotFoundError(f"segment {segment_id} is gone")
        session.expunge_all()
    seg = segmentation_of(segment)
    if action != "realise" and not realisation.native_id:  # nothing was made there
        if action == "unrealise":
            _set_state(rt, segment_id, provider_id, RealisationState.REMOVED)
        return
    if action == "realise":
        _on_pool(rt, provider_id, retry, lambda r: _ensure(rt, r, segment, realisation, seg))
    elif action == "update":
        _on_pool(rt, provider_id, retry, lambda r: _change(r, segment, realisation, seg))
    else:
        _on_pool(
            rt, provider_id, retry, lambda r: _change(r, segment, realisation, seg, remove=True)
        )
        _set_state(rt, segment_id, provider_id, RealisationState.REMOVED)


def _on_pool(rt: Runtime, provider_id: str, retry: Retry, body: Callable[[Realiser], None]) -> None:
    """Run `body` with the pool's realiser, connected; a pool removed since is skipped."""

    def attempt() -> None:
        found = _connect(rt, provider_id)
        if found is None:
            return
        provider, make = found
        with provider:
            body(make(provider))

    retry(rt, attempt)


def _ensure(
    rt: Runtime,
    realiser: Realiser,
    segment: SegmentRow,
    realisation: SegmentRealisationRow,
    seg: Segmentation,
) -> None:
    made = realiser.ensure(_spec(segment, realisation, seg))
    with rt.sessions.begin() as session:
        row = session.get(SegmentRealisationRow, (segment.id, realisation.provider_id))
        if row is not None:
            row.state = RealisationState.REALISED.value
            row.native_id, row.location = made.native_id, made.location


def _change(
    realiser: Realiser,
    segment: SegmentRow,
    realisation: SegmentRealisationRow,
    seg: Segmentation,
    *,
    remove: bool = False,
) -> None:
    """Re-tag (or with `remove`, take off) what was made on a pool; a pool where nothing
    was made is left alone."""
    if realisation.native_id:
        realised = Realised(realisation.native_id, realisation.location)
        act = realiser.remove if remove else realiser.update
        act(realised, _spec(segment, realisation, seg))


def _set_state(rt: Runtime, segment_id: str, provider_id: str, state: RealisationState) -> None:
    with rt.sessions.begin() as session:
        row = session.get(SegmentRealisationRow, (segment_id, provider_id))
        if row is not None:
            row.state = state.value


def _set_status(rt: Runtime, segment_id: str, status: SegmentStatus) -> None:
    with rt.sessions.begin() as session:
        segment = session.get(SegmentRow, segment_id)
        if segment is not None:
            segment.status = status.value
            segment.updated_at = utcnow()


def rollback(rt: Runtime, task_id: str, retry: Retry) -> str:
    """Undo a failed or cancelled segment task on the pools it reached; what to add to
    its error. A delete is not undone: the segment stays, marked `error`, on the pools
    it could not be taken off (retry the task, or delete again)."""
    kind, params = _task(rt, task_id)
    if kind is TaskKind.ROUTER_SYNC:  # a router's namespace follows its records: re-run it
        return "; the network node is left as far as the task got (run it again)"
    if kind is TaskKind.INTERCONNECT_SYNC:  # the agents' syncs apply what it did not
        return "; the sides' agents apply what is left at their next sync"
    segment_id = params["segment_id"]
    if kind is TaskKind.SEGMENT_DELETE:
        _set_status(rt, segment_id, SegmentStatus.ERROR)
        return "; the segment stays on the pools it was not removed from"
    with rt.sessions() as session:
        segment = session.get(SegmentRow, segment_id)
        rows = [
            r
            for pid in params["pools"]
            if (r := session.get(SegmentRealisationRow, (segment_id, pid))) is not None
        ]
        session.expunge_all()
    if segment is None:
        return ""
    undone, failures = [], []
    if kind is TaskKind.SEGMENT_CREATE:
        seg = segmentation_of(segment)
        for row in rows:
            if row.state != RealisationState.REALISED.value:
                continue
            try:
                undo = partial(_change, segment=segment, realisation=row, seg=seg, remove=True)
                _on_pool(rt, row.provider_id, retry, undo)
            except Exception as exc:
                failures.append(_failure(row.provider_id, exc))
                continue
            _set_state(rt, segment_id, row.provider_id, RealisationState.REMOVED)
            undone.append(row.provider_id)
        _set_status(rt, segment_id, SegmentStatus.ERROR)
        told = f"; removed again from the {len(undone)} pool(s) it had reached"
    else:
        previous = Segmentation(
            NetworkType(segment.network_type), params["previous"], segment.physical_network
        )
        for row in rows:
            try:
                undo = partial(_change, segment=segment, realisation=row, seg=previous)
                _on_pool(rt, row.provider_id, retry, undo)
            except Exception as exc:
                failures.append(_failure(row.provider_id, exc))
                continue
            undone.append(row.provider_id)
        told = _restore(rt, segment_id, previous)
    if failures:
        told += "; not undone on " + ", ".join(failures)
    return told


def _restore(rt: Runtime, segment_id: str, previous: Segmentation) -> str:
    try:
        with rt.sessions.begin() as session:
            segment = session.get(SegmentRow, segment_id)
            if segment is not None:
                segment.segmentation_id = previous.segmentation_id
                segment.segment_key = previous.key
                segment.status = SegmentStatus.ACTIVE.value
    except IntegrityError:
        _set_status(rt, segment_id, SegmentStatus.ERROR)
        return f"; {previous.describe()} was taken meanwhile, so the segment is left in error"
    return f"; the pools carry {previous.describe()} again"


def _failure(provider_id: str, exc: Exception) -> str:
    message = getattr(exc, "message", None) or str(exc)
    log.warning("segment rollback failed on pool %s: %s", provider_id, message)
    return f"pool {provider_id} ({message})"
