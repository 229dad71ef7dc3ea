"""API keys, security headers, and the request body limit.

Keys come from `RAG_API_KEYS` and are compared in constant time; a key is never logged, and the rate limiter
sees only a digest of it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag.api.errors import ApiError, StartTracker, error_response
from rag.api.limits import RateLimiter

log = logging.getLogger(__name__)

# The demo page loads only its own files; the widget builds its styles as constructable stylesheets, so no
# 'unsafe-inline' is needed anywhere.
DEMO_PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
# JSON, event streams, scripts: nothing in them may load anything or be framed.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

BASE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

WRITE_KEYS_MISSING = (
    "writing articles needs an API key and this server has none configured: set RAG_API_KEYS on the server"
)
ASK_KEYS_MISSING = (
    "asking needs an API key and this server has none configured: set RAG_API_KEYS, "
    "or RAG_PUBLIC_ASK=true to allow asking without a key"
)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the client address and, when a valid key was sent, a digest naming that key."""

    address: str
    key_id: str | None


def presented_key(headers: Headers) -> str | None:
    """The key sent as `Authorization: Bearer KEY` or `X-API-Key: KEY`."""
    auth = headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    key = headers.get("x-api-key", "").strip()
    return key or None


def key_digest(key: str) -> str:
    """A short digest that names a key in logs and rate-limit buckets without revealing it."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


class ApiKeys:
    """The configured keys, checked in constant time, with a brake on wrong keys per client address.

    Once an address has used up its wrong-key allowance, every key it sends gets a 429 until the bucket
    refills, the right key included: otherwise a 200 among the 429s would still tell a guesser it had won.
    """

    def __init__(self, keys: Iterable[str], failures: RateLimiter | None = None) -> None:
        self._keys = [k.encode() for k in keys if k]
        self.failures = failures or RateLimiter(0)

    @property
    def configured(self) -> bool:
        """True when at least one key is set."""
        return bool(self._keys)

    def match(self, candidate: str) -> bool:
        """True when `candidate` is one of the keys; every key is compared, so timing says nothing."""
        given = candidate.encode()
        found = False
        for key in self._keys:
            found |= hmac.compare_digest(given, key)
        return found

    def caller(self, conn: HTTPConnection, *, required: bool, missing_message: str) -> Caller:
        """Authenticate a request: a sent key must be valid; `required` means one must be sent."""
        address = conn.client.host if conn.client else "unknown"
        key = presented_key(conn.headers)
        if required and not self.configured:
            raise ApiError(403, "no_keys_configured", missing_message)
        if not required and not self.configured:
            # Public asking on a server with no keys: a key the client sends anyway (the openai SDK always
            # sends one) can be checked against nothing, so it is ignored rather than refused.
            return Caller(address, None)
        if key is None:
            if required:
                raise ApiError(
                    401,
                    "unauthorized",
                    "an API key is required: send `Authorization: Bearer KEY` or `X-API-Key: KEY`",
                    {"WWW-Authenticate": "Bearer"},
                )
            return Caller(address, None)
        bucket = f"auth:{address}"
        wait = self.failures.wait(bucket)
        if wait is not None:
            seconds = max(1, math.ceil(wait))
            raise ApiError(
                429,
                "rate_limited",
                f"too many wrong API keys from this address; try again in {seconds} s",
                {"Retry-After": str(seconds)},
            )
        if not self.match(key):
            self.failures.take([bucket])
            # The digest lets an operator tell one stale key retried from many different guesses.
            log.warning("wrong API key from %s (sha256 %s)", address, key_digest(key)[:8])
            raise ApiError(401, "invalid_api_key", "the API key is not valid", {"WWW-Authenticate": "Bearer"})
        return Caller(address, key_digest(key))


class SecurityHeadersMiddleware:
    """nosniff, no referrer, no framing, and a CSP on every response (routes may set a stricter or laxer one)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in BASE_HEADERS.items():
                    headers.setdefault(name, value)
                headers.setdefault("Content-Security-Policy", API_CSP)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyTooLarge(StarletteHTTPException):
    """Raised from `receive` once the body passes the limit; FastAPI lets HTTPExceptions through untouched."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit:,} bytes (RAG_MAX_BODY_BYTES)")


class BodyLimitMiddleware:
    """413 for bodies over the limit: at once from Content-Length, else while the body streams in."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._reject(scope, receive, send)
            return
        received = 0
        tracker = StartTracker(send)

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        try:
            await self.app(scope, limited_receive, tracker)
        except BodyTooLarge:
            if tracker.started:
                raise
            await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"the request body is larger than {self.max_bytes:,} bytes (RAG_MAX_BODY_BYTES)"
        # Close the connection: the rest of the body is never read.
        response = error_response(413, "payload_too_large", message, {"Connection": "close"})
        await response(scope, receive, send)


class HeaderLimitMiddleware:
    """431 when the request line and headers together pass the limit: uvicorn's httptools parser sets none.

    (`rag serve` also stops reading such a request at the socket, before it is all in memory; this covers
    any other server the app runs under, with the usual error body.)
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        size += sum(len(name) + len(value) + 4 for name, value in scope["headers"])  # ": " and CRLF
        if size > self.max_bytes:
            response = error_response(431, "headers_too_large", header_limit_message(size, self.max_bytes))
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def header_limit_message(size: int | None, limit: int) -> str:
    """What a client with oversized headers is told (by the app or by `rag serve`'s connection guard)."""
    told = f"{size:,} bytes" if size is not None else "too large"
    return f"the request headers are {told}; at most {limit:,} bytes are allowed (RAG_MAX_HEADER_BYTES)"


class Cors(CORSMiddleware):
    """Starlette's CORS handling, with refused preflights in the one error shape."""

    def preflight_response(self, request_headers: Headers) -> Response:
        """A refused preflight says which part (origin, method, headers) was not allowed."""
        response = super().preflight_response(request_headers)
        if response.status_code != 400:
            return response
        headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-type")}
        detail = bytes(response.body).decode(errors="replace")
        message = f"{detail}: this origin is not in RAG_WIDGET_ORIGINS, or the method or headers are not allowed"
        return error_response(400, "cors_refused", message, headers)
