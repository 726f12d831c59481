"""The FastAPI application: routes, error handlers, and in-process inventory watchers."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request, Response

from tessera import __version__
from tessera.api.deps import require_token
from tessera.api.errors import install_error_handlers
from tessera.api.routes import inventory, providers
from tessera.config import Settings
from tessera.inventory.watcher import WatchManager
from tessera.runtime import Runtime, ensure_admin_token


def create_app(
    settings: Settings | None = None,
    *,
    runtime: Runtime | None = None,
    watch: bool | None = None,
) -> FastAPI:
    """Build the app. Watchers run in-process unless `watch` (or settings) says not to."""
    settings = settings or (runtime.settings if runtime else Settings())
    run_watchers = settings.watch_enabled if watch is None else watch

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = runtime or Runtime.open(settings)
        app.state.runtime = rt
        app.state.token_digest = hashlib.sha256(ensure_admin_token(settings).encode()).digest()
        manager = WatchManager(rt) if run_watchers else None
        app.state.watchers = manager
        if manager is not None:
            manager.start_all()
        try:
            yield
        finally:
            if manager is not None:
                manager.stop_all()
            if runtime is None:
                rt.close()

    app = FastAPI(
        title="Tessera",
        version=__version__,
        description="One API over VMware vSphere and KVM pools.",
        lifespan=lifespan,
    )
    install_error_handlers(app)

    @app.middleware("http")
    async def request_id(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        request.state.request_id = request.headers.get("x-request-id", "")[:64] or str(uuid.uuid4())
        response = await call_next(request)
        response.headers["X-Request-Id"] = request.state.request_id
        return response

    @app.get("/healthz", tags=["system"])
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    for router in (providers.router, inventory.router):
        app.include_router(router, dependencies=[Depends(require_token)])
    return app
