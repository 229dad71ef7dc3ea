"""Shared fixtures: one real embedding model per session, settings built explicitly, services on tmp dirs."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rag.config import Settings
from rag.embeddings import OnnxMiniLM
from rag.service import RagService

# The API test modules' shared fixtures (services, clients) live beside their helpers.
pytest_plugins = ["api_support"]

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"
SEED_FILE = SEEDS / "000_b8a56a9e591fffd2.txt"
SEED_ID = "000_b8a56a9e591fffd2"
SEED_QUESTION = "What did Russia say about India's position at the UN Security Council?"


@pytest.fixture(autouse=True)
def _no_rag_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests configure everything explicitly; a developer's RAG_* variables or OpenAI key must not leak in."""
    for name in list(os.environ):
        if name.startswith("RAG_") or name == "OPENAI_API_KEY":
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def embedder() -> OnnxMiniLM:
    """The real packaged model, loaded once for the whole run."""
    return OnnxMiniLM()


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a test: nothing read from the environment or a `.env` file."""
    return Settings(_env_file=None, data_dir=data_dir, **overrides)  # type: ignore[call-arg]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


OpenService = Callable[..., RagService]


@pytest.fixture
def open_service(embedder: OnnxMiniLM, tmp_path: Path) -> Iterator[OpenService]:
    """Open services (default: on this test's data dir) that are all closed when the test ends."""
    opened: list[RagService] = []

    def _open(settings: Settings | None = None, **overrides: Any) -> RagService:
        service = RagService.open(settings or make_settings(tmp_path / "data", **overrides), embedder=embedder)
        opened.append(service)
        return service

    yield _open
    for service in opened:
        service.close()


@pytest.fixture
def service(open_service: OpenService) -> RagService:
    return open_service()


def write_jsonl(path: Path, articles: list[dict[str, Any]]) -> Path:
    """Write articles as JSON Lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(a, ensure_ascii=False) + "\n" for a in articles), encoding="utf-8")
    return path


# A small newsroom: different dates and sources, each with facts no other article has.
NEWS: list[dict[str, Any]] = [
    {
        "id": "harbour-bridge",
        "title": "Harbour bridge reopens after two years of repairs",
        "url": "https://coastal-times.example/news/harbour-bridge",
        "published_at": "2023-05-17",
        "source": "Coastal Times",
        "body": (
            "The harbour bridge in Port Alden reopened to traffic on Wednesday after two years of repairs that "
            "cost the city 48 million euros. Engineer Thorvald Quistgaard said all 212 steel cables had been "
            "replaced. Buses will return to their old routes from Monday."
        ),
    },
    {
        "id": "wheat-harvest",
        "title": "Record wheat harvest expected on the plains",
        "url": "https://farm-gazette.example/wheat-harvest",
        "published_at": "2021-08-02",
        "source": "Farm Gazette",
        "body": (
            "Farmers on the northern plains expect a record wheat harvest this year after a wet spring. "
            "The agriculture ministry forecasts 31 million tonnes, up from 27 million last year. "
            "Grain prices fell slightly on the news."
        ),
    },
    {
        "id": "chess-final",
        "title": "Teenager wins national chess championship",
        "url": "https://coastal-times.example/sport/chess-final",
        "published_at": "2022-11-30",
        "source": "Coastal Times",
        "body": (
            "A sixteen-year-old from Millbrook won the national chess championship on Sunday, beating the "
            "defending champion in a tense final game. She said she had prepared for the final for six months."
        ),
    },
    {
        "id": "volcano-flights",
        "title": "Volcanic ash cloud grounds flights",
        "url": "https://world-wire.example/volcano-flights",
        "published_at": "2020-04-09",
        "source": "World Wire",
        "body": (
            "Hundreds of flights were cancelled on Thursday as an ash cloud from an erupting volcano drifted "
            "over the region. Airlines said passengers should check their flight status before travelling."
        ),
    },
]
