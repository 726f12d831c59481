"""Task changes as server-sent events, for the portal's live views.

The stream is an async generator: between looks it sleeps on the event loop, and each
look (tessera.tasks.watch) runs in a worker thread for the few milliseconds it takes, so
no client holds a thread. It ends when the client goes away (the server cancels it),
after `max_seconds`, or when the bearer token stops being valid (checked every
`RECHECK_S`). FastAPI's SSE support sends a `: ping` comment after 15 s of silence.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent

from tessera.api.deps import PrincipalDep, RuntimeDep, ScopeDep
from tessera.api.routes.tasks import to_public
from tessera.api.schemas import TaskPublic, error_response
from tessera.identity import tokens
from tessera.identity.model import Principal
from tessera.identity.tokens import TokenCache
from tessera.runtime import Runtime
from tessera.tasks.watch import TaskFeed, TaskWatch

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/tasks", tags=["tasks"])

POLL_S = 0.5
RECHECK_S = 15.0
MAX_SECONDS = 3600


def _first(rt: Runtime, feed: TaskFeed, limit: int) -> list[TaskPublic]:
    with rt.sessions() as session:
        return [to_public(row) for row in feed.start(session, limit)]


def _changes(rt: Runtime, feed: TaskFeed) -> list[TaskPublic]:
    with rt.sessions() as session:
        return [to_public(row) for row in feed.changes(session)]


def _still_valid(request: Request, principal: Principal) -> bool:
    """Whether the stream's bearer token still resolves to the caller it was opened by
    (not revoked or expired, the user enabled, the role kept)."""
    secret = request.headers.get("authorization", "").partition(" ")[2]
    cache: TokenCache = request.app.state.token_cache
    if cache.get(secret) == principal:
        return True
    rt: Runtime = request.app.state.runtime
    with rt.sessions() as session:
        return tokens.resolve(session, secret) == principal


@router.get(
    "/stream",
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": "`event: task` frames, each with the task as `GET "
            "/v1/tasks/{task_id}` shows it as data; `: ping` comments while idle.",
            "content": {
                "text/event-stream": {
                    "itemSchema": {
                        "type": "object",
                        "required": ["event", "data"],
                        "properties": {
                            "event": {"const": "task"},
                            "data": {
                                "type": "string",
                                "contentMediaType": "application/json",
                                "contentSchema": {"$ref": "#/components/schemas/TaskPublic"},
                            },
                        },
                    }
                }
            },
        },
        422: error_response("Invalid filter or duration."),
    },
)
async def stream_tasks(
    request: Request,
    rt: RuntimeDep,
    scope: ScopeDep,
    principal: PrincipalDep,
    task_id: Annotated[
        str | None, Query(min_length=1, max_length=64, description="Follow this task only.")
    ] = None,
    parent_id: Annotated[
        str | None, Query(min_length=1, max_length=64, description="A bulk task's children.")
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=1000, description="Tasks in the first burst: the newest.")
    ] = 100,
    max_seconds: Annotated[
        int,
        Query(ge=0, le=MAX_SECONDS, description="End the stream after this long; 0: at once."),
    ] = 300,
) -> AsyncIterator[ServerSentEvent]:
    """The caller's tasks as they change: first the current state of the matching tasks
    (the newest `limit`, oldest first), then each task again whenever its state, progress
    or steps move (looked for twice a second; a task that passed through several states
    between two looks shows its latest). Another project's task is never sent: following
    one by id streams nothing. Read it with the Authorization header (fetch); a token is
    never taken from the URL."""
    feed = TaskFeed(TaskWatch(scope, task_id=task_id, parent_id=parent_id))
    started = time.monotonic()
    deadline, recheck = started + max_seconds, started + RECHECK_S
    ended = "it failed"
    try:
        for task in await anyio.to_thread.run_sync(_first, rt, feed, limit):
            yield ServerSentEvent(event="task", data=task)
        while (left := deadline - time.monotonic()) > 0:
            await anyio.sleep(min(POLL_S, left))
            if time.monotonic() >= recheck:
                recheck += RECHECK_S
                if not await anyio.to_thread.run_sync(_still_valid, request, principal):
                    ended = "its token is no longer valid"
                    return
            for task in await anyio.to_thread.run_sync(_changes, rt, feed):
                yield ServerSentEvent(event="task", data=task)
        ended = f"max_seconds ({max_seconds}) passed"
    except (GeneratorExit, anyio.get_cancelled_exc_class()):
        ended = "the client went away"
        raise
    finally:
        log.debug("task stream of %s ended: %s", principal.user_name, ended)
