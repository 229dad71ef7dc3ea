"""Articles: add (JSON, JSON Lines or file upload), list, show, delete.

POST /v1/articles answers with the same per-article report as `rag ingest --json`:
200 when every article was stored (added, updated or unchanged), 207 when some failed and some were stored,
422 when none could be stored (then the body also has the usual `error`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path as FsPath
from typing import IO, Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from rag.api import uploads
from rag.api.deps import Context, Reader, Service, Writer
from rag.api.errors import ApiError
from rag.api.schemas import (
    ArticleDetail,
    ArticlePage,
    ArticlePublic,
    Deleted,
    IngestFailure,
    IngestReportPublic,
    JobPublic,
    error_responses,
)
from rag.errors import IngestError
from rag.models import Article

router = APIRouter(prefix="/v1/articles", tags=["articles"])
jobs_router = APIRouter(prefix="/v1/jobs", tags=["articles"])

ArticleId = Annotated[str, Path(min_length=1, max_length=200, description="The article's id.")]

_ARTICLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["body"],
    "properties": {
        "body": {"type": "string", "description": "The article text (`text` is accepted too)."},
        "title": {"type": "string"},
        "id": {"type": "string", "description": "Stable id; default: from the url, else from the text."},
        "url": {"type": "string", "description": "http(s) only."},
        "published_at": {"type": "string", "format": "date"},
        "source": {"type": "string"},
        "author": {"type": "string"},
    },
}
_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"oneOf": [_ARTICLE_SCHEMA, {"type": "array", "items": _ARTICLE_SCHEMA}]}},
            "application/x-ndjson": {"schema": {"type": "string", "description": "One article object per line."}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "Files: .txt .md .html .json .jsonl (one or more, field `file`).",
                        }
                    },
                }
            },
        },
    }
}


@router.post(
    "",
    summary="Add or update articles",
    response_model=IngestReportPublic,
    openapi_extra=_UPLOAD_BODY,
    responses={
        **error_responses(401, 403, 413, 415),
        202: {
            "model": JobPublic,
            "description": "A large upload (more than RAG_UPLOAD_JOB_ARTICLES articles, or `?async=true`) runs as a "
            "job: follow `url` (also in `Location`) for done/total, the failures so far and the final report.",
        },
        207: {"model": IngestReportPublic, "description": "Some articles failed; the others were stored."},
        422: {"model": IngestFailure, "description": "No article could be stored (or the body is unusable)."},
    },
)
async def add_articles(
    request: Request,
    ctx: Context,
    _caller: Writer,
    as_job: Annotated[
        bool, Query(alias="async", description="Run as a job (202 and a job URL) whatever the upload's size.")
    ] = False,
) -> JSONResponse:
    """Ingest articles from a JSON object or list, JSON Lines, or uploaded files; unchanged ones are skipped."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    service = ctx.service
    if media in uploads.JSON_TYPES or media.endswith("+json"):
        items = await run_in_threadpool(uploads.from_json, await request.body())
    elif media in uploads.NDJSON_TYPES:
        items = await run_in_threadpool(uploads.from_json_lines, await request.body())
    elif media in uploads.MULTIPART_TYPES:
        items = await _read_form(request, ctx.settings.max_file_bytes)
    else:
        raise ApiError(
            415,
            "unsupported_media_type",
            "send articles as application/json (an object or a list), application/x-ndjson (JSON Lines) "
            "or multipart/form-data (files in field `file`)",
        )
    if as_job or len(items) > ctx.settings.upload_job_articles:
        job = ctx.jobs.start(service, items, on_done=ctx.metrics.observe_ingest)
        running = JobPublic.of(job)
        return JSONResponse(running.model_dump(mode="json"), status_code=202, headers={"Location": running.url})
    report = await run_in_threadpool(service.ingest, items)
    ctx.metrics.observe_ingest(report)
    public = IngestReportPublic.of(report)
    stored = len(report.results) - report.count("failed")
    if not report.failed:
        return JSONResponse(public.model_dump(mode="json"), status_code=200)
    if stored:
        return JSONResponse(public.model_dump(mode="json"), status_code=207)
    first = next(r for r in report.results if r.status == "failed")
    message = f"no article could be stored; first problem: {first.origin}: {first.reason}"
    body = {"error": {"code": "invalid_articles", "message": message}, **public.model_dump(mode="json")}
    return JSONResponse(body, status_code=422)


