"""The Chroma store: the lock, the embedder check, and replacing an article so that no search sees a mix."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import chromadb.api.types
import pytest
from chromadb.utils.embedding_functions.onnx_mini_lm_l6_v2 import ONNXMiniLM_L6_V2
from conftest import NEWS, SEED_QUESTION, SEEDS, OpenService, make_settings, write_jsonl

from rag.errors import ConfigError, NotFoundError, StoreError, StoreLockedError
from rag.models import Filters
from rag.service import RagService
from rag.store import DataDirLock, open_store

V1 = {**NEWS[0]}
V2 = {
    **NEWS[0],
    "title": "Harbour bridge reopens, cables to be inspected yearly",
    "body": (
        "The harbour bridge in Port Alden reopened to traffic on Wednesday. Inspector Ragnhild Oyelaran said the "
        "new cables will be inspected every year. Ferry services between the quays end this month."
    ),
}
ARTICLE = V1["id"]


class Crash(BaseException):
    """The process dying mid-write: nothing in the process gets to clean up."""


class Failing:
    """A Chroma collection whose `method` fails on its `on`-th call; everything else is the real collection."""

    def __init__(self, collection: Any, method: str, on: int = 1, error: Callable[[], BaseException] = Crash) -> None:
        self._collection, self._method, self._on, self._error = collection, method, on, error
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._collection, name)
        if name != self._method:
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.calls == self._on:
                raise self._error()
            return attr(*args, **kwargs)

        return call


def ingest(service: RagService, tmp_path: Path, *articles: dict[str, Any], name: str = "feed.jsonl") -> dict[str, int]:
    return service.ingest_paths([write_jsonl(tmp_path / "in" / name, list(articles))]).summary()


def chunk_rows(service: RagService, article_id: str) -> list[tuple[str, str]]:
    """(chunk id, text) of every chunk Chroma holds for the article, live or not (text None: not live)."""
    return service.store.chunk_texts(article_id)


def visible_texts(service: RagService, article_id: str = ARTICLE) -> str:
    """Everything searches return from the article, over several queries, filtered and not."""
    found = []
    for query in ("harbour bridge cables", "Quistgaard", "Oyelaran inspected yearly", "ferry buses Monday"):
        found += service.search(query, k=10)
        found += service.search(query, k=10, filters=Filters(article_id=article_id))
    return " ".join(p.text for p in found if p.article_id == article_id)


def assert_only(service: RagService, live: dict[str, Any], gone: dict[str, Any]) -> None:
    """Searches show `live` and nothing of `gone`; so does the article record."""
    text = visible_texts(service)
    assert live["body"].split(". ")[1] in text
    assert gone["body"].split(". ")[1] not in text
    assert service.get_article(ARTICLE).text == live["body"]


# --- the lock ---


def test_a_second_lock_on_a_data_dir_is_refused_at_once_and_says_by_whom(tmp_path: Path) -> None:
    lock = DataDirLock(tmp_path)
    with pytest.raises(StoreLockedError, match=r"in use by pid \d+.*RAG_CHROMA_URL"):
        DataDirLock(tmp_path)
    lock.release()
    DataDirLock(tmp_path).release()  # free again once released


def test_a_second_service_on_the_same_data_dir_is_refused(open_service: OpenService, tmp_path: Path) -> None:
    first = open_service()
    with pytest.raises(StoreLockedError, match="is in use by"):
        open_service()
    first.close()
    open_service()  # and allowed once the first has closed


def test_a_store_built_with_another_embedder_is_refused(open_service: OpenService, tmp_path: Path) -> None:
    open_service().close()
    with pytest.raises(ConfigError, match="built with the embedder 'all-MiniLM-L6-v2-int8'"):
        open_store(make_settings(tmp_path / "data"), "some-other-model", 384)
    DataDirLock(tmp_path / "data").release()  # the refused open gave the lock back


def test_a_malformed_or_unreachable_chroma_url_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="must look like http://host:port"):
        open_store(make_settings(tmp_path, chroma_url="localhost:8000"), "m", 384)
    with pytest.raises(StoreError, match=r"cannot reach the Chroma server at http://127\.0\.0\.1:9"):
        open_store(make_settings(tmp_path, chroma_url="http://127.0.0.1:9"), "m", 384)


# --- Chroma never embeds anything itself ---


def test_chromas_default_embedding_function_is_never_called(
    open_service: OpenService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("Chroma's default embedding function was called (it downloads a model)")

    monkeypatch.setattr(chromadb.api.types.DefaultEmbeddingFunction, "__call__", refuse)
    monkeypatch.setattr(ONNXMiniLM_L6_V2, "__call__", refuse)
    service = open_service()
    assert service.ingest_paths([SEEDS]).summary()["added"] == 1
    assert ingest(service, tmp_path, V1)["added"] == 1
    assert service.search(SEED_QUESTION)
    assert service.search("harbour", filters=Filters(since=dt.date(2020, 1, 1)))
    assert ingest(service, tmp_path, V2)["updated"] == 1
    service.delete_article(ARTICLE)
    service.close()
    assert open_service().search(SEED_QUESTION)  # and reopening reads the collections without it


# --- generation ---


def test_the_generation_changes_on_every_write_and_only_then(service: RagService, tmp_path: Path) -> None:
    assert service.store.generation() == ""
    ingest(service, tmp_path, V1)
    first = service.store.generation()
    assert first and service.index.generation == first
    ingest(service, tmp_path, V1)
    assert service.store.generation() == first  # nothing written
    ingest(service, tmp_path, V2)
    second = service.store.generation()
    assert second != first
    service.delete_article(ARTICLE)
    assert service.store.generation() not in {first, second}
    assert service.index.generation == service.store.generation()


def test_deleting_an_unknown_id_changes_nothing(service: RagService, tmp_path: Path) -> None:
    ingest(service, tmp_path, V1)
    generation = service.store.generation()
    with pytest.raises(NotFoundError, match="no article with id 'nope'"):
        service.delete_article("nope")
    with pytest.raises(NotFoundError):
        service.get_article("nope")
    assert service.store.generation() == generation


# --- a write interrupted at each step: old or new version, never both, never part of one ---


def test_failure_after_new_chunks_before_the_record_flips_keeps_the_old_version(
    service: RagService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest(service, tmp_path, V1)
    old_chunks = chunk_rows(service, ARTICLE)
    monkeypatch.setattr(service.store, "articles", Failing(service.store.articles, "upsert", error=RuntimeError))

    report = service.ingest_paths([write_jsonl(tmp_path / "v2.jsonl", [V2])])

    assert report.summary()["failed"] == 1
    assert (report.results[0].reason or "").startswith("writing to Chroma failed")
    assert_only(service, live=V1, gone=V2)
    assert chunk_rows(service, ARTICLE) == old_chunks  # the half-written version was swept

    monkeypatch.undo()
    assert ingest(service, tmp_path, V2) == {"added": 0, "updated": 1, "unchanged": 0, "failed": 0}
    assert_only(service, live=V2, gone=V1)
    rows = chunk_rows(service, ARTICLE)
    assert len(rows) == service.get_article(ARTICLE).chunks == len(service.index.article_rows(ARTICLE))
    assert all(text and V2["body"].find(text) >= 0 for _, text in rows)


@pytest.mark.parametrize(
    ("collection", "method", "on", "live"),
    [
        ("chunks", "upsert", 1, V1),  # dies while writing the new chunks
        ("articles", "upsert", 1, V1),  # new chunks written, record not flipped
        ("chunks", "delete", 1, V2),  # record flipped, old chunks not yet swept
        ("meta", "upsert", 2, V2),  # everything written, the feed entry too, but the final generation
    ],
    ids=["new-chunks", "before-flip", "before-sweep", "before-generation"],
)
def test_a_process_dying_mid_replace_leaves_one_whole_version_after_restart(
    open_service: OpenService,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    collection: str,
    method: str,
    on: int,
    live: dict[str, Any],
) -> None:
    service = open_service()
    ingest(service, tmp_path, V1, NEWS[1])
    monkeypatch.setattr(service.store, collection, Failing(getattr(service.store, collection), method, on))
    with pytest.raises(Crash):
        ingest(service, tmp_path, V2, NEWS[1])
    # Until the index flips too, the dying process's searches never see the new version (once the old chunks
    # are swept they may briefly see neither, never a mix).
    assert V2["body"].split(". ")[1] not in visible_texts(service)
    service.close()
    monkeypatch.undo()

    service = open_service()  # the restart
    assert_only(service, live=live, gone=V1 if live is V2 else V2)
    assert len(chunk_rows(service, ARTICLE)) == service.get_article(ARTICLE).chunks  # leftovers swept

    # Re-running converges, with no duplicate chunk.
    summary = ingest(service, tmp_path, V2, NEWS[1])
    assert summary["failed"] == 0 and summary["unchanged"] >= 1
    assert_only(service, live=V2, gone=V1)
    assert len(chunk_rows(service, ARTICLE)) == service.get_article(ARTICLE).chunks
    assert service.store.count_chunks() == len(service.index)


def test_a_crash_while_adding_a_new_article_leaves_no_part_of_it(
    open_service: OpenService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = open_service(chunk_tokens=48, chunk_overlap_tokens=8)  # many small chunks: quick to embed
    long_body = " ".join(f"Sentence {i} about the Zyphorian delegation and its {i} proposals." for i in range(40))
    article = {"id": "long", "title": "Zyphorian talks", "published_at": "2024-01-01", "body": long_body}
    monkeypatch.setattr(service.store, "_max_batch", 3)
    monkeypatch.setattr(service.store, "chunks", Failing(service.store.chunks, "upsert", on=2))
    with pytest.raises(Crash):
        ingest(service, tmp_path, article)
    assert not [p for p in service.search("Zyphorian delegation proposals", k=10) if p.article_id == "long"]
    service.close()
    monkeypatch.undo()

    service = open_service(chunk_tokens=48, chunk_overlap_tokens=8)
    assert "long" not in {a.id for a in service.list_articles()}
    assert not service.search("Zyphorian delegation proposals", k=10)
    assert chunk_rows(service, "long") == []  # the partial write was swept at the restart
    assert ingest(service, tmp_path, article)["added"] == 1
    assert len(chunk_rows(service, "long")) == service.get_article("long").chunks > 3


def test_a_failed_delete_never_shows_a_deleted_article(
    service: RagService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest(service, tmp_path, V1, NEWS[1])
    monkeypatch.setattr(service.store, "chunks", Failing(service.store.chunks, "delete", error=RuntimeError))
    with pytest.raises(StoreError, match="deleting from Chroma failed"):
        service.delete_article(ARTICLE)
    assert ARTICLE not in {a.id for a in service.list_articles()}
    assert visible_texts(service) == ""
    monkeypatch.undo()
    assert service.search("wheat harvest")[0].article_id == NEWS[1]["id"]
