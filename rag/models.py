"""The typed values that flow through the pipeline: articles, chunks, passages, citations, answers."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, Field


def _http_only(value: object) -> object:
    # Whatever reached the store, only http(s) links leave the service: a `javascript:` url is dropped.
    if isinstance(value, str) and not re.match(r"^https?://", value, re.I):
        return None
    return value


SafeUrl = Annotated[str | None, BeforeValidator(_http_only)]


@dataclass(frozen=True, slots=True)
class Article:
    """One news article in canonical form; `text` is what every offset points into."""

    id: str
    text: str
    title: str
    content_hash: str
    published_at: dt.date | None = None
    url: str | None = None
    source: str | None = None
    author: str | None = None
    origin: str = ""  # file (and line) it was read from, for reports


@dataclass(frozen=True, slots=True)
class Chunk:
    """A passage of an article: `article.text[start:end] == text`."""

    id: str
    article_id: str
    start: int
    end: int
    text: str
    embed_text: str  # what the embedder sees: title and date, then the passage


class Filters(BaseModel):
    """Restrictions on what a search may return."""

    since: dt.date | None = Field(None, description="Only articles published on or after this date.")
    until: dt.date | None = Field(None, description="Only articles published on or before this date.")
    source: str | None = Field(None, max_length=200, description="Only articles from this source.")
    article_id: str | None = Field(None, max_length=200, description="Only this article.")

    def is_empty(self) -> bool:
        """True when nothing is filtered."""
        return not (self.since or self.until or self.source or self.article_id)


class Passage(BaseModel):
    """A retrieved chunk with its article's metadata and its retrieval scores."""

    chunk_id: str
    article_id: str
    title: str
    url: SafeUrl = None
    published_at: dt.date | None = None
    source: str | None = None
    start: int
    end: int
    text: str
    # Two different numbers, two names: a passage's place in the fused ranking, a source's closeness in meaning.
    rank_score: float = Field(
        description="Fused reciprocal-rank score of dense and keyword search: orders passages, higher is better; "
        "not comparable across questions."
    )
    dense_score: float | None = Field(None, description="Cosine similarity to the question, when computed.")
    keyword_rank: int | None = None
    dense_rank: int | None = None


class Source(BaseModel):
    """A retrieved passage as numbered in the prompt, the answer, the API and the widget."""

    number: int
    article_id: str
    title: str
    url: SafeUrl = None
    published_at: dt.date | None = None
    source: str | None = None
    start: int
    end: int
    text: str
    similarity: float = Field(
        description="Cosine similarity of the passage to the question (-1..1; below RAG_MIN_RELEVANCE counts as "
        "not relevant)."
    )


class Citation(BaseModel):
    """A claim's support: `quote == article_text[start:end]`, inside retrieved source `number`."""

    number: int
    article_id: str
    title: str
    url: SafeUrl = None
    published_at: dt.date | None = None
    quote: str
    start: int
    end: int


class Timings(BaseModel):
    """Milliseconds spent per stage."""

    condense_ms: float = 0.0
    retrieve_ms: float = 0.0
    generate_ms: float = 0.0
    total_ms: float = 0.0


class Answer(BaseModel):
    """The one answer type shared by the CLI, the API, the widget and the evals."""

    question: str
    standalone_question: str
    text: str
    citations: list[Citation] = Field(default_factory=list)
    sources: list[Source] = Field(default_factory=list)
    mode: Literal["extractive", "llm"]
    abstained: bool = False
    abstain_reason: str | None = None
    dropped_claims: list[str] = Field(
        default_factory=list, description="Claims removed because nothing supported them."
    )
    as_of: dt.date | None = Field(
        None, description="The day the question was answered as of: no later article was used."
    )
    current_as_of: dt.date | None = Field(
        None,
        description="For a time-sensitive question: the publication date of the newest article the answer cites, "
        "which the text also states.",
    )
    confidence: float | None = Field(
        None, description="Extractive mode: how closely the best evidence matched (abstains below a threshold)."
    )
    timings: Timings = Field(default_factory=Timings)


class ChatTurn(BaseModel):
    """One turn of a conversation sent along with a follow-up question."""

    role: Literal["user", "assistant"]
    content: str = Field(max_length=20_000)


IngestStatus = Literal["added", "updated", "unchanged", "failed"]


@dataclass(slots=True)
class IngestResult:
    """What happened to one article (or to one file that yielded none)."""

    origin: str
    status: IngestStatus
    article_id: str | None = None
    title: str | None = None
    chunks: int = 0
    reason: str | None = None


@dataclass(slots=True)
class IngestReport:
    """The per-article results of one ingest call, with a summary."""

    results: list[IngestResult] = field(default_factory=list)

    def count(self, status: IngestStatus) -> int:
        """How many results have this status."""
        return sum(1 for r in self.results if r.status == status)

    @property
    def failed(self) -> bool:
        """True when any article or file failed."""
        return any(r.status == "failed" for r in self.results)

    def summary(self) -> dict[str, int]:
        """Counts of added / updated / unchanged / failed."""
        return {s: self.count(s) for s in ("added", "updated", "unchanged", "failed")}
