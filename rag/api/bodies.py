"""JSON request bodies: strict UTF-8, and no text that cannot be encoded (unpaired surrogates), by field name.

A JSON escape like `\\ud800` decodes to a string that no UTF-8 encoder accepts. pydantic refuses it in some
string fields but not in unions, extra fields or object keys, and one that reaches the tokenizer or a JSON
encoder is a 500. One check of the decoded body covers every route with a JSON body, fields of future ones too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

_SURROGATE = re.compile("[\ud800-\udfff]")


def _field(path: tuple[str | int, ...]) -> str:
    return ".".join(str(p) for p in path) or "body"


def _surrogate_problem(text: str) -> str | None:
    found = _SURROGATE.search(text)
    if found is None:
        return None
    return (
        f"unpaired surrogate \\u{ord(found.group()):04x} at character {found.start()}; "
        "send valid Unicode (a surrogate escape needs its pair, like \\ud83d\\ude00)"
    )


def broken_text(value: Any) -> str | None:
    """The first string (value or object key) that is not valid Unicode, as `field: what is wrong`; else None."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), value)]
    while stack:  # a loop, not recursion: JSON nests as deep as the parser allows
        path, item = stack.pop()
        if isinstance(item, str):
            problem = _surrogate_problem(item)
            if problem:
                return f"{_field(path)}: {problem}"
        elif isinstance(item, dict):
            for key, sub in reversed(item.items()):
                problem = _surrogate_problem(key)
                if problem:
                    return f"{_field(path)}: the field name {json.dumps(key)} holds an {problem}"
                stack.append(((*path, key), sub))
        elif isinstance(item, list):
            stack.extend(((*path, i), sub) for i, sub in reversed(list(enumerate(item))))
    return None


def decode_json(raw: bytes) -> Any:
    """UTF-8 JSON (a BOM is tolerated) whose every string is valid Unicode; 422 naming the field otherwise."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise HTTPException(
            422, f"body: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); send JSON as UTF-8"
        ) from None
    value = json.loads(text)  # a JSONDecodeError is FastAPI's 422 `json_invalid`
    problem = broken_text(value)
    if problem:
        raise HTTPException(422, problem)
    return value


class CheckedJsonRequest(Request):
    """A request whose `json()` is `decode_json`: FastAPI reads JSON bodies through it."""

    async def json(self) -> Any:
        """The decoded, checked body (once)."""
        if not hasattr(self, "_json"):
            self._json = decode_json(await self.body())
        return self._json


class CheckedJsonRoute(APIRoute):
    """A route whose JSON body is decoded by `decode_json` (FastAPI passes HTTPExceptions from it through)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """FastAPI's handler, given a `CheckedJsonRequest`."""
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            return await handler(CheckedJsonRequest(request.scope, request.receive))

        return checked
