"""GET /healthz (the process answers), /readyz (store and models loaded), /metrics (Prometheus)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from rag.api.deps import Context
from rag.api.errors import ApiError
from rag.api.schemas import Health, Readiness, error_responses

log = logging.getLogger(__name__)
router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health, summary="Liveness")
async def healthz() -> Health:
    """200 while the process can answer HTTP."""
    return Health()


@router.get("/readyz", response_model=Readiness, summary="Readiness", responses=error_responses(503))
async def readyz(ctx: Context) -> Readiness:
    """200 when the store answers and the embedding model is loaded; 503 otherwise."""
    try:
        state = await run_in_threadpool(ctx.service.ready)
    except Exception as exc:  # any failure of the store means "not ready", whatever its type
        log.warning("readiness check failed: %s", exc)
        raise ApiError(503, "not_ready", "the article store is not answering; see the server log") from None
    return Readiness(
        articles=int(str(state["articles"])),
        chunks=int(str(state["chunks"])),
        embedder=str(state["embedder"]),
        llm=ctx.service.engine.chat_model is not None,
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
async def metrics(ctx: Context) -> Response:
    """Requests and latency by route, answer latency by mode, abstentions, ingest counts."""
    return Response(ctx.metrics.render(), media_type=CONTENT_TYPE_LATEST)
