"""The HTTP API: every route and error status, auth, CORS, limits, SSE, metrics (real Chroma and embedder).

Most tests use FastAPI's TestClient; a live uvicorn on 127.0.0.1 covers what needs a real socket: the SSE
event order as bytes arrive, a client that hangs up in the middle of an LLM answer, a chunked upload, and
concurrent LLM calls.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import httpx2  # what the openai SDK is built on
import openai
import pytest
import uvicorn
from conftest import NEWS, SEED_FILE, SEED_ID, SEED_QUESTION, make_settings
from fastapi import FastAPI
from fastapi.testclient import TestClient
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from pydantic import ConfigDict

from rag.api.app import create_app
from rag.api.limits import RateLimiter
from rag.api.security import DEMO_PAGE_CSP
from rag.config import Settings
from rag.documents import build_article
from rag.embeddings import OnnxMiniLM
from rag.service import RagService

KEY = "test-key-1"
OTHER_KEY = "test-key-2"
AUTH = {"Authorization": f"Bearer {KEY}"}
ORIGIN = "https://news.example"
BRIDGE_QUESTION = "How much did the harbour bridge repairs cost?"
# What a well-behaved model says about the bridge: a sentence of the article, cited.
BRIDGE_ANSWER = (
    "The harbour bridge in Port Alden reopened to traffic on Wednesday after two years of repairs that cost "
    "the city 48 million euros [1]."
)


# --- scripted chat models (the LLM seam) ---


@dataclass
class Probe:
    """What a scripted model saw happen to its call."""

    started: threading.Event
    stopped: threading.Event  # cancelled while waiting, or closed between two chunks: either way, abandoned
    finished: threading.Event


def new_probe() -> Probe:
    return Probe(threading.Event(), threading.Event(), threading.Event())


class StallingModel(BaseChatModel):
    """Writes its first words, then pauses `stall` seconds `steps` times (a slow or hung LLM server) before
    finishing a supported sentence; records when its call is cancelled."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    probe: Probe
    stall: float = 30.0
    steps: int = 1

    @property
    def _llm_type(self) -> str:
        return "stalling"

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> ChatResult:  # fmt: skip
        raise NotImplementedError("async only")

    async def _astream(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:  # fmt: skip
        self.probe.started.set()
        try:
            yield ChatGenerationChunk(message=AIMessageChunk(content="The harbour bridge in Port Alden"))
            for _ in range(self.steps):
                await asyncio.sleep(self.stall)
                yield ChatGenerationChunk(message=AIMessageChunk(content=" "))
        except (asyncio.CancelledError, GeneratorExit):
            self.probe.stopped.set()
            raise
        yield ChatGenerationChunk(message=AIMessageChunk(content="reopened to traffic on Wednesday [1]."))
        self.probe.finished.set()


class FailingModel(BaseChatModel):
    """Fails the way the openai SDK fails."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    error: Exception

    @property
    def _llm_type(self) -> str:
        return "failing"

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> ChatResult:  # fmt: skip
        raise self.error

    async def _astream(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:  # fmt: skip
        raise self.error
        yield  # an async generator that fails on its first step


def _request() -> Any:
    return httpx2.Request("POST", "http://127.0.0.1:9/v1/chat/completions")


def _response(status: int, headers: dict[str, str] | None = None) -> Any:
    return httpx2.Response(status, headers=headers or {}, request=_request())


# --- a live server ---


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@dataclass
class LiveServer:
    """An app behind a real uvicorn on 127.0.0.1 (a free port), in a thread."""

    app: FastAPI
    base: str
    server: uvicorn.Server
    thread: threading.Thread

    @classmethod
    def start(cls, app: FastAPI) -> LiveServer:
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


def sse_events(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event, data) pairs from SSE lines."""
    name, data = "message", []
    for line in lines:
        if line == "":
            if data:
                yield name, json.loads("\n".join(data))
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())


def read_sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    return list(sse_events(iter(text.replace("\r\n", "\n").split("\n"))))


def assert_event_order(events: list[tuple[str, dict[str, Any]]]) -> None:
    """sources -> delta+ -> citation* -> done, and the done answer agrees with the citations sent."""
    names = [name for name, _ in events]
    assert re.fullmatch(r"sources( delta)+( citation)* done", " ".join(names)), names
    answer = events[-1][1]["answer"]
    assert [d["citation"] for n, d in events if n == "citation"] == answer["citations"]
    assert events[0][1]["sources"] == answer["sources"]


# --- fixtures ---


def _articles() -> list[Any]:
    return [build_article(a, origin="news", fallback_id=None) for a in NEWS]


