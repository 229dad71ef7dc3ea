"""The local index beside Chroma: BM25 + filter columns + vectors, persisted and tagged with the generation."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
import pytest
from conftest import NEWS, SEED_QUESTION, SEEDS, OpenService, write_jsonl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.chunking import chunk_article
from rag.documents import build_article
from rag.embeddings import OnnxMiniLM
from rag.index import LocalIndex, RowFilter, keyword_text, keyword_tokens
from rag.models import Article, Chunk
from rag.store import day_number


def test_keyword_tokens_are_plain_lowercased_words() -> None:
    """Nothing removed, nothing stemmed: "Texas" stays "texas" and BM25's idf discounts "the"."""
    assert keyword_tokens("What did Russia say about India's position in Texas?") == [
        "what", "did", "russia", "say", "about", "india", "s", "position", "in", "texas",
    ]  # fmt: skip
    assert keyword_tokens("Zürich 東京 2024") == ["zürich", "東京", "2024"]


# --- the index on its own, with real chunks and vectors ---


def article(meta: dict[str, Any]) -> Article:
    return build_article(meta, origin="test", fallback_id=None)


def written(embedder: OnnxMiniLM, *metas: dict[str, Any]) -> list[tuple[Article, list[Chunk], np.ndarray]]:
    out = []
    for meta in metas:
        a = article(meta)
        chunks = chunk_article(a, embedder.count_tokens, max_tokens=40, overlap_tokens=0)
        out.append((a, chunks, embedder.embed([c.embed_text for c in chunks])))
    return out


@pytest.fixture
def index(embedder: OnnxMiniLM) -> LocalIndex:
    index = LocalIndex(embedder.dimension)
    index.apply(written(embedder, *NEWS), removed=(), generation="g1")
    return index


def articles_of(index: LocalIndex, hits: list[tuple[int, float]]) -> list[str]:
    return list(dict.fromkeys(index.article_of[row] for row, _ in hits))


def test_keyword_and_dense_search_find_the_right_article(index: LocalIndex, embedder: OnnxMiniLM) -> None:
    assert articles_of(index, index.keyword("Quistgaard", 5, None)) == ["harbour-bridge"]
    assert articles_of(index, index.keyword("wheat tonnes", 5, None))[0] == "wheat-harvest"
    assert index.keyword("zebra", 5, None) == []  # no term in the vocabulary
    assert index.keyword("zebra quagga", 5, None) == []  # no term of any article
    query = embedder.embed(["planes grounded by volcanic ash"])[0]
    assert articles_of(index, index.dense(query, 3, None))[0] == "volcano-flights"


def test_filters_select_rows_by_date_source_and_article(index: LocalIndex, embedder: OnnxMiniLM) -> None:
    def ids(where: RowFilter) -> set[str]:
        return {index.article_of[i] for i in np.flatnonzero(index.mask(where))}

    day = day_number
    assert ids(RowFilter(since_day=day(dt.date(2022, 1, 1)))) == {"harbour-bridge", "chess-final"}
    assert ids(RowFilter(until_day=day(dt.date(2021, 8, 2)))) == {"wheat-harvest", "volcano-flights"}
    assert ids(RowFilter(source="Coastal Times")) == {"harbour-bridge", "chess-final"}
    assert ids(RowFilter(source="Nobody")) == set()
    assert ids(RowFilter(article_id="chess-final", source="Coastal Times")) == {"chess-final"}
    assert ids(RowFilter(article_id="missing")) == set()


def test_undated_articles_fall_outside_every_date_range(embedder: OnnxMiniLM) -> None:
    index = LocalIndex(embedder.dimension)
    index.apply(written(embedder, {"id": "undated", "body": "No date here."}), removed=(), generation="g")
    assert not index.mask(RowFilter(until_day=day_number(dt.date(2100, 1, 1)))).any()
    assert not index.mask(RowFilter(since_day=day_number(dt.date(1900, 1, 1)))).any()
    assert index.mask(RowFilter(source="")).all()


