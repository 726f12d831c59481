"""The FastAPI application: routes, error handlers, and in-process inventory watchers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tessera import __version__
from tessera.api.audit import AuditMiddleware
from tessera.api.deps import authorize
from tessera.api.errors import install_error_handlers
from tessera.api.guards import reject_nul_characters
from tessera.api.portal import install_portal
from tessera.api.routes import (
    adoption,
    audit,
    bulk,
    events,
    identity,
    interconnects,
    inventory,
    migrations,
    networks,
    objects,
    overview,
    placement,
    providers,
    routing,
    stream,
    tasks,
    vm_actions,
)
from tessera.api.schemas import error_response
from tessera.config import Settings
from tessera.identity.service import LoginThrottle, bootstrap
from tessera.identity.tokens import TokenCache
from tessera.inventory.watcher import WatchManager
from tessera.runtime import Runtime, ensure_admin_token
from tessera.tasks.engine import TaskEngine


class RequestIdMiddleware:
    """Gives every request an id (the caller's X-Request-Id, or a new one) that error bodies
    and logs carry. Plain ASGI: this sits on the hottest path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"")[:64].decode("latin-1")
        request_id = given if given.isprintable() and given else str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
            await send(message)

        await self.app(scope, receive, send_with_id)


def create_app(
    settings: Settings | None = None,
    *,
    runtime: Runtime | None = None,
    watch: bool | None = None,
) -> FastAPI:
    """Build the app. Watchers run in-process unless `watch` (or settings) says not to; the
    task engine runs tasks here unless `TESSERA_RUN_TASKS` is false, when the API only
    enqueues them for `tessera worker` processes (every change is a task either way)."""
    settings = settings or (runtime.settings if runtime else Settings())
    run_watchers = settings.watch_enabled if watch is None else watch

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = runtime or Runtime.open(settings)
        app.state.runtime = rt
        app.state.token_cache = TokenCache()
        app.state.login_throttle = LoginThrottle(settings.login_attempts_per_minute)
        await run_in_threadpool(bootstrap, rt, ensure_admin_token(settings))
        engine = await run_in_threadpool(TaskEngine.start, rt)
        manager = WatchManager(rt) if run_watchers else None
        app.state.watchers = manager
        if manager is not None:
            manager.start_all()
        try:
            yield
        finally:
            if manager is not None:
                manager.stop_all()
            await run_in_threadpool(engine.stop)
            if runtime is None:
                rt.close()

    app = FastAPI(
        title="Tessera",
        version=__version__,
        description="One API over VMware vSphere and KVM pools.",
        lifespan=lifespan,
        generate_unique_id_function=lambda route: route.name,
    )
    install_error_handlers(app)

    app.add_middleware(AuditMiddleware)  # inside RequestIdMiddleware: sees the request id
    app.add_middleware(RequestIdMiddleware)

    @app.get("/healthz", tags=["system"])
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    common_errors: dict[int | str, dict[str, Any]] = {
        400: error_response("The body could not be parsed."),
        401: error_response("Missing or invalid bearer token."),
        403: error_response("The caller's role does not allow it."),
        422: error_response("Invalid input; `message` says what."),
    }
    for router in (
        identity.router,
        providers.router,
        providers.kinds_router,
        adoption.router,  # before inventory.router, whose /v1/vms/{vm_id} would take it
        inventory.router,
        objects.router,
        overview.router,
        placement.router,
        bulk.router,
        vm_actions.router,
        stream.router,  # before tasks.router, whose /v1/tasks/{task_id} would take it
        tasks.router,
        events.router,
        audit.router,
        networks.router,
        routing.router,
        interconnects.router,
        migrations.router,
    ):
        app.include_router(
            router,
            dependencies=[Depends(authorize), Depends(reject_nul_characters)],
            responses=common_errors,
        )
    install_portal(app)  # last: the portal answers the GETs no API route does
    return app
