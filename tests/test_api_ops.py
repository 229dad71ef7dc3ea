"""The API's errors, security headers, CORS, demo page, docs, health, readiness and metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
from api_support import AUTH, ORIGIN, api_settings, assert_error, client_for
from conftest import SEED_QUESTION
from fastapi.testclient import TestClient

from rag.api.app import create_app
from rag.api.security import DEMO_PAGE_CSP
from rag.service import RagService

# --- errors, headers, CORS, operations ---


def test_404_405_and_500_use_the_error_shape(
    newsroom: RagService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = client_for(newsroom, tmp_path)
    r = client.get("/v2/nothing")
    assert "/v2/nothing" in assert_error(r, 404, "not_found")
    assert r.headers["x-content-type-options"] == "nosniff"
    r = client.get("/v1/ask")
    assert "POST" in assert_error(r, 405, "method_not_allowed")
    assert_error(client.put("/v1/articles/x", headers=AUTH), 405)

    def broken() -> None:
        raise RuntimeError("disk on fire at /secret/path")

    monkeypatch.setattr(newsroom, "list_articles", broken)
    r = TestClient(create_app(api_settings(tmp_path), newsroom), raise_server_exceptions=False).get(
        "/v1/articles", headers={**AUTH, "Origin": ORIGIN}
    )
    message = assert_error(r, 500, "internal_error")
    assert "secret" not in message
    assert r.headers["x-frame-options"] == "DENY" and r.headers["access-control-allow-origin"] == ORIGIN


def test_security_headers_everywhere(client: TestClient) -> None:
    for r in (
        client.get("/healthz"),
        client.post("/v1/ask", json={"question": SEED_QUESTION}, headers=AUTH),
        client.post("/v1/ask", json={}),
    ):
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["x-frame-options"] == "DENY"
        assert "default-src 'none'" in r.headers["content-security-policy"]


def test_demo_page_and_widget_script(client: TestClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from rag.api import routes_web

    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text('<!doctype html><title>demo</title><script src="/widget.js"></script>')
    (web / "widget.js").write_text("console.log('widget');")
    monkeypatch.setattr(routes_web, "WEB_DIR", web)
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == DEMO_PAGE_CSP
    assert page.headers["x-frame-options"] == "DENY" and page.headers["x-content-type-options"] == "nosniff"
    script = client.get("/widget.js", headers={"Origin": "https://any-site.example"})
    assert script.status_code == 200 and script.text == "console.log('widget');"
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.headers["cross-origin-resource-policy"] == "cross-origin"
    assert script.headers["x-content-type-options"] == "nosniff"

    (web / "widget.js").unlink()
    (web / "index.html").unlink()
    assert "widget.js" in assert_error(client.get("/widget.js"), 404, "not_found")
    assert_error(client.get("/"), 404)


def test_cors_allowlist(client: TestClient) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-api-key"}
    ok = client.options("/v1/ask/stream", headers={"Origin": ORIGIN, **preflight})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == ORIGIN
    assert "access-control-allow-credentials" not in ok.headers
    assert set(ok.headers["access-control-allow-methods"].split(", ")) == {"GET", "POST", "DELETE", "OPTIONS"}
    assert "x-api-key" in ok.headers["access-control-allow-headers"].lower()

    evil = client.options("/v1/ask/stream", headers={"Origin": "https://evil.example", **preflight})
    assert "RAG_WIDGET_ORIGINS" in assert_error(evil, 400, "cors_refused")
    assert "access-control-allow-origin" not in evil.headers
    simple = client.post(
        "/v1/ask", json={"question": SEED_QUESTION}, headers={**AUTH, "Origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in simple.headers
    allowed = client.post("/v1/ask", json={"question": SEED_QUESTION}, headers={**AUTH, "Origin": ORIGIN})
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "access-control-allow-credentials" not in allowed.headers
    limited = client.post("/v1/ask", json={}, headers={"Origin": ORIGIN})
    assert limited.status_code == 401 and limited.headers["access-control-allow-origin"] == ORIGIN


def test_health_readiness_docs_and_openapi(
    client: TestClient, newsroom: RagService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["articles"] == 5 and ready["chunks"] >= 5 and ready["llm"] is False
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    assert "script-src 'self' 'sha256-" in docs.headers["content-security-policy"]
    assert "cdn" not in docs.text and client.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"/v1/ask", "/v1/ask/stream", "/v1/chat/completions", "/v1/articles", "/v1/articles/{article_id}"} <= set(
        schema["paths"]
    )

    def down() -> None:
        raise ConnectionError("chroma went away")

    monkeypatch.setattr(newsroom, "ready", down)
    assert_error(client.get("/readyz"), 503, "not_ready")


def test_metrics(client: TestClient) -> None:
    client.post("/v1/ask", json={"question": SEED_QUESTION}, headers=AUTH)
    client.post("/v1/ask", json={"question": "Who won the 1966 World Cup final?"}, headers=AUTH)
    client.get("/v1/articles/no-such-article", headers=AUTH)
    client.get("/wp-login.php")
    client.get("/openapi.json")
    text = client.get("/metrics").text
    assert 'route="/openapi.json",status="200"' in text
    assert 'rag_http_requests_total{method="POST",route="/v1/ask",status="200"} 2.0' in text
    assert 'route="/v1/articles/{article_id:path}",status="404"' in text
    assert 'route="unmatched",status="404"' in text and "wp-login" not in text
    assert 'rag_ask_duration_seconds_count{mode="extractive"} 2.0' in text
    assert 'rag_abstentions_total{mode="extractive"} 1.0' in text
    assert 'rag_http_request_duration_seconds_bucket{le="0.5",method="POST",route="/v1/ask"}' in text


def test_ingest_metrics(scratch: RagService, tmp_path: Path) -> None:
    client = client_for(scratch, tmp_path)
    client.post("/v1/articles", json=[{"id": "m-1", "body": "Metric story."}, {"title": "bad"}], headers=AUTH)
    text = client.get("/metrics").text
    assert 'rag_ingest_articles_total{status="added"} 1.0' in text
    assert 'rag_ingest_articles_total{status="failed"} 1.0' in text