def test_replacing_and_removing_articles_retires_their_rows(index: LocalIndex, embedder: OnnxMiniLM) -> None:
    live = len(index)
    edited = {**NEWS[0], "body": "The bridge stays closed. Inspector Oyelaran found cracked cables."}
    index.apply(written(embedder, edited), removed=(), generation="g2")
    assert index.keyword("Quistgaard", 5, None) == []
    assert articles_of(index, index.keyword("Oyelaran", 5, None)) == ["harbour-bridge"]
    index.apply((), removed=["wheat-harvest"], generation="g3")
    assert index.keyword("wheat", 5, None) == []
    assert index.article_rows("wheat-harvest") == [] and "wheat-harvest" not in index.live_hash
    assert len(index) < live and index.generation == "g3"
    # Dead rows are dropped once they are a quarter of the index: ids and rows stay consistent.
    assert index.n == len(index.alive) == index.vectors.shape[0]
    assert all(index.ids[row] == cid for cid, row in index.row_of.items())


def test_many_updates_compact_the_index(embedder: OnnxMiniLM) -> None:
    index = LocalIndex(embedder.dimension)
    for round_ in range(8):
        body = f"Round {round_} of the Elmwood library vote. The council met again."
        index.apply(written(embedder, {"id": "lib", "body": body}), removed=(), generation=f"g{round_}")
    assert index.n <= 2 * len(index)  # old rows do not pile up
    assert articles_of(index, index.keyword("round", 5, None)) == ["lib"]
    assert len(index.keyword("round", 5, None)) == len(index)


def test_a_copy_is_changed_without_touching_the_original(index: LocalIndex, embedder: OnnxMiniLM) -> None:
    query = embedder.embed(["wheat harvest"])[0]
    where = RowFilter(source="Farm Gazette")

    def seen(version: LocalIndex) -> tuple[Any, ...]:
        return (
            len(version), version.generation, dict(version.row_of), version.keyword("wheat chess harbour", 20, None),
            version.dense(query, 20, None), version.dense(query, 20, version.mask(where)),
            np.flatnonzero(version.mask(RowFilter(article_id="chess-final"))).tolist(),
        )  # fmt: skip

    before = seen(index)
    changed = index.copy()
    changed.apply(
        written(embedder, {**NEWS[1], "body": "Drought ruined the Zanzibar wheat crop."}), ["chess-final"], "g2"
    )
    # The columns are shared and have grown, yet the published version reads exactly what it read before.
    assert seen(index) == before
    assert index.keyword("Zanzibar", 5, None) == [] and changed.keyword("Zanzibar", 5, None)
    assert index.keyword("chess", 5, None) and changed.keyword("chess", 5, None) == []


def test_save_and_load_give_the_same_index(index: LocalIndex, embedder: OnnxMiniLM, tmp_path: Path) -> None:
    index.save(tmp_path / "index")
    loaded = LocalIndex.load(tmp_path / "index")
    assert loaded.generation == "g1" and loaded.ids == index.ids and loaded.live_hash == index.live_hash
    query = embedder.embed(["grain prices"])[0]
    for where in (None, RowFilter(source="Farm Gazette")):
        mask = index.mask(where) if where else None
        assert loaded.keyword("grain prices harvest", 5, mask) == index.keyword("grain prices harvest", 5, mask)
        assert loaded.dense(query, 5, mask) == index.dense(query, 5, mask)
    # A loaded index (memory-mapped vectors) takes further writes and saves over itself.
    loaded.apply(written(embedder, {"id": "new", "body": "Quokkas spotted on the ferry."}), (), "g2")
    loaded.save(tmp_path / "index")
    assert LocalIndex.load(tmp_path / "index").keyword("quokkas", 5, None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]  # no temporary folders left behind


def test_an_emptied_index_saves_and_loads(index: LocalIndex, tmp_path: Path) -> None:
    index.apply((), removed=[a["id"] for a in NEWS], generation="g9")
    index.save(tmp_path / "index")
    loaded = LocalIndex.load(tmp_path / "index")
    assert len(loaded) == 0 and loaded.keyword("wheat", 5, None) == [] and loaded.generation == "g9"


# --- beside a real store: loaded at restart, rebuilt when stale, consistent through add / update / delete ---


def fail_rebuild(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: Any) -> Any:
        raise AssertionError("the index was rebuilt, not loaded")

    monkeypatch.setattr(LocalIndex, "rebuild", classmethod(refuse))


