"""HTTP abuse, replayed from the red team's run against `rag serve` with keys set and public asking off.

Auth (missing and wrong keys on every guarded route, then a brute-force run), CORS, body and header limits,
broken Unicode on every JSON route, unknown fields, and the docs page's CSP. Real Chroma and embedder behind
FastAPI's TestClient; a live uvicorn where the transport matters (a 200 KB header, the openai client).
"""

from __future__ import annotations

import functools
import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from api_support import assert_error
from attack import AUTH, BRIDGE_QUESTION, KEY, ORIGIN, api_settings, client, newsroom
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.testclient import TestClient
from servers import LiveServer

from rag.api import routes_web
from rag.api.app import create_app
from rag.api.routes_openai import OPENAI_PARAMS
from rag.embeddings import OnnxMiniLM
from rag.service import RagService


@pytest.fixture(scope="module")
def service(embedder: OnnxMiniLM, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RagService]:
    with newsroom(embedder, tmp_path_factory.mktemp("abuse")) as svc:
        yield svc


@pytest.fixture
def api(service: RagService, tmp_path: Path) -> TestClient:
    return client(service, tmp_path)


ASK = {"question": BRIDGE_QUESTION}
CHAT = {"model": "rag-extractive", "messages": [{"role": "user", "content": BRIDGE_QUESTION}]}
ARTICLE = {"id": "abuse-article", "body": "An article the attacker tries to store without a key."}
# Every route that needs a key here (public asking off), with a body it would accept.
GUARDED: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/v1/ask", ASK),
    ("POST", "/v1/ask/stream", ASK),
    ("POST", "/v1/chat/completions", CHAT),
    ("GET", "/v1/models", None),
    ("GET", "/v1/articles", None),
    ("GET", "/v1/articles/harbour-bridge", None),
    ("POST", "/v1/articles", ARTICLE),
    ("DELETE", "/v1/articles/harbour-bridge", None),
]


# --- authentication ---


@pytest.mark.parametrize(("method", "path", "body"), GUARDED)
def test_missing_and_wrong_keys_are_refused(api: TestClient, method: str, path: str, body: Any) -> None:
    missing = api.request(method, path, json=body)
    assert_error(missing, 401, "unauthorized")
    assert missing.headers["www-authenticate"] == "Bearer"
    for headers in ({"Authorization": "Bearer not-the-key"}, {"X-API-Key": KEY[:-1]}, {"X-API-Key": KEY + "x"}):
        wrong = api.request(method, path, json=body, headers=headers)
        message = assert_error(wrong, 401, "invalid_api_key")
        assert KEY not in wrong.text and "not-the-key" not in message


