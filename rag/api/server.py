"""`rag serve`'s HTTP server: uvicorn with a guard on connections, so one client cannot starve the service.

uvicorn (0.54, httptools) sets no limit on open connections, no deadline for a request's headers and no limit on
their size: 1,100 idle sockets used up all 1,024 file descriptors and /healthz failed while they were held. Its
`limit_concurrency` is no cure, as it counts idle connections too, so such a flood turns every request into a 503,
/healthz included. The guard here, per server:

- at most `max_connections` open: a new connection past that closes the longest-idle one (idle: no request in
  progress, or still sending its headers); when every one is busy, the new one gets a 503 and is closed;
- a request's headers must arrive within `header_timeout` seconds of connecting (or, on a kept-alive connection,
  of its first byte), else 408 and close: a client that connects and sends nothing, or a byte at a time, is cut off;
- request line and headers over `max_header_bytes` get a 431 and are not read further.

A reverse proxy in front should still add per-client connection and request-rate limits (see the README).
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
from typing import Any, ClassVar

import httptools
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from rag.api.errors import error_body
from rag.api.security import header_limit_message
from rag.config import Settings

log = logging.getLogger(__name__)


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop reading a request whose head passed the limit."""


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a connection cap, a header deadline and a header size limit.

    The limits are class attributes: uvicorn builds one protocol per connection from the class it is given,
    so `guarded_protocol` makes a subclass holding a server's settings.
    """

    max_connections: ClassVar[int] = 500
    header_timeout: ClassVar[float] = 10.0
    max_header_bytes: ClassVar[int] = 16_384

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._in_head = True  # between a request's first byte (or the connection) and the end of its headers
        self._head_size = 0  # request line and headers parsed so far
        self._head_raw = 0  # bytes fed while in the head: bounds what httptools buffers for one huge header
        self._idle_since = 0.0
        self._refused = False

    # --- the connection cap ---

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Count the connection in, arm the header deadline, and make room if the cap is passed."""
        super().connection_made(transport)
        self._idle_since = self.loop.time()
        self._arm_head_timer()
        self._make_room()

    def _busy(self) -> bool:
        return bool(self.pipeline) or (self.cycle is not None and not self.cycle.response_complete)

    def _make_room(self) -> None:
        # A closed transport leaves `connections` only on the next loop turn: count what is still open.
        live = [c for c in self.connections if not c.transport.is_closing()]
        if len(live) <= self.max_connections:
            return
        idle = [c for c in live if isinstance(c, GuardedHttpProtocol) and c is not self and not c._busy()]
        if idle:
            oldest = min(idle, key=lambda c: c._idle_since)
            oldest.transport.close()
            return
        log.warning("all %d connections are busy; refusing a new one", self.max_connections)
        self._refuse(503, "server_busy", "the server has no free connection; try again shortly", retry_after=5)

    def on_response_complete(self) -> None:
        """After each response the connection counts as idle from now."""
        self._idle_since = self.loop.time()
        super().on_response_complete()

    # --- the header deadline and size ---

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            message = f"the request headers did not arrive within {self.header_timeout:g} s (RAG_HEADER_TIMEOUT)"
            self._refuse(408, "request_timeout", message)

    def data_received(self, data: bytes) -> None:
        """uvicorn's own `data_received`, plus the header size limit (its parser errors become a 400 there)."""
        if self._refused:
            return
        self._unset_keepalive_if_required()
        if self._in_head:
            self._head_raw += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError as exc:
            # httptools wraps what a callback raises; its context is the original exception.
            if isinstance(exc.__context__, _HeadTooLarge):
                self._refuse_head(self._head_size)
                return
            self.logger.warning("Invalid HTTP request received.")
            self.send_400_response("Invalid HTTP request received.")
            return
        if self._in_head and self._head_raw > self.max_header_bytes:
            self._refuse_head(None)

    def on_message_begin(self) -> None:
        """A request starts: its headers are due within the deadline."""
        self._in_head = True
        self._head_size = 0
        self._head_raw = 0
        self._arm_head_timer()
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        """Count the request line against the limit."""
        self._grow_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        """Count each header against the limit."""
        self._grow_head(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _grow_head(self, size: int) -> None:
        self._head_size += size
        if self._head_size > self.max_header_bytes:
            raise _HeadTooLarge

    def on_headers_complete(self) -> None:
        """The headers are in: the deadline no longer applies to this request."""
        self._in_head = False
        self._disarm_head_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        """Drop the header deadline with the connection."""
        self._disarm_head_timer()
        super().connection_lost(exc)

    # --- answering without the app ---

    def _refuse_head(self, size: int | None) -> None:
        self._refuse(431, "headers_too_large", header_limit_message(size, self.max_header_bytes))

    def _refuse(self, status: int, code: str, message: str, retry_after: int | None = None) -> None:
        """Answer in the API's error shape and close: the request is not read any further."""
        self._refused = True
        self._disarm_head_timer()
        body = json.dumps(error_body(code, message)).encode()
        head = [
            STATUS_LINE[status],
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"x-content-type-options: nosniff\r\n",
            b"connection: close\r\n",
        ]
        if retry_after is not None:
            head.append(b"retry-after: %d\r\n" % retry_after)
        if not self.transport.is_closing():
            self.transport.write(b"".join([*head, b"\r\n", body]))
            self.transport.close()


def guarded_protocol(settings: Settings) -> type[GuardedHttpProtocol]:
    """The protocol class uvicorn should build connections from, holding these settings' limits."""
    limits = {
        "max_connections": max(1, settings.max_connections),
        "header_timeout": settings.header_timeout,
        "max_header_bytes": settings.max_header_bytes,
    }
    return type("ConfiguredHttpProtocol", (GuardedHttpProtocol,), limits)


def check_file_limit(settings: Settings) -> str | None:
    """A warning when the process may open fewer files than `max_connections` needs, with room for the store."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = settings.max_connections + 100
    if soft != resource.RLIM_INFINITY and soft < needed:
        return (
            f"this process may open only {soft} files, and RAG_MAX_CONNECTIONS={settings.max_connections} needs "
            f"about {needed}: lower RAG_MAX_CONNECTIONS or raise the limit (ulimit -n)"
        )
    return None


def run(app: FastAPI, settings: Settings, host: str, port: int) -> None:
    """Serve `app` until interrupted, with the connection guard."""
    uvicorn.run(
        app,
        host=host,
        port=port,
        http=guarded_protocol(settings),
        timeout_keep_alive=settings.keep_alive_timeout,
        # Streams end within 5 s of Ctrl-C instead of holding the shutdown open.
        timeout_graceful_shutdown=5,
        log_level="info",
    )
