"""What routes depend on, as `Annotated` aliases: the app's context, its service, and who is calling.

The dependencies are `async` on purpose: FastAPI runs plain functions in a thread pool, and the rate limiter's
buckets must only ever be touched from the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from rag.api.errors import ApiError
from rag.api.jobs import Jobs
from rag.api.limits import LlmGate, RateLimiter
from rag.api.metrics import Metrics
from rag.api.security import ASK_KEYS_MISSING, WRITE_KEYS_MISSING, ApiKeys, Caller
from rag.config import Settings
from rag.service import RagService


@dataclass
class ApiContext:
    """Everything one app shares between requests; built once by `create_app`."""

    settings: Settings
    service: RagService
    keys: ApiKeys
    limiter: RateLimiter
    gate: LlmGate
    metrics: Metrics
    jobs: Jobs = field(default_factory=Jobs)


async def get_context(request: Request) -> ApiContext:
    """The app's context."""
    ctx: ApiContext = request.app.state.ctx
    return ctx


Context = Annotated[ApiContext, Depends(get_context)]


async def get_service(ctx: Context) -> RagService:
    """The app's service."""
    return ctx.service


Service = Annotated[RagService, Depends(get_service)]


async def reader(request: Request, ctx: Context) -> Caller:
    """Reading (articles): the same rule as asking, without the rate limit."""
    return ctx.keys.caller(request, required=not ctx.settings.public_ask, missing_message=ASK_KEYS_MISSING)


async def asker(request: Request, ctx: Context) -> Caller:
    """Asking: a key unless RAG_PUBLIC_ASK=true, then one token from the caller's address and key buckets."""
    caller = await reader(request, ctx)
    buckets = [f"addr:{caller.address}"] + ([f"key:{caller.key_id}"] if caller.key_id else [])
    try:
        ctx.limiter.check(buckets)
    except ApiError:
        ctx.metrics.rate_limited.inc()
        raise
    return caller


async def writer(request: Request, ctx: Context) -> Caller:
    """Writing or deleting articles: always a valid key (403 when the server has none configured)."""
    return ctx.keys.caller(request, required=True, missing_message=WRITE_KEYS_MISSING)


Reader = Annotated[Caller, Depends(reader)]
Asker = Annotated[Caller, Depends(asker)]
Writer = Annotated[Caller, Depends(writer)]
