"""One place that turns exceptions into clear JSON error bodies; never a traceback."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tessera.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    LockedError,
    NotFoundError,
    NoValidPlacementError,
    ProviderFailedError,
    QuotaExceededError,
    TesseraError,
    TooManyRequestsError,
    UnauthorizedError,
    UnavailableError,
    UnsupportedError,
)
from tessera.security.secrets import SecretKeyError

log = logging.getLogger(__name__)

_STATUS: dict[type[TesseraError], int] = {
    NotFoundError: 404,
    ConflictError: 409,
    UnauthorizedError: 401,
    ForbiddenError: 403,
    TooManyRequestsError: 429,
    InvalidInputError: 422,
    ProviderFailedError: 503,
    UnavailableError: 503,
}


def _request_id(request: Request) -> str:
    rid = getattr(request.state, "request_id", None)
    return rid if isinstance(rid, str) else str(uuid.uuid4())


def _body(request: Request, code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "message": message, "request_id": _request_id(request), **extra}


def _clean_validation_errors(errors: Any) -> list[dict[str, Any]]:
    """Validation details without the offending input, which may be a password."""
    return [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in errors
    ]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TesseraError)
    async def _tessera_error(request: Request, exc: TesseraError) -> JSONResponse:
        status = next((s for cls, s in _STATUS.items() if isinstance(exc, cls)), 400)
        headers = {}
        if exc.retry_after_s is not None:
            headers["Retry-After"] = str(int(exc.retry_after_s))
        extra: dict[str, Any] = {}
        if isinstance(exc, ProviderFailedError):
            extra = {"provider_code": exc.provider_code, "retryable": exc.retryable}
        elif isinstance(exc, UnsupportedError):
            extra = {"capability": exc.capability}
        elif isinstance(exc, LockedError):
            extra = {"holder_task_id": exc.holder_task_id}
        elif isinstance(exc, NoValidPlacementError):
            extra = {"rejected_by": exc.rejected_by}
        elif isinstance(exc, QuotaExceededError):
            extra = {
                "quota": exc.quota,
                "limit": exc.limit,
                "in_use": exc.in_use,
                "requested": exc.requested,
            }
        return JSONResponse(
            _body(request, exc.code, exc.message, **extra), status_code=status, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = _clean_validation_errors(exc.errors())
        summary = "; ".join(
            f"{'.'.join(str(p) for p in d['loc'] if p != 'body')}: {d['msg']}" for d in details
        )
        return JSONResponse(
            _body(request, "invalid_input", summary or "invalid request", details=details),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}
        return JSONResponse(
            _body(request, code.get(exc.status_code, "http_error"), str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(SecretKeyError)
    async def _key_error(request: Request, exc: SecretKeyError) -> JSONResponse:
        log.error("credential key problem: %s", exc)
        return JSONResponse(
            _body(request, "credential_key", "stored credentials cannot be decrypted"),
            status_code=500,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error in %s %s", request.method, request.url.path)
        return JSONResponse(
            _body(request, "internal_error", "internal error; see the server log"),
            status_code=500,
        )