def fill(open_service: OpenService, tmp_path: Path) -> list[tuple[str, int, int]]:
    service = open_service()
    service.ingest_paths([SEEDS, write_jsonl(tmp_path / "news.jsonl", NEWS)])
    found = [(p.chunk_id, p.start, p.end) for p in service.search(SEED_QUESTION, k=8)]
    service.close()
    return found


def test_the_index_survives_a_restart_without_a_rebuild(
    open_service: OpenService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = fill(open_service, tmp_path)
    fail_rebuild(monkeypatch)
    service = open_service()
    assert service.index.generation == service.store.generation() != ""
    assert [(p.chunk_id, p.start, p.end) for p in service.search(SEED_QUESTION, k=8)] == before
    assert service.search("Quistgaard")[0].article_id == "harbour-bridge"


@pytest.mark.parametrize("damage", ["deleted", "other-generation", "stale", "torn-journal", "corrupt", "half-written"])
def test_a_stale_or_damaged_index_is_rebuilt_from_the_store(
    open_service: OpenService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    before = fill(open_service, tmp_path)
    folder = tmp_path / "data" / "index"
    if damage == "deleted":
        shutil.rmtree(folder)
    elif damage == "other-generation":  # a snapshot of another write, with no journal after it
        state = json.loads((folder / "state.json").read_text())
        (folder / "state.json").write_text(json.dumps({**state, "generation": "written-by-someone-else"}))
        (folder / "journal.bin").write_bytes(b"")
    elif damage == "stale":  # the process died between the Chroma write and the journal append
        (folder / "journal.bin").write_bytes(b"")
    elif damage == "torn-journal":  # ... or in the middle of the append
        journal = (folder / "journal.bin").read_bytes()
        (folder / "journal.bin").write_bytes(journal[:-100])
    elif damage == "corrupt":
        (folder / "state.json").write_text("{not json")
    else:
        (folder / "vectors.npy").write_bytes(b"\x93NUMPY")
    rebuilt = []
    original = LocalIndex.rebuild.__func__  # type: ignore[attr-defined]

    def spy(cls: type[LocalIndex], *args: Any) -> Any:
        rebuilt.append(True)
        return original(cls, *args)

    monkeypatch.setattr(LocalIndex, "rebuild", classmethod(spy))
    service = open_service()
    assert rebuilt
    assert service.index.generation == service.store.generation()
    assert [(p.chunk_id, p.start, p.end) for p in service.search(SEED_QUESTION, k=8)] == before
    service.close()
    rebuilt.clear()
    open_service()
    assert not rebuilt  # the rebuilt index was saved


def test_keyword_search_follows_add_update_delete_and_restart(
    open_service: OpenService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = open_service()
    feed = tmp_path / "news.jsonl"
    write_jsonl(feed, NEWS)
    service.ingest_paths([feed])
    assert service.search("Quistgaard")[0].article_id == "harbour-bridge"
    write_jsonl(feed, [{**NEWS[0], "body": "Inspector Oyelaran closed the harbour bridge again."}, *NEWS[1:]])
    service.ingest_paths([feed])
    service.delete_article("chess-final")

    def keyword_hits(query: str) -> set[str]:
        return {p.article_id for p in service.search(query, k=10) if p.keyword_rank is not None}

    assert keyword_hits("Quistgaard") == set()
    assert keyword_hits("Oyelaran") == {"harbour-bridge"}
    assert keyword_hits("chess championship") == set()
    service.close()
    fail_rebuild(monkeypatch)
    service = open_service()
    assert keyword_hits("Quistgaard") == set()
    assert keyword_hits("Oyelaran") == {"harbour-bridge"}
    assert keyword_hits("chess championship") == set()
    assert len(service.index) == service.store.count_chunks()


# --- the incremental keyword index against a from-scratch bm25s index ---

WORDS = ["harbour", "bridge", "wheat", "chess", "volcano", "ash", "grain", "cable", "ferry", "final", "the", "of"]
sentence = st.lists(st.sampled_from(WORDS), min_size=0, max_size=8).map(" ".join)
operation = st.one_of(
    st.tuples(st.just("write"), st.integers(0, 5), st.lists(sentence, min_size=1, max_size=4), st.booleans()),
    st.tuples(st.just("delete"), st.integers(0, 5)),
    st.tuples(st.just("reload")),
)


def tiny_article(number: int, sentences: list[str], other_source: bool) -> tuple[Article, list[Chunk], np.ndarray]:
    text, chunks, content_hash = "", [], uuid.uuid4().hex[:12]
    for i, part in enumerate(sentences):
        start = len(text) + (1 if text else 0)
        text = f"{text} {part}" if text else part
        chunks.append(Chunk(f"a{number}-{content_hash}-{i}", f"a{number}", start, len(text), part, part))
    a = Article(f"a{number}", text, f"Title {WORDS[number]}", content_hash, source="B" if other_source else "A")
    return a, chunks, np.ones((len(chunks), 4), dtype=np.float32) / 2


def from_scratch(live: dict[str, tuple[Article, list[Chunk]]], query: str, source: str | None) -> dict[str, float]:
    """Chunk id -> bm25s score (> 0) over the live chunks, with our tokenizer."""
    docs = [(a, c) for a, chunks in live.values() for c in chunks]
    tokens = [keyword_tokens(keyword_text(a.title, c.text)) for a, c in docs]
    vocab: dict[str, int] = {}
    ids = [[vocab.setdefault(t, len(vocab)) for t in doc] for doc in tokens]
    terms = [t for t in keyword_tokens(query) if t in vocab]
    if not docs or not terms:
        return {}
    model = bm25s.BM25()
    model.index((ids, vocab), show_progress=False)
    scores = model.get_scores(terms)
    return {
        c.id: float(score)
        for (a, c), score in zip(docs, scores, strict=True)
        if score > 0 and (source is None or a.source == source)
    }


def ours(index: LocalIndex, query: str, source: str | None) -> dict[str, float]:
    mask = index.mask(RowFilter(source=source)) if source else None
    return {index.ids[row]: score for row, score in index.keyword(query, 10_000, mask)}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operation, min_size=1, max_size=25), st.lists(sentence, min_size=3, max_size=3))
def test_keyword_scores_equal_a_from_scratch_bm25s_index(ops: list[tuple[Any, ...]], queries: list[str]) -> None:
    live: dict[str, tuple[Article, list[Chunk]]] = {}
    index = LocalIndex(4)
    with tempfile.TemporaryDirectory() as folder:
        for step, op in enumerate(ops):
            before = index
            expected_before = {(q, s): ours(before, q, s) for q in queries for s in (None, "B")}
            if op[0] == "reload":
                index.save(Path(folder) / "index")
                index = LocalIndex.load(Path(folder) / "index")
            else:
                index = index.copy()
                if op[0] == "write":
                    article, chunks, vectors = tiny_article(op[1], op[2], op[3])
                    index.apply([(article, chunks, vectors)], (), f"g{step}")
                    live[article.id] = (article, chunks)
                elif f"a{op[1]}" in live:
                    index.apply((), [f"a{op[1]}"], f"g{step}")
                    del live[f"a{op[1]}"]
            for q in [*queries, " ".join(WORDS)]:
                for source in (None, "B"):
                    got, want = ours(index, q, source), from_scratch(live, q, source)
                    assert got.keys() == want.keys()
                    assert all(got[k] == pytest.approx(want[k], rel=1e-4) for k in want)
            # The version searches were reading before this write still reads what it read.
            assert {(q, s): ours(before, q, s) for q in queries for s in (None, "B")} == expected_before
            assert len(index) == sum(len(c) for _, c in live.values())


def test_a_write_appends_to_the_journal_and_leaves_the_snapshot_alone(
    open_service: OpenService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(open_service, tmp_path)
    service = open_service()
    folder = tmp_path / "data" / "index"
    snapshot = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.glob("*.npy")}
    journal = (folder / "journal.bin").stat().st_size
    quokka = {"id": "quokka", "body": "Quokkas seen on the ferry."}
    service.ingest_paths([write_jsonl(tmp_path / "one.jsonl", [quokka])])
    service.delete_article("chess-final")
    assert {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.glob("*.npy")} == snapshot
    # Two records: each holds its rows' vectors (1.5 KB a chunk) and postings, not the whole index.
    assert 384 * 4 < (folder / "journal.bin").stat().st_size - journal < 20_000
    service.close()
    fail_rebuild(monkeypatch)
    service = open_service()
    assert service.search("quokka ferry")[0].article_id == "quokka"
    assert "chess-final" not in {p.article_id for p in service.search("chess championship", k=20)}
