"""/v1/chat/completions and /v1/models, called with the official `openai` client against a live uvicorn."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from api_support import BRIDGE_ANSWER, BRIDGE_QUESTION, KEY, FailingModel, _request, api_settings
from conftest import NEWS, SEED_FILE, SEED_ID, SEED_QUESTION, make_settings
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from servers import LiveServer

from rag.api.app import create_app
from rag.documents import build_article
from rag.embeddings import OnnxMiniLM
from rag.service import RagService


@pytest.fixture(scope="module")
def server(embedder: OnnxMiniLM, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, RagService]]:
    """The seed article and four more, auto mode with a scripted LLM: `rag-extractive` and `rag-llm` both work."""
    data = tmp_path_factory.mktemp("openai")
    settings = make_settings(data / "data", answer_mode="extractive", llm_base_url="http://127.0.0.1:9/v1")
    with RagService.open(settings, embedder=embedder) as service:
        assert not service.ingest_paths([SEED_FILE]).failed
        assert not service.ingest([build_article(a, origin="news", fallback_id=None) for a in NEWS]).failed
        live = LiveServer.start(create_app(api_settings(data), service))
        yield live, service
        live.stop()


@pytest.fixture
def client(server: tuple[LiveServer, RagService]) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{server[0].base}/v1", api_key=KEY, max_retries=0, timeout=30) as c:
        yield c


def extra(obj: Any) -> dict[str, Any]:
    """The fields the SDK's models do not declare (our citations)."""
    return dict(obj.model_extra or {})


def markers(text: str) -> set[int]:
    return {int(n) for n in re.findall(r"\[(\d+)\]", text)}


def test_completion_carries_citations_as_markers_and_data(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="rag-extractive", messages=[{"role": "user", "content": SEED_QUESTION}]
    )
    text = completion.choices[0].message.content or ""
    citations = extra(completion)["citations"]
    assert completion.object == "chat.completion" and completion.model == "rag-extractive"
    assert completion.choices[0].finish_reason == "stop"
    assert citations and markers(text) == {c["number"] for c in citations}
    assert all(c["article_id"] == SEED_ID and c["quote"] for c in citations)
    assert extra(completion.choices[0])["citations"] == citations
    assert extra(completion)["sources"] and extra(completion)["abstained"] is False


def test_streaming_keeps_text_and_citations(client: openai.OpenAI) -> None:
    messages: Any = [{"role": "user", "content": SEED_QUESTION}]
    whole = client.chat.completions.create(model="rag-extractive", messages=messages)
    chunks = list(client.chat.completions.create(model="rag-extractive", messages=messages, stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == whole.choices[0].message.content
    assert sum(1 for c in chunks if c.choices[0].delta.content) > 1, "the text arrives in pieces"
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert extra(last)["citations"] == extra(whole)["citations"]
    assert extra(last.choices[0])["citations"] == extra(whole)["citations"]
    assert markers(text) == {c["number"] for c in extra(last)["citations"]}
    assert all(c.id == chunks[0].id for c in chunks)


def test_llm_model_with_history_and_system_prompt(client: openai.OpenAI, server: tuple[LiveServer, RagService]) -> None:
    # The scripted model first rewrites the follow-up (condense prompt), then answers.
    server[1].use_chat_model(lambda: FakeListChatModel(responses=[BRIDGE_QUESTION, BRIDGE_ANSWER]))
    messages: Any = [
        {"role": "system", "content": "You are a pirate."},
        {"role": "user", "content": "Tell me about the harbour bridge in Port Alden."},
        {"role": "assistant", "content": "It reopened on Wednesday."},
        {"role": "user", "content": [{"type": "text", "text": "What did the repairs cost?"}]},
    ]
    stream = client.chat.completions.create(model="rag-llm", messages=messages, stream=True)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    citations = extra(chunks[-1])["citations"]
    assert "48 million euros" in text and markers(text) == {c["number"] for c in citations} == {1}
    assert citations[0]["article_id"] == "harbour-bridge"


def test_models_list(client: openai.OpenAI) -> None:
    assert {m.id for m in client.models.list()} == {"rag", "rag-extractive", "rag-llm"}


def test_errors_reach_the_client(client: openai.OpenAI, server: tuple[LiveServer, RagService]) -> None:
    live, service = server
    with (
        openai.OpenAI(base_url=f"{live.base}/v1", api_key="wrong", max_retries=0) as bad,
        pytest.raises(openai.AuthenticationError) as auth,
    ):
        bad.chat.completions.create(model="rag", messages=[{"role": "user", "content": "hi"}])
    assert "not valid" in str(auth.value)
    with pytest.raises(openai.UnprocessableEntityError) as last:
        client.chat.completions.create(model="rag", messages=[{"role": "assistant", "content": "hi"}])
    assert "last message must have role 'user'" in str(last.value)

    service.use_chat_model(lambda: FailingModel(error=openai.APIConnectionError(request=_request())))
    with pytest.raises(openai.InternalServerError) as down:
        client.chat.completions.create(model="rag-llm", messages=[{"role": "user", "content": BRIDGE_QUESTION}])
    assert down.value.status_code == 503
    stream = client.chat.completions.create(
        model="rag-llm", messages=[{"role": "user", "content": BRIDGE_QUESTION}], stream=True
    )
    with pytest.raises(openai.APIError) as mid_stream:
        list(stream)
    assert "cannot reach the LLM" in str(mid_stream.value)
