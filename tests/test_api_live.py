"""The API over a real socket (uvicorn on 127.0.0.1): SSE as bytes arrive, chunked uploads, a client that hangs
up mid-answer, concurrent LLM calls, and `rag serve` as its own process."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_support import (
    AUTH,
    BRIDGE_QUESTION,
    StallingModel,
    api_settings,
    assert_error,
    assert_event_order,
    new_probe,
    sse_events,
)
from conftest import REPO, SEED_ID, SEED_QUESTION
from servers import LiveServer, start_rag_serve

from rag.api.app import create_app
from rag.api.security import DEMO_PAGE_CSP
from rag.service import RagService

# --- over a real socket ---


@pytest.fixture(scope="module")
def live(newsroom: RagService, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer.start(create_app(api_settings(tmp_path_factory.mktemp("live"), max_body_bytes=5000), newsroom))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def live_llm(llm_service: RagService, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = api_settings(tmp_path_factory.mktemp("live-llm"), max_concurrent_llm=1, llm_timeout=2, llm_max_retries=0)
    app = create_app(settings, llm_service)
    app.state.ctx.gate.wait = 0.3  # a second LLM call waits this long for the one slot (default: the LLM timeout)
    server = LiveServer.start(app)
    yield server
    server.stop()


def test_sse_order_over_a_socket(live: LiveServer) -> None:
    with httpx.stream("POST", f"{live.base}/v1/ask/stream", json={"question": SEED_QUESTION}, headers=AUTH) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["cache-control"] == "no-store"
        events = []
        for name, data in sse_events(r.iter_lines()):
            events.append((name, data))
    assert_event_order(events)


def test_chunked_upload_over_the_limit_over_a_socket(live: LiveServer) -> None:
    def body() -> Iterator[bytes]:
        for _ in range(100):
            yield b"x" * 100

    r = httpx.post(f"{live.base}/v1/articles", content=body(), headers={**AUTH, "Content-Type": "application/x-ndjson"})
    assert r.request.headers["transfer-encoding"] == "chunked"
    assert_error(r, 413, "payload_too_large")


def test_disconnect_cancels_the_llm_call(live_llm: LiveServer, llm_service: RagService) -> None:
    probe = new_probe()
    # Pauses shorter than the 2 s deadline, for 3 s in all: only the hang-up can end it early.
    llm_service.use_chat_model(lambda: StallingModel(probe=probe, stall=0.3, steps=10))
    with httpx.stream("POST", f"{live_llm.base}/v1/ask/stream", json={"question": BRIDGE_QUESTION}, headers=AUTH) as r:
        for name, _ in sse_events(r.iter_lines()):
            if name == "delta":
                break  # hang up in the middle of the answer
    hung_up = time.monotonic()
    assert probe.stopped.wait(5), "closing the connection cancelled the model call"
    assert time.monotonic() - hung_up < 1.0 and not probe.finished.is_set()
    metrics = httpx.get(f"{live_llm.base}/metrics").text
    assert "rag_llm_in_flight 0.0" in metrics, "the LLM slot was released"


def test_concurrent_llm_calls_are_bounded(live_llm: LiveServer, llm_service: RagService) -> None:
    probe = new_probe()
    # Holds the one slot for ~1.2 s, longer than the 0.3 s a second call may wait for it.
    llm_service.use_chat_model(lambda: StallingModel(probe=probe, stall=0.3, steps=4))

    async def both() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=live_llm.base, headers=AUTH, timeout=10) as c:
            first = asyncio.create_task(c.post("/v1/ask", json={"question": BRIDGE_QUESTION}))
            await asyncio.to_thread(probe.started.wait, 5)
            second = await c.post("/v1/ask", json={"question": BRIDGE_QUESTION})
            return [await first, second]

    first, second = asyncio.run(both())
    assert first.status_code == 200 and first.json()["mode"] == "llm"
    assert_error(second, 503, "busy")
    assert second.headers["retry-after"]


def test_rag_serve_ingests_the_seeds_and_serves(tmp_path: Path) -> None:
    """The README's run command: `rag serve --ingest-seeds` on a fresh data directory."""
    env = {**os.environ, "RAG_DATA_DIR": str(tmp_path / "data"), "RAG_PUBLIC_ASK": "true"}
    proc, base = start_rag_serve(["--ingest-seeds"], env=env, cwd=REPO, timeout=90)
    try:
        ready = httpx.get(f"{base}/readyz", timeout=2)
        assert ready.json()["articles"] == 1
        answer = httpx.post(f"{base}/v1/ask", json={"question": SEED_QUESTION}, timeout=30).json()
        assert answer["citations"] and answer["citations"][0]["article_id"] == SEED_ID
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
        page, script = httpx.get(f"{base}/"), httpx.get(f"{base}/widget.js")  # the real rag/web files
        assert page.status_code == 200 and page.headers["content-security-policy"] == DEMO_PAGE_CSP
        assert '<script src="/widget.js"' in page.text
        assert script.status_code == 200 and script.headers["cross-origin-resource-policy"] == "cross-origin"
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert "seeds: added 1" in out and f"serving on {base}/" in out
