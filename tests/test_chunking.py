"""Chunks: exact offsets, sized for the model, whole sentences, overlap, deterministic ids."""

from __future__ import annotations

import datetime as dt
import itertools

from conftest import SEED_FILE
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.chunking import chunk_article, header, split_sentences
from rag.documents import build_article, read_file
from rag.embeddings import MAX_MODEL_TOKENS, OnnxMiniLM
from rag.models import Article, Chunk

# Text made to stress the splitter: arbitrary unicode (no lone surrogates: no file can hold them), odd
# whitespace, abbreviations, quotes, very long sentences and "words" longer than a whole chunk.
_ODD_WORDS = [
    "Mr.",
    "U.S.",
    "e.g.",
    "No.",
    "...",
    "!",
    "?",
    "“Yes.”",
    "(a)",
    "a.",
    "Ünïcödé",
    "東京都",
    "한국어",
    "🙂",
    "\u200b",
    "\x1c",
    "ǅ",
    "ﬁ",
    "3.14",
    "https://x.example/a?b=c.",
]

_WORDS = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=12),
    st.sampled_from(_ODD_WORDS),
    st.text(st.sampled_from("abcdefghij.,-"), min_size=50, max_size=600),  # one long "word"
    st.text(st.characters(exclude_categories=["Cs"]), min_size=100, max_size=400),
)
_SEPARATORS = st.sampled_from(
    [" ", " ", " ", "  ", "\n", "\n\n", "\t", "\u00a0", "\u3000", "\u2028", "\r\n", " \n \n ", ". ", "! ", "? "]
)


_ENDS = st.sampled_from([". ", ".  ", "! ", "? ", ".\n", ".\n\n", "…\n", "” ", " ", "\n\n", ""])


@st.composite
def article_texts(draw: st.DrawFn) -> str:
    """Sentences of 1 to ~100 words, so that chunks fill up, overflow and overlap."""
    sentences = draw(st.lists(st.lists(st.tuples(_WORDS, _SEPARATORS), min_size=1, max_size=100), max_size=25))
    return "".join("".join(w + s for w, s in words) + draw(_ENDS) for words in sentences)


def make_article(text: str, title: str | None = None, published: str | None = "2022-02-24") -> Article:
    return build_article({"body": text, "title": title, "published_at": published}, origin="test", fallback_id="t")


def fits_alone(embedder: OnnxMiniLM, article: Article, text: str, max_tokens: int = 200) -> bool:
    """Whether this text could be one chunk: within the chunk budget and, with its header, the model's window."""
    n = embedder.count_tokens([text])[0]
    return n <= max_tokens and n + embedder.count_tokens([header(article)])[0] + 2 <= MAX_MODEL_TOKENS


def check_chunks(embedder: OnnxMiniLM, article: Article, chunks: list[Chunk]) -> None:
    text = article.text
    assert chunks
    covered = bytearray(len(text))
    for before, chunk in zip([None, *chunks], chunks, strict=False):
        # Exact offsets into the canonical text.
        assert text[chunk.start : chunk.end] == chunk.text
        assert chunk.article_id == article.id
        # What the model sees fits its window: nothing is silently truncated.
        assert embedder.count_tokens([chunk.embed_text])[0] + 2 <= MAX_MODEL_TOKENS
        assert chunk.embed_text.endswith(chunk.text)
        # In order, and each chunk brings text its predecessor did not have.
        if before is not None:
            assert chunk.start > before.start
            assert chunk.end > before.end
        covered[chunk.start : chunk.end] = b"\x01" * (chunk.end - chunk.start)
    assert all(covered[i] or ch.isspace() for i, ch in enumerate(text))
    assert len({c.id for c in chunks}) == len(chunks)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(text=article_texts(), title=st.none() | st.text(st.characters(exclude_categories=["Cs"]), max_size=300))
def test_chunks_are_exact_fit_the_model_and_cover_the_text(embedder: OnnxMiniLM, text: str, title: str | None) -> None:
    if not text.strip():
        return
    article = make_article(text, title=title)
    chunks = chunk_article(article, embedder.count_tokens)
    check_chunks(embedder, article, chunks)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(text=article_texts())
