"""What the attack suite shares: the server's keys, a newsroom service, and clients for the app.

Modules here reuse the helpers of tests/test_api.py (live uvicorn, SSE parsing, the error shape) and of
tests/test_widget_browser.py (Chromium, the widget's page helpers) rather than copying them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import NEWS, make_settings
from fastapi.testclient import TestClient

from rag.api.app import create_app
from rag.config import Settings
from rag.documents import build_article
from rag.embeddings import OnnxMiniLM
from rag.service import RagService

KEY = "attack-suite-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
ORIGIN = "https://news.example"
BRIDGE_QUESTION = "How much did the harbour bridge repairs cost?"


def newsroom(embedder: OnnxMiniLM, data_dir: Path) -> RagService:
    """An extractive service over the shared small newsroom."""
    service = RagService.open(make_settings(data_dir, answer_mode="extractive"), embedder=embedder)
    report = service.ingest([build_article(a, origin="news", fallback_id=None) for a in NEWS])
    assert not report.failed
    return service


def api_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """The red team's setup: keys set, public asking off, one allowed widget origin; the ask rate limit off."""
    values: dict[str, Any] = {"api_keys": [KEY], "widget_origins": [ORIGIN], "rate_limit_per_minute": 0}
    values.update(overrides)
    return make_settings(tmp_path / "unused", **values)


def client(service: RagService, tmp_path: Path, address: str = "198.51.100.7", **overrides: Any) -> TestClient:
    """A TestClient calling from `address`."""
    return TestClient(create_app(api_settings(tmp_path, **overrides), service), client=(address, 40_000))
