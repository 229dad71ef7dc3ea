"""Request bodies to articles: a JSON object or list, JSON Lines, or uploaded files (read as the CLI reads files).

Like the CLI's readers, each yields an `Article` or an `IngestError` per article, so one bad article is
reported and never stops the rest. These run in a worker thread: parsing and file I/O block.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from rag.api.bodies import broken_text
from rag.documents import decode, parse_json_object, read_file
from rag.errors import IngestError, InvalidRequestError
from rag.models import Article

JSON_TYPES = {"application/json"}
NDJSON_TYPES = {"application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines"}
MULTIPART_TYPES = {"multipart/form-data"}

_NAME_CHARS = re.compile(r"[^\w.-]+")


def from_json(raw: bytes) -> list[Article | IngestError]:
    """A JSON object (one article) or a list of them; origins are `body` and `body[i]`."""
    try:
        value: Any = json.loads(decode(raw, "body"))
    except IngestError as exc:
        raise InvalidRequestError(str(exc)) from None
    except json.JSONDecodeError as exc:
        raise InvalidRequestError(f"body: invalid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise InvalidRequestError("body: JSON nested too deeply") from None
    if isinstance(value, dict):
        return [_parse(value, "body")]
    if isinstance(value, list):
        if not value:
            raise InvalidRequestError("body: the list is empty; send at least one article")
        return [_parse(item, f"body[{i}]") for i, item in enumerate(value)]
    raise InvalidRequestError("body: send a JSON object (one article) or a list of objects, each with a 'body'")


def from_json_lines(raw: bytes) -> list[Article | IngestError]:
    """One JSON object per line; blank lines are skipped; origins are `line N`."""
    items: list[Article | IngestError] = []
    for lineno, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        origin = f"line {lineno}"
        try:
            text = decode(line, origin)
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise IngestError(f"{origin}: invalid JSON ({exc.msg} at column {exc.colno})") from None
            except RecursionError:
                raise IngestError(f"{origin}: JSON nested too deeply") from None
            items.append(_parse(value, origin))
        except IngestError as exc:
            items.append(exc)
    if not items:
        raise InvalidRequestError("body: no JSON lines found; send one JSON object per line")
    return items


def _parse(value: Any, origin: str) -> Article | IngestError:
    # Named by field here (`body[2]: title: unpaired surrogate ...`): the reader only knows "somewhere".
    problem = broken_text(value)
    if problem:
        return IngestError(f"{origin}: {problem}")
    try:
        return parse_json_object(value, origin=origin)
    except IngestError as exc:
        return exc


def safe_name(filename: str | None, index: int) -> str:
    """An upload's file name reduced to a harmless last component (its suffix chooses the reader)."""
    name = Path((filename or "").replace("\\", "/")).name
    name = _NAME_CHARS.sub("-", name).lstrip(".-")[:120]
    return name or f"upload-{index}.txt"


def from_files(
    files: Sequence[tuple[str | None, IO[bytes]]], workdir: Path, max_bytes: int
) -> Iterator[Article | IngestError]:
    """Uploaded files, each saved under `workdir` and read with the CLI's reader.

    Each file gets its own folder, so its article id comes from its name as when the CLI ingests it; origins
    name the upload (`news.jsonl:3`), never the temporary path.
    """
    for index, (filename, handle) in enumerate(files):
        root = workdir / str(index)
        root.mkdir()
        name = safe_name(filename, index)
        path = root / name
        with path.open("wb") as out:
            shutil.copyfileobj(handle, out)
        prefix = f"{root}/"
        for item in read_file(path, root, max_bytes=max_bytes):
            if isinstance(item, IngestError):
                yield IngestError(str(item).replace(prefix, ""))
            else:
                yield dataclasses.replace(item, origin=item.origin.replace(prefix, ""))


def temporary_dir() -> tempfile.TemporaryDirectory[str]:
    """Where uploads are unpacked while they are ingested."""
    return tempfile.TemporaryDirectory(prefix="rag-upload-")
