"""What the API test modules share: scripted chat models (the LLM seam), SSE readers, the services they
run against (as fixtures, registered by conftest.py) and the error-shape check."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import httpx2  # what the openai SDK is built on
import pytest
from conftest import NEWS, SEED_FILE, make_settings
from fastapi.testclient import TestClient
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from pydantic import ConfigDict

from rag.api.app import create_app
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


# --- reading server-sent events ---


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
