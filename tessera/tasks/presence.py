"""Worker heartbeats and the dead-worker sweeper.

DBOS only resumes a worker's workflows when that same executor id launches again, so a
worker that dies for good would strand them. Every worker beats a row of `workers`;
every worker also sweeps, and the one whose atomic UPDATE claims a silent worker's row
hands that worker's PENDING workflows back to their original queue (DBOS's own recovery
for an executor id), where exactly one live worker dequeues each. Going through the
queue keeps its per-provider concurrency limit.

The claim also fences: a worker that finds its row claimed was declared dead while
alive (a long stall), and its workflows may already run elsewhere, so it exits at once
rather than run a step twice.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import datetime, timedelta

from dbos import DBOS
from sqlalchemy import or_, select, update

from tessera.db.rows import WorkerRow, utcnow
from tessera.runtime import Runtime

log = logging.getLogger(__name__)

FENCED_EXIT_CODE = 70


class WorkerPresence:
    """This worker's heartbeat and sweeper, in one background thread."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.executor_id = rt.settings.resolved_executor_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tessera-presence", daemon=True)

    def start(self) -> None:
        self._register()
        self._thread.start()

    def stop(self) -> None:
        """Stop beating; the row stays, so a worker gone for good is swept later."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def _register(self) -> None:
        """Join (or rejoin with a cleared claim): DBOS has just recovered our own work."""
        now = utcnow()
        with self.rt.sessions.begin() as session:
            row = session.get(WorkerRow, self.executor_id)
            if row is None:
                row = WorkerRow(executor_id=self.executor_id)
                session.add(row)
            row.started_at = row.heartbeat_at = now
            row.swept_at = row.swept_by = None

    def _run(self) -> None:
        interval = self.rt.settings.worker_heartbeat_s
        while not self._stop.wait(interval):
            try:
                self.beat()
                self.sweep()
            except Exception:
                log.exception("worker heartbeat or sweep failed; trying again")

    def beat(self) -> None:
        with self.rt.sessions.begin() as session:
            beaten = (
                session.connection()
                .execute(
                    update(WorkerRow)
                    .where(WorkerRow.executor_id == self.executor_id, WorkerRow.swept_at.is_(None))
                    .values(heartbeat_at=utcnow())
                )
                .rowcount
            )
        if beaten == 0:
            log.critical(
                "worker %s was declared dead and its tasks handed over; exiting so no "
                "step runs twice (start it again to rejoin)",
                self.executor_id,
            )
            os._exit(FENCED_EXIT_CODE)

    def sweep(self) -> list[str]:
        """Hand the PENDING workflows of silent workers to the queue; their ids."""
        cutoff = utcnow() - timedelta(seconds=self.rt.settings.worker_timeout_s)
        with self.rt.sessions() as session:
            silent = list(
                session.scalars(
                    select(WorkerRow.executor_id).where(
                        WorkerRow.heartbeat_at < cutoff, WorkerRow.executor_id != self.executor_id
                    )
                )
            )
        moved: list[str] = []
        for executor_id in silent:
            pending = DBOS.list_workflows(
                status="PENDING",
                executor_id=executor_id,
                load_input=False,
                load_output=False,
                limit=1,
            )
            if pending and self._claim(executor_id, cutoff):
                moved += self._take_over(executor_id)
        return moved

    def _claim(self, executor_id: str, cutoff: datetime) -> bool:
        """One sweeper wins a silent worker: the UPDATE matches only while the row is
        still silent and unclaimed (or its claimer died before finishing)."""
        now = utcnow()
        with self.rt.sessions.begin() as session:
            won = (
                session.connection()
                .execute(
                    update(WorkerRow)
                    .where(
                        WorkerRow.executor_id == executor_id,
                        WorkerRow.heartbeat_at < cutoff,
                        or_(WorkerRow.swept_at.is_(None), WorkerRow.swept_at < cutoff),
                    )
                    .values(swept_at=now, swept_by=self.executor_id)
                )
                .rowcount
            )
        return bool(won)

    def _take_over(self, executor_id: str) -> list[str]:
        # DBOS's recovery for an executor id: PENDING -> ENQUEUED on the workflow's own
        # queue and partition, only while still owned by the dead id (so it is idempotent).
        handles = DBOS._recover_pending_workflows([executor_id])
        moved = [handle.get_workflow_id() for handle in handles]
        for workflow_id in moved:
            log.warning(
                "worker %s is silent; workflow %s goes back to its queue (swept by %s)",
                executor_id,
                workflow_id,
                self.executor_id,
            )
        return moved
