"""The portal: the single-page app built from portal/ (`npm run build` writes portal/dist),
served by the API process from its own origin, so there is no second server and no CORS.

Hashed assets (`/assets/*`, named by Vite after their content) are cached for a year; the
page itself never, so a new build is picked up at the next load. Any other GET that is not
the API's (`/v1`, `/openapi.json`, `/docs`, ...) answers the page, whose router then shows
the path. Static files need no token: the data behind them does.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import BaseRoute, Match
from starlette.types import Receive, Scope, Send

PORTAL_DIST = Path(__file__).resolve().parents[2] / "portal" / "dist"

# Paths the API owns: never answered with the page, so their 404s stay JSON errors.
API_PREFIXES = ("/v1/", "/docs", "/redoc", "/openapi.json", "/healthz")
API_PATHS = frozenset({"/v1"})

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"

# Precompressed siblings written by portal/scripts/compress.mjs, best first.
ENCODINGS = (("br", ".br"), ("gzip", ".gz"))
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tessera</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 4em auto">
<h1>Tessera</h1>
<p>The portal has not been built. Build it with <code>bash scripts/bootstrap.sh</code>
(or <code>cd portal &amp;&amp; npm ci &amp;&amp; npm run build</code>), then reload.</p>
<p>The API is here all the same: <a href="/docs">/docs</a>.</p>
</body></html>
"""


def is_portal_path(path: str) -> bool:
    return path not in API_PATHS and not path.startswith(API_PREFIXES)


class PortalRoute(BaseRoute):
    """GET and HEAD of every path the API does not own. A route of its own (rather than
    `/{path:path}`) so that other methods on those paths stay 404, not 405, and the API's
    unknown paths keep their JSON 404."""

    def __init__(self, dist: Path) -> None:
        self.dist = dist.resolve()

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if (
            scope["type"] == "http"
            and scope["method"] in {"GET", "HEAD"}
            and is_portal_path(scope["path"])
        ):
            return Match.FULL, {}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = self.respond(Request(scope))
        await response(scope, receive, send)

    def respond(self, request: Request) -> Response:
        index = self.dist / "index.html"
        if not index.is_file():
            return HTMLResponse(NOT_BUILT, headers={"Cache-Control": REVALIDATE})
        relative = request.url.path.lstrip("/")
        target = (self.dist / relative).resolve() if relative else index
        if not target.is_relative_to(self.dist) or not target.is_file():
            if relative.startswith("assets/"):
                # A stale page asking for an asset of an older build: a 404, not the page.
                return Response("not found", status_code=404, media_type="text/plain")
            target = index
        cache = IMMUTABLE if target.parent == self.dist / "assets" else REVALIDATE
        return self._file(request, target, cache)

    @staticmethod
    def _file(request: Request, target: Path, cache: str) -> Response:
        headers = {"Cache-Control": cache, "Vary": "Accept-Encoding"}
        media_type = MEDIA_TYPES.get(target.suffix)
        accepted = {
            token.split(";")[0].strip()
            for token in request.headers.get("accept-encoding", "").split(",")
        }
        for encoding, suffix in ENCODINGS:
            packed = target.with_name(target.name + suffix)
            if encoding in accepted and packed.is_file():
                headers["Content-Encoding"] = encoding
                return FileResponse(packed, media_type=media_type, headers=headers)
        return FileResponse(target, media_type=media_type, headers=headers)


def install_portal(app: FastAPI, dist: Path = PORTAL_DIST) -> None:
    """Serve the portal from `dist`; call after every API router is included, since the
    portal answers whatever they do not."""
    app.router.routes.append(PortalRoute(dist))
