"""Request and response bodies of the HTTP API (the service's own models are reused where they fit)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rag.models import ChatTurn, Filters, IngestReport, IngestResult
from rag.store import ArticleRecord

if TYPE_CHECKING:
    from rag.api.jobs import Job


class FiltersIn(Filters):
    """Filters as a request sends them: an unknown field (a typo like `sorce`) is a 422, never ignored."""

    model_config = ConfigDict(extra="forbid")


class ChatTurnIn(ChatTurn):
    """A chat turn as a request sends it; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


class AskRequest(BaseModel):
    """A question, with the conversation so far and optional restrictions."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, description="The question, in plain language (RAG_MAX_QUESTION_CHARS at most).")
    history: list[ChatTurnIn] = Field(
        default_factory=list, description="Earlier turns, oldest first (RAG_MAX_HISTORY_TURNS at most)."
    )
    filters: FiltersIn | None = Field(None, description="Only use articles matching these.")
    mode: Literal["extractive", "llm"] | None = Field(
        None, description="`extractive` quotes sentences (no LLM); `llm` writes an answer. Default: the server's."
    )
    k: int | None = Field(None, ge=1, description="How many passages to retrieve (RAG_MAX_K at most).")
    as_of: dt.date | None = Field(
        None,
        description="Answer as of this day: no article published after it is used, and 'latest' means latest "
        "then. Default: today.",
    )


class ErrorDetail(BaseModel):
    """What went wrong and what to do about it."""

    code: str = Field(description="Machine-readable: `invalid_request`, `rate_limited`, `not_found`, ...")
    message: str = Field(description="For people: says what to fix.")


class ErrorResponse(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


class ArticlePublic(BaseModel):
    """An article's metadata."""

    id: str
    title: str
    published_at: dt.date | None = None
    url: str | None = None
    source: str | None = None
    author: str | None = None
    chunks: int = Field(description="How many passages the article was split into.")
    ingested_at: str
    content_hash: str

    @classmethod
    def of(cls, record: ArticleRecord) -> ArticlePublic:
        """From a store record."""
        return cls(
            id=record.id,
            title=record.title,
            published_at=record.published_at,
            url=record.url,
            source=record.source,
            author=record.author,
            chunks=record.chunks,
            ingested_at=record.ingested_at,
            content_hash=record.content_hash,
        )


class ArticleDetail(ArticlePublic):
    """An article with its canonical text (what citation offsets point into)."""

    text: str

    @classmethod
    def of(cls, record: ArticleRecord) -> ArticleDetail:
        """From a store record read with its text."""
        return cls(**ArticlePublic.of(record).model_dump(), text=record.text or "")


class ArticlePage(BaseModel):
    """One page of the article list, newest first."""

    total: int = Field(description="Articles matching the filters, on all pages.")
    limit: int
    offset: int
    items: list[ArticlePublic]


class IngestResultPublic(BaseModel):
    """What happened to one article (or to one input that yielded none)."""

    origin: str = Field(description="Where it came from: `body`, `body[2]`, `line 3`, `upload.jsonl:3`, ...")
    status: Literal["added", "updated", "unchanged", "failed"]
    article_id: str | None = None
    title: str | None = None
    chunks: int = 0
    reason: str | None = Field(None, description="Why it failed, and what to fix.")

    @classmethod
    def of(cls, r: IngestResult) -> IngestResultPublic:
        """From the service's result."""
        return cls(
            origin=r.origin, status=r.status, article_id=r.article_id, title=r.title, chunks=r.chunks, reason=r.reason
        )


class IngestReportPublic(BaseModel):
    """The per-article report, the same as `rag ingest --json`."""

    summary: dict[str, int] = Field(description="Counts of added, updated, unchanged and failed.")
    results: list[IngestResultPublic]

    @classmethod
    def of(cls, report: IngestReport) -> IngestReportPublic:
        """From the service's report."""
        return cls(
            summary=report.summary(),
            results=[IngestResultPublic.of(r) for r in report.results],
        )


class JobPublic(BaseModel):
    """An upload running as a job (POST /v1/articles answered 202): progress, failures so far, the final report."""

    id: str
    url: str = Field(description="Where to follow the job: GET this URL until `status` is not `running`.")
    status: Literal["running", "done", "failed"]
    done: int = Field(description="Articles processed so far (stored, unchanged or failed).")
    total: int = Field(description="Articles in the upload.")
    failures: list[IngestResultPublic] = Field(description="The articles that failed so far, with the reason.")
    report: IngestReportPublic | None = Field(None, description="The whole report, once `status` is `done`.")
    error: str | None = Field(None, description="Why the job stopped, when `status` is `failed`.")

    @classmethod
    def of(cls, job: Job) -> JobPublic:
        """From the running job (a snapshot: the job moves on)."""
        failures = list(job.failures)
        return cls(
            id=job.id,
            url=f"/v1/jobs/{job.id}",
            status=job.status,
            done=job.done,
            total=job.total,
            failures=[IngestResultPublic.of(r) for r in failures],
            report=IngestReportPublic.of(job.report) if job.report is not None else None,
            error=job.error,
        )


class IngestFailure(BaseModel):
    """422: nothing stored. The error shape; when articles were read, also the report saying why each failed."""

    error: ErrorDetail
    summary: dict[str, int] | None = None
    results: list[IngestResultPublic] | None = None


class Health(BaseModel):
    """Liveness."""

    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    """Readiness: the store answers and the models are loaded."""

    status: Literal["ready"] = "ready"
    articles: int
    chunks: int
    embedder: str
    llm: bool = Field(description="True when LLM mode is available.")


class Deleted(BaseModel):
    """A deleted article."""

    id: str
    deleted: Literal[True] = True


def event_stream(description: str, events: list[str] | None = None) -> dict[str, Any]:
    """An OpenAPI response for server-sent events; the schema describes one event (`event` name, `data`)."""
    event: dict[str, Any] = {"type": "string"}
    if events:
        event["enum"] = events
    schema = {
        "type": "object",
        "required": ["data"],
        "properties": {"event": event, "data": {"type": "string", "description": "JSON (or `[DONE]`)."}},
    }
    return {"description": description, "content": {"text/event-stream": {"schema": schema}}}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for error statuses, all with the one error shape."""
    return {status: {"model": ErrorResponse} for status in statuses}
