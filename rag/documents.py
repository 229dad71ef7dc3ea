"""Reading articles from files: the seed format, front-matter Markdown/text, JSON Lines and HTML pages.

Every reader yields `Article`s or `IngestError`s, one per article, so one bad article never stops the rest.
Ids: an explicit `id`, else one derived from the `url`, else (files) from the file's path below the folder
given to ingest — so editing a file and ingesting it again replaces the article — else from the content.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from rag.errors import IngestError
from rag.models import Article

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".text", ""}
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
JSONL_SUFFIXES = {".jsonl", ".ndjson"}
JSON_SUFFIXES = {".json"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | JSONL_SUFFIXES | JSON_SUFFIXES

# A digit must follow, so that an article that merely opens with the word "date" is not taken for a seed.
_SEED_DATE = re.compile(r"\A\s*date\s+(\d\S*)\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"”’']?\s")
_ID_CHARS = re.compile(r"[^a-z0-9._-]+")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_TITLE_CHARS = 100


def iter_files(paths: Iterable[Path]) -> Iterator[tuple[Path, Path]]:
    """Yield (file, root) for every file under the given paths, sorted, hidden files skipped."""
    for path in paths:
        if path.is_dir():
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(filenames):
                    if not name.startswith(".") and name.lower() != "readme.md":
                        yield Path(dirpath) / name, path
        else:
            yield path, path.parent


def read_file(path: Path, root: Path | None = None, *, max_bytes: int) -> Iterator[Article | IngestError]:
    """Read one file into articles; problems come back as `IngestError`s naming the file."""
    origin = str(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        yield IngestError(f"{origin}: unsupported file type '{suffix}'; use .txt, .md, .html, .json or .jsonl")
        return
    try:
        size = path.stat().st_size
    except OSError as exc:
        yield IngestError(f"{origin}: cannot read file ({exc.strerror})")
        return
    if suffix in JSONL_SUFFIXES:
        yield from _read_jsonl(path, max_bytes=max_bytes)
        return
    if size > max_bytes:
        yield IngestError(
            f"{origin}: file is {size:,} bytes, over the {max_bytes:,}-byte limit (RAG_MAX_FILE_BYTES); split it"
        )
        return
    try:
        raw = path.read_bytes()
    except OSError as exc:
        yield IngestError(f"{origin}: cannot read file ({exc.strerror})")
        return
    file_id = _id_from_path(path, root or path.parent)
    try:
        if suffix in HTML_SUFFIXES:
            yield parse_html(raw, origin=origin, fallback_id=file_id)
        elif suffix in JSON_SUFFIXES:
            yield from _read_json(raw, origin=origin)
        else:
            yield parse_text(decode(raw, origin), origin=origin, fallback_id=file_id, file_stem=path.stem)
    except IngestError as exc:
        yield exc


def decode(raw: bytes, origin: str) -> str:
    """Bytes to text: UTF-8 (BOM allowed) or BOM-marked UTF-16; binary and other encodings are refused."""
    if not raw.strip():
        raise IngestError(f"{origin}: file is empty")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise IngestError(f"{origin}: broken UTF-16 text at byte {exc.start}") from None
    if b"\x00" in raw[:8192]:
        raise IngestError(f"{origin}: binary file, not text (found NUL bytes)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise IngestError(
            f"{origin}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); re-save the file as UTF-8"
        ) from None


def parse_text(text: str, *, origin: str, fallback_id: str, file_stem: str = "") -> Article:
    """Seed format (`date YYYY-MM-DD` then the body), front matter + body, or plain text."""
    text = _canonical(text)
    if text.startswith("---\n"):
        return _parse_front_matter(text, origin=origin, fallback_id=fallback_id)
    meta: dict[str, Any] = {}
    match = _SEED_DATE.match(text)
    if match:
        meta["published_at"] = match.group(1)
        text = text[match.end() :]
    meta["body"] = text
    meta["title"] = derive_title(text, file_stem)
    return build_article(meta, origin=origin, fallback_id=fallback_id)


def _parse_front_matter(text: str, *, origin: str, fallback_id: str) -> Article:
    import frontmatter
    import yaml

    try:
        post = frontmatter.loads(text)
    except yaml.YAMLError as exc:
        raise IngestError(f"{origin}: front matter is not valid YAML ({exc.__class__.__name__})") from None
    meta = dict(post.metadata)
    meta["body"] = post.content
    if not meta.get("title"):
        meta["title"] = derive_title(_canonical(post.content), "")
    return build_article(meta, origin=origin, fallback_id=fallback_id)


def parse_html(raw: bytes, *, origin: str, fallback_id: str) -> Article:
    """Main text of an HTML page (boilerplate dropped by trafilatura), with its title, date and url."""
    import trafilatura

    html = decode(raw, origin)
    doc = trafilatura.bare_extraction(
        html, with_metadata=True, include_comments=False, include_tables=False, favor_precision=True
    )
    body = getattr(doc, "text", None) if doc is not None else None
    if not body or not body.strip():
        raise IngestError(f"{origin}: no article text found in the HTML page")
    meta = {
        "title": getattr(doc, "title", None) or derive_title(_canonical(body), ""),
        "url": getattr(doc, "url", None),
        "published_at": getattr(doc, "date", None),
        "source": getattr(doc, "sitename", None),
        "author": getattr(doc, "author", None),
        "body": body,
    }
    return build_article(meta, origin=origin, fallback_id=fallback_id)


def _read_jsonl(path: Path, *, max_bytes: int) -> Iterator[Article | IngestError]:
    try:
        handle = path.open("rb")
    except OSError as exc:
        yield IngestError(f"{path}: cannot read file ({exc.strerror})")
        return
    with handle:
        seen_any = False
        for lineno, line in enumerate(handle, start=1):
            origin = f"{path}:{lineno}"
            if not line.strip():
                continue
            seen_any = True
            if len(line) > max_bytes:
                yield IngestError(f"{origin}: line is {len(line):,} bytes, over the {max_bytes:,}-byte limit")
                continue
            try:
                yield parse_json_object(_loads(decode(line, origin), origin), origin=origin)
            except IngestError as exc:
                yield exc
        if not seen_any:
            yield IngestError(f"{path}: file is empty")


def _read_json(raw: bytes, *, origin: str) -> Iterator[Article | IngestError]:
    value = _loads(decode(raw, origin), origin)
    items = value if isinstance(value, list) else [value]
    for index, item in enumerate(items):
        where = f"{origin}[{index}]" if isinstance(value, list) else origin
        try:
            yield parse_json_object(item, origin=where)
        except IngestError as exc:
            yield exc


def _loads(text: str, origin: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise IngestError(f"{origin}: invalid JSON ({exc.msg} at column {exc.colno})") from None


def parse_json_object(value: Any, *, origin: str) -> Article:
    """One article from a JSON object with id, title, url, published_at, source and body (or text)."""
    if not isinstance(value, dict):
        raise IngestError(f"{origin}: expected a JSON object with a 'body', got {type(value).__name__}")
    meta = dict(value)
    if "body" not in meta and "text" in meta:
        meta["body"] = meta["text"]
    if not isinstance(meta.get("body"), str):
        raise IngestError(f"{origin}: missing 'body' (the article text, a string)")
    body = _canonical(meta["body"])
    if not meta.get("title"):
        meta["title"] = derive_title(body, "")
    return build_article(meta, origin=origin, fallback_id=None)


def build_article(meta: dict[str, Any], *, origin: str, fallback_id: str | None) -> Article:
    """Validate fields and make the canonical `Article`, with its id and content hash."""
    text = _canonical(str(meta.get("body") or ""))
    if not text:
        raise IngestError(f"{origin}: article has no text")
    if _has_surrogate(meta):
        raise IngestError(f"{origin}: text holds an unpaired surrogate (an escape like \\ud800); fix the JSON escapes")
    fields: dict[str, str | None] = {}
    for name in ("title", "url", "source", "author", "id"):
        value = meta.get(name)
        if value is not None and not isinstance(value, str | int):
            raise IngestError(f"{origin}: '{name}' must be a string, got {type(value).__name__}")
        fields[name] = (" ".join(str(value).split()) or None) if value is not None else None
    url = fields["url"]
    if url and not re.match(r"^https?://", url, re.I):
        raise IngestError(f"{origin}: url '{url[:80]}' is not an http(s) URL")
    published = parse_date(meta.get("published_at", meta.get("date")), origin)
    title = (fields["title"] or derive_title(text, ""))[:300]
    article_id = make_id(fields["id"], url, fallback_id, text, origin)
    digest = hashlib.sha256(
        json.dumps(
            [text, title, published.isoformat() if published else None, url, fields["source"], fields["author"]],
            ensure_ascii=False,
        ).encode()
    ).hexdigest()
    return Article(
        id=article_id,
        text=text,
        title=title,
        content_hash=digest,
        published_at=published,
        url=url,
        source=fields["source"],
        author=fields["author"],
        origin=origin,
    )


def make_id(explicit: str | None, url: str | None, fallback: str | None, text: str, origin: str) -> str:
    """The article's stable id: explicit, else from the url, else the file path, else the content."""
    if explicit:
        if len(explicit) > 200 or not re.fullmatch(r"[\w.:@/+-]+", explicit):
            raise IngestError(f"{origin}: id '{explicit[:60]}' must be 1-200 letters, digits or . _ - : @ / +")
        return explicit
    if url:
        return "url-" + hashlib.sha1(url.encode()).hexdigest()[:16]
    if fallback:
        return fallback
    return "txt-" + hashlib.sha256(text.encode()).hexdigest()[:16]


