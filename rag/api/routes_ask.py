"""POST /v1/ask (the answer as JSON) and POST /v1/ask/stream (the same answer as server-sent events)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from sse_starlette import EventSourceResponse, ServerSentEvent

from rag.answer import AnswerEvent
from rag.api.asking import answer_events, check_request, closing, final_answer
from rag.api.bodies import CheckedJsonRoute
from rag.api.deps import ApiContext, Asker, Context
from rag.api.errors import ApiError, as_api_error, error_body
from rag.api.schemas import AskRequest, error_responses, event_stream
from rag.errors import RagError
from rag.models import Answer

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["ask"], route_class=CheckedJsonRoute)

_ASK_ERRORS = error_responses(401, 403, 413, 422, 429, 500, 502, 503, 504)

_STREAM_DOC = """Server-sent events, in this order:

- `sources` `{"sources": [...]}`: the retrieved passages, numbered as the answer cites them;
- `delta` `{"text": "..."}`, one or more: answer text as it is produced (LLM mode: the model's raw text);
- `citation` `{"citation": {...}}`, zero or more: the verified citations of the final answer;
- `done` `{"answer": {...}}`: the final answer, the same object `/v1/ask` returns (show its `text`: in LLM
  mode unsupported claims have been removed from it);
- or, instead of the rest, `error` `{"error": {"code", "message"}}`.

Closing the connection cancels the answer, LLM call included."""


@router.post("/ask", response_model=Answer, responses=_ASK_ERRORS, summary="Answer a question")
async def ask(body: AskRequest, ctx: Context, _caller: Asker) -> Answer:
    """Answer a question from the articles, with verified citations (or an abstention)."""
    mode = check_request(ctx, body.question, body.history, body.filters, body.mode, body.k)
    return await final_answer(answer_events(ctx, body.question, body.history, body.filters, mode, body.k, body.as_of))


@router.post(
    "/ask/stream",
    response_class=EventSourceResponse,
    responses={
        **_ASK_ERRORS,
        200: event_stream(_STREAM_DOC, ["sources", "delta", "citation", "done", "error"]),
    },
    summary="Answer a question as a stream of events",
    description=_STREAM_DOC,
)
async def ask_stream(body: AskRequest, ctx: Context, _caller: Asker) -> EventSourceResponse:
    """Stream an answer as server-sent events."""
    mode = check_request(ctx, body.question, body.history, body.filters, body.mode, body.k)
    events = answer_events(ctx, body.question, body.history, body.filters, mode, body.k, body.as_of)
    return EventSourceResponse(sse_events(ctx, events), ping=15, headers={"Cache-Control": "no-store"})


def event_payload(event: AnswerEvent) -> dict[str, Any]:
    """An event's data: its model without the `type`, which travels as the SSE event name."""
    return event.model_dump(mode="json", exclude={"type"})


async def sse_events(ctx: ApiContext, events: AsyncIterator[AnswerEvent]) -> AsyncIterator[ServerSentEvent]:
    """Answer events as SSE; a failure after the stream has started becomes a final `error` event."""
    try:
        async with closing(events):
            async for event in events:
                yield ServerSentEvent(event=event.type, data=json.dumps(event_payload(event), ensure_ascii=False))
    except (RagError, ApiError) as exc:
        err = as_api_error(exc) if isinstance(exc, RagError) else exc
        yield ServerSentEvent(event="error", data=json.dumps(error_body(err.code, err.message)))
    except Exception:
        log.exception("answer stream failed")
        ctx.metrics.ask_errors.labels("internal_error").inc()
        body = error_body("internal_error", "internal error; the server log has the details")
        yield ServerSentEvent(event="error", data=json.dumps(body))
