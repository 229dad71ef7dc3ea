"""The same ingest and search against a real `chroma run` server, and two replicas sharing it."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import chromadb.api.types
import pytest
from chromadb.utils.embedding_functions.onnx_mini_lm_l6_v2 import ONNXMiniLM_L6_V2
from conftest import NEWS, SEED_ID, SEED_QUESTION, SEEDS, OpenService, make_settings, write_jsonl
from fastapi.testclient import TestClient
from servers import ChromaServer

import rag.feed
import rag.service
from rag.api.app import create_app
from rag.config import Settings
from rag.errors import NotFoundError, StoreError
from rag.index import LocalIndex
from rag.models import Filters
from rag.service import RagService


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Chroma server on 127.0.0.1 at a free port, for this module."""
    server = ChromaServer(tmp_path_factory.mktemp("chroma-server")).start()
    yield server.url
    server.stop()
@pytest.fixture
def server_settings(chroma_url: str, tmp_path: Path) -> Settings:
    """Settings for a fresh collection on the shared server; replicas check for others' writes on every search."""
    return make_settings(
        tmp_path / "data", chroma_url=chroma_url, collection=f"t{uuid.uuid4().hex[:10]}", index_refresh_seconds=0
    )


OLD = {**NEWS[0]}
NEW = {**NEWS[0], "body": "The harbour bridge stays shut. Inspector Ragnhild Oyelaran found cracked cables on Monday."}


def texts_of(service: RagService, article_id: str) -> list[str]:
    return [text or "" for _, text in service.store.chunk_texts(article_id)]


def visible(service: RagService, article_id: str = "harbour-bridge") -> str:
    found = []
    for query in ("harbour bridge cables", "Quistgaard", "Oyelaran cracked", "buses Monday"):
        found += service.search(query, k=20)
        found += service.search(query, k=20, filters=Filters(article_id=article_id))
    return " ".join(p.text for p in found if p.article_id == article_id)


def test_ingest_search_update_delete_on_a_server(
    open_service: OpenService, server_settings: Settings, tmp_path: Path
) -> None:
    service = open_service(server_settings)
    feed = write_jsonl(tmp_path / "news.jsonl", NEWS)
    assert service.ingest_paths([SEEDS, feed]).summary()["added"] == 1 + len(NEWS)
    assert not server_settings.data_dir.exists()  # nothing local: no lock, no index files

    top = service.search(SEED_QUESTION)[0]
    assert top.article_id == SEED_ID and "UN Security Council" in top.text
    assert service.search("Quistgaard")[0].article_id == "harbour-bridge"
    wheat = service.search("harvest", filters=Filters(source="Farm Gazette"), k=20)
    assert {p.article_id for p in wheat} == {"wheat-harvest"}
    assert {p.article_id for p in service.search("news", k=20, filters=Filters(until=NEWS[3]["published_at"]))} == {
        "volcano-flights"
    }

    generation = service.store.generation()
    assert service.ingest_paths([SEEDS, feed]).summary()["unchanged"] == 1 + len(NEWS)
    assert service.store.generation() == generation

    write_jsonl(feed, [NEW, *NEWS[1:]])
    assert service.ingest_paths([feed]).summary() == {"added": 0, "updated": 1, "unchanged": 3, "failed": 0}
    assert texts_of(service, "harbour-bridge") == [NEW["body"]]
    assert "Quistgaard" not in visible(service) and "Oyelaran" in visible(service)

    service.delete_article(SEED_ID)
    assert texts_of(service, SEED_ID) == []
    assert SEED_ID not in {p.article_id for p in service.search(SEED_QUESTION, k=20)}
    with pytest.raises(NotFoundError):
        service.delete_article(SEED_ID)

    service.close()
    reopened = open_service(server_settings)  # a restart rebuilds the index from the server
    assert "Oyelaran" in visible(reopened) and "Quistgaard" not in visible(reopened)
    assert len(reopened.list_articles()) == len(NEWS)


def test_two_replicas_see_each_others_writes(
    open_service: OpenService, server_settings: Settings, tmp_path: Path
) -> None:
    a = open_service(server_settings)
    b = open_service(server_settings)  # no lock against a server: both open
    assert b.search("harbour") == []

    feed = write_jsonl(tmp_path / "news.jsonl", [OLD])
    a.ingest_paths([feed])
    assert b.search("Quistgaard")[0].article_id == "harbour-bridge"

    write_jsonl(feed, [NEW])
    a.ingest_paths([feed])
    assert "Oyelaran" in visible(b) and "Quistgaard" not in visible(b)

    b.ingest_paths([write_jsonl(tmp_path / "more.jsonl", NEWS[1:2])])  # and the other way round
    assert a.search("wheat harvest")[0].article_id == "wheat-harvest"

    a.delete_article("harbour-bridge")
    assert visible(b) == ""
    assert [r.id for r in b.list_articles()] == ["wheat-harvest"]


