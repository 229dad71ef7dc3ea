"""The API's limits: body size (header and stream), rate limits per address and key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from api_support import AUTH, OTHER_KEY, api_settings, assert_error, client_for
from conftest import SEED_QUESTION
from fastapi.testclient import TestClient

from rag.api.app import create_app
from rag.api.limits import RateLimiter
from rag.service import RagService

# --- limits ---


def test_body_limit_from_content_length_and_from_the_stream(
    client: TestClient, newsroom: RagService, tmp_path: Path
) -> None:
    small = client_for(newsroom, tmp_path, max_body_bytes=1000)
    big = {"question": "x" * 1500}
    message = assert_error(small.post("/v1/ask", json=big, headers=AUTH), 413, "payload_too_large")
    assert "RAG_MAX_BODY_BYTES" in message

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit must hold on the stream itself
        yield b'{"question": "'
        for _ in range(30):
            yield b"x" * 100
        yield b'"}'

    for path in ("/v1/ask", "/v1/articles", "/v1/ask/stream"):
        r = small.post(path, content=chunks(), headers={**AUTH, "Content-Type": "application/json"})
        assert "content-length" not in r.request.headers
        assert_error(r, 413, "payload_too_large")
    assert small.post("/v1/ask", json={"question": SEED_QUESTION}, headers=AUTH).status_code == 200


def test_rate_limit_per_address_and_per_key(newsroom: RagService, tmp_path: Path) -> None:
    settings = api_settings(tmp_path, rate_limit_per_minute=2, public_ask=True)
    app = create_app(settings, newsroom)
    q = {"question": SEED_QUESTION}
    a = TestClient(app, client=("10.0.0.1", 1000))
    assert a.post("/v1/ask", json=q).status_code == 200
    assert a.post("/v1/ask/stream", json=q).status_code == 200
    r = a.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": SEED_QUESTION}]})
    assert_error(r, 429, "rate_limited")
    assert 1 <= int(r.headers["retry-after"]) <= 30

    # One key shared by two addresses: its own bucket empties even though the second address has tokens.
    b = TestClient(app, client=("10.0.0.2", 1000))
    c = TestClient(app, client=("10.0.0.3", 1000))
    assert b.post("/v1/ask", json=q, headers=AUTH).status_code == 200
    assert c.post("/v1/ask", json=q, headers=AUTH).status_code == 200
    assert_error(c.post("/v1/ask", json=q, headers=AUTH), 429)
    assert c.post("/v1/ask", json=q, headers={"X-API-Key": OTHER_KEY}).status_code == 200
    assert c.get("/v1/articles").status_code == 200, "only asking is rate limited"
    assert "rag_rate_limited_total 2.0" in c.get("/metrics").text


def test_token_bucket_refills() -> None:
    now = [0.0]
    limiter = RateLimiter(60, clock=lambda: now[0])  # one token a second, bursts of 60
    assert all(limiter.take(["a"]) is None for _ in range(60))
    wait = limiter.take(["a"])
    assert wait is not None and 0.9 < wait <= 1.0
    now[0] += 1.0
    assert limiter.take(["a"]) is None
    assert limiter.take(["a", "b"]) is not None, "all-or-nothing: b's token is not taken when a is empty"
    assert limiter._buckets.get("b") is None
