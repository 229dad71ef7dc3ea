"""The API's authentication: keys for asking (unless public) and always for writing; keys never logged."""

from __future__ import annotations

from pathlib import Path

import pytest
from api_support import AUTH, KEY, OTHER_KEY, assert_error, client_for
from conftest import SEED_QUESTION

from rag.service import RagService

# --- authentication ---


def test_asking_needs_a_key_unless_public(newsroom: RagService, tmp_path: Path) -> None:
    client = client_for(newsroom, tmp_path)
    q = {"question": SEED_QUESTION}
    r = client.post("/v1/ask", json=q)
    assert_error(r, 401, "unauthorized")
    assert r.headers["www-authenticate"] == "Bearer"
    assert_error(client.post("/v1/ask", json=q, headers={"Authorization": "Bearer wrong"}), 401, "invalid_api_key")
    assert_error(client.post("/v1/ask/stream", json=q, headers={"X-API-Key": "wrong"}), 401, "invalid_api_key")
    assert client.post("/v1/ask", json=q, headers={"X-API-Key": OTHER_KEY}).status_code == 200
    assert client.post("/v1/ask", json=q, headers={"Authorization": f"bearer {KEY}"}).status_code == 200

    public = client_for(newsroom, tmp_path, public_ask=True)
    assert public.post("/v1/ask", json=q).status_code == 200
    assert public.get("/v1/articles").status_code == 200
    assert_error(public.post("/v1/ask", json=q, headers={"X-API-Key": "wrong"}), 401, "invalid_api_key")

    keyless = client_for(newsroom, tmp_path, api_keys=[])
    assert "RAG_PUBLIC_ASK" in assert_error(keyless.post("/v1/ask", json=q), 403, "no_keys_configured")
    demo = client_for(newsroom, tmp_path, public_ask=True, api_keys=[])  # `make run`: a key sent anyway is ignored
    assert demo.post("/v1/ask", json=q, headers={"Authorization": "Bearer KEY"}).status_code == 200
    assert demo.get("/v1/articles", headers={"X-API-Key": "anything"}).status_code == 200


def test_writing_always_needs_a_key(scratch: RagService, tmp_path: Path) -> None:
    article = {"body": "A short article about nothing in particular at all.", "id": "auth-check"}
    public = client_for(scratch, tmp_path, public_ask=True)
    assert_error(public.post("/v1/articles", json=article), 401)
    assert_error(public.post("/v1/articles", json=article, headers={"X-API-Key": "nope"}), 401)
    assert_error(public.delete("/v1/articles/auth-check"), 401)
    keyless = client_for(scratch, tmp_path, public_ask=True, api_keys=[])
    message = assert_error(keyless.post("/v1/articles", json=article), 403, "no_keys_configured")
    assert "RAG_API_KEYS" in message
    assert_error(keyless.delete("/v1/articles/auth-check", headers=AUTH), 403)


def test_keys_are_never_logged(newsroom: RagService, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    client = client_for(newsroom, tmp_path)
    client.post("/v1/ask", json={"question": SEED_QUESTION}, headers=AUTH)
    client.post("/v1/ask", json={"question": SEED_QUESTION}, headers={"X-API-Key": "secret-wrong-key"})
    assert KEY not in caplog.text and "secret-wrong-key" not in caplog.text
