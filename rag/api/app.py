"""`create_app`: the composition root of the HTTP API."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware import Middleware

from rag.api import routes_articles, routes_ask, routes_openai, routes_ops, routes_web
from rag.api.deps import ApiContext
from rag.api.errors import InternalErrorMiddleware, install_error_handlers
from rag.api.limits import LlmGate, RateLimiter
from rag.api.metrics import Metrics, MetricsMiddleware
from rag.api.security import ApiKeys, BodyLimitMiddleware, Cors, HeaderLimitMiddleware, SecurityHeadersMiddleware
from rag.config import Settings, get_settings
from rag.service import RagService

log = logging.getLogger(__name__)

DESCRIPTION = """Questions answered from news articles, with citations checked against the articles' own text.

Authentication: `Authorization: Bearer KEY` or `X-API-Key: KEY` (keys from `RAG_API_KEYS`). Writing or deleting
articles always needs a key; asking and reading need one unless the server sets `RAG_PUBLIC_ASK=true`.

Every error is `{"error": {"code": "...", "message": "..."}}`; the message says what to fix."""


def create_app(settings: Settings | None = None, service: RagService | None = None) -> FastAPI:
    """Build the API around a service: the one given (the caller keeps ownership) or one opened here.

    A service opened here is closed when the app shuts down.
    """
    settings = settings or get_settings()
    owned = service is None
    service = service or RagService.open(settings)
    metrics = Metrics()
    ctx = ApiContext(
        settings=settings,
        service=service,
        keys=ApiKeys((k.get_secret_value() for k in settings.api_keys), RateLimiter(settings.auth_failures_per_minute)),
        limiter=RateLimiter(settings.rate_limit_per_minute),
        # Waiting longer for a slot than for the LLM itself would only hide an overload.
        gate=LlmGate(settings.max_concurrent_llm, wait=settings.llm_timeout),
        metrics=metrics,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if owned:
            ctx.service.close()

    # Outermost first: headers go on every response, errors included; CORS headers go on errors too, so
    # the widget can read a 413 or a 429 and say what happened.
    middleware = [
        Middleware(SecurityHeadersMiddleware),
        Middleware(MetricsMiddleware, metrics=metrics),
        Middleware(
            Cors,
            allow_origins=list(settings.widget_origins),
            allow_credentials=False,  # keys travel in headers, never cookies: no credentialed requests
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=["Content-Type", "Authorization", "X-API-Key"],
            expose_headers=["Retry-After"],
            max_age=600,
        ),
        Middleware(HeaderLimitMiddleware, max_bytes=settings.max_header_bytes),
        Middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes),
        Middleware(InternalErrorMiddleware),
    ]
    app = FastAPI(
        title="rag: questions over news articles",
        version="0.1.0",
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        middleware=middleware,
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    install_error_handlers(app)
    for router in (
        routes_ask.router,
        routes_openai.router,
        routes_articles.router,
        routes_articles.jobs_router,
        routes_ops.router,
        routes_web.router,
        routes_web.docs_router(app.openapi_url or "/openapi.json", app.title),
    ):
        app.include_router(router)
    return app
