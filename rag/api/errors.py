"""One error shape for every failure, `{"error": {"code", "message"}}`; the error tree becomes HTTP statuses here.

- `ApiError`: raised by the API layer itself (auth, limits, media types), with its own status;
- `RagError`: from the service, mapped by `as_api_error` (not found 404, invalid 422, store 503, LLM 429/502/503/504);
- Starlette's `HTTPException`: 404, 405, 413 and friends, reshaped;
- `RequestValidationError`: 422, with a message naming each field and what is wrong with it;
- anything else: 500, logged with its traceback by `InternalErrorMiddleware`, never shown to the client.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag.errors import (
    ConfigError,
    IngestError,
    InvalidRequestError,
    NotFoundError,
    RagError,
    StoreError,
    UpstreamError,
)

log = logging.getLogger(__name__)
# A store that went away (a Chroma server restarting, a disk error) is retried on the next request; a few seconds
# is how long `chroma run` takes to come back.
STORE_RETRY_AFTER_SECONDS = 5

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    431: "headers_too_large",
    500: "internal_error",
    502: "upstream_error",
    503: "unavailable",
    504: "upstream_timeout",
}


class ApiError(Exception):
    """An HTTP error decided by the API layer: status, machine-readable code, a message saying what to do."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def error_body(code: str, message: str) -> dict[str, Any]:
    """The JSON body of every error response (and of the SSE `error` event)."""
    return {"error": {"code": code, "message": message}}


def error_response(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """An error as a JSON response."""
    return JSONResponse(error_body(code, message), status_code=status, headers=dict(headers or {}))


def upstream_status(exc: UpstreamError) -> int:
    """The status we answer when the LLM failed: its own 429/503/504 pass through, anything else is a 502."""
    if exc.status in (429, 503, 504):
        return exc.status
    return 502


def as_api_error(exc: RagError) -> ApiError:
    """A service error as the HTTP error we answer with."""
    headers: dict[str, str] = {}
    if isinstance(exc, UpstreamError):
        status = upstream_status(exc)
        if exc.retry_after is not None:
            headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
        code = "upstream_timeout" if status == 504 else "upstream_error"
    elif isinstance(exc, NotFoundError):
        status, code = 404, exc.code
    elif isinstance(exc, InvalidRequestError | IngestError):
        status, code = 422, exc.code
    elif isinstance(exc, StoreError):
        status, code = 503, exc.code
        headers["Retry-After"] = str(STORE_RETRY_AFTER_SECONDS)
    elif isinstance(exc, ConfigError):
        status, code = 500, exc.code
    else:
        status, code = 500, exc.code
    return ApiError(status, code, str(exc), headers)


def validation_message(errors: Sequence[Any]) -> str:
    """Pydantic's errors as one sentence per field: `question: String should have at least 1 character`."""
    parts: list[str] = []
    for err in errors[:10]:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        kind = err.get("type", "")
        if kind == "json_invalid":
            detail = (err.get("ctx") or {}).get("error", "")
            parts.append(f"the body is not valid JSON ({detail}); send a JSON object")
        elif kind == "missing" and not loc:
            parts.append("the request body is missing; send a JSON object (see /docs)")
        elif kind in ("model_attributes_type", "dict_type") and not loc:
            parts.append("the body must be a JSON object with Content-Type: application/json (see /docs)")
        else:
            field = ".".join(loc) or "body"
            parts.append(f"{field}: {err.get('msg', 'invalid value')}")
    return "; ".join(parts) or "invalid request"


def _http_message(request: Request, exc: StarletteHTTPException) -> str:
    if exc.status_code == 404:
        return f"no such route: {request.method} {request.url.path} (see /docs)"
    if exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow") or (exc.headers or {}).get("allow") or ""
        return f"{request.method} is not allowed on {request.url.path}" + (f"; use {allowed}" if allowed else "")
    if exc.status_code == 413 and not isinstance(exc.detail, str):
        return "the request body is too large"
    detail = exc.detail if isinstance(exc.detail, str) else ""
    return detail or "request failed"


def install_error_handlers(app: FastAPI) -> None:
    """Translate every kind of failure into the one error shape."""

    async def on_api_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    async def on_rag_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RagError)
        err = as_api_error(exc)
        if err.status >= 500:
            log.warning("request failed with %s: %s", err.code, exc)
        return error_response(err.status, err.code, err.message, err.headers)

    async def on_validation(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return error_response(422, "invalid_request", validation_message(exc.errors()))

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, _http_message(request, exc), exc.headers)

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RagError, on_rag_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)


class StartTracker:
    """Wraps `send` and remembers whether the response has started (after that, no error response can be sent)."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


class InternalErrorMiddleware:
    """Unexpected exceptions become a logged 500 in the error shape, inside the middlewares that add headers.

    (Starlette's own handler for `Exception` runs outside every middleware, so its 500 would carry no
    security or CORS headers.)
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracker = StartTracker(send)
        try:
            await self.app(scope, receive, tracker)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if tracker.started:
                raise
            response = error_response(500, "internal_error", "internal error; the server log has the details")
            await response(scope, receive, send)
