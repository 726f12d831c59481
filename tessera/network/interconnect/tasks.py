"""Subnet and interconnect changes reach the interconnects' daemons as durable tasks
(`interconnect.sync`), as router changes reach the network node (tessera.network.l3tasks):
creating or deleting a subnet saves, in the same transaction, a task naming the
interconnects of the subnet's region, so a crash after the commit cannot lose it (a
worker's start-up sweep queues a saved task whose enqueue was lost); deleting an
interconnect saves one naming it. Creating one saves none: no side of it runs yet, and
the agent that starts one applies it as it starts it.

Its step `interconnect-N` (tessera.network.interconnect.steps) brings the N-th
interconnect's sides that this node runs (those an agent recorded here, tessera.network.
interconnect.sides) to the database as it is then: FRR's announcements, IPsec's traffic
selectors or GRE's routes to the remote subnets. A side no agent runs here is left to its
agent, which applies it when it starts. A daemon that does not answer is retried (the
task retry settings), then fails the task, naming the side; the agent's periodic sync
reconciles what a failed task left. An interconnect deleted since has the sides found
here stopped.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from tessera.db.rows import InterconnectRow, SegmentRow, TaskRow
from tessera.domain.events import TaskEvent
from tessera.domain.tasks import TaskKind
from tessera.events.recorder import record_task
from tessera.tasks import service as tasks

STEP = "interconnect"


def plan(params: dict[str, Any]) -> list[str]:
    return [f"{STEP}-{i}" for i in range(len(params["interconnect_ids"]))]


def owns(step: str) -> bool:
    action, _, index = step.rpartition("-")
    return action == STEP and index.isdigit()


def of_region(session: Session, region_id: str | None) -> list[str]:
    """The interconnects with a side in the region."""
    if region_id is None:
        return []
    found = session.scalars(
        select(InterconnectRow.id).where(
            or_(InterconnectRow.region_a_id == region_id, InterconnectRow.region_b_id == region_id)
        )
    )
    return sorted(found)


def of_subnet(session: Session, segment: SegmentRow, ip_version: int) -> list[str]:
    """The interconnects a subnet of `segment` is announced or tunnelled by (an IPv4
    tenant subnet of their regions, as service.region_subnets lists)."""
    if segment.external or ip_version != 4:
        return []
    return of_region(session, segment.region_id)


def add_sync(
    session: Session, interconnect_ids: Iterable[str], *, requester: str
) -> TaskRow | None:
    """Save, in the change's transaction, the task applying these interconnects; None when
    there are none. Queue it with `enqueue` once the transaction has committed."""
    ids = sorted(set(interconnect_ids))
    if not ids:
        return None
    row = tasks.new_task(
        TaskKind.INTERCONNECT_SYNC, {"interconnect_ids": ids}, requester, provider_id=None
    )
    session.add(row)
    session.flush()
    record_task(session, row, TaskEvent.QUEUED)
    return row


def enqueue(row: TaskRow | None) -> None:
    """Queue a task `add_sync` saved (its transaction committed)."""
    if row is not None:
        tasks.enqueue(row)