@pytest.fixture(scope="module")
def newsroom(embedder: OnnxMiniLM, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RagService]:
    """The seed article and four more; extractive answers (no LLM configured)."""
    settings = make_settings(tmp_path_factory.mktemp("newsroom"), answer_mode="extractive")
    with RagService.open(settings, embedder=embedder) as service:
        assert not service.ingest_paths([SEED_FILE]).failed
        assert not service.ingest(_articles()).failed
        yield service


@pytest.fixture(scope="module")
def llm_service(embedder: OnnxMiniLM, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RagService]:
    """The same articles, answered in LLM mode by whatever scripted model a test plugs in."""
    settings = make_settings(tmp_path_factory.mktemp("llm"), answer_mode="llm", llm_base_url="http://127.0.0.1:9/v1")
    with RagService.open(settings, embedder=embedder) as service:
        assert not service.ingest(_articles()).failed
        yield service


@pytest.fixture(scope="module")
def scratch(embedder: OnnxMiniLM, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RagService]:
    """An empty store for the article routes to write to."""
    with RagService.open(make_settings(tmp_path_factory.mktemp("scratch")), embedder=embedder) as service:
        yield service


def api_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for the API layer (the service keeps its own)."""
    values: dict[str, Any] = {"api_keys": [KEY, OTHER_KEY], "widget_origins": [ORIGIN], "rate_limit_per_minute": 0}
    values.update(overrides)
    return make_settings(tmp_path / "unused", **values)


def client_for(service: RagService, tmp_path: Path, **overrides: Any) -> TestClient:
    return TestClient(create_app(api_settings(tmp_path, **overrides), service))


@pytest.fixture
def client(newsroom: RagService, tmp_path: Path) -> TestClient:
    return client_for(newsroom, tmp_path)


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> str:
    """The one error shape; returns the message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body["error"]) >= {"code", "message"}
    if code is not None:
        assert body["error"]["code"] == code
    assert body["error"]["message"]
    return str(body["error"]["message"])


# --- asking ---


def test_ask_returns_a_cited_answer(client: TestClient) -> None:
    r = client.post("/v1/ask", json={"question": SEED_QUESTION, "k": 3}, headers=AUTH)
    assert r.status_code == 200
    answer = r.json()
    assert answer["mode"] == "extractive" and not answer["abstained"]
    assert answer["citations"] and all(c["article_id"] == SEED_ID for c in answer["citations"])
    assert {int(n) for n in re.findall(r"\[(\d+)\]", answer["text"])} == {c["number"] for c in answer["citations"]}
    assert len(answer["sources"]) <= 3


def test_sources_carry_a_similarity_and_passages_a_rank_score(client: TestClient, newsroom: RagService) -> None:
    """Two different numbers under two names: cosine similarity on sources, the fused rank score on passages."""
    answer = client.post("/v1/ask", json={"question": BRIDGE_QUESTION}, headers=AUTH).json()
    passages = {p.chunk_id: p for p in newsroom.search(BRIDGE_QUESTION)}
    for source in answer["sources"]:
        assert "score" not in source and -1.0 <= source["similarity"] <= 1.0
    top = newsroom.search(BRIDGE_QUESTION)[0]
    assert answer["sources"][0]["similarity"] == top.dense_score != top.rank_score
    assert all(p.rank_score > 0 for p in passages.values())
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert "Cosine similarity" in schema["Source"]["properties"]["similarity"]["description"]
    assert "score" not in schema["Source"]["properties"]


def test_ask_with_history_filters_and_abstention(client: TestClient) -> None:
    history = [{"role": "user", "content": "Tell me about the harbour bridge."}, {"role": "assistant", "content": "ok"}]
    r = client.post(
        "/v1/ask",
        json={"question": "How much did the repairs cost?", "history": history, "filters": {"source": "Coastal Times"}},
        headers=AUTH,
    )
    assert r.status_code == 200, r.text
    assert all(s["source"] == "Coastal Times" for s in r.json()["sources"])
    assert "48 million" in r.json()["text"]
    off = client.post("/v1/ask", json={"question": "Who won the 1966 World Cup final?"}, headers=AUTH).json()
    assert off["abstained"] and off["citations"] == []


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({}, "question: Field required"),
        ({"question": ""}, "question"),
        ({"question": "   "}, "question: the question is empty"),
        ({"question": "x" * 2001}, "RAG_MAX_QUESTION_CHARS"),
        ({"question": "x", "history": [{"role": "user", "content": "a"}] * 21}, "RAG_MAX_HISTORY_TURNS"),
        ({"question": "x", "history": [{"role": "system", "content": "a"}]}, "history.0.role"),
        ({"question": "x", "k": 0}, "k: Input should be greater than or equal to 1"),
        ({"question": "x", "k": 21}, "k: must be between 1 and 20"),
        ({"question": "x", "mode": "poetry"}, "mode"),
        ({"question": "x", "mode": "llm"}, "RAG_LLM_BASE_URL"),
        ({"question": "x", "filters": {"since": "2024-13-01"}}, "filters.since"),
        ({"question": "x", "filters": {"since": "2024-02-01", "until": "2024-01-01"}}, "since"),
        ({"question": "x", "colour": "blue"}, "colour: Extra inputs are not permitted"),
    ],
)
def test_ask_validation_says_what_to_fix(client: TestClient, body: dict[str, Any], needle: str) -> None:
    for path in ("/v1/ask", "/v1/ask/stream"):
        message = assert_error(client.post(path, json=body, headers=AUTH), 422, "invalid_request")
        assert needle in message