def test_chunks_never_cut_inside_a_sentence_that_fits(embedder: OnnxMiniLM, text: str) -> None:
    if not text.strip():
        return
    article = make_article(text)
    chunks = chunk_article(article, embedder.count_tokens)
    for start, end in split_sentences(article.text):
        if not fits_alone(embedder, article, article.text[start:end]):
            continue  # a sentence too long for a chunk is the one thing that may be split
        for chunk in chunks:
            assert not start < chunk.start < end, (chunk.start, (start, end))
            assert not start < chunk.end < end, (chunk.end, (start, end))


def test_the_seed_article(embedder: OnnxMiniLM) -> None:
    (article,) = list(read_file(SEED_FILE, max_bytes=10**7))
    assert isinstance(article, Article)
    chunks = chunk_article(article, embedder.count_tokens)
    check_chunks(embedder, article, chunks)
    assert len(chunks) >= 2
    assert chunks[0].embed_text.startswith(f"{article.title} (2022-02-24)\n\n")


def test_sentences_respect_abbreviations_quotes_and_paragraphs() -> None:
    text = (
        "Mr. Smith met U.S. officials at 3 p.m. on Monday. “We agreed,” he said. Was it enough? "
        "Prices rose 3.5 percent.\n\nA new paragraph starts here"
    )
    sentences = [text[s:e] for s, e in split_sentences(text)]
    assert sentences == [
        "Mr. Smith met U.S. officials at 3 p.m. on Monday.",
        "“We agreed,” he said.",
        "Was it enough?",
        "Prices rose 3.5 percent.",
        "A new paragraph starts here",
    ]


def long_article(sentences: int = 80) -> Article:
    """A long article of ordinary news sentences, each well under the overlap budget."""
    places = ["Oslo", "Lagos", "Lima", "Hanoi", "Perth", "Quito", "Accra", "Tallinn"]
    body = " ".join(
        f"Officials in {places[i % len(places)]} reported {i * 7 + 3} new cases on day {i}, the ministry said."
        for i in range(sentences)
    )
    return make_article(body, title="Outbreak figures by city")


def test_consecutive_chunks_of_a_long_article_overlap_by_whole_sentences(embedder: OnnxMiniLM) -> None:
    article = long_article()
    chunks = chunk_article(article, embedder.count_tokens, max_tokens=200, overlap_tokens=48)
    check_chunks(embedder, article, chunks)
    assert len(chunks) >= 4
    starts = {s for s, _ in split_sentences(article.text)}
    for before, after in itertools.pairwise(chunks):
        assert after.start < before.end  # they share text...
        assert after.start in starts  # ...that begins on a sentence boundary
        shared = embedder.count_tokens([article.text[after.start : before.end]])[0]
        assert 0 < shared <= 48


def test_chunk_size_follows_the_settings(embedder: OnnxMiniLM) -> None:
    article = long_article()
    small = chunk_article(article, embedder.count_tokens, max_tokens=64, overlap_tokens=0)
    large = chunk_article(article, embedder.count_tokens, max_tokens=200, overlap_tokens=0)
    assert len(small) > len(large)
    assert all(embedder.count_tokens([c.text])[0] <= 64 for c in small)
    # Without overlap, chunks tile the text.
    assert all(b.start > a.end for a, b in itertools.pairwise(small))


def test_chunk_ids_are_deterministic_and_name_the_version(embedder: OnnxMiniLM) -> None:
    article = long_article()
    first = chunk_article(article, embedder.count_tokens)
    again = chunk_article(long_article(), embedder.count_tokens)
    assert [c.id for c in first] == [c.id for c in again]
    assert first[1].id == f"{article.id}:{article.content_hash[:12]}:{first[1].start}"

    edited = make_article(article.text + " One more sentence at the end.", title=article.title)
    assert not {c.id for c in first} & {c.id for c in chunk_article(edited, embedder.count_tokens)}


def test_a_title_longer_than_the_header_budget_is_shortened(embedder: OnnxMiniLM) -> None:
    article = make_article("A short body. Another sentence.", title="word " * 120)
    (chunk,) = chunk_article(article, embedder.count_tokens)
    assert chunk.embed_text.split("\n\n")[0].endswith("…")
    assert embedder.count_tokens([chunk.embed_text])[0] + 2 <= MAX_MODEL_TOKENS


def test_undated_articles_say_so_in_the_header() -> None:
    article = make_article("Body.", title="T", published=None)
    assert header(article) == "T (undated)\n\n"
    assert make_article("Body.", title="T").published_at == dt.date(2022, 2, 24)