def test_a_replica_refreshes_only_as_often_as_configured(
    open_service: OpenService, server_settings: Settings, tmp_path: Path
) -> None:
    writer = open_service(server_settings)
    lazy = open_service(server_settings.model_copy(update={"index_refresh_seconds": 3600}))
    lazy.search("anything")  # its first check
    writer.ingest_paths([write_jsonl(tmp_path / "news.jsonl", NEWS[1:2])])
    assert lazy.search("wheat harvest") == []  # not yet: the next check is an hour away
    lazy._checked_at -= 3600
    assert lazy.search("wheat harvest")[0].article_id == "wheat-harvest"


def test_a_replica_rebuilding_mid_write_never_deletes_the_chunks_being_written(
    open_service: OpenService, server_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = open_service(server_settings)
    reader = open_service(server_settings)
    writer.ingest_paths([write_jsonl(tmp_path / "old.jsonl", [OLD])])
    assert "Quistgaard" in visible(reader)

    articles = writer.store.articles
    seen_mid_write: list[str] = []

    class ReaderSearchesBeforeTheFlip:
        def __getattr__(self, name: str) -> Any:
            return getattr(articles, name)

        def upsert(self, **kwargs: Any) -> Any:
            # The new chunks are in, the record still names the old version: the reader rebuilds now.
            seen_mid_write.append(visible(reader))
            return articles.upsert(**kwargs)

    monkeypatch.setattr(writer.store, "articles", ReaderSearchesBeforeTheFlip())
    assert writer.ingest_paths([write_jsonl(tmp_path / "new.jsonl", [NEW])]).summary()["updated"] == 1
    monkeypatch.undo()

    assert "Quistgaard" in seen_mid_write[0] and "Oyelaran" not in seen_mid_write[0]
    assert texts_of(writer, "harbour-bridge") == [NEW["body"]]
    assert "Oyelaran" in visible(reader) and "Quistgaard" not in visible(reader)


def test_chromas_default_embedding_function_is_never_called_against_a_server(
    open_service: OpenService, server_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("Chroma's default embedding function was called")

    monkeypatch.setattr(chromadb.api.types.DefaultEmbeddingFunction, "__call__", refuse)
    monkeypatch.setattr(ONNXMiniLM_L6_V2, "__call__", refuse)
    service = open_service(server_settings)
    service.ingest_paths([write_jsonl(tmp_path / "news.jsonl", NEWS[:2])])
    assert service.search("Quistgaard")[0].article_id == "harbour-bridge"
    service.delete_article("harbour-bridge")


def test_a_chroma_outage_after_start_up_is_a_503_and_heals_by_itself(open_service: OpenService, tmp_path: Path) -> None:
    """A server of its own, killed (SIGKILL) and restarted while the API keeps running."""
    (tmp_path / "own-chroma").mkdir()
    chroma = ChromaServer(tmp_path / "own-chroma").start()
    try:
        service = open_service(make_settings(tmp_path / "data", chroma_url=chroma.url, index_refresh_seconds=0))
        service.ingest_paths([write_jsonl(tmp_path / "news.jsonl", NEWS)])
        api = make_settings(tmp_path / "unused", api_keys=["k-1"], rate_limit_per_minute=0)
        client = TestClient(create_app(api, service), raise_server_exceptions=False)
        auth = {"X-API-Key": "k-1"}
        ask = {"question": "How much did the harbour bridge repairs cost?"}
        assert client.post("/v1/ask", json=ask, headers=auth).json()["citations"]

        chroma.kill()
        for response in (
            client.post("/v1/ask", json=ask, headers=auth),
            client.get("/v1/articles", headers=auth),
            client.get("/v1/articles/harbour-bridge", headers=auth),
            client.delete("/v1/articles/harbour-bridge", headers=auth),
        ):
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"] == "store_error"
            assert int(response.headers["retry-after"]) >= 1
        stream = client.post("/v1/ask/stream", json=ask, headers=auth)
        assert "event: error" in stream.text and "store_error" in stream.text
        assert client.get("/readyz").status_code == 503

        chroma.start()  # same port, same data: nothing restarts on our side
        answer = client.post("/v1/ask", json=ask, headers=auth)
        assert answer.status_code == 200 and "48 million euros" in answer.json()["citations"][0]["quote"]
        assert client.get("/readyz").status_code == 200
        assert len(client.get("/v1/articles", headers=auth).json()["items"]) == len(NEWS)
    finally:
        chroma.stop()


def test_concurrent_searches_on_a_stale_replica_rebuild_its_index_once(
    open_service: OpenService, server_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = open_service(server_settings)
    reader = open_service(server_settings)
    reader.search("anything")
    writer.ingest_paths([write_jsonl(tmp_path / "news.jsonl", NEWS)])

    rebuilds: list[float] = []
    catch_up = reader._catch_up

    def slow_catch_up(generation: str) -> None:
        rebuilds.append(time.monotonic())
        time.sleep(0.3)  # a large index takes seconds: wide enough for every thread to find it stale
        catch_up(generation)

    monkeypatch.setattr(reader, "_catch_up", slow_catch_up)
    barrier = threading.Barrier(4)
    found: list[str] = []

    def search() -> None:
        barrier.wait()
        found.append(reader.search("Quistgaard")[0].article_id)

    threads = [threading.Thread(target=search) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert found == ["harbour-bridge"] * 4
    assert len(rebuilds) == 1, f"{len(rebuilds)} threads each caught the index up"


# --- the change feed: replicas apply what changed, and rebuild only when they must ---


def refuse_rebuild(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Count full rebuilds from now on (they still run)."""
    rebuilt: list[bool] = []
    original = LocalIndex.rebuild.__func__  # type: ignore[attr-defined]

    def spy(cls: type[LocalIndex], *args: Any) -> Any:
        rebuilt.append(True)
        return original(cls, *args)

    monkeypatch.setattr(LocalIndex, "rebuild", classmethod(spy))
    return rebuilt


def assert_only_live_versions(writer: RagService, passages: list[Any]) -> None:
    """Every passage is a chunk of its article's live version, with the article's own text at its offsets."""
    for p in passages:
        record = writer.store.get_article(p.article_id)  # NotFoundError: a deleted article was shown
        assert p.chunk_id.split(":")[1] == record.content_hash[:12]
        assert record.text is not None and record.text[p.start : p.end] == p.text


def seconds_until(condition: Any, limit: float) -> float:
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < limit + 2, "not visible in time"
        time.sleep(0.05)
    return time.monotonic() - start


def test_a_replica_applies_writes_and_deletes_from_the_feed_within_its_refresh_interval(
    open_service: OpenService, server_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    refresh = 1.0
    settings = server_settings.model_copy(update={"index_refresh_seconds": refresh})
    writer = open_service(settings)
    reader = open_service(settings)
    writer.ingest_paths([write_jsonl(tmp_path / "news.jsonl", [OLD, *NEWS[1:]])])
    rebuilt = refuse_rebuild(monkeypatch)

    def reader_finds(query: str, article_id: str, text: str | None) -> bool:
        found = reader.search(query, k=20)
        assert_only_live_versions(writer, found)  # the writer is idle: what is live now is what must be shown
        mine = [p for p in found if p.article_id == article_id]
        return bool(mine) and any(text in p.text for p in mine) if text else not mine

    assert seconds_until(lambda: reader_finds("Quistgaard cables", "harbour-bridge", "Quistgaard"), refresh) <= (
        refresh + 1
    )
    writer.ingest_paths([write_jsonl(tmp_path / "new.jsonl", [NEW])])
    assert seconds_until(lambda: reader_finds("Oyelaran cracked cables", "harbour-bridge", "Oyelaran"), refresh) <= (
        refresh + 1
    )
    assert "Quistgaard" not in visible(reader)
    writer.delete_article("wheat-harvest")
    # Deleted chunks are never shown even before the tick (their article record is gone); the tick drops
    # them from the index, so they no longer take places in the top k either.
    chunks = writer.store.count_chunks()
    assert seconds_until(
        lambda: reader_finds("wheat harvest tonnes", "wheat-harvest", None) and len(reader.index) == chunks, refresh
    ) <= (refresh + 1)
    assert not rebuilt  # every change came from the feed
    assert len(reader.index) == len(writer.index) == writer.store.count_chunks()


def test_a_replica_rebuilds_when_the_feed_no_longer_reaches_back(
    open_service: OpenService, server_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rag.feed, "KEEP", 3)
    monkeypatch.setattr(rag.feed, "_TRIM_EVERY", 1)
    writer = open_service(server_settings)
    lazy = open_service(server_settings.model_copy(update={"index_refresh_seconds": 3600}))
    lazy.search("anything")
    for i, article in enumerate(NEWS):
        writer.ingest_paths([write_jsonl(tmp_path / f"n{i}.jsonl", [article])])
    writer.delete_article("chess-final")
    rebuilt = refuse_rebuild(monkeypatch)
    lazy._checked_at -= 3600
    assert lazy.search("Quistgaard")[0].article_id == "harbour-bridge"
    assert rebuilt and "chess-final" not in {p.article_id for p in lazy.search("chess championship", k=20)}


def test_a_writer_that_died_before_its_feed_entry_is_caught_by_a_rebuild(
    open_service: OpenService, server_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rag.service, "_UNEXPLAINED_SECONDS", 0.5)
    writer = open_service(server_settings)
    reader = open_service(server_settings)
    reader.search("anything")

    def die(*_: Any, **__: Any) -> Any:
        raise StoreError("the writer's process died here")

    monkeypatch.setattr(writer.store.feed, "append", die)
    assert writer.ingest_paths([write_jsonl(tmp_path / "news.jsonl", NEWS[:1])]).summary()["failed"] == 1
    assert reader.search("Quistgaard") == []  # the token moved with no entry: a write may still be under way
    rebuilt = refuse_rebuild(monkeypatch)
    time.sleep(0.6)
    assert reader.search("Quistgaard")[0].article_id == "harbour-bridge"  # the data were written: rebuilt
    assert rebuilt


def test_a_replica_rebuilds_when_the_server_goes_back_in_time(
    open_service: OpenService, server_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = open_service(server_settings)
    writer.ingest_paths([write_jsonl(tmp_path / "a.jsonl", NEWS[:1])])
    writer.ingest_paths([write_jsonl(tmp_path / "b.jsonl", NEWS[1:2])])
    reader = open_service(server_settings)
    assert reader.index.feed_seq == 2
    # A restore from a backup taken before those writes: the feed's head is behind the replica's position.
    writer.delete_article("wheat-harvest")
    writer.store.meta.upsert(ids=["feed"], embeddings=[[1.0]], metadatas=[{"head": 0, "floor": 0}])
    writer.store.feed.entries.delete(where={"seq": {"$gte": 0}})
    writer.store.meta.upsert(ids=["generation"], embeddings=[[1.0]], metadatas=[{"token": "restored"}])
    rebuilt = refuse_rebuild(monkeypatch)
    assert "wheat-harvest" not in {p.article_id for p in reader.search("wheat harvest", k=20)}
    assert rebuilt and reader.index.generation == "restored"


def test_replicas_carry_on_from_the_feed_after_the_server_restarts(
    open_service: OpenService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = ChromaServer(tmp_path).start()
    try:
        settings = make_settings(tmp_path / "data", chroma_url=server.url, index_refresh_seconds=0)
        writer = open_service(settings)
        reader = open_service(settings)
        writer.ingest_paths([write_jsonl(tmp_path / "a.jsonl", NEWS[:2])])
        assert reader.search("Quistgaard")[0].article_id == "harbour-bridge"
        server.stop()
        with pytest.raises(StoreError):  # the API answers 503 while the server is down
            reader.search("Quistgaard")
        server.start()  # same port, same data
        rebuilt = refuse_rebuild(monkeypatch)
        assert reader.search("Quistgaard")[0].article_id == "harbour-bridge"
        writer.ingest_paths([write_jsonl(tmp_path / "b.jsonl", NEWS[2:3])])
        assert reader.search("chess championship")[0].article_id == "chess-final"
        assert not rebuilt  # same token and feed after the restart: the replica went on from the feed
    finally:
        server.stop()


def test_a_freshly_started_replica_fetches_only_what_was_written_after_its_start(
    open_service: OpenService, server_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = open_service(server_settings)
    for i, article in enumerate(NEWS[:3]):
        writer.ingest_paths([write_jsonl(tmp_path / f"n{i}.jsonl", [article])])
    reader = open_service(server_settings)  # a full rebuild: the feed's entries so far are in it
    asked: list[list[str]] = []
    original = reader.store.live_hashes

    def spy(ids: Any = None) -> Any:
        asked.append(list(ids or []))
        return original(ids)

    monkeypatch.setattr(reader.store, "live_hashes", spy)
    writer.ingest_paths([write_jsonl(tmp_path / "last.jsonl", NEWS[3:])])
    assert reader.search("volcanic ash flights")[0].article_id == "volcano-flights"
    assert asked == [["volcano-flights"]]  # not the articles of the entries before its start