def test_wrong_keys_are_braked_per_address(
    service: RagService, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The red team's 300 wrong keys in a row: after the allowance, 429 with Retry-After, never a key in the log."""
    caplog.set_level("DEBUG")
    attacker = client(service, tmp_path, address="203.0.113.66", auth_failures_per_minute=10)
    now = [1000.0]
    attacker.app.state.ctx.keys.failures.clock = lambda: now[0]  # type: ignore[attr-defined]
    statuses = []
    for i in range(300):
        r = attacker.post("/v1/ask", json=ASK, headers={"X-API-Key": f"guess-{i:04d}"})
        statuses.append(r.status_code)
        if r.status_code == 429:
            assert r.json()["error"]["code"] == "rate_limited"
            assert 1 <= int(r.headers["retry-after"]) <= 6  # 10 a minute: one back every 6 s
    assert statuses[:10] == [401] * 10 and statuses[10:] == [429] * 290
    # Blocked means blocked: the right key from that address waits too (a 200 would tell a guesser it won) ...
    assert_error(attacker.post("/v1/ask", json=ASK, headers=AUTH), 429, "rate_limited")
    # ... while the same app still serves the right key from another address, and counts that address apart.
    other = TestClient(attacker.app, client=("192.0.2.10", 40_001))
    assert other.post("/v1/ask", json=ASK, headers=AUTH).status_code == 200
    assert_error(other.post("/v1/ask", json=ASK, headers={"X-API-Key": "typo"}), 401, "invalid_api_key")
    # A request without a key is no guess: it gets its 401, not the brake's 429.
    assert_error(attacker.post("/v1/ask", json=ASK), 401, "unauthorized")
    # 10 a minute refill one every 6 s: then one more guess is heard (and refused), then the brake again.
    now[0] += 6.5
    assert_error(attacker.post("/v1/ask", json=ASK, headers={"X-API-Key": "guess-x"}), 401, "invalid_api_key")
    assert_error(attacker.post("/v1/ask", json=ASK, headers={"X-API-Key": "guess-y"}), 429, "rate_limited")
    now[0] += 60
    assert attacker.post("/v1/ask", json=ASK, headers=AUTH).status_code == 200

    logged = caplog.text
    assert "wrong API key from 203.0.113.66" in logged
    assert KEY not in logged and "guess-0001" not in logged and "typo" not in logged


def test_the_brake_can_be_turned_off(service: RagService, tmp_path: Path) -> None:
    api = client(service, tmp_path, auth_failures_per_minute=0)
    for i in range(30):
        assert_error(api.get("/v1/articles", headers={"X-API-Key": f"g{i}"}), 401, "invalid_api_key")


# --- CORS ---


def test_cors_gives_other_origins_nothing_and_never_credentials(api: TestClient) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-api-key"}
    for evil in ("https://evil.example", "null", "https://news.example.evil.example", "http://news.example"):
        refused = api.options("/v1/ask", headers={"Origin": evil, **preflight})
        assert_error(refused, 400, "cors_refused")
        assert "access-control-allow-origin" not in refused.headers
        simple = api.post("/v1/ask", json=ASK, headers={**AUTH, "Origin": evil})
        assert simple.status_code == 200 and "access-control-allow-origin" not in simple.headers
    allowed = api.post("/v1/ask", json=ASK, headers={**AUTH, "Origin": ORIGIN, "Cookie": "session=1"})
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "access-control-allow-credentials" not in allowed.headers
    ok = api.options("/v1/ask", headers={"Origin": ORIGIN, **preflight})
    assert ok.headers["access-control-allow-origin"] == ORIGIN
    assert "access-control-allow-credentials" not in ok.headers


# --- body and header limits ---


def test_body_limit_by_length_and_by_stream(service: RagService, tmp_path: Path) -> None:
    api = client(service, tmp_path, max_body_bytes=10_000)
    big = {"question": "x" * 20_000}
    assert_error(api.post("/v1/ask", json=big, headers=AUTH), 413, "payload_too_large")

    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b'{"id": "x", "body": "' + b"y" * 500

    streamed = api.post("/v1/articles", content=chunks(), headers={**AUTH, "Content-Type": "application/json"})
    assert_error(streamed, 413, "payload_too_large")


def test_oversized_headers_get_431(api: TestClient) -> None:
    """The red team's 200 KB header was answered 200; now 431 in the error shape, with the security headers."""
    huge = api.get("/healthz", headers={"X-Padding": "a" * 200_000})
    message = assert_error(huge, 431, "headers_too_large")
    assert "RAG_MAX_HEADER_BYTES" in message and "16,384" in message
    assert huge.headers["x-content-type-options"] == "nosniff"
    many = api.get("/healthz", headers={f"X-H{i}": "b" * 100 for i in range(200)})
    assert_error(many, 431, "headers_too_large")
    long_url = api.get("/v1/articles?source=" + "c" * 20_000, headers=AUTH)
    assert_error(long_url, 431, "headers_too_large")
    # Headers a real client sends, and a long key, are well under the limit.
    assert api.get("/healthz", headers={"X-Padding": "a" * 8_000, "User-Agent": "Mozilla/5.0 " * 20}).status_code == 200


def test_oversized_headers_get_431_over_a_socket(service: RagService, tmp_path: Path) -> None:
    server = LiveServer.start(create_app(api_settings(tmp_path), service))
    try:
        r = httpx.get(f"{server.base}/healthz", headers={"X-Padding": "a" * 200_000}, timeout=10)
        assert_error(r, 431, "headers_too_large")
        assert httpx.get(f"{server.base}/healthz", timeout=5).status_code == 200
    finally:
        server.stop()


# --- broken Unicode ---

# Strings no UTF-8 encoder accepts: lone high and low surrogates, a reversed pair, a pair split by text, a high
# surrogate at the very end. As JSON they are `\ud800`-style escapes, which decode without complaint.
BROKEN = ["\ud800", "\udfff", "a\udc00\ud800b", "\ud83d and then \ude00", "fine text ends badly \ud83d"]
# Where text goes in each JSON route: (path, body builder, the field the error must name).
PLACES: list[tuple[str, Any, str]] = [
    ("/v1/ask", lambda s: {"question": f"bridge cost {s}"}, "question"),
    ("/v1/ask", lambda s: {**ASK, "history": [{"role": "user", "content": s}]}, "history.0.content"),
    ("/v1/ask", lambda s: {**ASK, "filters": {"source": s}}, "filters.source"),
    ("/v1/ask", lambda s: {**ASK, "filters": {"article_id": s}}, "filters.article_id"),
    ("/v1/ask", lambda s: {**ASK, "mode": s}, "mode"),
    ("/v1/ask", lambda s: {**ASK, s: 1}, "body"),
    ("/v1/ask/stream", lambda s: {"question": s}, "question"),
    ("/v1/ask/stream", lambda s: {**ASK, "filters": {"source": "x", s: "y"}}, "filters"),
    ("/v1/chat/completions", lambda s: {**CHAT, "messages": [{"role": "user", "content": s}]}, "messages.0.content"),
    (
        "/v1/chat/completions",
        lambda s: {**CHAT, "messages": [{"role": "user", "content": [{"type": "text", "text": s}]}]},
        "messages.0.content.0.text",
    ),
    (
        "/v1/chat/completions",
        lambda s: {**CHAT, "stream": True, "messages": [{"role": "system", "content": s}, *CHAT["messages"]]},
        "messages.0.content",
    ),
    ("/v1/chat/completions", lambda s: {**CHAT, "model": s}, "model"),
    ("/v1/chat/completions", lambda s: {**CHAT, "user": s}, "user"),
    ("/v1/chat/completions", lambda s: {**CHAT, "filters": {"source": s}}, "filters.source"),
    ("/v1/articles", lambda s: {**ARTICLE, "body": f"A story {s} about ferries."}, "body"),
    ("/v1/articles", lambda s: {**ARTICLE, "title": s}, "title"),
    ("/v1/articles", lambda s: {**ARTICLE, "source": s}, "source"),
    ("/v1/articles", lambda s: {**ARTICLE, "url": f"https://x.example/{s}"}, "url"),
    ("/v1/articles", lambda s: [{**ARTICLE, "author": s}], "author"),
]


def _fuzz_cases() -> list[tuple[str, str, str]]:
    """Every place with every broken string, plus seeded random strings with surrogates at random spots."""
    cases = []
    rng = random.Random(11)
    for path, build, field in PLACES:
        strings = [*BROKEN]
        for _ in range(2):
            good = "".join(rng.choice('ab é€\U0001f600\n\t"\\') for _ in range(rng.randint(0, 12)))
            at = rng.randint(0, len(good))
            strings.append(good[:at] + chr(rng.randint(0xD800, 0xDFFF)) + good[at:])
        for s in strings:
            cases.append((path, json.dumps(build(s)), field))  # ensure_ascii: surrogates travel as escapes
    return cases


FUZZ = _fuzz_cases()


def test_broken_unicode_gets_422_naming_the_field(api: TestClient) -> None:
    """The red team's lone surrogate in /v1/chat/completions was a 500; every JSON route now says which field."""
    failures = []
    for path, body, field in FUZZ:
        r = api.post(path, content=body.encode(), headers={**AUTH, "Content-Type": "application/json"})
        error = r.json().get("error", {}) if r.headers.get("content-type", "").startswith("application/json") else {}
        message = error.get("message", "")
        ok = r.status_code == 422 and (f": {field}: " in message or message.startswith(f"{field}: "))
        ok = ok and ("surrogate" in message)
        if not ok:
            failures.append((path, field, r.status_code, r.text[:160]))
    assert failures == [], f"{len(failures)} of {len(FUZZ)} broken inputs not refused by field: {failures[:5]}"


def test_valid_unicode_in_the_same_places_is_accepted(api: TestClient) -> None:
    """The control: an emoji (a surrogate pair as JSON escapes), accents and CJK pass where text belongs."""
    fine = "Ferries \U0001f6a2 à Port Alden, 渡船"
    asks = [(p, build) for p, build, field in PLACES if field not in ("body", "filters", "mode", "author")]
    for path, build in asks:
        if path == "/v1/articles":
            continue
        body = json.dumps(build(fine)).encode()
        r = api.post(path, content=body, headers={**AUTH, "Content-Type": "application/json"})
        assert r.status_code == 200, (path, r.text[:200])
    stored = api.post("/v1/articles", json={**ARTICLE, "id": "unicode-ok", "title": fine}, headers=AUTH)
    assert stored.status_code == 200 and stored.json()["results"][0]["title"] == fine


@pytest.mark.parametrize(
    "raw",
    [
        b'{"question": "bridge \xff cost"}',  # not UTF-8 at all
        b'{"question": "\xc0\xaf"}',  # an overlong encoding of "/"
        b'{"question": "\xe2\x82"}',  # a truncated sequence
        b'{"question": "\xed\xa0\x80"}',  # a surrogate encoded as if it were a character (CESU-8)
        '{"question": "bridge"}'.encode("utf-16"),  # UTF-16, which JSON between systems must not be
    ],
)
@pytest.mark.parametrize("path", ["/v1/ask", "/v1/ask/stream", "/v1/chat/completions"])
def test_bytes_that_are_not_utf8_get_422(api: TestClient, path: str, raw: bytes) -> None:
    r = api.post(path, content=raw, headers={**AUTH, "Content-Type": "application/json"})
    assert "UTF-8" in assert_error(r, 422, "invalid_request")


def test_broken_json_lines_name_the_line_and_field(api: TestClient) -> None:
    lines = b'{"id": "ok-line", "body": "A fine story."}\n{"id": "bad", "title": "\\ud800", "body": "x y z"}\n'
    r = api.post("/v1/articles", content=lines, headers={**AUTH, "Content-Type": "application/x-ndjson"})
    assert r.status_code == 207
    (bad,) = [result for result in r.json()["results"] if result["status"] == "failed"]
    assert bad["origin"] == "line 2" and bad["reason"].startswith("title: ") and "surrogate" in bad["reason"]


# --- unknown fields ---


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/ask", {**ASK, "filters": {"sorce": "Coastal Times"}}, "filters.sorce"),
        ("/v1/ask", {**ASK, "filters": {"source": "Wire", "since": "2020-01-01", "untill": "x"}}, "filters.untill"),
        ("/v1/ask", {**ASK, "history": [{"role": "user", "content": "hi", "tone": "x"}]}, "history.0.tone"),
        ("/v1/ask", {**ASK, "questoin": "typo"}, "questoin"),
        ("/v1/ask/stream", {**ASK, "filters": {"sorce": "x"}}, "filters.sorce"),
        ("/v1/chat/completions", {**CHAT, "filters": {"sorce": "x"}}, "filters.sorce"),
        ("/v1/chat/completions", {**CHAT, "filter": {"source": "x"}}, "filter"),
    ],
)
def test_unknown_fields_get_422_naming_them(api: TestClient, path: str, body: Any, field: str) -> None:
    """`filters: {"sorce": ...}` was answered 200 as if unfiltered; a typo now says which field is unknown."""
    message = assert_error(api.post(path, json=body, headers=AUTH), 422, "invalid_request")
    assert message.startswith(f"{field}: "), message


