"""Event vocabulary: what happened to a task or an inventory object, by whom. No I/O.

An event is append-only and outlives what it is about, so it names its object by id and
by the name it had then. `before`/`after` hold plain JSON values: for a change only the
fields that changed (references as Tessera ids, never native ones), for an addition the
new object's fields in `after`, for a removal the last known ones in `before`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from tessera.domain.inventory import ObjectKind
from tessera.domain.tasks import TaskState

# Actors that are not people: the full sync of a pool and its change feed. A change a
# task makes is recorded with the task's requester as its actor.
SYNC_ACTOR = "sync"
WATCH_ACTOR = "watch"


class ChangeKind(StrEnum):
    """The suffix of an inventory event's kind: `vm.added`, `host.changed`, ..."""

    ADDED = "added"
    CHANGED = "changed"
    REMOVED = "removed"


def inventory_kind(kind: ObjectKind, change: ChangeKind) -> str:
    return f"{kind.value}.{change.value}"


# The first full sync of a pool: one summary event (counts per kind in `after`) rather
# than one per object, so that reading in a large pool costs no more than before.
PROVIDER_DISCOVERED = "provider.discovered"
# A VM taken into a project as it is, and given back to the platform: ownership only,
# nothing on the pool changes (tessera.inventory.adoption).
VM_ADOPTED = "vm.adopted"
VM_RELEASED = "vm.released"
# A Tessera port freed because the VM it served left its pool's inventory (deleted
# outside Tessera): deleted if made for the NIC, else unbound (tessera.network.ports).
PORT_RELEASED = "port.released"


class TaskEvent(StrEnum):
    QUEUED = "task.queued"
    RUNNING = "task.running"
    CANCEL_REQUESTED = "task.cancel_requested"
    SUCCEEDED = "task.succeeded"
    FAILED = "task.failed"
    CANCELLED = "task.cancelled"
    RETRIED = "task.retried"

    @classmethod
    def finished(cls, state: TaskState) -> TaskEvent:
        """The event of a task ending in `state`."""
        return cls(f"task.{state.value}")


# A migration plan's VM going through a phase (tessera.migration.workflow): the phase
# started, finished, failed, ran one warm copy round, or was undone by a rollback.
MIGRATION_PHASE_STATES = ("running", "done", "failed", "round", "rolled_back")


def migration_phase_kind(state: str) -> str:
    """The kind of a migration phase event: `migration.phase.done`, ..."""
    if state not in MIGRATION_PHASE_STATES:
        raise ValueError(f"no migration phase event for {state!r}")
    return f"migration.phase.{state}"


EVENT_KINDS: frozenset[str] = frozenset(
    {inventory_kind(kind, change) for kind in ObjectKind for change in ChangeKind}
    | {PROVIDER_DISCOVERED, VM_ADOPTED, VM_RELEASED, PORT_RELEASED}
    | {kind.value for kind in TaskEvent}
    | {migration_phase_kind(state) for state in MIGRATION_PHASE_STATES}
)


def kinds_matching(pattern: str) -> frozenset[str] | None:
    """The kinds `pattern` selects: one exact kind, or every kind under a prefix ending
    in "." (`vm.`, `task.`); None when it names no kind at all."""
    if pattern.endswith("."):
        found = frozenset(kind for kind in EVENT_KINDS if kind.startswith(pattern))
        return found or None
    return frozenset({pattern}) if pattern in EVENT_KINDS else None


@dataclass(frozen=True, slots=True, kw_only=True)
class EventDraft:
    """An event to record; the store gives it its id and time. `project_id` is the
    project it belongs to (the task's, or the VM's), none for the platform's events: a
    project's users read only their project's events."""

    kind: str
    actor: str
    object_kind: str
    object_id: str | None = None
    object_name: str = ""
    provider_id: str | None = None
    task_id: str | None = None
    project_id: str | None = None
    message: str = ""
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Event(EventDraft):
    """A recorded event. Ids rise with the order of recording, so lists page by id."""

    id: int
    at: datetime
