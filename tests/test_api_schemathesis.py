"""Schemathesis over the OpenAPI schema: whatever it generates, the API never answers with a 5xx.

Each operation gets 30 generated requests (derandomized, so a run is repeatable), sent through the real app
to the real service, with a valid key so that requests get past authentication to the routes themselves.
Responses must also match the documented statuses and schemas.

(Driven with Hypothesis directly: schemathesis's pytest fixture loader does not run on pytest 9.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from api_support import BRIDGE_ANSWER, KEY, api_settings
from conftest import SEED_FILE, make_settings
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from rag.api.app import create_app
from rag.embeddings import OnnxMiniLM
from rag.service import RagService

# Valid requests must also get documented statuses and bodies; invalid ones only must not break the server.
PLAN = [
    (GenerationMode.POSITIVE, 30, [not_a_server_error, status_code_conformance, response_schema_conformance]),
    (GenerationMode.NEGATIVE, 30, [not_a_server_error]),
]


@pytest.fixture(scope="module")
def service(embedder: OnnxMiniLM, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RagService]:
    """The seed article; extractive by default, `mode: llm` answered by a scripted model."""
    data = tmp_path_factory.mktemp("fuzz")
    svc_settings = make_settings(data / "data", answer_mode="extractive", llm_base_url="http://127.0.0.1:9/v1")
    with RagService.open(svc_settings, embedder=embedder) as svc:
        assert not svc.ingest_paths([SEED_FILE]).failed
        svc.use_chat_model(lambda: FakeListChatModel(responses=[BRIDGE_ANSWER]))
        yield svc


def test_no_server_errors_for_generated_requests(service: RagService, tmp_path: Path) -> None:
    app = create_app(api_settings(tmp_path), service)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10

    calls: Counter[str] = Counter()
    for operation in operations:
        for mode, examples, checks in PLAN:
            fuzz(operation, mode, examples, checks, calls)
    assert all(calls[op.label] >= 1 for op in operations), calls  # parameterless ones need only one


def fuzz(operation: Any, mode: GenerationMode, examples: int, checks: list[Any], calls: Counter[str]) -> None:
    """Send `examples` generated requests to one operation; fail on the first that breaks a check."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
    )
    def run(case: Any) -> None:
        calls[operation.label] += 1
        case.call_and_validate(headers={"Authorization": f"Bearer {KEY}"}, checks=checks)

    try:
        run()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        # An operation without parameters or body (GET /healthz) has no invalid input to generate.
