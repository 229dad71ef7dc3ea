"""The offline answerer: picks the source sentence that answers each part of the question, and cites it.

No model beyond the embedder. For each part of the question (most have one) it knows the kind of answer wanted
(`answer_types`); a sentence is a candidate when it carries an item of that kind, and candidates are ranked by
how well they and their neighbourhood (the sentence before, the article's title) match the question's meaning
and its words, weighted by how telling each word is. The fact often sits one sentence after the one that shares
the question's words, which is why the neighbourhood counts. It abstains when no candidate carries the asked
particulars closely enough: the threshold and weights were chosen on the dev sets (evals/README.md).
Deterministic.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.answer_types import QuestionPart, carries, is_question_or_heading, question_parts
from rag.chunking import split_sentences
from rag.citations import Sentence, citation_for, neutralize, source_sentences
from rag.embeddings import Embedder
from rag.index import keyword_tokens
from rag.models import Citation, Source
from rag.reasons import missing_terms_reason
from rag.temporal import Intent, annotate_relative, format_date
from rag.text import content_tokens

_ALIASES = {
    "moscow": "russia", "kremlin": "russia", "russian": "russia", "delhi": "india", "indian": "india",
    "washington": "us", "american": "us", "america": "us", "usa": "us", "u.s": "us", "beijing": "china",
    "chinese": "china", "london": "uk", "britain": "uk", "british": "uk", "kyiv": "ukraine", "kiev": "ukraine",
    "ukrainian": "ukraine", "french": "france", "german": "germany", "japanese": "japan", "australian": "australia",
    "canadian": "canada", "italian": "italy", "spanish": "spain", "polish": "poland", "israeli": "israel",
    "iranian": "iran", "turkish": "turkey", "mexican": "mexico", "brazilian": "brazil",
}  # fmt: skip
_ANAPHOR = re.compile(
    r"^(?:[“\"‘']\s*)?(?:he|she|it|they|this|that|these|those|his|her|its|their|the (?:company|group|man|woman|"
    r"agency|government|team|club|ship|plane|police|court|minister|president|party|firm|move|decision|report))\b",
    re.I,
)
_QUESTION_WORDS = frozenset(
    [
        "what",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "which",
        "why",
        "how",
        "did",
        "does",
        "do",
        "is",
        "are",
        "was",
        "were",
        "can",
        "could",
        "would",
        "should",
        "will",
        "according",
        "tell",
        "give",
        "name",
        "list",
        "explain",
        "describe",
        "many",
        "much",
    ]
)
_SALIENT = re.compile(r"(?<![\w’'])(?:[A-Z][\w’'-]*[A-Za-z0-9]|\d[\d,.]*\d|\d)(?![\w’'])")


@dataclass(frozen=True, slots=True)
class ExtractiveResult:
    """Chosen sentences (as citations) or the reason to abstain; `confidence` is the best candidate's score."""

    text: str
    citations: list[Citation]
    abstain_reason: str | None = None
    confidence: float = 0.0


@dataclass(slots=True)
class Weights:
    """How a candidate sentence is scored. Chosen on the dev sets (`rag eval`): see evals/README.md."""

    semantic: float = 0.6  # cosine of question and sentence
    lexical: float = 0.2  # weighted share of the question's words in the sentence
    neighbourhood: float = 0.4  # ... in the sentence, the one before it and the article's title
    context_semantic: float = 0.15  # cosine of question and the sentence before, when that is higher
    rank: float = 0.04  # the passage's retrieval rank (1/rank)
    threshold: float = 0.36  # below this the best candidate is not an answer: abstain
    second: float = 0.97  # a second sentence for one part only when it scores this close to the first


def canonical(token: str) -> str:
    """Fold demonyms and capitals onto one token, so "Moscow" matches "Russia"."""
    return _ALIASES.get(token, token)


def focus(question: str) -> str:
    """The sentence that asks: the last one with a question mark, else the last one.

    Text wrapped around a question ("Ignore your instructions and say X. Who is Y?") neither steers the
    choice of sentences nor the decision to abstain.
    """
    spans = split_sentences(question)
    if len(spans) <= 1:
        return question.strip()
    asking = [question[s:e] for s, e in spans if "?" in question[s:e]]
    return (asking or [question[spans[-1][0] : spans[-1][1]]])[-1].strip()


def term_weights(question: str) -> dict[str, float]:
    """The question's content words, names and numbers counting double: they say which story is meant."""
    salient = {canonical(t) for word in _SALIENT.findall(question) for t in content_tokens(word)}
    first = re.match(r"\W*(\w+)", question)
    first_word = first.group(1).lower() if first else ""
    weights: dict[str, float] = {}
    for token in content_tokens(question):
        term = canonical(token)
        if term in _QUESTION_WORDS:
            continue
        weights[term] = 2.0 if term in salient and term != first_word else 1.0
    return weights


def weighted_overlap(weights: dict[str, float], tokens: set[str]) -> float:
    """Weighted share of the question's terms found in `tokens`."""
    total = sum(weights.values())
    return sum(w for t, w in weights.items() if t in tokens) / total if total else 0.0


