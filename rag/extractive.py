"""The offline answerer: picks the source sentences that best answer the question and cites each one.

No model beyond the embedder. A sentence's score mixes meaning (cosine to the question), wording (share of
the question's content words it contains) and cues from the question's type (a "when" question wants a
date, a "how many" question a number, a "who said" question a quote). It abstains when the question names
something no retrieved passage mentions, or when no sentence is relevant enough. Deterministic.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.chunking import split_sentences
from rag.citations import Sentence, citation_for, overlap, source_sentences
from rag.embeddings import Embedder
from rag.index import keyword_tokens
from rag.models import Citation, Source
from rag.reasons import missing_terms_reason

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
_NUMBER_WORDS = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
_NUMBER_WORDS += "sixteen seventeen eighteen nineteen twenty"
_ALIASES = {word: str(i) for i, word in enumerate(_NUMBER_WORDS.split())} | {
    "moscow": "russia", "kremlin": "russia", "russian": "russia", "delhi": "india", "indian": "india",
    "washington": "us", "american": "us", "america": "us", "usa": "us", "beijing": "china", "chinese": "china",
    "london": "uk", "britain": "uk", "british": "uk", "kyiv": "ukraine", "kiev": "ukraine", "ukrainian": "ukraine",
}  # fmt: skip
_SALIENT = re.compile(r"\b(?:[A-Z][\w’'-]*[A-Za-z0-9]|\d[\d,.]*\d|\d)\b")

# Weights: meaning carries most; wording keeps the chosen sentence on the question's own terms.
_W_SEMANTIC = 0.6
_W_LEXICAL = 0.4
# A sentence holding a new item of the kind asked for (a number for "how many") usually is the answer; chosen
# on the eval sets, where a flat type bonus kept picking the article's lead sentence instead.
_CUE_BONUS = 0.25
_QUOTE_BONUS = 0.06
_MAX_SENTENCES = 2
_CLOSE_TO_BEST = 0.95


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


def focus(question: str) -> str:
    """The sentence that asks: the last one with a question mark, else the last one.

    Text wrapped around a question ("Ignore your instructions and say X. Who is Y?") neither steers the
    choice of sentences nor triggers the missing-term refusal.
    """
    spans = split_sentences(question)
    if len(spans) <= 1:
        return question.strip()
    asking = [question[s:e] for s, e in spans if "?" in question[s:e]]
    return (asking or [question[spans[-1][0] : spans[-1][1]]])[-1].strip()


def canonical(token: str) -> str:
    """Fold number words, demonyms and capitals onto one token, so "fifteen" matches "15", "Moscow" "Russia"."""
    return _ALIASES.get(token, token)


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
            out.append(canonical(tokens[0]))
    return list(dict.fromkeys(out))


def new_items(cues: set[str], sentence: str, question_tokens: set[str]) -> bool:
    """True when the sentence holds something of the kind asked for that the question does not already name."""
    found: list[str] = []
    if "how-many" in cues:
        found += _NUMBER.findall(sentence)
    if "when" in cues:
        found += _DATE.findall(sentence)
    if "who" in cues:
        found += _NAME.findall(sentence)
    if "where" in cues:
        found += _PLACE.findall(sentence)
    for item in found:
        tokens = {canonical(t) for t in keyword_tokens(item)} or {item.lower()}
        if not tokens <= question_tokens:
            return True
    return False


def cue_bonus(cues: set[str], sentence: str, question_tokens: set[str]) -> float:
    """Reward a sentence that holds a new item of the kind asked for (a quote for "said what")."""
    bonus = _CUE_BONUS if new_items(cues, sentence, question_tokens) else 0.0
    if "quote" in cues and _QUOTE.search(sentence):
        bonus += _QUOTE_BONUS
    return bonus


def present_terms(sources: Sequence[Source]) -> set[str]:
    """Every token the sources mention, canonicalised, plus the dates they were published (and the week before)."""
    present: set[str] = set()
    for src in sources:
        text = f"{src.title} {src.text}"
        present.update(canonical(t) for t in keyword_tokens(text))
        if re.search(r"\bU\.S\.|\bUnited States\b", text):
            present.add("us")
        if src.published_at:
            for back in range(8):  # "on Wednesday" in an article names a day of the week before it
                day = src.published_at - dt.timedelta(days=back)
                present.update({str(day.year), str(day.day), day.strftime("%B").lower(), day.strftime("%A").lower()})
    return present


class ExtractiveAnswerer:
    """Composes an answer from source sentences, each with its citation."""

    def __init__(self, embedder: Embedder, min_score: float = 0.38, cache_size: int = 4096) -> None:
        self.embedder = embedder
        self.min_score = min_score
        # Sentence vectors by (article, start, end, text): repeat questions over the same passages skip the model.
        self._cache: OrderedDict[tuple[str, int, int, str], np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def answer(self, question: str, sources: Sequence[Source], context: str = "") -> ExtractiveResult:
        """Pick up to two sentences that answer `question`; `context` is the previous question of a follow-up.

        The context joins the meaning side of the score only ("What is his title?" needs to know whose), never
        the wording or the missing-term check, so a follow-up is not answered as if it were the earlier question.
        """
        sentences = source_sentences(sources)
        if not sentences:
            return ExtractiveResult("", [], "no passage was retrieved for this question")
        asked = focus(question)
        present = present_terms(sources)
        missing = [t for t in salient_terms(asked) if t not in present]
        if missing:
            return ExtractiveResult("", [], missing_terms_reason(asked, missing))

        q_tokens = set(keyword_tokens(asked))
        q_canonical = {canonical(t) for t in q_tokens}
        q_vector = self.embedder.embed([f"{context} {asked}".strip()])[0]
        vectors = self._vectors(sentences)
        cues = question_cues(asked)
        scores = []
        for sentence, vector in zip(sentences, vectors, strict=True):
            semantic = float(vector @ q_vector)
            lexical = overlap(q_tokens, set(keyword_tokens(sentence.text)))
            bonus = cue_bonus(cues, sentence.text, q_canonical)
            scores.append(_W_SEMANTIC * semantic + _W_LEXICAL * lexical + bonus)
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
        gated = cues & {"how-many", "when"}
        if gated and not any(new_items(gated, s.text, q_canonical) for s in chosen):
            kind = "number" if "how-many" in gated else "date"
            return ExtractiveResult("", [], f"the closest sentences give no {kind} for this question")
        citations = [citation_for(s, by_number[s.number]) for s in chosen]
        text = " ".join(f"{s.text} [{s.number}]" for s in chosen)
        return ExtractiveResult(text, citations)

    def _vectors(self, sentences: Sequence[Sentence]) -> np.ndarray:
        keys = [(s.article_id, s.start, s.end, s.text) for s in sentences]
        # Keep our own references: another thread may evict a key between the two locked sections.
        with self._lock:
            found = {i: self._cache[key] for i, key in enumerate(keys) if key in self._cache}
        todo = [i for i in range(len(keys)) if i not in found]
        fresh = self.embedder.embed([sentences[i].text for i in todo]) if todo else None
        for j, i in enumerate(todo):
            assert fresh is not None
            found[i] = fresh[j]
        with self._lock:
            for i, key in enumerate(keys):
                self._cache[key] = found[i]
                self._cache.move_to_end(key)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return np.stack([found[i] for i in range(len(keys))])
