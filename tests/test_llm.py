"""LLM seam: prompt files, and every way the LLM can fail ending in a clear error or a clean abstention."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from conftest import make_settings
from servers import free_port

from rag.embeddings import OnnxMiniLM
from rag.errors import InvalidRequestError, UpstreamError
from rag.llm import PROMPTS_DIR, load_prompt, prompt_variables
from rag.service import RagService

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
QUESTION = "What did Babushkin say about sanctions?"

# The variables the code fills in, per prompt file: a file that asks for more or fewer breaks this test.
EXPECTED_VARIABLES = {"answer": {"passages", "question"}, "condense": {"history", "question"}}


@pytest.mark.parametrize("name", sorted(EXPECTED_VARIABLES))
def test_prompt_files_use_exactly_the_variables_the_code_fills(name: str) -> None:
    assert prompt_variables(name) == EXPECTED_VARIABLES[name]
    assert set(load_prompt(name).input_variables) == EXPECTED_VARIABLES[name]


def test_every_prompt_file_is_known() -> None:
    names = {p.stem for p in PROMPTS_DIR.glob("*.md")}
    assert names - {"judge"} == set(EXPECTED_VARIABLES)


def test_answer_prompt_forbids_outside_knowledge_and_fences_passages() -> None:
    messages = load_prompt("answer").format_messages(passages='<passage number="1">x</passage>', question="q")
    assert messages[0].type == "system" and "outside knowledge" in str(messages[0].content)
    assert "<passages>" in str(messages[1].content)


class _Scripted(http.server.BaseHTTPRequestHandler):
    """An OpenAI-compatible endpoint that fails the way the test asks (status, delay or body)."""

    behaviour: ClassVar[dict[str, object]] = {}
    requests: ClassVar[list[dict[str, object]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        type(self).requests.append(body)
        delay = float(self.behaviour.get("delay", 0))  # type: ignore[arg-type]
        if delay:
            time.sleep(delay)
        status = int(self.behaviour.get("status", 200))  # type: ignore[call-overload]
        payload = self.behaviour.get("body", {"error": {"message": "scripted failure"}})
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            if status == 429:
                self.send_header("retry-after", "7")
            self.send_header("content-length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def scripted_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory, embedder: OnnxMiniLM) -> Path:
    path = tmp_path_factory.mktemp("llm")
    with RagService.open(make_settings(path), embedder=embedder) as svc:
        assert not svc.ingest_paths([SEEDS]).failed
    return path


def _service(data_dir: Path, embedder: OnnxMiniLM, base_url: str, **extra: object) -> RagService:
    settings = make_settings(
        data_dir, llm_base_url=base_url, llm_model="m", llm_timeout=2, llm_max_retries=0, **extra
    )
    return RagService.open(settings, embedder=embedder)


_free_port = free_port


@pytest.mark.parametrize(
    ("behaviour", "status", "words"),
    [
        ({"status": 401}, 401, "API key"),
        ({"status": 429}, 429, "rate limiting"),
        ({"status": 500}, 500, "HTTP 500"),
        ({"status": 404}, 404, "RAG_LLM_MODEL"),
        ({"delay": 3.0}, 504, "in time"),
    ],
)
def test_llm_failures_become_clear_errors(
    data_dir: Path, embedder: OnnxMiniLM, scripted_server: str, behaviour: dict[str, object], status: int, words: str
) -> None:
    _Scripted.behaviour = behaviour
    with _service(data_dir, embedder, scripted_server) as svc, pytest.raises(UpstreamError) as caught:
        svc.ask(QUESTION, mode="llm")
    assert caught.value.status == status and words in str(caught.value)
    if status == 429:
        assert caught.value.retry_after == 7


def test_llm_server_down_is_a_clear_error(data_dir: Path, embedder: OnnxMiniLM) -> None:
    url = f"http://127.0.0.1:{_free_port()}/v1"
    with _service(data_dir, embedder, url) as svc, pytest.raises(UpstreamError) as caught:
        svc.ask(QUESTION, mode="llm")
    assert caught.value.status == 503 and "RAG_LLM_BASE_URL" in str(caught.value)


@pytest.mark.parametrize(
    "body",
    [
        {"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": []},
        {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
         "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": ""}}]},
        {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
         "choices": [{"index": 0, "finish_reason": "stop",
                      "message": {"role": "assistant", "content": "Bananas are blue [7][1]."}}]},
    ],
)  # fmt: skip
def test_malformed_or_empty_llm_output_abstains_or_errors_cleanly(
    data_dir: Path, embedder: OnnxMiniLM, scripted_server: str, body: dict[str, object]
) -> None:
    _Scripted.behaviour = {"status": 200, "body": body}
    with _service(data_dir, embedder, scripted_server) as svc:
        try:
            answer = svc.ask(QUESTION, mode="llm")
        except UpstreamError as exc:
            assert "LLM" in str(exc)
            return
    assert answer.abstained and answer.citations == []
    assert "[" not in answer.text


def test_request_shape_sent_to_the_llm(data_dir: Path, embedder: OnnxMiniLM, scripted_server: str) -> None:
    _Scripted.requests = []
    _Scripted.behaviour = {"status": 401}
    with _service(data_dir, embedder, scripted_server, llm_max_tokens=77) as svc, pytest.raises(UpstreamError):
        svc.ask(QUESTION, mode="llm")
    (request,) = _Scripted.requests
    assert request["model"] == "m" and request["temperature"] == 0.0
    assert request["max_completion_tokens"] == 77 or request.get("max_tokens") == 77
    system, user = request["messages"]  # type: ignore[misc]
    assert system["role"] == "system" and user["role"] == "user"
    assert '<passage number="1"' in user["content"] and QUESTION in user["content"]


def test_llm_mode_without_configuration_is_refused(data_dir: Path, embedder: OnnxMiniLM) -> None:
    with RagService.open(make_settings(data_dir), embedder=embedder) as svc:
        with pytest.raises(InvalidRequestError, match="RAG_LLM_BASE_URL"):
            svc.ask(QUESTION, mode="llm")
        assert svc.ask(QUESTION).mode == "extractive"
