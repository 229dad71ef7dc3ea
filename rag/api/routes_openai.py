"""POST /v1/chat/completions and GET /v1/models: the service as an OpenAI-compatible chat model.

The last user message is the question and the earlier user/assistant turns are the history (system messages
are ignored: the service's own prompt decides how to answer). Citations travel twice: as `[n]` markers in the
text and as structured `citations` (and `sources`) on the response, on its choice, and on the last stream chunk.

A stream carries the verified answer — the same text as the non-streaming response — so in LLM mode its text
starts once the answer is checked; /v1/ask/stream streams the model's raw text as it is written instead.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse, ServerSentEvent

from rag.api.asking import answer_events, check_request, final_answer
from rag.api.bodies import CheckedJsonRoute
from rag.api.deps import ApiContext, Asker, Context, Reader
from rag.api.errors import ApiError, as_api_error, error_body
from rag.api.schemas import FiltersIn, error_responses, event_stream
from rag.errors import InvalidRequestError, RagError
from rag.models import Answer, ChatTurn

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["openai"], route_class=CheckedJsonRoute)

# Model names choose the answer mode; any other name gets the server's default mode.
MODELS = {"rag": None, "rag-extractive": "extractive", "rag-llm": "llm"}

# The chat-completion parameters the openai SDK can send (its `CompletionCreateParams`, openai 3.57): accepted
# and ignored. Any other top-level field is a 422 naming it, so a typo like `filter` is not silently dropped.
OPENAI_PARAMS = frozenset(
    {
        "audio",
        "frequency_penalty",
        "function_call",
        "functions",
        "logit_bias",
        "logprobs",
        "max_completion_tokens",
        "max_tokens",
        "metadata",
        "modalities",
        "moderation",
        "n",
        "parallel_tool_calls",
        "prediction",
        "presence_penalty",
        "prompt_cache_key",
        "prompt_cache_options",
        "prompt_cache_retention",
        "reasoning_effort",
        "response_format",
        "safety_identifier",
        "seed",
        "service_tier",
        "stop",
        "store",
        "stream_options",
        "temperature",
        "tool_choice",
        "tools",
        "top_logprobs",
        "top_p",
        "user",
        "verbosity",
        "web_search_options",
    }
)


class ContentPart(BaseModel):
    """One part of a multi-part message; only text parts are read."""

    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    """An OpenAI chat message."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        """The message's text (text parts joined)."""
        if isinstance(self.content, list):
            return "\n".join(p.text for p in self.content if p.type == "text" and p.text)
        return self.content or ""


class ChatCompletionRequest(BaseModel):
    """The OpenAI chat-completions request; OpenAI's other parameters (`OPENAI_PARAMS`) are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    model: str = Field("rag", description="`rag` (server default mode), `rag-extractive` or `rag-llm`.")
    messages: list[ChatMessage] = Field(min_length=1, description="The conversation; the last must be the user's.")
    stream: bool = False
    filters: FiltersIn | None = Field(None, description="Extension: only use articles matching these.")
    k: int | None = Field(None, ge=1, description="Extension: passages to retrieve.")
    as_of: dt.date | None = Field(None, description="Extension: answer as of this day (default today).")


def to_question(messages: list[ChatMessage]) -> tuple[str, list[ChatTurn]]:
    """Last user message -> question; earlier user and assistant messages -> history."""
    last = messages[-1]
    if last.role != "user":
        raise InvalidRequestError("messages: the last message must have role 'user' (the question)")
    history: list[ChatTurn] = []
    for m in messages[:-1]:
        if m.role == "user" or m.role == "assistant":
            text = m.text()
            if text.strip():
                if len(text) > 20_000:
                    raise InvalidRequestError("messages: an earlier message is longer than 20,000 characters")
                history.append(ChatTurn(role=m.role, content=text))
    return last.text(), history


def _citations(answer: Answer) -> dict[str, Any]:
    return {
        "citations": [c.model_dump(mode="json") for c in answer.citations],
        "sources": [s.model_dump(mode="json") for s in answer.sources],
        "abstained": answer.abstained,
        "as_of": answer.as_of.isoformat() if answer.as_of else None,
        "current_as_of": answer.current_as_of.isoformat() if answer.current_as_of else None,
    }


@router.get("/models", summary="Models (OpenAI-compatible)", responses=error_responses(401, 403))
async def list_models(_caller: Reader) -> dict[str, Any]:
    """The model names this endpoint accepts."""
    return {
        "object": "list",
        "data": [{"id": name, "object": "model", "created": 0, "owned_by": "rag"} for name in MODELS],
    }


@router.post(
    "/chat/completions",
    summary="Chat completions (OpenAI-compatible)",
    responses={
        **error_responses(401, 403, 413, 422, 429, 500, 502, 503, 504),
        200: {
            **event_stream("`stream: true`: `chat.completion.chunk`s, then `[DONE]`."),
            "content": {
                "application/json": {"schema": {"type": "object", "description": "A `chat.completion`."}},
                **event_stream("")["content"],
            },
        },
    },
)
async def chat_completions(body: ChatCompletionRequest, ctx: Context, _caller: Asker) -> Any:
    """Answer the conversation's last question; `stream: true` sends chunks as server-sent events."""
    unknown = sorted(set(body.model_extra or {}) - OPENAI_PARAMS)
    if unknown:
        raise InvalidRequestError(
            f"{unknown[0]}: unknown field; send OpenAI chat-completion parameters, `filters` or `k` (see /docs)"
        )
    question, history = to_question(body.messages)
    mode = check_request(ctx, question, history, body.filters, MODELS.get(body.model), body.k)
    events = answer_events(ctx, question, history, body.filters, mode, body.k, body.as_of)
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    if body.stream:
        chunks = stream_chunks(ctx, events, completion_id, created, body.model)
        return EventSourceResponse(chunks, ping=15, headers={"Cache-Control": "no-store"})
    answer = await final_answer(events)
    extra = _citations(answer)
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": body.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer.text},
                "finish_reason": "stop",
                "citations": extra["citations"],
            }
        ],
        **extra,
    }


async def stream_chunks(
    ctx: ApiContext, events: Any, completion_id: str, created: int, model: str
) -> AsyncIterator[ServerSentEvent]:
    """`chat.completion.chunk`s: the role, the answer's text in pieces, then the citations, then [DONE]."""

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> ServerSentEvent:
        choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish}
        if "citations" in extra:
            choice["citations"] = extra["citations"]
        body = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [choice],
            **extra,
        }
        return ServerSentEvent(data=json.dumps(body, ensure_ascii=False))

    yield chunk({"role": "assistant", "content": ""})
    try:
        answer = await final_answer(events)
    except (RagError, ApiError) as exc:
        err = as_api_error(exc) if isinstance(exc, RagError) else exc
        yield ServerSentEvent(data=json.dumps(error_body(err.code, err.message)))
        return
    except Exception:
        log.exception("chat completion stream failed")
        ctx.metrics.ask_errors.labels("internal_error").inc()
        yield ServerSentEvent(data=json.dumps(error_body("internal_error", "internal error; see the server log")))
        return
    for piece in re.findall(r"\S+\s*", answer.text):
        yield chunk({"content": piece})
    yield chunk({}, "stop", **_citations(answer))
    yield ServerSentEvent(data="[DONE]")
