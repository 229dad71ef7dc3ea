"""Prometheus metrics, in a registry owned by one app (so tests and several apps in a process never collide)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag.models import Answer, IngestReport

# Answers take from ~20 ms (extractive, warm) to tens of seconds (a slow LLM): buckets span both.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


class Metrics:
    """The service's metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "rag_http_requests", "HTTP requests by route template, method and status.",
            ["method", "route", "status"], registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "rag_http_request_duration_seconds", "Time until the response is complete (streams included).",
            ["method", "route"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.ask_latency = Histogram(
            "rag_ask_duration_seconds", "Time to a complete answer, by mode.",
            ["mode"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.answers = Counter("rag_answers", "Answers given, by mode.", ["mode"], registry=r)
        self.abstentions = Counter(
            "rag_abstentions", "Answers that said the articles do not answer the question.", ["mode"], registry=r
        )
        self.ask_errors = Counter("rag_ask_errors", "Questions that ended in an error, by code.", ["code"], registry=r)
        self.ingested = Counter(
            "rag_ingest_articles", "Articles sent to the API for ingest, by outcome.", ["status"], registry=r
        )
        self.rate_limited = Counter("rag_rate_limited", "Requests refused by the rate limiter.", registry=r)
        self.llm_in_flight = Gauge("rag_llm_in_flight", "LLM answers running now.", registry=r)

    def observe_answer(self, answer: Answer, seconds: float) -> None:
        """Count a finished answer."""
        self.ask_latency.labels(answer.mode).observe(seconds)
        self.answers.labels(answer.mode).inc()
        if answer.abstained:
            self.abstentions.labels(answer.mode).inc()

    def observe_ingest(self, report: IngestReport) -> None:
        """Count an ingest request's articles by outcome."""
        for status, count in report.summary().items():
            if count:
                self.ingested.labels(status).inc(count)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Requests and latency by route template (`/v1/articles/{article_id:path}`), never by raw path."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            template = route_template(scope)
            method = scope.get("method", "GET")
            method = method if method in _METHODS else "other"
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - started)


def route_template(scope: Scope) -> str:
    """The template of the route that served a request; "unmatched" for paths no route serves.

    FastAPI's own routes record themselves in the scope; plain Starlette routes (FastAPI's `/openapi.json`) do
    not, so they are matched here. Unmatched paths share one label: a scanner must not create a time series per
    URL it tries.
    """
    path = getattr(scope.get("route"), "path", None)
    if path:
        return str(path)
    for route in getattr(getattr(scope.get("app"), "router", None), "routes", ()):
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return str(getattr(route, "path", "unmatched"))
    return "unmatched"
