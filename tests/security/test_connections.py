"""Connection abuse against a live `rag serve` on 127.0.0.1: idle floods, slow headers, huge headers, busy slots.

The red team held 1,100 half-open connections against the server's 1,024 file descriptors and /healthz failed
until they let go. Here the same thing at a bounded scale: the server process may open 256 files and gets 300
idle sockets, with RAG_MAX_CONNECTIONS=50. Every socket is closed before its test ends.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

MAX_CONNECTIONS = 50
HEADER_TIMEOUT = 2.0
KEEP_ALIVE = 1
FILE_LIMIT = 256  # below the 300 sockets of the flood, as 1,024 was below the red team's 1,100


@dataclass
class Served:
    """A `rag serve` process and where it listens."""

    proc: subprocess.Popen[str]
    host: str
    port: int

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def open_files(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))


def _limit_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FILE_LIMIT, FILE_LIMIT))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Module-scoped, so set up before conftest's per-test cleaning of the environment: clean it here.
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RAG_") and k != "OPENAI_API_KEY"}
    env = {
        **clean,
        "RAG_DATA_DIR": str(tmp_path_factory.mktemp("serve") / "data"),
        "RAG_PUBLIC_ASK": "true",
        "RAG_RATE_LIMIT_PER_MINUTE": "0",
        "RAG_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
        "RAG_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
        "RAG_KEEP_ALIVE_TIMEOUT": str(KEEP_ALIVE),
    }
    cmd = [sys.executable, "-m", "rag.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=_limit_files
    )
    server = Served(proc, "127.0.0.1", port)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                if httpx.get(f"{server.base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "rag serve did not start"
            time.sleep(0.2)
        yield server
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


def connect(server: Served) -> socket.socket:
    sock = socket.create_connection((server.host, server.port), timeout=5)
    return sock


def read_reply(sock: socket.socket, timeout: float) -> tuple[int | None, bytes, bool]:
    """(status, raw reply, whether the server closed the connection) within `timeout` seconds."""
    sock.settimeout(timeout)
    data = b""
    closed = False
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                closed = True
                break
            data += chunk
    except TimeoutError:
        pass
    except ConnectionResetError:
        closed = True
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else None
    return status, data, closed


def error_of(raw: bytes) -> dict[str, str]:
    return dict(json.loads(raw.split(b"\r\n\r\n", 1)[1])["error"])


def healthz_within(server: Served, seconds: float) -> float:
    started = time.monotonic()
    r = httpx.get(f"{server.base}/healthz", timeout=seconds)
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    return time.monotonic() - started


def test_an_idle_flood_does_not_starve_the_service(served: Served) -> None:
    baseline = served.open_files()
    sockets: list[socket.socket] = []
    try:
        for i in range(300):
            sock = connect(served)
            if i % 2:  # half of them start a request and never finish its headers
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            sockets.append(sock)
        time.sleep(0.3)
        held = served.open_files()
        assert held <= baseline + MAX_CONNECTIONS + 5, f"the server holds {held} files ({baseline} before the flood)"
        assert healthz_within(served, 3) < 2
        ask = httpx.post(f"{served.base}/v1/ask", json={"question": "What happened?"}, timeout=10)
        assert ask.status_code == 200
    finally:
        for sock in sockets:
            sock.close()
    assert healthz_within(served, 3) < 2


def test_headers_must_arrive_in_time(served: Served) -> None:
    """A client that sends half its headers, or nothing, is answered 408 and cut off after RAG_HEADER_TIMEOUT."""
    slow, silent = connect(served), connect(served)
    try:
        started = time.monotonic()
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: a")
        status, raw, closed = read_reply(slow, HEADER_TIMEOUT + 3)
        assert status == 408 and closed, raw[:200]
        assert error_of(raw)["code"] == "request_timeout"
        assert HEADER_TIMEOUT - 0.2 < time.monotonic() - started < HEADER_TIMEOUT + 2
        status, _, closed = read_reply(silent, 2)
        assert closed and status == 408
    finally:
        slow.close()
        silent.close()


def test_kept_alive_connections_close_when_idle(served: Served) -> None:
    sock = connect(served)
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(3)
        reply = b""
        while not reply.endswith(b'{"status":"ok"}'):
            reply += sock.recv(65536)
        assert reply.startswith(b"HTTP/1.1 200 ")
        started = time.monotonic()
        _, rest, closed = read_reply(sock, KEEP_ALIVE + 3)
        assert closed and rest == b"" and time.monotonic() - started < KEEP_ALIVE + 1.5
    finally:
        sock.close()


def test_oversized_headers_are_refused_at_the_socket(served: Served) -> None:
    r = httpx.get(f"{served.base}/healthz", headers={"X-Padding": "a" * 200_000}, timeout=10)
    assert r.status_code == 431 and r.json()["error"]["code"] == "headers_too_large"
    # One endless header, sent in pieces: refused long before the 1 MB the client would send.
    sock = connect(served)
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Endless: ")
        sent = 0
        try:
            while sent < 1_000_000:
                sock.sendall(b"b" * 16_384)
                sent += 16_384
        except (BrokenPipeError, ConnectionResetError):
            pass
        status, raw, closed = read_reply(sock, 3)
        assert status == 431 and closed, raw[:200]
    finally:
        sock.close()
    assert healthz_within(served, 3) < 2


def test_when_every_connection_is_busy_new_ones_get_503(served: Served) -> None:
    """Connections with a request in progress are never evicted; past the cap a newcomer is told to retry."""
    busy: list[socket.socket] = []
    try:
        for _ in range(MAX_CONNECTIONS):
            sock = connect(served)
            # Headers complete, body promised and never sent: the request is in progress.
            sock.sendall(
                b"POST /v1/ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
            )
            busy.append(sock)
        time.sleep(0.3)
        newcomer = connect(served)
        try:
            newcomer.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            status, raw, closed = read_reply(newcomer, 3)
            assert status == 503 and closed, raw[:200]
            assert error_of(raw)["code"] == "server_busy" and b"retry-after: 5" in raw.lower()
        finally:
            newcomer.close()
    finally:
        for sock in busy:
            sock.close()
    time.sleep(0.2)
    assert healthz_within(served, 3) < 2


def test_a_file_limit_too_low_for_the_cap_is_reported() -> None:
    """`rag serve` prints this note at start when RAG_MAX_CONNECTIONS cannot fit in the process's file limit."""
    from rag.api.server import check_file_limit
    from rag.config import Settings

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    too_many = Settings(_env_file=None, max_connections=soft)  # type: ignore[call-arg]
    assert "RAG_MAX_CONNECTIONS" in (check_file_limit(too_many) or "")
    assert check_file_limit(Settings(_env_file=None, max_connections=min(50, soft - 150))) is None  # type: ignore[call-arg]