def test_malformed_bodies_get_422(client: TestClient) -> None:
    message = assert_error(
        client.post("/v1/ask", content=b'{"question": ', headers={**AUTH, "Content-Type": "application/json"}), 422
    )
    assert "not valid JSON" in message
    assert_error(client.post("/v1/ask", content=b"[1, 2]", headers={**AUTH, "Content-Type": "application/json"}), 422)


def test_stream_event_order_extractive(client: TestClient) -> None:
    with client.stream("POST", "/v1/ask/stream", json={"question": SEED_QUESTION}, headers=AUTH) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = read_sse(r.read().decode())
    assert_event_order(events)
    assert events[-1][1]["answer"]["citations"]


def test_stream_event_order_llm(llm_service: RagService, tmp_path: Path) -> None:
    llm_service.use_chat_model(lambda: FakeListChatModel(responses=[BRIDGE_ANSWER]))
    client = client_for(llm_service, tmp_path)
    with client.stream("POST", "/v1/ask/stream", json={"question": BRIDGE_QUESTION}, headers=AUTH) as r:
        events = read_sse(r.read().decode())
    assert_event_order(events)
    deltas = [d["text"] for n, d in events if n == "delta"]
    assert len(deltas) > 3, "the model's text streams in pieces"
    answer = events[-1][1]["answer"]
    assert answer["mode"] == "llm" and "48 million euros" in answer["text"] and answer["text"].endswith("[1]")
    assert answer["citations"][0]["article_id"] == "harbour-bridge"


@pytest.mark.parametrize(
    "output",
    [
        BRIDGE_ANSWER + " NOT_IN_ARTICLES",
        "The bridge reopened [1]. NOT_IN_ARTICLES. It cost 48 million euros [1].",
        "NOT_IN_ARTICLES",
        "  NOT_IN_ARTICLES\nThe bridge reopened [1].",
    ],
)
def test_the_refusal_sentinel_never_leaves_the_service(llm_service: RagService, tmp_path: Path, output: str) -> None:
    """Whatever comes before or after it, on every route (the fake model streams one character at a time)."""
    llm_service.use_chat_model(lambda: FakeListChatModel(responses=[output]))
    client = client_for(llm_service, tmp_path)
    ask = {"question": BRIDGE_QUESTION}
    chat = {"model": "rag-llm", "messages": [{"role": "user", "content": BRIDGE_QUESTION}]}
    with client.stream("POST", "/v1/ask/stream", json=ask, headers=AUTH) as r:
        events = read_sse(r.read().decode())
    with client.stream("POST", "/v1/chat/completions", json={**chat, "stream": True}, headers=AUTH) as r:
        chunks = [json.loads(line[5:]) for line in r.read().decode().splitlines() if line.startswith("data: {")]
    shown = {
        "/v1/ask/stream": "".join(d.get("text", "") for n, d in events if n == "delta") + json.dumps(events),
        "/v1/chat/completions (stream)": "".join(
            c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices")
        ) + json.dumps(chunks),
        "/v1/ask": client.post("/v1/ask", json=ask, headers=AUTH).text,
        "/v1/chat/completions": client.post("/v1/chat/completions", json=chat, headers=AUTH).text,
    }
    assert events[-1][1]["answer"]["abstained"]  # the sentinel still means the model refused
    for route, text in shown.items():
        assert "NOT_IN" not in text.replace('"', ""), route


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (openai.APIConnectionError(request=_request()), 503, "upstream_error"),
        (openai.APITimeoutError(request=_request()), 504, "upstream_timeout"),
        (openai.InternalServerError("boom", response=_response(500), body=None), 502, "upstream_error"),
        (openai.AuthenticationError("no", response=_response(401), body=None), 502, "upstream_error"),
        (openai.RateLimitError("slow down", response=_response(429, {"retry-after": "7"}), body=None), 429, None),
    ],
)
def test_upstream_failures_map_to_statuses_and_error_events(
    llm_service: RagService, tmp_path: Path, error: Exception, status: int, code: str | None
) -> None:
    llm_service.use_chat_model(lambda: FailingModel(error=error))
    client = client_for(llm_service, tmp_path)
    r = client.post("/v1/ask", json={"question": BRIDGE_QUESTION}, headers=AUTH)
    assert_error(r, status, code)
    if status == 429:
        assert r.headers["retry-after"] == "7"
    with client.stream("POST", "/v1/ask/stream", json={"question": BRIDGE_QUESTION}, headers=AUTH) as s:
        assert s.status_code == 200
        events = read_sse(s.read().decode())
    assert events[0][0] == "sources"
    assert events[-1][0] == "error" and events[-1][1]["error"]["message"]


