"""The benchmark corpus generator: deterministic, any size, and what it yields parses like real input."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

from rag.chunking import chunk_article
from rag.documents import read_file
from rag.models import Article


def _load_corpus() -> ModuleType:
    # benchmarks/ is scripts, not a package: load the file itself, registered so its dataclasses resolve.
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "corpus.py"
    spec = importlib.util.spec_from_file_location("bench_corpus", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


corpus = _load_corpus()


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def test_same_seed_same_articles_and_prefixes_agree() -> None:
    first = [g.meta for g in corpus.iter_generated(30, seed=7)]
    again = [g.meta for g in corpus.iter_generated(30, seed=7)]
    assert first == again
    # A smaller corpus is a prefix of a larger one, and one article can be made on its own.
    assert [g.meta for g in corpus.iter_generated(10, seed=7)] == first[:10]
    assert corpus.generate(12, seed=7).meta == first[12]
    assert [g.meta for g in corpus.iter_generated(5, seed=7, start=20)] == first[20:25]


def test_other_seed_other_articles() -> None:
    a = [g.meta["body"] for g in corpus.iter_generated(10, seed=1)]
    b = [g.meta["body"] for g in corpus.iter_generated(10, seed=2)]
    assert not set(a) & set(b)


@pytest.mark.parametrize("n", [0, 1, 57])
def test_sizes(n: int) -> None:
    articles = list(corpus.iter_articles(n, seed=3))
    assert len(articles) == n
    assert len({a.id for a in articles}) == n


def test_articles_are_news_shaped() -> None:
    articles: list[Article] = list(corpus.iter_articles(200, seed=0))
    for article in articles:
        assert article.title and article.source and article.author
        assert article.url and article.url.startswith("https://")
        assert article.published_at is not None and corpus.FIRST_DAY <= article.published_at <= corpus.LAST_DAY
        assert len(article.text.split("\n\n")) >= 7  # lead + 6-16 paragraphs
        assert re.search(r"\d", article.text)  # figures
        assert "\u201c" in article.text or "\u201d" in article.text or "said" in article.text
    lengths = sorted(len(a.text) for a in articles)
    assert 1_500 < lengths[len(lengths) // 2] < 6_000
    assert len({a.source for a in articles}) > 10
    assert len({a.published_at.year for a in articles if a.published_at}) == 10
    # Varied enough for BM25 and embeddings to behave as on news: thousands of words, few repeated sentences.
    vocabulary = {w for a in articles for w in _words(a.title + " " + a.text)}
    assert len(vocabulary) > 3_000
    sentences = [s for a in articles for s in re.split(r"(?<=[.!?\u201d])\s+", a.text)]
    assert len(set(sentences)) > 0.95 * len(sentences)


def test_lead_states_the_facts_the_questions_ask_about() -> None:
    generated = list(corpus.iter_generated(50, seed=0))
    by_id = {g.id: g for g in generated}
    questions = corpus.questions(generated, 40, seed=0)
    assert len(questions) == 40
    assert questions == corpus.questions(generated, 40, seed=0)
    for question in questions:
        article = by_id[question.article_id]
        lead = article.meta["body"].split("\n\n")[0]
        assert article.facts["p1"] in lead and article.facts["city"] in lead and article.facts["amount"] in lead
        assert question.text.endswith("?")
        assert question.published_at == article.published_at


def test_jsonl_round_trips_through_the_reader(tmp_path: Path) -> None:
    path = tmp_path / "generated.jsonl"
    size = corpus.write_jsonl(path, 25, seed=5)
    assert size == path.stat().st_size
    parsed = list(read_file(path, tmp_path, max_bytes=10_000_000))
    assert all(isinstance(a, Article) for a in parsed)
    direct = list(corpus.iter_articles(25, seed=5))
    assert [a.id for a in parsed] == [a.id for a in direct]  # type: ignore[union-attr]
    assert [a.content_hash for a in parsed] == [a.content_hash for a in direct]  # type: ignore[union-attr]
    assert json.loads(path.read_text().splitlines()[0])["id"] == "gen-5-0000000"


def test_articles_chunk_into_several_passages() -> None:
    def count_words(texts: object) -> list[int]:  # a stand-in tokenizer: ~1.3 word pieces per word
        return [int(len(t.split()) * 1.3) + 1 for t in texts]  # type: ignore[attr-defined]

    chunks = [len(chunk_article(a, count_words, 200, 48)) for a in corpus.iter_articles(50, seed=0)]
    assert min(chunks) >= 1
    assert 2 <= sum(chunks) / len(chunks) <= 10
