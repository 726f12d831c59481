"""The event log: task transitions and inventory changes, newest first."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from tessera.api.deps import ScopeDep, SessionDep
from tessera.api.schemas import ErrorBody, EventPage, EventPublic
from tessera.db.paging import MAX_LIMIT
from tessera.db.rows import VMRow
from tessera.domain.events import Event
from tessera.errors import NotFoundError
from tessera.events import queries as events

router = APIRouter(prefix="/v1", tags=["events"])

IdFilter = Annotated[str | None, Query(min_length=1, max_length=64)]
_BAD_INPUT: dict[int | str, dict[str, object]] = {
    422: {"model": ErrorBody, "description": "Unknown kind, bad cursor, or since after until."},
}


async def _filter(
    kind: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=48,
            description="One kind (vm.changed) or a prefix ending in '.' (vm., task.).",
        ),
    ] = None,
    provider_id: IdFilter = None,
    task_id: IdFilter = None,
    actor: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    since: Annotated[
        datetime | None, Query(description="ISO 8601, inclusive; UTC without a zone.")
    ] = None,
    until: Annotated[datetime | None, Query(description="ISO 8601, exclusive.")] = None,
) -> events.EventFilter:
    """The filters both lists take."""
    return events.EventFilter(
        kind=kind,
        provider_id=provider_id,
        task_id=task_id,
        actor=actor,
        since=since,
        until=until,
    )


FilterDep = Annotated[events.EventFilter, Depends(_filter)]
Cursor = Annotated[
    str | None, Query(max_length=512, description="next_cursor of the previous page.")
]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")]


def to_public(event: Event) -> EventPublic:
    return EventPublic(
        id=event.id,
        at=event.at,
        kind=event.kind,
        actor=event.actor,
        object_kind=event.object_kind,
        object_id=event.object_id,
        object_name=event.object_name,
        provider_id=event.provider_id,
        task_id=event.task_id,
        message=event.message,
        before=event.before,
        after=event.after,
    )


def _page(page: events.EventPage) -> EventPage:
    return EventPage(items=[to_public(e) for e in page.items], next_cursor=page.next_cursor)


@router.get("/events", response_model=EventPage, responses=_BAD_INPUT)
def list_events(
    session: SessionDep,
    scope: ScopeDep,
    flt: FilterDep,
    object_id: IdFilter = None,
    vm_id: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=64,
            description="The VM's events and those of the tasks run on it.",
        ),
    ] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> EventPage:
    """Newest first; a project's users see their project's events only."""
    flt = dataclasses.replace(flt, object_id=object_id, vm_id=vm_id)
    return _page(events.list_events(session, flt, cursor=cursor, limit=limit, scope=scope))


@router.get(
    "/vms/{vm_id}/events",
    response_model=EventPage,
    responses={
        **_BAD_INPUT,
        404: {"model": ErrorBody, "description": "No such VM, now or in the event log."},
    },
)
def list_vm_events(
    vm_id: str,
    session: SessionDep,
    scope: ScopeDep,
    flt: FilterDep,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> EventPage:
    """The VM's history, newest first: its changes and the tasks run on it. A deleted
    VM's history stays readable. Another project's VM is not found."""
    vm = session.get(VMRow, vm_id)
    visible = vm is not None and scope.sees(vm.project_id)
    if not visible and not events.has_events_of(session, vm_id, scope):
        raise NotFoundError(f"VM {vm_id} not found")
    flt = dataclasses.replace(flt, vm_id=vm_id)
    return _page(events.list_events(session, flt, cursor=cursor, limit=limit, scope=scope))