def test_llm_at_a_closed_port_is_a_503(llm_service: RagService, tmp_path: Path) -> None:
    """The real ChatOpenAI adapter, pointed at a port where nothing listens."""
    from rag.llm import make_chat_model

    sock = free_socket()  # bound, never listening: connections are refused
    closed = make_settings(tmp_path, llm_base_url=f"http://127.0.0.1:{sock.getsockname()[1]}/v1", llm_max_retries=0)
    llm_service.use_chat_model(lambda: make_chat_model(closed))
    try:
        client = client_for(llm_service, tmp_path)
        message = assert_error(client.post("/v1/ask", json={"question": BRIDGE_QUESTION}, headers=AUTH), 503)
        assert "RAG_LLM_BASE_URL" in message
        with client.stream("POST", "/v1/ask/stream", json={"question": BRIDGE_QUESTION}, headers=AUTH) as s:
            events = read_sse(s.read().decode())
        assert events[-1][0] == "error" and events[-1][1]["error"]["code"] == "upstream_error"
    finally:
        sock.close()


def test_a_stalled_llm_times_out_with_504(llm_service: RagService, tmp_path: Path) -> None:
    probe = new_probe()
    llm_service.use_chat_model(lambda: StallingModel(probe=probe))
    client = client_for(llm_service, tmp_path, llm_timeout=0.5, llm_max_retries=0)
    started = time.monotonic()
    message = assert_error(client.post("/v1/ask", json={"question": BRIDGE_QUESTION}, headers=AUTH), 504)
    assert "RAG_LLM_TIMEOUT" in message
    assert time.monotonic() - started < 5
    assert probe.stopped.wait(2), "the timed-out call was cancelled"
    with client.stream("POST", "/v1/ask/stream", json={"question": BRIDGE_QUESTION}, headers=AUTH) as s:
        events = read_sse(s.read().decode())
    assert [n for n, _ in events][:2] == ["sources", "delta"]
    assert events[-1] == ("error", events[-1][1]) and events[-1][1]["error"]["code"] == "upstream_timeout"


# --- authentication ---


def test_asking_needs_a_key_unless_public(newsroom: RagService, tmp_path: Path) -> None:
    client = client_for(newsroom, tmp_path)
    q = {"question": SEED_QUESTION}
    r = client.post("/v1/ask", json=q)
    assert_error(r, 401, "unauthorized")
    assert r.headers["www-authenticate"] == "Bearer"
    assert_error(client.post("/v1/ask", json=q, headers={"Authorization": "Bearer wrong"}), 401, "invalid_api_key")
    assert_error(client.post("/v1/ask/stream", json=q, headers={"X-API-Key": "wrong"}), 401, "invalid_api_key")
    assert client.post("/v1/ask", json=q, headers={"X-API-Key": OTHER_KEY}).status_code == 200
    assert client.post("/v1/ask", json=q, headers={"Authorization": f"bearer {KEY}"}).status_code == 200

    public = client_for(newsroom, tmp_path, public_ask=True)
    assert public.post("/v1/ask", json=q).status_code == 200
    assert public.get("/v1/articles").status_code == 200
    assert_error(public.post("/v1/ask", json=q, headers={"X-API-Key": "wrong"}), 401, "invalid_api_key")

    keyless = client_for(newsroom, tmp_path, api_keys=[])
    assert "RAG_PUBLIC_ASK" in assert_error(keyless.post("/v1/ask", json=q), 403, "no_keys_configured")
    demo = client_for(newsroom, tmp_path, public_ask=True, api_keys=[])  # `make run`: a key sent anyway is ignored
    assert demo.post("/v1/ask", json=q, headers={"Authorization": "Bearer KEY"}).status_code == 200
    assert demo.get("/v1/articles", headers={"X-API-Key": "anything"}).status_code == 200


def test_writing_always_needs_a_key(scratch: RagService, tmp_path: Path) -> None:
    article = {"body": "A short article about nothing in particular at all.", "id": "auth-check"}
    public = client_for(scratch, tmp_path, public_ask=True)
    assert_error(public.post("/v1/articles", json=article), 401)
    assert_error(public.post("/v1/articles", json=article, headers={"X-API-Key": "nope"}), 401)
    assert_error(public.delete("/v1/articles/auth-check"), 401)
    keyless = client_for(scratch, tmp_path, public_ask=True, api_keys=[])
    message = assert_error(keyless.post("/v1/articles", json=article), 403, "no_keys_configured")
    assert "RAG_API_KEYS" in message
    assert_error(keyless.delete("/v1/articles/auth-check", headers=AUTH), 403)