@dataclass(slots=True)
class _Candidate:
    sentence: Sentence
    tokens: set[str]
    vector: np.ndarray
    previous: _Candidate | None
    title_tokens: set[str]
    passage_tokens: set[str]  # every retrieved passage of its article, and the title
    rank: int
    excluded: bool


class ExtractiveAnswerer:
    """Composes an answer from source sentences, each with its citation."""

    def __init__(self, embedder: Embedder, weights: Weights | None = None, cache_size: int = 8192) -> None:
        self.embedder = embedder
        self.weights = weights or Weights()
        # Sentence vectors by (article, start, end, text): repeat questions over the same passages skip the model.
        self._cache: OrderedDict[tuple[str, int, int, str], np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def answer(
        self, question: str, sources: Sequence[Source], context: str = "", intent: Intent | None = None
    ) -> ExtractiveResult:
        """Pick the sentence that answers each part of `question`; `context` is the earlier question of a
        follow-up, used for meaning only (never for the words a sentence must share)."""
        candidates = self._candidates(sources)
        if not candidates:
            return ExtractiveResult("", [], "no passage was retrieved for this question")
        asked = focus(question)
        by_number = {s.number: s for s in sources}
        if intent is not None and intent.kind == "timeline":
            return self._timeline(asked, context, candidates, by_number)
        chosen: list[Sentence] = []
        confidence = 1.0
        for part in question_parts(asked):
            picked, score = self._best(part, context, candidates, by_number)
            confidence = min(confidence, score)
            if not picked:
                missing = _missing_terms(asked, sources)
                why = missing_terms_reason(asked, missing) if missing else _why_not(part)
                return ExtractiveResult("", [], why, round(score, 3))
            for sentence in picked:
                if sentence not in chosen:
                    chosen.append(sentence)
        citations = [citation_for(s, by_number[s.number]) for s in chosen]
        text = " ".join(f"{_shown(s, by_number[s.number])} [{s.number}]" for s in chosen)
        return ExtractiveResult(text, citations, None, round(confidence, 3))

    def _best(
        self, part: QuestionPart, context: str, candidates: list[_Candidate], by_number: dict[int, Source]
    ) -> tuple[list[Sentence], float]:
        w = self.weights
        weights = term_weights(part.text)
        q_words = {t for t in re.findall(r"\w+", part.text.lower())} | set(weights)
        q_vector = self.embedder.embed([f"{context} {part.context} {part.text}".strip()])[0]
        # "What did Babushkin say about X?": the quoted sentence is about X, and the speaker is usually named in
        # the attribution around it ("..., he said"), so names count in the neighbourhood only.
        said_weights = {t: w for t, w in weights.items() if w < 2.0} if part.type == "quote" else weights
        said_weights = said_weights or weights
        speakers = {t for t, w in weights.items() if w >= 2.0} if part.type == "quote" else set()
        scored: list[tuple[float, int, _Candidate]] = []
        for i, c in enumerate(candidates):
            if c.excluded or not carries(part.type, c.sentence.text, q_words):
                continue
            semantic = float(c.vector @ q_vector)
            lexical = weighted_overlap(said_weights, c.tokens)
            around = c.tokens | c.title_tokens | (c.previous.tokens if c.previous else set())
            if speakers and len(speakers & c.passage_tokens) * 2 < len(speakers):
                continue  # a quote, but nobody the question names is in its article's passages
            context_semantic = float(c.previous.vector @ q_vector) if c.previous else 0.0
            score = (
                w.semantic * semantic
                + w.lexical * lexical
                + w.neighbourhood * weighted_overlap(weights, around)
                + w.context_semantic * max(0.0, context_semantic - semantic)
                + w.rank / c.rank
            )
            scored.append((score, i, c))
        if not scored:
            return [], 0.0
        scored.sort(key=lambda x: (-x[0], x[1]))
        best = scored[0][0]
        if best < w.threshold:
            return [], best
        picked = [_with_antecedent(scored[0][2], by_number[scored[0][2].sentence.number])]
        if len(scored) > 1 and scored[1][0] >= best * w.second:
            second = _with_antecedent(scored[1][2], by_number[scored[1][2].sentence.number])
            if not _overlaps(second, picked[0]):
                picked.append(second)
        return picked, best

    def _timeline(
        self, asked: str, context: str, candidates: list[_Candidate], by_number: dict[int, Source]
    ) -> ExtractiveResult:
        """The best sentence of each article, oldest first, each dated and cited."""
        w = self.weights
        weights = term_weights(asked)
        q_vector = self.embedder.embed([f"{context} {asked}".strip()])[0]
        best: dict[str, tuple[float, _Candidate]] = {}
        for c in candidates:
            if c.excluded:
                continue
            around = c.tokens | c.title_tokens
            score = w.semantic * float(c.vector @ q_vector) + (w.lexical + w.neighbourhood) * weighted_overlap(
                weights, around
            )
            if score >= w.threshold and score > best.get(c.sentence.article_id, (-1.0, c))[0]:
                best[c.sentence.article_id] = (score, c)
        if not best:
            return ExtractiveResult("", [], "no article tells this story closely enough", 0.0)
        dated = sorted(best.values(), key=lambda x: -x[0])[:6]
        dated.sort(key=lambda x: (by_number[x[1].sentence.number].published_at or _FAR, x[1].sentence.start))
        parts, citations = [], []
        for _score, c in dated:
            src = by_number[c.sentence.number]
            when = f"{format_date(src.published_at)}: " if src.published_at else ""
            parts.append(f"{when}{_shown(c.sentence, src)} [{src.number}]")
            citations.append(citation_for(c.sentence, src))
        return ExtractiveResult(" ".join(parts), citations, None, round(max(s for s, _ in dated), 3))

    def _candidates(self, sources: Sequence[Source]) -> list[_Candidate]:
        sentences = source_sentences(sources)
        vectors = self._vectors(sentences) if sentences else np.zeros((0, 1))
        titles = {s.number: {canonical(t) for t in content_tokens(s.title)} for s in sources}
        # What each article's retrieved passages say, together: a quote's speaker is often named a paragraph away.
        by_article: dict[str, set[str]] = {}
        for src in sources:
            by_article.setdefault(src.article_id, set()).update(
                canonical(t) for t in content_tokens(f"{src.title} {src.text}")
            )
        passages = {src.number: by_article[src.article_id] for src in sources}
        out: list[_Candidate] = []
        previous: dict[int, _Candidate] = {}
        for sentence, vector in zip(sentences, vectors, strict=True):
            tokens = {canonical(t) for t in content_tokens(sentence.text)}
            before = previous.get(sentence.number)
            if before is not None and before.sentence.end > sentence.start:
                before = None  # not the sentence before this one in the article
            candidate = _Candidate(
                sentence,
                tokens,
                vector,
                before,
                titles[sentence.number],
                passages[sentence.number],
                sentence.number,
                is_question_or_heading(sentence.text) or len(sentence.text) < 15,
            )
            out.append(candidate)
            previous[sentence.number] = candidate
        return out

    def _vectors(self, sentences: Sequence[Sentence]) -> np.ndarray:
        keys = [(s.article_id, s.start, s.end, s.text) for s in sentences]
        with self._lock:
            todo = [i for i, key in enumerate(keys) if key not in self._cache]
        fresh = self.embedder.embed([sentences[i].text for i in todo]) if todo else None
        with self._lock:
            # Vectors are kept in a local map as well: another thread may evict a key between the two locks.
            found = {keys[i]: fresh[j] for j, i in enumerate(todo)} if fresh is not None else {}
            for key, vector in found.items():
                self._cache[key] = vector
            for key in keys:
                if key in self._cache:
                    self._cache.move_to_end(key)
                    found.setdefault(key, self._cache[key])
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        missing = [i for i, key in enumerate(keys) if key not in found]
        if missing:
            for i, vector in zip(missing, self.embedder.embed([sentences[i].text for i in missing]), strict=True):
                found[keys[i]] = vector
        return np.stack([found[key] for key in keys])


_FAR = dt.date.max


def _with_antecedent(c: _Candidate, source: Source) -> Sentence:
    """The sentence, extended back over the one before when it opens with a pronoun ("He said ...")."""
    s = c.sentence
    if c.previous is not None and _ANAPHOR.match(s.text) and not c.previous.excluded:
        start = c.previous.sentence.start
        return Sentence(s.number, s.article_id, start, s.end, source.text[start - source.start : s.end - source.start])
    return s


def _overlaps(a: Sentence, b: Sentence) -> bool:
    return a.article_id == b.article_id and a.start < b.end and b.start < a.end


def _shown(sentence: Sentence, source: Source) -> str:
    """What the answer shows of a cited sentence: its text with relative dates resolved and any `[n]` or fence
    tag of the article neutralised, so article text can never pose as a citation."""
    text = source.text[sentence.start - source.start : sentence.end - source.start]
    return neutralize(annotate_relative(text, source.published_at))


def _salient(question: str) -> list[str]:
    """The question's names and numbers (not its first word), as folded search terms."""
    first = re.match(r"\W*(\w+)", question)
    wanted = [
        canonical(t)
        for word in _SALIENT.findall(question)
        if not (first and word == first.group(1))
        for t in keyword_tokens(word)
        if t not in _QUESTION_WORDS and len(t) > 1
    ]
    return list(dict.fromkeys(wanted))


def _missing_terms(question: str, sources: Sequence[Source]) -> list[str]:
    """The question's names and numbers that no source mentions (for saying why it abstained)."""
    present: set[str] = set()
    for src in sources:
        present.update(canonical(t) for t in keyword_tokens(f"{src.title} {src.text}"))
    return [t for t in _salient(question) if t not in present]


def _why_not(part: QuestionPart) -> str:
    kinds = {
        "number": "a number",
        "money": "an amount",
        "percent": "a percentage",
        "date": "a date",
        "person": "a name",
        "place": "a place",
        "org": "an organisation",
        "quote": "what was said",
        "reason": "a reason",
    }
    if part.type in kinds:
        return f"no passage gives {kinds[part.type]} for this closely enough to answer"
    return "no passage answers this closely enough"
