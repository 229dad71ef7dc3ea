"""The API's asking routes: /v1/ask and /v1/ask/stream, answers, validation, SSE order, LLM failures."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import openai
import pytest
from api_support import (
    AUTH,
    BRIDGE_ANSWER,
    BRIDGE_QUESTION,
    FailingModel,
    StallingModel,
    _request,
    _response,
    assert_error,
    assert_event_order,
    client_for,
    new_probe,
    read_sse,
)
from conftest import SEED_ID, SEED_QUESTION, make_settings
from fastapi.testclient import TestClient
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from servers import free_socket

from rag.service import RagService

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
        )
        + json.dumps(chunks),
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
