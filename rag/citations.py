"""Citations that hold: sentences of the retrieved sources, locating a claim's support, and the invariants.

Invariants every answer leaves this module with (checked by `finalize`):
- every `[n]` marker in the text has a citation numbered n;
- every citation's quote equals `article_text[start:end]`, inside retrieved source n's span;
- markers with no valid citation are removed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.chunking import split_sentences
from rag.embeddings import Embedder
from rag.index import keyword_tokens
from rag.models import Citation, Passage, Source

MARKER = re.compile(r"\s*\[(\d{1,3})\]")
_QUOTED = re.compile(r"[“\"]([^”\"]{12,})[”\"]")

ABSTAIN_TEXT = "The articles I have do not answer this question."


@dataclass(frozen=True, slots=True)
class Sentence:
    """A sentence of a retrieved source, with offsets into its article."""

    number: int
    article_id: str
    start: int
    end: int
    text: str


def build_sources(passages: Sequence[Passage]) -> list[Source]:
    """Number the retrieved passages 1..n, the numbering used by the prompt, the answer, the API and the widget."""
    return [
        Source(
            number=i,
            article_id=p.article_id,
            title=p.title,
            url=p.url,
            published_at=p.published_at,
            source=p.source,
            start=p.start,
            end=p.end,
            text=p.text,
            # Never the rank score in its place: the two are different numbers (unknown closeness counts as none).
            similarity=p.dense_score if p.dense_score is not None else 0.0,
        )
        for i, p in enumerate(passages, start=1)
    ]


def source_sentences(sources: Sequence[Source]) -> list[Sentence]:
    """Every sentence of every source, once (overlapping chunks repeat sentences; the first source keeps it)."""
    seen: set[tuple[str, int]] = set()
    out: list[Sentence] = []
    for src in sources:
        for s, e in split_sentences(src.text):
            key = (src.article_id, src.start + s)
            if key in seen:
                continue
            seen.add(key)
            out.append(Sentence(src.number, src.article_id, src.start + s, src.start + e, src.text[s:e]))
    return out


def citation_for(sentence: Sentence, source: Source) -> Citation:
    """The citation that quotes `sentence` from `source`."""
    return Citation(
        number=sentence.number,
        article_id=sentence.article_id,
        title=source.title,
        url=source.url,
        published_at=source.published_at,
        quote=sentence.text,
        start=sentence.start,
        end=sentence.end,
    )


def overlap(claim_tokens: set[str], sentence_tokens: set[str]) -> float:
    """Share of the claim's content words found in the sentence."""
    if not claim_tokens:
        return 0.0
    return len(claim_tokens & sentence_tokens) / len(claim_tokens)


class SupportFinder:
    """Finds the sentence that supports a claim: wording and meaning together."""

    # A claim is supported when this share of its meaning/wording is in one sentence. Chosen on the scripted
    # unit cases and the eval set: paraphrases by a model land at 0.5-0.8, unrelated sentences below 0.35.
    threshold = 0.45

    def __init__(self, embedder: Embedder | None, sentences: Sequence[Sentence]) -> None:
        self.sentences = list(sentences)
        self._tokens = [set(keyword_tokens(s.text)) for s in self.sentences]
        self._embedder = embedder
        self._vectors = embedder.embed([s.text for s in self.sentences]) if embedder and self.sentences else None

    def scores(self, claim: str) -> np.ndarray:
        """Support score of every sentence for this claim (0..1)."""
        tokens = set(keyword_tokens(claim))
        lexical = np.array([overlap(tokens, t) for t in self._tokens], dtype=np.float32)
        if self._vectors is None or self._embedder is None:
            return lexical
        semantic = self._vectors @ self._embedder.embed([claim])[0]
        combined: np.ndarray = 0.5 * lexical + 0.5 * np.clip(semantic, 0.0, 1.0)
        return combined

    def locate(self, claim: str, preferred: Sequence[int]) -> tuple[Sentence | None, bool]:
        """The supporting sentence, preferring the cited sources; True as second value when re-anchored."""
        if not self.sentences:
            return None, False
        for quoted in _QUOTED.findall(claim):  # a verbatim quote decides by itself
            for sentence in self.sentences:
                if quoted.strip() in sentence.text:
                    return sentence, sentence.number not in preferred
        scores = self.scores(claim)
        in_preferred = [i for i, s in enumerate(self.sentences) if s.number in preferred]
        if in_preferred:
            best = max(in_preferred, key=lambda i: scores[i])
            if scores[best] >= self.threshold:
                return self.sentences[best], False
        best = int(np.argmax(scores))
        if scores[best] >= self.threshold + 0.1:  # moving a claim to another source needs stronger support
            return self.sentences[best], bool(preferred)
        return None, False


def finalize(
    text: str, citations: Sequence[Citation], sources: Sequence[Source], article_texts: dict[str, str]
) -> tuple[str, list[Citation]]:
    """Drop citations that break an invariant, strip markers left without one, renumber nothing."""
    by_number = {s.number: s for s in sources}
    valid: list[Citation] = []
    for c in citations:
        src = by_number.get(c.number)
        article = article_texts.get(c.article_id)
        if (
            src is None
            or src.article_id != c.article_id
            or article is None
            or not (src.start <= c.start < c.end <= src.end)
            or article[c.start : c.end] != c.quote
        ):
            continue
        if not any(v.number == c.number and v.start == c.start for v in valid):
            valid.append(c)
    numbers = {c.number for c in valid}
    cleaned = MARKER.sub(lambda m: m.group(0) if int(m.group(1)) in numbers else "", text).strip()
    used = {int(n) for n in re.findall(r"\[(\d{1,3})\]", cleaned)}
    return cleaned, [c for c in valid if c.number in used]