def test_keys_are_never_logged(newsroom: RagService, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    client = client_for(newsroom, tmp_path)
    client.post("/v1/ask", json={"question": SEED_QUESTION}, headers=AUTH)
    client.post("/v1/ask", json={"question": SEED_QUESTION}, headers={"X-API-Key": "secret-wrong-key"})
    assert KEY not in caplog.text and "secret-wrong-key" not in caplog.text


# --- articles ---


def test_articles_json_object_list_and_report(scratch: RagService, tmp_path: Path) -> None:
    client = client_for(scratch, tmp_path)
    one = {
        "id": "news/one",
        "title": "One",
        "published_at": "2024-03-01",
        "source": "Wire",
        "body": "First story text.",
    }
    r = client.post("/v1/articles", json=one, headers=AUTH)
    assert r.status_code == 200
    assert r.json() == {
        "summary": {"added": 1, "updated": 0, "unchanged": 0, "failed": 0},
        "results": [
            {"origin": "body", "status": "added", "article_id": "news/one", "title": "One", "chunks": 1, "reason": None}
        ],
    }
    again = client.post("/v1/articles", json=[one, {**one, "id": "news/two", "title": "Two"}], headers=AUTH).json()
    assert again["summary"] == {"added": 1, "updated": 0, "unchanged": 1, "failed": 0}

    mixed = client.post("/v1/articles", json=[{**one, "body": "Changed text."}, {"title": "no body"}], headers=AUTH)
    assert mixed.status_code == 207
    assert mixed.json()["summary"] == {"added": 0, "updated": 1, "unchanged": 0, "failed": 1}
    failed = next(x for x in mixed.json()["results"] if x["status"] == "failed")
    assert failed["origin"] == "body[1]" and "missing 'body'" in failed["reason"]

    bad = client.post(
        "/v1/articles", json=[{"title": "no body"}, {"body": "x", "url": "javascript:alert(1)"}], headers=AUTH
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid_articles" and bad.json()["summary"]["failed"] == 2
    assert "body[0]" in bad.json()["error"]["message"]

    assert_error(client.post("/v1/articles", json=[], headers=AUTH), 422, "invalid_request")
    assert_error(client.post("/v1/articles", json="text", headers=AUTH), 422, "invalid_request")
    assert_error(
        client.post("/v1/articles", content=b"{nope", headers={**AUTH, "Content-Type": "application/json"}), 422
    )
    assert_error(
        client.post("/v1/articles", content=b"hello", headers={**AUTH, "Content-Type": "text/plain"}),
        415,
        "unsupported_media_type",
    )


def test_articles_json_lines_and_file_upload(scratch: RagService, tmp_path: Path) -> None:
    client = client_for(scratch, tmp_path)
    lines = "\n".join(
        [
            json.dumps({"id": "jl-1", "body": "Line one story."}),
            "",
            "{broken",
            json.dumps({"id": "jl-2", "body": "Two."}),
        ]
    )
    r = client.post("/v1/articles", content=lines.encode(), headers={**AUTH, "Content-Type": "application/x-ndjson"})
    assert r.status_code == 207
    assert [(x["origin"], x["status"]) for x in r.json()["results"]] == [
        ("line 3", "failed"),
        ("line 1", "added"),
        ("line 4", "added"),
    ]
    assert "invalid JSON" in r.json()["results"][0]["reason"]

    jsonl = b'{"id": "up-1", "body": "Uploaded story one."}\n{"id": "up-2", "body": "Uploaded story two."}\n'
    files = [
        ("file", ("seed.txt", SEED_FILE.read_bytes(), "text/plain")),
        ("file", ("../../etc/batch.jsonl", jsonl, "application/octet-stream")),
        ("file", ("page.html", b"<html><body><article><p>" + b"Story in HTML. " * 20 + b"</p></article></body></html>",
                  "text/html")),
        ("file", ("image.png", b"\x89PNG\r\n", "image/png")),
    ]  # fmt: skip
    up = client.post("/v1/articles", files=files, headers=AUTH)
    assert up.status_code == 207, up.text
    results = {x["origin"]: x for x in up.json()["results"]}
    assert results["seed.txt"]["article_id"] == "seed" and results["seed.txt"]["status"] == "added"
    assert results["batch.jsonl:1"]["article_id"] == "up-1" and results["batch.jsonl:2"]["status"] == "added"
    assert results["page.html"]["status"] == "added"
    assert results["image.png"]["status"] == "failed" and "unsupported file type" in results["image.png"]["reason"]
    assert all("/tmp" not in json.dumps(x) for x in results.values()), "no server paths leak into the report"

    assert_error(client.post("/v1/articles", data={"x": "y"}, files={}, headers=AUTH), 415)
    no_files = client.post(
        "/v1/articles",
        content=b'--b\r\nContent-Disposition: form-data; name="x"\r\n\r\ny\r\n--b--\r\n',
        headers={**AUTH, "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert "no files" in assert_error(no_files, 422)
    assert_error(
        client.post("/v1/articles", content=b"garbage", headers={**AUTH, "Content-Type": "multipart/form-data"}), 400
    )


def test_a_large_upload_runs_as_a_job(scratch: RagService, tmp_path: Path) -> None:
    """More articles than RAG_UPLOAD_JOB_ARTICLES (or ?async=true): 202 at once, then a job URL to follow."""
    client = client_for(scratch, tmp_path, upload_job_articles=3)
    feed = [
        {"id": f"job-{i}", "title": f"Ferry story {i}", "body": f"Ferry story number {i}: the timetable changes."}
        for i in range(5)
    ] + [{"title": "no body at all"}]
    body = "".join(json.dumps(a) + "\n" for a in feed)
    r = client.post("/v1/articles", content=body, headers={**AUTH, "Content-Type": "application/x-ndjson"})
    assert r.status_code == 202, r.text
    job = r.json()
    assert r.headers["location"] == job["url"] == f"/v1/jobs/{job['id']}"
    assert job["total"] == 6 and job["status"] in ("running", "done")

    seen = []
    deadline = time.monotonic() + 60
    while job["status"] == "running":
        assert time.monotonic() < deadline, "the job did not finish in 60 s"
        time.sleep(0.05)
        job = client.get(job["url"], headers=AUTH).json()
        seen.append(job["done"])
    assert seen == sorted(seen) and all(0 <= n <= 6 for n in seen)
    assert job["status"] == "done" and job["done"] == job["total"] == 6
    assert job["report"]["summary"] == {"added": 5, "updated": 0, "unchanged": 0, "failed": 1}
    assert [f["origin"] for f in job["failures"]] == ["line 6"] and job["failures"][0]["reason"]
    assert client.get("/v1/articles/job-4", headers=AUTH).json()["title"] == "Ferry story 4"

    small = client.post("/v1/articles", json=feed[:2], headers=AUTH)
    assert small.status_code == 200 and small.json()["summary"]["unchanged"] == 2  # small uploads answer at once
    forced = client.post("/v1/articles?async=true", json=feed[0], headers=AUTH)
    assert forced.status_code == 202 and forced.json()["total"] == 1
    assert_error(client.get(forced.json()["url"]), 401)
    assert_error(client.get("/v1/jobs/no-such-job", headers=AUTH), 404, "not_found")
    text = client.get("/metrics").text
    assert 'rag_ingest_articles_total{status="added"}' in text


def test_list_show_and_delete_articles(scratch: RagService, tmp_path: Path) -> None:
    client = client_for(scratch, tmp_path)
    batch = [
        {"id": f"page-{i}", "title": f"Story {i}", "published_at": f"2020-01-{i + 1:02d}",
         "source": "Pager" if i % 2 else "Other", "body": f"Story number {i} happened on a quiet day in Pageton."}
        for i in range(7)
    ]  # fmt: skip
    assert client.post("/v1/articles", json=batch, headers=AUTH).status_code == 200

    first = client.get("/v1/articles", params={"limit": 2, "since": "2020-01-01", "until": "2020-01-31"}, headers=AUTH)
    assert first.status_code == 200
    page = first.json()
    assert page["total"] == 7 and page["limit"] == 2 and [a["id"] for a in page["items"]] == ["page-6", "page-5"]
    rest = client.get("/v1/articles", params={"limit": 5, "offset": 2, "until": "2020-01-31"}, headers=AUTH).json()
    assert [a["id"] for a in rest["items"]] == ["page-4", "page-3", "page-2", "page-1", "page-0"]
    pager = client.get("/v1/articles", params={"source": "Pager", "until": "2020-01-31"}, headers=AUTH).json()
    assert pager["total"] == 3 and all(a["source"] == "Pager" for a in pager["items"])
    assert "text" not in page["items"][0]
    assert_error(client.get("/v1/articles", params={"limit": 0}, headers=AUTH), 422)
    assert_error(client.get("/v1/articles", params={"since": "yesterday"}, headers=AUTH), 422)
    assert_error(client.get("/v1/articles"), 401)

    one = client.get("/v1/articles/page-3", headers=AUTH)
    assert one.status_code == 200
    assert one.json()["text"] == batch[3]["body"] and one.json()["chunks"] == 1
    slashed = client.post("/v1/articles", json={"id": "a/b:c", "body": "Slashed id story."}, headers=AUTH)
    assert slashed.status_code == 200
    assert client.get("/v1/articles/a/b:c", headers=AUTH).json()["id"] == "a/b:c"

    r = client.delete("/v1/articles/page-3", headers=AUTH)
    assert r.status_code == 200 and r.json() == {"id": "page-3", "deleted": True}
    assert_error(client.get("/v1/articles/page-3", headers=AUTH), 404, "not_found")
    assert_error(client.delete("/v1/articles/page-3", headers=AUTH), 404, "not_found")
    assert_error(client.delete("/v1/articles/a/b:c"), 401)


# --- limits ---


def test_body_limit_from_content_length_and_from_the_stream(
    client: TestClient, newsroom: RagService, tmp_path: Path
) -> None:
    small = client_for(newsroom, tmp_path, max_body_bytes=1000)
    big = {"question": "x" * 1500}
    message = assert_error(small.post("/v1/ask", json=big, headers=AUTH), 413, "payload_too_large")
    assert "RAG_MAX_BODY_BYTES" in message

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit must hold on the stream itself
        yield b'{"question": "'
        for _ in range(30):
            yield b"x" * 100
        yield b'"}'

    for path in ("/v1/ask", "/v1/articles", "/v1/ask/stream"):
        r = small.post(path, content=chunks(), headers={**AUTH, "Content-Type": "application/json"})
        assert "content-length" not in r.request.headers
        assert_error(r, 413, "payload_too_large")
    assert small.post("/v1/ask", json={"question": SEED_QUESTION}, headers=AUTH).status_code == 200


def test_rate_limit_per_address_and_per_key(newsroom: RagService, tmp_path: Path) -> None:
    settings = api_settings(tmp_path, rate_limit_per_minute=2, public_ask=True)
    app = create_app(settings, newsroom)
    q = {"question": SEED_QUESTION}
    a = TestClient(app, client=("10.0.0.1", 1000))
    assert a.post("/v1/ask", json=q).status_code == 200
    assert a.post("/v1/ask/stream", json=q).status_code == 200
    r = a.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": SEED_QUESTION}]})
    assert_error(r, 429, "rate_limited")
    assert 1 <= int(r.headers["retry-after"]) <= 30

    # One key shared by two addresses: its own bucket empties even though the second address has tokens.
    b = TestClient(app, client=("10.0.0.2", 1000))
    c = TestClient(app, client=("10.0.0.3", 1000))
    assert b.post("/v1/ask", json=q, headers=AUTH).status_code == 200
    assert c.post("/v1/ask", json=q, headers=AUTH).status_code == 200
    assert_error(c.post("/v1/ask", json=q, headers=AUTH), 429)
    assert c.post("/v1/ask", json=q, headers={"X-API-Key": OTHER_KEY}).status_code == 200
    assert c.get("/v1/articles").status_code == 200, "only asking is rate limited"
    assert "rag_rate_limited_total 2.0" in c.get("/metrics").text


def test_token_bucket_refills() -> None:
    now = [0.0]
    limiter = RateLimiter(60, clock=lambda: now[0])  # one token a second, bursts of 60
    assert all(limiter.take(["a"]) is None for _ in range(60))
    wait = limiter.take(["a"])
    assert wait is not None and 0.9 < wait <= 1.0
    now[0] += 1.0
    assert limiter.take(["a"]) is None
    assert limiter.take(["a", "b"]) is not None, "all-or-nothing: b's token is not taken when a is empty"
    assert limiter._buckets.get("b") is None


# --- errors, headers, CORS, operations ---


def test_404_405_and_500_use_the_error_shape(
    newsroom: RagService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = client_for(newsroom, tmp_path)
    r = client.get("/v2/nothing")
    assert "/v2/nothing" in assert_error(r, 404, "not_found")
    assert r.headers["x-content-type-options"] == "nosniff"
    r = client.get("/v1/ask")
    assert "POST" in assert_error(r, 405, "method_not_allowed")
    assert_error(client.put("/v1/articles/x", headers=AUTH), 405)

    def broken() -> None:
        raise RuntimeError("disk on fire at /secret/path")

    monkeypatch.setattr(newsroom, "list_articles", broken)
    r = TestClient(create_app(api_settings(tmp_path), newsroom), raise_server_exceptions=False).get(
        "/v1/articles", headers={**AUTH, "Origin": ORIGIN}
    )
    message = assert_error(r, 500, "internal_error")
    assert "secret" not in message
    assert r.headers["x-frame-options"] == "DENY" and r.headers["access-control-allow-origin"] == ORIGIN


def test_security_headers_everywhere(client: TestClient) -> None:
    for r in (
        client.get("/healthz"),
        client.post("/v1/ask", json={"question": SEED_QUESTION}, headers=AUTH),
        client.post("/v1/ask", json={}),
    ):
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["x-frame-options"] == "DENY"
        assert "default-src 'none'" in r.headers["content-security-policy"]


def test_demo_page_and_widget_script(client: TestClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from rag.api import routes_web

    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text('<!doctype html><title>demo</title><script src="/widget.js"></script>')
    (web / "widget.js").write_text("console.log('widget');")
    monkeypatch.setattr(routes_web, "WEB_DIR", web)
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == DEMO_PAGE_CSP
    assert page.headers["x-frame-options"] == "DENY" and page.headers["x-content-type-options"] == "nosniff"
    script = client.get("/widget.js", headers={"Origin": "https://any-site.example"})
    assert script.status_code == 200 and script.text == "console.log('widget');"
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.headers["cross-origin-resource-policy"] == "cross-origin"
    assert script.headers["x-content-type-options"] == "nosniff"

    (web / "widget.js").unlink()
    (web / "index.html").unlink()
    assert "widget.js" in assert_error(client.get("/widget.js"), 404, "not_found")
    assert_error(client.get("/"), 404)


def test_cors_allowlist(client: TestClient) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-api-key"}
    ok = client.options("/v1/ask/stream", headers={"Origin": ORIGIN, **preflight})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == ORIGIN
    assert "access-control-allow-credentials" not in ok.headers
    assert set(ok.headers["access-control-allow-methods"].split(", ")) == {"GET", "POST", "DELETE", "OPTIONS"}
    assert "x-api-key" in ok.headers["access-control-allow-headers"].lower()

    evil = client.options("/v1/ask/stream", headers={"Origin": "https://evil.example", **preflight})
    assert "RAG_WIDGET_ORIGINS" in assert_error(evil, 400, "cors_refused")
    assert "access-control-allow-origin" not in evil.headers
    simple = client.post(
        "/v1/ask", json={"question": SEED_QUESTION}, headers={**AUTH, "Origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in simple.headers
    allowed = client.post("/v1/ask", json={"question": SEED_QUESTION}, headers={**AUTH, "Origin": ORIGIN})
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "access-control-allow-credentials" not in allowed.headers
    limited = client.post("/v1/ask", json={}, headers={"Origin": ORIGIN})
    assert limited.status_code == 401 and limited.headers["access-control-allow-origin"] == ORIGIN


def test_health_readiness_docs_and_openapi(
    client: TestClient, newsroom: RagService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["articles"] == 5 and ready["chunks"] >= 5 and ready["llm"] is False
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    assert "script-src 'self' 'sha256-" in docs.headers["content-security-policy"]
    assert "cdn" not in docs.text and client.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"/v1/ask", "/v1/ask/stream", "/v1/chat/completions", "/v1/articles", "/v1/articles/{article_id}"} <= set(
        schema["paths"]
    )

    def down() -> None:
        raise ConnectionError("chroma went away")

    monkeypatch.setattr(newsroom, "ready", down)
    assert_error(client.get("/readyz"), 503, "not_ready")


def test_metrics(client: TestClient) -> None:
    client.post("/v1/ask", json={"question": SEED_QUESTION}, headers=AUTH)
    client.post("/v1/ask", json={"question": "Who won the 1966 World Cup final?"}, headers=AUTH)
    client.get("/v1/articles/no-such-article", headers=AUTH)
    client.get("/wp-login.php")
    client.get("/openapi.json")
    text = client.get("/metrics").text
    assert 'route="/openapi.json",status="200"' in text
    assert 'rag_http_requests_total{method="POST",route="/v1/ask",status="200"} 2.0' in text
    assert 'route="/v1/articles/{article_id:path}",status="404"' in text
    assert 'route="unmatched",status="404"' in text and "wp-login" not in text
    assert 'rag_ask_duration_seconds_count{mode="extractive"} 2.0' in text
    assert 'rag_abstentions_total{mode="extractive"} 1.0' in text
    assert 'rag_http_request_duration_seconds_bucket{le="0.5",method="POST",route="/v1/ask"}' in text


def test_ingest_metrics(scratch: RagService, tmp_path: Path) -> None:
    client = client_for(scratch, tmp_path)
    client.post("/v1/articles", json=[{"id": "m-1", "body": "Metric story."}, {"title": "bad"}], headers=AUTH)
    text = client.get("/metrics").text
    assert 'rag_ingest_articles_total{status="added"} 1.0' in text
    assert 'rag_ingest_articles_total{status="failed"} 1.0' in text


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
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "RAG_DATA_DIR": str(tmp_path / "data"), "RAG_PUBLIC_ASK": "true"}
    cmd = [sys.executable, "-m", "rag.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--ingest-seeds"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                ready = httpx.get(f"{base}/readyz", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "rag serve did not become ready"
            time.sleep(0.2)
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
