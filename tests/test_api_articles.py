"""The API's article routes: upload (JSON, JSON Lines, files, jobs), list, show, delete."""

from __future__ import annotations

import json
import time
from pathlib import Path

from api_support import AUTH, assert_error, client_for
from conftest import SEED_FILE

from rag.service import RagService

# --- articles ---


def test_articles_json_object_list_and_report(scratch: RagService, tmp_path: Path) -> None:
    client = client_for(scratch, tmp_path)
    one = {
        "id": "news/one",
        "title": "One",
        "published_at": "2024-03-01",
        "source": "Wire",
        "body": "First story text.",
    }
    r = client.post("/v1/articles", json=one, headers=AUTH)
    assert r.status_code == 200
    assert r.json() == {
        "summary": {"added": 1, "updated": 0, "unchanged": 0, "failed": 0},
        "results": [
            {"origin": "body", "status": "added", "article_id": "news/one", "title": "One", "chunks": 1, "reason": None}
        ],
    }
    again = client.post("/v1/articles", json=[one, {**one, "id": "news/two", "title": "Two"}], headers=AUTH).json()
    assert again["summary"] == {"added": 1, "updated": 0, "unchanged": 1, "failed": 0}

    mixed = client.post("/v1/articles", json=[{**one, "body": "Changed text."}, {"title": "no body"}], headers=AUTH)
    assert mixed.status_code == 207
    assert mixed.json()["summary"] == {"added": 0, "updated": 1, "unchanged": 0, "failed": 1}
    failed = next(x for x in mixed.json()["results"] if x["status"] == "failed")
    assert failed["origin"] == "body[1]" and "missing 'body'" in failed["reason"]

    bad = client.post(
        "/v1/articles", json=[{"title": "no body"}, {"body": "x", "url": "javascript:alert(1)"}], headers=AUTH
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid_articles" and bad.json()["summary"]["failed"] == 2
    assert "body[0]" in bad.json()["error"]["message"]

    assert_error(client.post("/v1/articles", json=[], headers=AUTH), 422, "invalid_request")
    assert_error(client.post("/v1/articles", json="text", headers=AUTH), 422, "invalid_request")
    assert_error(
        client.post("/v1/articles", content=b"{nope", headers={**AUTH, "Content-Type": "application/json"}), 422
    )
    assert_error(
        client.post("/v1/articles", content=b"hello", headers={**AUTH, "Content-Type": "text/plain"}),
        415,
        "unsupported_media_type",
    )


def test_articles_json_lines_and_file_upload(scratch: RagService, tmp_path: Path) -> None:
    client = client_for(scratch, tmp_path)
    lines = "\n".join(
        [
            json.dumps({"id": "jl-1", "body": "Line one story."}),
            "",
            "{broken",
            json.dumps({"id": "jl-2", "body": "Two."}),
        ]
    )
    r = client.post("/v1/articles", content=lines.encode(), headers={**AUTH, "Content-Type": "application/x-ndjson"})
    assert r.status_code == 207
    assert [(x["origin"], x["status"]) for x in r.json()["results"]] == [
        ("line 3", "failed"),
        ("line 1", "added"),
        ("line 4", "added"),
    ]
    assert "invalid JSON" in r.json()["results"][0]["reason"]

    jsonl = b'{"id": "up-1", "body": "Uploaded story one."}\n{"id": "up-2", "body": "Uploaded story two."}\n'
    files = [
        ("file", ("seed.txt", SEED_FILE.read_bytes(), "text/plain")),
        ("file", ("../../etc/batch.jsonl", jsonl, "application/octet-stream")),
        ("file", ("page.html", b"<html><body><article><p>" + b"Story in HTML. " * 20 + b"</p></article></body></html>",
                  "text/html")),
        ("file", ("image.png", b"\x89PNG\r\n", "image/png")),
    ]  # fmt: skip
    up = client.post("/v1/articles", files=files, headers=AUTH)
    assert up.status_code == 207, up.text
    results = {x["origin"]: x for x in up.json()["results"]}
    assert results["seed.txt"]["article_id"] == "seed" and results["seed.txt"]["status"] == "added"
    assert results["batch.jsonl:1"]["article_id"] == "up-1" and results["batch.jsonl:2"]["status"] == "added"
    assert results["page.html"]["status"] == "added"
    assert results["image.png"]["status"] == "failed" and "unsupported file type" in results["image.png"]["reason"]
    assert all("/tmp" not in json.dumps(x) for x in results.values()), "no server paths leak into the report"

    assert_error(client.post("/v1/articles", data={"x": "y"}, files={}, headers=AUTH), 415)
    no_files = client.post(
        "/v1/articles",
        content=b'--b\r\nContent-Disposition: form-data; name="x"\r\n\r\ny\r\n--b--\r\n',
        headers={**AUTH, "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert "no files" in assert_error(no_files, 422)
    assert_error(
        client.post("/v1/articles", content=b"garbage", headers={**AUTH, "Content-Type": "multipart/form-data"}), 400
    )


def test_a_large_upload_runs_as_a_job(scratch: RagService, tmp_path: Path) -> None:
    """More articles than RAG_UPLOAD_JOB_ARTICLES (or ?async=true): 202 at once, then a job URL to follow."""
    client = client_for(scratch, tmp_path, upload_job_articles=3)
    feed = [
        {"id": f"job-{i}", "title": f"Ferry story {i}", "body": f"Ferry story number {i}: the timetable changes."}
        for i in range(5)
    ] + [{"title": "no body at all"}]
    body = "".join(json.dumps(a) + "\n" for a in feed)
    r = client.post("/v1/articles", content=body, headers={**AUTH, "Content-Type": "application/x-ndjson"})
    assert r.status_code == 202, r.text
    job = r.json()
    assert r.headers["location"] == job["url"] == f"/v1/jobs/{job['id']}"
    assert job["total"] == 6 and job["status"] in ("running", "done")

    seen = []
    deadline = time.monotonic() + 60
    while job["status"] == "running":
        assert time.monotonic() < deadline, "the job did not finish in 60 s"
        time.sleep(0.05)
        job = client.get(job["url"], headers=AUTH).json()
        seen.append(job["done"])
    assert seen == sorted(seen) and all(0 <= n <= 6 for n in seen)
    assert job["status"] == "done" and job["done"] == job["total"] == 6
    assert job["report"]["summary"] == {"added": 5, "updated": 0, "unchanged": 0, "failed": 1}
    assert [f["origin"] for f in job["failures"]] == ["line 6"] and job["failures"][0]["reason"]
    assert client.get("/v1/articles/job-4", headers=AUTH).json()["title"] == "Ferry story 4"

    small = client.post("/v1/articles", json=feed[:2], headers=AUTH)
    assert small.status_code == 200 and small.json()["summary"]["unchanged"] == 2  # small uploads answer at once
    forced = client.post("/v1/articles?async=true", json=feed[0], headers=AUTH)
    assert forced.status_code == 202 and forced.json()["total"] == 1
    assert_error(client.get(forced.json()["url"]), 401)
    assert_error(client.get("/v1/jobs/no-such-job", headers=AUTH), 404, "not_found")
    text = client.get("/metrics").text
    assert 'rag_ingest_articles_total{status="added"}' in text


def test_list_show_and_delete_articles(scratch: RagService, tmp_path: Path) -> None:
    client = client_for(scratch, tmp_path)
    batch = [
        {"id": f"page-{i}", "title": f"Story {i}", "published_at": f"2020-01-{i + 1:02d}",
         "source": "Pager" if i % 2 else "Other", "body": f"Story number {i} happened on a quiet day in Pageton."}
        for i in range(7)
    ]  # fmt: skip
    assert client.post("/v1/articles", json=batch, headers=AUTH).status_code == 200

    first = client.get("/v1/articles", params={"limit": 2, "since": "2020-01-01", "until": "2020-01-31"}, headers=AUTH)
    assert first.status_code == 200
    page = first.json()
    assert page["total"] == 7 and page["limit"] == 2 and [a["id"] for a in page["items"]] == ["page-6", "page-5"]
    rest = client.get("/v1/articles", params={"limit": 5, "offset": 2, "until": "2020-01-31"}, headers=AUTH).json()
    assert [a["id"] for a in rest["items"]] == ["page-4", "page-3", "page-2", "page-1", "page-0"]
    pager = client.get("/v1/articles", params={"source": "Pager", "until": "2020-01-31"}, headers=AUTH).json()
    assert pager["total"] == 3 and all(a["source"] == "Pager" for a in pager["items"])
    assert "text" not in page["items"][0]
    assert_error(client.get("/v1/articles", params={"limit": 0}, headers=AUTH), 422)
    assert_error(client.get("/v1/articles", params={"since": "yesterday"}, headers=AUTH), 422)
    assert_error(client.get("/v1/articles"), 401)

    one = client.get("/v1/articles/page-3", headers=AUTH)
    assert one.status_code == 200
    assert one.json()["text"] == batch[3]["body"] and one.json()["chunks"] == 1
    slashed = client.post("/v1/articles", json={"id": "a/b:c", "body": "Slashed id story."}, headers=AUTH)
    assert slashed.status_code == 200
    assert client.get("/v1/articles/a/b:c", headers=AUTH).json()["id"] == "a/b:c"

    r = client.delete("/v1/articles/page-3", headers=AUTH)
    assert r.status_code == 200 and r.json() == {"id": "page-3", "deleted": True}
    assert_error(client.get("/v1/articles/page-3", headers=AUTH), 404, "not_found")
    assert_error(client.delete("/v1/articles/page-3", headers=AUTH), 404, "not_found")
    assert_error(client.delete("/v1/articles/a/b:c"), 401)