def test_openai_parameter_list_covers_the_installed_sdk() -> None:
    """Everything the openai SDK can send is accepted: an SDK upgrade that adds a parameter fails here first."""
    from openai.types.chat.completion_create_params import CompletionCreateParamsBase

    sdk = set(CompletionCreateParamsBase.__annotations__) - {"messages", "model"}
    assert sdk <= OPENAI_PARAMS, sorted(sdk - OPENAI_PARAMS)


def test_the_openai_client_with_its_extra_parameters_still_works(service: RagService, tmp_path: Path) -> None:
    server = LiveServer.start(create_app(api_settings(tmp_path), service))
    try:
        sdk = openai.OpenAI(base_url=f"{server.base}/v1", api_key=KEY, max_retries=0, timeout=30)
        reply = sdk.chat.completions.create(
            model="rag-extractive",
            messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": BRIDGE_QUESTION}],
            temperature=0.2,
            top_p=0.9,
            max_tokens=200,
            max_completion_tokens=200,
            n=1,
            stop=["\n\n"],
            seed=7,
            user="reader-1",
            presence_penalty=0.0,
            frequency_penalty=0.0,
            logit_bias={"50256": -100},
            metadata={"team": "news"},
            store=False,
            extra_body={"filters": {"source": "Coastal Times"}, "k": 3},
        )
        assert "48 million euros" in (reply.choices[0].message.content or "")
        chunks = list(
            sdk.chat.completions.create(
                model="rag-extractive",
                messages=[{"role": "user", "content": BRIDGE_QUESTION}],
                stream=True,
                stream_options={"include_usage": False},
                temperature=0,
            )
        )
        assert "48 million" in "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        with pytest.raises(openai.UnprocessableEntityError, match=r"filters\.sorce"):
            sdk.chat.completions.create(
                model="rag-extractive",
                messages=[{"role": "user", "content": BRIDGE_QUESTION}],
                extra_body={"filters": {"sorce": "Coastal Times"}},
            )
    finally:
        server.stop()


