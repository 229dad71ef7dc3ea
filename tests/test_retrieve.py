"""Hybrid retrieval: dense + BM25 fused by reciprocal rank, filters, k, best first."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from conftest import NEWS, SEED_ID, SEED_QUESTION, SEEDS, make_settings, write_jsonl

from rag.embeddings import OnnxMiniLM
from rag.errors import InvalidRequestError
from rag.models import Filters
from rag.retrieve import PassageRetriever
from rag.service import RagService


@pytest.fixture(scope="module")
def news(embedder: OnnxMiniLM, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RagService]:
    """One store for the whole module: these tests only read."""
    tmp_path = tmp_path_factory.mktemp("retrieve")
    with RagService.open(make_settings(tmp_path / "data"), embedder=embedder) as service:
        report = service.ingest_paths([SEEDS, write_jsonl(tmp_path / "news.jsonl", NEWS)])
        assert report.summary()["added"] == 1 + len(NEWS)
        yield service


def test_hybrid_search_finds_the_seed_passage_that_answers_the_question(news: RagService) -> None:
    passages = news.search(SEED_QUESTION, k=3)
    top = passages[0]
    assert top.article_id == SEED_ID
    assert "We welcome the independent position India has taken in the UN Security Council" in top.text
    assert top.dense_rank is not None and top.keyword_rank is not None  # both searches agreed on it
    assert top.title.startswith("Russia has welcomes India’s")
    assert top.published_at == dt.date(2022, 2, 24)
    assert news.get_article(SEED_ID).text[top.start : top.end] == top.text
    assert 0.3 < (top.dense_score or 0) <= 1


def test_results_are_best_first_and_k_is_respected(news: RagService) -> None:
    total = len(news.index)
    assert total > news.settings.top_k
    for k in (1, 2, total, 20):
        passages = news.search("harbour bridge repairs", k=k)
        assert len(passages) == min(k, total)
        assert len({p.chunk_id for p in passages}) == len(passages)
        scores = [p.rank_score for p in passages]
        assert scores == sorted(scores, reverse=True)
    assert news.search("harbour bridge repairs", k=1)[0].article_id == "harbour-bridge"
    assert len(news.search("harbour")) == news.settings.top_k


def test_a_rare_name_is_found_by_keyword(news: RagService) -> None:
    passages = news.search("Quistgaard")
    assert passages[0].article_id == "harbour-bridge"
    assert "Thorvald Quistgaard" in passages[0].text
    assert passages[0].keyword_rank == 1
    # Only one chunk holds the name: BM25 ranks nothing else.
    assert [p.keyword_rank for p in passages[1:]] == [None] * (len(passages) - 1)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (Filters(since=dt.date(2022, 1, 1)), {SEED_ID, "harbour-bridge", "chess-final"}),
        (Filters(until=dt.date(2021, 8, 2)), {"wheat-harvest", "volcano-flights"}),
        (Filters(since=dt.date(2021, 8, 2), until=dt.date(2022, 11, 30)), {SEED_ID, "wheat-harvest", "chess-final"}),
        (Filters(source="Coastal Times"), {"harbour-bridge", "chess-final"}),
        (Filters(source="Coastal Times", until=dt.date(2023, 1, 1)), {"chess-final"}),
        (Filters(article_id="volcano-flights"), {"volcano-flights"}),
        (Filters(source="Nobody"), set()),
        (Filters(since=dt.date(2030, 1, 1)), set()),
    ],
    ids=["since", "until", "range", "source", "source-until", "article", "unknown-source", "future"],
)
def test_filters(news: RagService, filters: Filters, expected: set[str]) -> None:
    found = set()
    for query in (SEED_QUESTION, "harbour bridge", "wheat harvest", "chess", "flights cancelled"):
        passages = news.search(query, k=20, filters=filters)
        found |= {p.article_id for p in passages}
        for p in passages:
            if filters.since:
                assert p.published_at and p.published_at >= filters.since
            if filters.until:
                assert p.published_at and p.published_at <= filters.until
    assert found == expected


def test_a_filtered_search_still_ranks_by_meaning(news: RagService) -> None:
    passages = news.search("airline passengers stranded", filters=Filters(since=dt.date(2020, 1, 1)), k=2)
    assert passages[0].article_id == "volcano-flights"


def test_since_after_until_is_refused(news: RagService) -> None:
    with pytest.raises(InvalidRequestError, match=r"'since' .* is after 'until'"):
        news.search("bridge", filters=Filters(since=dt.date(2023, 1, 1), until=dt.date(2022, 1, 1)))


def test_passages_carry_their_article_metadata(news: RagService) -> None:
    passage = news.search("chess championship final", k=1)[0]
    assert passage.article_id == "chess-final"
    assert passage.url == "https://coastal-times.example/sport/chess-final"
    assert passage.source == "Coastal Times"
    assert passage.chunk_id.startswith("chess-final:")


def test_langchain_retriever(news: RagService) -> None:
    retriever = PassageRetriever(search_fn=news.search, k=2, filters=Filters(source="Farm Gazette"))
    docs = retriever.invoke("grain prices")
    assert len(docs) == 1
    assert "wheat harvest" in docs[0].page_content
    assert docs[0].metadata["article_id"] == "wheat-harvest" and "text" not in docs[0].metadata