async def _read_form(request: Request, max_file_bytes: int) -> list[Article | IngestError]:
    # A malformed multipart body is a 400 from Starlette itself, reshaped by the error handlers.
    form = await request.form(max_files=1000, max_fields=100)
    try:
        files: list[tuple[str | None, IO[bytes]]] = [
            (value.filename, value.file) for _, value in form.multi_items() if isinstance(value, UploadFile)
        ]
        if not files:
            raise ApiError(422, "invalid_request", "body: no files found; send the articles as files in field `file`")

        def read_files() -> list[Article | IngestError]:
            # Read (not ingested) inside the temporary folder: the articles then outlive it, for a job too.
            with uploads.temporary_dir() as tmp:
                return list(uploads.from_files(files, FsPath(tmp), max_file_bytes))

        return await run_in_threadpool(read_files)
    finally:
        await form.close()


@router.get("", response_model=ArticlePage, summary="List articles", responses=error_responses(401, 403, 422))
async def list_articles(
    service: Service,
    _caller: Reader,
    limit: Annotated[int, Query(ge=1, le=200, description="Articles per page.")] = 20,
    offset: Annotated[int, Query(ge=0, description="Articles to skip.")] = 0,
    since: Annotated[dt.date | None, Query(description="Published on or after (YYYY-MM-DD).")] = None,
    until: Annotated[dt.date | None, Query(description="Published on or before (YYYY-MM-DD).")] = None,
    source: Annotated[str | None, Query(max_length=200, description="Only this source.")] = None,
) -> ArticlePage:
    """Articles, newest first, a page at a time."""
    records = await run_in_threadpool(service.list_articles)
    matching = [
        r
        for r in records
        if (since is None or (r.published_at is not None and r.published_at >= since))
        and (until is None or (r.published_at is not None and r.published_at <= until))
        and (source is None or r.source == source)
    ]
    page = matching[offset : offset + limit]
    return ArticlePage(total=len(matching), limit=limit, offset=offset, items=[ArticlePublic.of(r) for r in page])


@router.get(
    "/{article_id:path}",
    response_model=ArticleDetail,
    summary="Show an article",
    responses=error_responses(401, 403, 404),
)
async def get_article(article_id: ArticleId, service: Service, _caller: Reader) -> ArticleDetail:
    """One article with its text (citation offsets point into it) and its chunk count."""
    record = await run_in_threadpool(service.get_article, article_id)
    return ArticleDetail.of(record)


@router.delete(
    "/{article_id:path}", response_model=Deleted, summary="Delete an article", responses=error_responses(401, 403, 404)
)
async def delete_article(article_id: ArticleId, service: Service, _caller: Writer) -> Deleted:
    """Remove an article and all its passages."""
    await run_in_threadpool(service.delete_article, article_id)
    return Deleted(id=article_id)


@jobs_router.get(
    "/{job_id}", response_model=JobPublic, summary="Follow an upload job", responses=error_responses(401, 403, 404)
)
async def get_job(job_id: str, ctx: Context, _caller: Writer) -> JobPublic:
    """Progress of a large upload: done/total, failures so far, and the final report when `status` is `done`."""
    job = ctx.jobs.get(job_id)
    if job is None:
        raise ApiError(404, "not_found", f"no job '{job_id}' in this process (jobs are kept in memory, newest 100)")
    return JobPublic.of(job)