# --- the docs page ---

LOCAL_DOCS = functools.partial(
    get_swagger_ui_html,
    swagger_js_url="/docs/assets/swagger-ui-bundle.js",
    swagger_css_url="/docs/assets/swagger-ui.css",
    swagger_favicon_url="/docs/assets/favicon.png",
)


def test_docs_csp_with_local_assets_names_no_outside_origin(
    service: RagService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With Swagger UI's files served from here, the page's CSP allows this origin and its inline script only."""
    monkeypatch.setattr(routes_web, "get_swagger_ui_html", LOCAL_DOCS)
    csp = client(service, tmp_path).get("/docs").headers["content-security-policy"]
    assert "http" not in csp and "cdn" not in csp, csp
    assert "script-src 'self' 'sha256-" in csp and "default-src 'none'" in csp


def test_docs_csp_names_only_the_origins_the_page_loads(api: TestClient) -> None:
    page = api.get("/docs")
    csp = page.headers["content-security-policy"]
    origins = {word for word in csp.replace(";", " ").split() if word.startswith("http")}
    loaded = {url.split("/")[0] + "//" + url.split("/")[2] for url in _urls(page.text)}
    assert origins == loaded - {""}, (origins, loaded)


def _urls(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="(https?://[^"]+)"', html)


def test_docs_page_loads_nothing_from_outside(api: TestClient) -> None:
    page = api.get("/docs")
    assert "http" not in page.headers["content-security-policy"]
    assert _urls(page.text) == []