def parse_date(value: Any, origin: str) -> dt.date | None:
    """YYYY-MM-DD (or an ISO date-time, of which the date is kept); None when absent."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    try:
        return dt.date.fromisoformat(text[:10]) if len(text) >= 10 else dt.date.fromisoformat(text)
    except ValueError:
        raise IngestError(f"{origin}: published_at '{text[:40]}' is not a valid date (expected YYYY-MM-DD)") from None


def derive_title(text: str, file_stem: str) -> str:
    """A title from the first sentence (cut at a word boundary), else from the file name."""
    first = _SENTENCE_END.split(text.strip(), maxsplit=1)[0].strip() if text.strip() else ""
    first = first.split("\n", 1)[0]
    if not first:
        return file_stem.replace("_", " ").replace("-", " ").strip() or "Untitled"
    if len(first) <= _TITLE_CHARS:
        return first.rstrip(".")
    cut = first[:_TITLE_CHARS].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "…"


def _has_surrogate(meta: dict[str, Any]) -> bool:
    # JSON escapes can produce lone surrogates, which no UTF-8 store (nor the content hash) can encode.
    return any(isinstance(v, str) and _SURROGATE.search(v) for v in meta.values())


def _canonical(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def _id_from_path(path: Path, root: Path) -> str:
    try:
        rel = path.relative_to(root)
    except ValueError:
        rel = Path(path.name)
    stem = str(rel.with_suffix("")).lower().replace(os.sep, "-")
    return _ID_CHARS.sub("-", stem).strip("-")[:120] or "file"
