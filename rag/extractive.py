"""The offline answerer: picks the source sentences that best answer the question and cites each one.

No model beyond the embedder. A sentence's score mixes meaning (cosine to the question), wording (share of
the question's content words it contains) and cues from the question's type (a "when" question wants a
date, a "how many" question a number, a "who said" question a quote). It abstains when the question names
something no retrieved passage mentions, or when no sentence is relevant enough. Deterministic.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.citations import Sentence, citation_for, overlap, source_sentences
from rag.embeddings import Embedder
from rag.index import keyword_tokens
from rag.models import Citation, Source

_MONTHS = "january|february|march|april|may|june|july|august|september|october|november|december"
_DAYS = "monday|tuesday|wednesday|thursday|friday|saturday|sunday"
_DATE = re.compile(rf"\b(?:{_MONTHS}|{_DAYS}|yesterday|today|tomorrow|\d{{4}})\b", re.I)
_NUMBER = re.compile(
    r"\b(?:\d[\d,.]*|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|"
    r"hundred|thousand|million|billion|dozens?|twice|once)\b",
    re.I,
)
_QUOTE = re.compile(r"[“”\"]|\bsaid\b|\bsays\b|\btold\b")
_PLACE = re.compile(r"\b(?:in|at|from|near)\s+[A-Z]")
_NAME = re.compile(r"(?<!^)(?<![.!?]\s)\b[A-Z][a-z]+(?:\s+[A-Z][a-z]+)+")
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
    ]
)
_SALIENT = re.compile(r"\b(?:[A-Z][\w’'-]*[A-Za-z0-9]|\d[\d,.]*\d|\d)\b")

# Weights: meaning carries most; wording keeps the chosen sentence on the question's own terms.
_W_SEMANTIC = 0.6
_W_LEXICAL = 0.4
_CUE_BONUS = 0.12
_MAX_SENTENCES = 2
_CLOSE_TO_BEST = 0.9


@dataclass(frozen=True, slots=True)
class ExtractiveResult:
    """Chosen sentences (as citations) or the reason to abstain."""

    text: str
    citations: list[Citation]
    abstain_reason: str | None = None


def question_cues(question: str) -> set[str]:
    """The kinds of answer the question asks for: when, how-many, quote, who, where."""
    q = question.lower()
    cues: set[str] = set()
    if re.search(r"\bwhen\b|\bwhat (?:date|day|year|month|time)\b", q):
        cues.add("when")
    if re.search(r"\bhow (?:many|much|long|old|far)\b|\bwhat (?:number|percentage|share)\b", q):
        cues.add("how-many")
    if re.search(r"\b(?:say|said|says|quote|told|tell|describe[ds]?|call(?:ed)?)\b", q):
        cues.add("quote")
    if re.search(r"\bwho\b|\bwhose\b|\bwhom\b", q):
        cues.add("who")
    if re.search(r"\bwhere\b", q):
        cues.add("where")
    return cues


def salient_terms(question: str) -> list[str]:
    """Names and numbers in the question (not its first word): things an answer's sources must mention."""
    words = _SALIENT.findall(question)
    first = re.match(r"\W*(\w+)", question)
    out = []
    for word in words:
        if first and word == first.group(1):
            continue
        tokens = keyword_tokens(word)
        if tokens and tokens[0] not in _QUESTION_WORDS:
            out.append(tokens[0])
    return list(dict.fromkeys(out))


def cue_bonus(cues: set[str], sentence: str) -> float:
    """Reward sentences that hold the kind of thing the question asks for."""
    bonus = 0.0
    if "when" in cues and _DATE.search(sentence):
        bonus += _CUE_BONUS
    if "how-many" in cues and _NUMBER.search(sentence):
        bonus += _CUE_BONUS
    if "quote" in cues and _QUOTE.search(sentence):
        bonus += _CUE_BONUS / 2
    if "who" in cues and _NAME.search(sentence):
        bonus += _CUE_BONUS / 2
    if "where" in cues and _PLACE.search(sentence):
        bonus += _CUE_BONUS / 2
    return bonus


class ExtractiveAnswerer:
    """Composes an answer from source sentences, each with its citation."""

    def __init__(self, embedder: Embedder, min_score: float = 0.42, cache_size: int = 4096) -> None:
        self.embedder = embedder
        self.min_score = min_score
        # Sentence vectors by (article, start, end, text): repeat questions over the same passages skip the model.
        self._cache: OrderedDict[tuple[str, int, int, str], np.ndarray] = OrderedDict()
        self._cache_size = cache_size

    def answer(self, question: str, sources: Sequence[Source], context: str = "") -> ExtractiveResult:
        """Pick up to two sentences that answer `question` (with `context` from earlier turns)."""
        sentences = source_sentences(sources)
        if not sentences:
            return ExtractiveResult("", [], "no passage was retrieved for this question")
        missing = self._missing_terms(question, sources)
        if missing:
            return ExtractiveResult("", [], f"the articles do not mention {', '.join(missing)}")

        query = f"{context} {question}".strip()
        q_tokens = set(keyword_tokens(question)) or set(keyword_tokens(query))
        q_vector = self.embedder.embed([query])[0]
        vectors = self._vectors(sentences)
        cues = question_cues(question)
        scores = []
        for sentence, vector in zip(sentences, vectors, strict=True):
            semantic = float(vector @ q_vector)
            lexical = overlap(q_tokens, set(keyword_tokens(sentence.text)))
            scores.append(_W_SEMANTIC * semantic + _W_LEXICAL * lexical + cue_bonus(cues, sentence.text))
        order = sorted(range(len(sentences)), key=lambda i: (-scores[i], sentences[i].number, sentences[i].start))
        best = scores[order[0]]
        if best < self.min_score:
            return ExtractiveResult("", [], f"no sentence in the articles is relevant enough (best {best:.2f})")

        by_number = {s.number: s for s in sources}
        chosen: list[Sentence] = []
        for i in order:
            if len(chosen) == _MAX_SENTENCES or scores[i] < max(self.min_score, best * _CLOSE_TO_BEST):
                break
            candidate = sentences[i]
            tokens = set(keyword_tokens(candidate.text))
            if any(overlap(tokens, set(keyword_tokens(c.text))) > 0.6 for c in chosen):
                continue  # near-repeat of a sentence already chosen
            chosen.append(candidate)
        chosen.sort(key=lambda s: (s.article_id, s.start))  # read in the article's order
        citations = [citation_for(s, by_number[s.number]) for s in chosen]
        text = " ".join(f"{s.text} [{s.number}]" for s in chosen)
        return ExtractiveResult(text, citations)

    def _missing_terms(self, question: str, sources: Sequence[Source]) -> list[str]:
        present: set[str] = set()
        for src in sources:
            present.update(keyword_tokens(f"{src.title} {src.text}"))
        return [t for t in salient_terms(question) if t not in present]

    def _vectors(self, sentences: Sequence[Sentence]) -> np.ndarray:
        keys = [(s.article_id, s.start, s.end, s.text) for s in sentences]
        todo = [i for i, key in enumerate(keys) if key not in self._cache]
        if todo:
            fresh = self.embedder.embed([sentences[i].text for i in todo])
            for i, vector in zip(todo, fresh, strict=True):
                self._cache[keys[i]] = vector
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        for key in keys:
            self._cache.move_to_end(key)
        return np.stack([self._cache[key] for key in keys])
