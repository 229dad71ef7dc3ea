"""One path from an HTTP question to answer events, shared by /v1/ask, /v1/ask/stream and /v1/chat/completions.

Checks the request against the limits before anything streams (so mistakes get a 4xx, not an error event),
then runs the service's event stream: in LLM mode inside a concurrency slot and under the LLM deadline.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TypeVar

from rag.answer import AnswerEvent, DoneEvent, Mode
from rag.api.deps import ApiContext
from rag.api.errors import ApiError
from rag.api.limits import llm_deadline, with_idle_timeout
from rag.errors import InvalidRequestError, RagError
from rag.models import Answer, ChatTurn, Filters

T = TypeVar("T")


@asynccontextmanager
async def closing(events: AsyncIterator[T]) -> AsyncIterator[AsyncIterator[T]]:
    """`contextlib.aclosing` for anything typed as an iterator: closes it at once, not when collected."""
    try:
        yield events
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()


def check_request(
    ctx: ApiContext,
    question: str,
    history: Sequence[ChatTurn],
    filters: Filters | None,
    mode: str | None,
    k: int | None,
) -> Mode:
    """Refuse what the limits do not allow, with a message naming the field; returns the mode to answer in."""
    s = ctx.settings
    text = question.strip()
    if not text:
        raise InvalidRequestError("question: the question is empty")
    if len(text) > s.max_question_chars:
        raise InvalidRequestError(
            f"question: {len(text):,} characters; at most {s.max_question_chars:,} are allowed (RAG_MAX_QUESTION_CHARS)"
        )
    if len(history) > s.max_history_turns:
        raise InvalidRequestError(
            f"history: {len(history)} turns; send at most the {s.max_history_turns} most recent (RAG_MAX_HISTORY_TURNS)"
        )
    if k is not None and not 1 <= k <= s.max_k:
        raise InvalidRequestError(f"k: must be between 1 and {s.max_k} (RAG_MAX_K)")
    if filters is not None and filters.since and filters.until and filters.since > filters.until:
        raise InvalidRequestError("filters: `since` is after `until`, so no article can match")
    return ctx.service.resolve_mode(mode)


async def answer_events(
    ctx: ApiContext,
    question: str,
    history: Sequence[ChatTurn],
    filters: Filters | None,
    mode: Mode,
    k: int | None,
    as_of: dt.date | None = None,
) -> AsyncIterator[AnswerEvent]:
    """The service's events for a checked request; counts the answer (or the error) in the metrics."""
    started = time.perf_counter()
    events = ctx.service.astream(question, history, filters, mode, k, as_of)
    try:
        if mode == "llm":
            async with ctx.gate.slot():
                ctx.metrics.llm_in_flight.inc()
                try:
                    deadline = llm_deadline(ctx.settings.llm_timeout, ctx.settings.llm_max_retries)
                    async with closing(with_idle_timeout(events, deadline)) as timed:
                        async for event in timed:
                            _count(ctx, event, started)
                            yield event
                finally:
                    ctx.metrics.llm_in_flight.dec()
        else:
            async with closing(events):
                async for event in events:
                    _count(ctx, event, started)
                    yield event
    except (RagError, ApiError) as exc:
        ctx.metrics.ask_errors.labels(exc.code).inc()
        raise


def _count(ctx: ApiContext, event: AnswerEvent, started: float) -> None:
    if isinstance(event, DoneEvent):
        ctx.metrics.observe_answer(event.answer, time.perf_counter() - started)


async def final_answer(events: AsyncIterator[AnswerEvent]) -> Answer:
    """The answer of a `done` event, reading the whole stream."""
    answer: Answer | None = None
    async with closing(events):
        async for event in events:
            if isinstance(event, DoneEvent):
                answer = event.answer
    if answer is None:
        raise RuntimeError("answer stream ended without a result")
    return answer
