"""Sentence-aware chunks with exact character offsets into the article's canonical text.

A chunk is a run of whole sentences whose word pieces, together with the header (title and date) that is
embedded with it, fit the embedding model's 256-piece window, so nothing is ever cut off silently. Chunks
overlap by whole sentences. A sentence longer than a chunk is the only thing split inside, at word
boundaries (or, for a "word" longer than a chunk, at character boundaries).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import NamedTuple

from rag.embeddings import MAX_MODEL_TOKENS
from rag.models import Article, Chunk

TokenCounter = Callable[[Sequence[str]], list[int]]

# [CLS] and [SEP] take two of the model's 256 positions.
_SPECIAL_TOKENS = 2
_MAX_HEADER_TOKENS = 48

_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st jr sr gen gov sen rep lt col capt sgt maj cmdr adm rev hon pres supt insp "  # noqa: SIM905
    "inc ltd co corp bros dept univ est approx vs etc al fig no nos vol pp ed eds "
    "jan feb mar apr jun jul aug sep sept oct nov dec mon tue wed thu fri sat sun "
    "u.s u.k u.n e.g i.e a.m p.m".split()
)
_CANDIDATE = re.compile(r"[.!?…]+[\"”’'»)\]]*(?=\s)|\n[ \t]*\n")
_WORD_BEFORE = re.compile(r"([\w.]+)[.!?…]*[\"”’'»)\]]*$")


class Piece(NamedTuple):
    start: int
    end: int
    tokens: int


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans `(start, end)` of `text`, whitespace trimmed from both ends of each span."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _CANDIDATE.finditer(text):
        end = match.end()
        if match.group().strip() and not _is_boundary(text, match.start(), end):
            continue
        _append_trimmed(text, start, end, spans)
        start = end
    _append_trimmed(text, start, len(text), spans)
    return spans


def _is_boundary(text: str, punct_start: int, end: int) -> bool:
    following = text[end : end + 40].lstrip()
    if not following:
        return True
    if text[punct_start] == "." and text[punct_start:end].rstrip("\"”’'»)]") == ".":
        word = _WORD_BEFORE.search(text, max(0, punct_start - 30), punct_start + 1)
        token = word.group(1).lower().rstrip(".") if word else ""
        if token in _ABBREVIATIONS or (len(token) == 1 and token.isalpha()):
            return False
    # A sentence starts with a capital, digit, quote or bracket; a lower-case word means we are mid-sentence.
    return not following[0].islower()


def _append_trimmed(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append((start, end))


def header(article: Article) -> str:
    """The line embedded in front of every chunk, so a passage still matches its article's subject."""
    date = article.published_at.isoformat() if article.published_at else "undated"
    return f"{article.title} ({date})\n\n"


def chunk_article(
    article: Article, count_tokens: TokenCounter, max_tokens: int = 200, overlap_tokens: int = 48
) -> list[Chunk]:
    """Split an article into overlapping chunks of whole sentences that fit the model's window."""
    text = article.text
    head = header(article)
    head_tokens = count_tokens([head])[0]
    if head_tokens > _MAX_HEADER_TOKENS:
        head = head[: _MAX_HEADER_TOKENS * 2].rsplit(" ", 1)[0] + "…\n\n"
        head_tokens = count_tokens([head])[0]
    budget = max(16, min(max_tokens, MAX_MODEL_TOKENS - _SPECIAL_TOKENS - head_tokens))
    overlap = min(overlap_tokens, budget // 2)

    spans = split_sentences(text)
    counts = count_tokens([text[s:e] for s, e in spans])
    pieces: list[Piece] = []
    for (s, e), n in zip(spans, counts, strict=True):
        if n <= budget:
            pieces.append(Piece(s, e, n))
        else:
            pieces.extend(_split_long(text, s, e, count_tokens, budget))

    chunks: list[Chunk] = []
    i = 0
    while i < len(pieces):
        j, _ = _fill(pieces, i, budget)
        start, end = pieces[i].start, pieces[j - 1].end
        chunk_text = text[start:end]
        chunks.append(
            Chunk(
                id=f"{article.id}:{article.content_hash[:12]}:{start}",
                article_id=article.id,
                start=start,
                end=end,
                text=chunk_text,
                embed_text=head + chunk_text,
            )
        )
        if j >= len(pieces):
            break
        # Step back over whole trailing sentences worth at most `overlap` pieces, but always move forward, and
        # leave room for the next sentence: a chunk holding only the overlap would repeat its predecessor.
        k, carried = j, 0
        room = min(overlap, budget - pieces[j].tokens)
        while k - 1 > i and carried + pieces[k - 1].tokens <= room:
            k -= 1
            carried += pieces[k].tokens
        i = k
    return chunks


def _split_long(text: str, start: int, end: int, count_tokens: TokenCounter, budget: int) -> list[Piece]:
    words = [(m.start() + start, m.end() + start) for m in re.finditer(r"\S+", text[start:end])]
    counts = count_tokens([text[s:e] for s, e in words])
    units: list[Piece] = []
    for (s, e), n in zip(words, counts, strict=True):
        if n <= budget:
            units.append(Piece(s, e, n))
        else:  # one "word" longer than a chunk: a word piece covers at least one character
            for lo in range(s, e, budget):
                hi = min(lo + budget, e)
                units.append(Piece(lo, hi, count_tokens([text[lo:hi]])[0]))
    pieces: list[Piece] = []
    i = 0
    while i < len(units):
        j, total = _fill(units, i, budget)
        pieces.append(Piece(units[i].start, units[j - 1].end, total))
        i = j
    return pieces


def _fill(pieces: Sequence[Piece], i: int, budget: int) -> tuple[int, int]:
    """Greedy packing: the end index of the run starting at `i` that fits `budget` (at least one piece)."""
    j, total = i, 0
    while j < len(pieces) and total + pieces[j].tokens <= budget:
        total += pieces[j].tokens
        j += 1
    if j == i:
        return i + 1, pieces[i].tokens
    return j, total
