"""Starts and stops DBOS for this process and owns the one task queue.

DBOS keeps a global instance, so there is one engine per process. Its executor id is
stable across restarts (DBOS recovers the pending workflows of its own executor id at
launch) and its application version is pinned: DBOS only recovers workflows of the
version that started them, and its default (a digest of the source) would change with
every edit.

A process that does not run tasks (`TESSERA_RUN_TASKS=false`: a stateless API in front
of workers) only enqueues them, through a DBOS client that never dequeues.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import ClassVar

from dbos import (
    DBOS,
    DBOSClient,
    DBOSConfig,
    EnqueueOptions,
    Queue,
    SetEnqueueOptions,
    SetWorkflowID,
)
from sqlalchemy import delete, select

from tessera.db.rows import PlacementClaimRow, TaskRow, VMLockRow, utcnow
from tessera.domain.events import TaskEvent
from tessera.domain.tasks import TaskKind, TaskState
from tessera.events.recorder import record_task
from tessera.runtime import Runtime
from tessera.tasks.presence import WorkerPresence

log = logging.getLogger(__name__)

# Bump when a workflow's sequence of steps changes: a worker only recovers the workflows
# of its own version, and replaying old checkpoints against new code would be wrong.
APP_VERSION = "tessera-tasks-2"
APP_NAME = "tessera"
QUEUE_NAME = "tessera-tasks"
WORKFLOW_NAME = "tessera.task"
_ENDED = {"SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"}


@dataclass(frozen=True)
class QueuedTask:
    """What queueing a task's workflow needs; plain values, so a workflow step can return
    it (a bulk task's steps make children that the workflow itself then queues)."""

    task_id: str
    workflow_id: str
    partition: str

    @classmethod
    def of(cls, row: TaskRow) -> QueuedTask:
        # A bulk task (over many pools) waits in a partition of its own, so parents never
        # hold the slots their children need; a task whose provider was removed since
        # still runs, to fail and free its locks.
        partition = row.provider_id or ("bulk" if TaskKind(row.kind).bulk else "removed")
        return cls(row.id, row.workflow_id, partition)


class TaskEngine:
    """The DBOS instance of this process and the runtime its steps use."""

    _current: ClassVar[TaskEngine | None] = None
    _guard: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._queue: Queue | None = None
        self._client: DBOSClient | None = None
        self._presence: WorkerPresence | None = None

    @classmethod
    def current(cls) -> TaskEngine:
        if cls._current is None:
            raise RuntimeError("the task engine is not running in this process")
        return cls._current

    @classmethod
    def start(cls, rt: Runtime) -> TaskEngine:
        """Launch DBOS (which resumes this worker's interrupted workflows), sweep, and
        start the heartbeat and dead-worker sweeper; or, with tasks off, only a client."""
        from tessera.migration import workflow as migration  # its steps, before launch
        from tessera.network import l3tasks
        from tessera.tasks import workflows  # registers the workflows before launch

        del workflows, migration
        with cls._guard:
            if cls._current is not None:
                raise RuntimeError("a task engine already runs in this process")
            engine = cls(rt)
            cls._current = engine  # recovered steps look it up as soon as DBOS launches
        settings = rt.settings
        if not settings.run_tasks:
            # Lazy: the workers create DBOS's tables; until one has, enqueues are logged
            # and left to a worker's start-up sweep.
            engine._client = DBOSClient(
                system_database_url=settings.resolved_task_database_url,
                application_name=APP_NAME,
                lazy=True,
            )
            return engine
        config: DBOSConfig = {
            "name": APP_NAME,
            "system_database_url": settings.resolved_task_database_url,
            "executor_id": settings.resolved_executor_id,
            "application_version": APP_VERSION,
            "log_level": "WARNING",
        }
        try:
            DBOS(config=config)
            DBOS.launch()
            engine._queue = DBOS.register_queue(
                QUEUE_NAME,
                partition_concurrency=settings.provider_concurrency,
                polling_interval_sec=0.2,
            )
            engine.sweep()
            l3tasks.resync_all(rt)
            engine._presence = WorkerPresence(rt)
            engine._presence.start()
        except BaseException:
            engine.stop()
            raise
        return engine

    def stop(self) -> None:
        if self._presence is not None:
            self._presence.stop()
        if self._client is not None:
            self._client.destroy()
        else:
            DBOS.destroy(destroy_registry=False)
        with self._guard:
            if TaskEngine._current is self:
                TaskEngine._current = None

    def enqueue(self, row: TaskRow) -> None:
        """Queue the task's workflow in its provider's partition (the concurrency limit)."""
        self.enqueue_workflow(QueuedTask.of(row))

    def enqueue_workflow(self, task: QueuedTask) -> None:
        """Queue one workflow; queueing an id again returns the first (ids are unique)."""
        from tessera.tasks.workflows import run_task

        if self._client is not None:
            options: EnqueueOptions = {
                "workflow_name": WORKFLOW_NAME,
                "queue_name": QUEUE_NAME,
                "workflow_id": task.workflow_id,
                "app_version": APP_VERSION,
                "queue_partition_key": task.partition,
            }
            self._client.enqueue(options, task.task_id)
            return
        if self._queue is None:
            raise RuntimeError("the task engine has not launched")
        with (
            SetWorkflowID(task.workflow_id),
            SetEnqueueOptions(queue_partition_key=task.partition),
        ):
            self._queue.enqueue(run_task, task.task_id)

    def sweep(self) -> None:
        """Make our rows agree with DBOS after a crash: queue a task whose enqueue was lost
        (it is committed before it is queued), fail one whose workflow ended without
        finishing it, and free the locks and placement claims of finished tasks."""
        unfinished = [TaskState.QUEUED.value, TaskState.RUNNING.value]
        with self.rt.sessions() as session:
            rows = list(session.scalars(select(TaskRow).where(TaskRow.state.in_(unfinished))))
        for row in rows:
            status = DBOS.get_workflow_status(row.workflow_id)
            if status is None:
                log.warning("task %s was never queued; queueing it now", row.id)
                self.enqueue(row)
            elif status.status in _ENDED:
                self._fail_orphan(row.id, status.status)
        finished = select(TaskRow.id).where(TaskRow.state.not_in(unfinished))
        with self.rt.sessions.begin() as session:
            session.execute(delete(VMLockRow).where(VMLockRow.task_id.in_(finished)))
            session.execute(
                delete(PlacementClaimRow).where(PlacementClaimRow.task_id.in_(finished))
            )

    def _fail_orphan(self, task_id: str, status: str) -> None:
        with self.rt.sessions.begin() as session:
            row = session.get(TaskRow, task_id)
            if row is None or TaskState(row.state).finished:
                return
            previous = row.state
            row.state = TaskState.FAILED.value
            row.error_code = "workflow_ended"
            row.error_message = f"the task's workflow ended ({status}) without finishing it"
            row.finished_at = row.updated_at = utcnow()
            record_task(session, row, TaskEvent.FAILED, before={"state": previous})
            session.execute(delete(VMLockRow).where(VMLockRow.task_id == task_id))
            session.execute(delete(PlacementClaimRow).where(PlacementClaimRow.task_id == task_id))
