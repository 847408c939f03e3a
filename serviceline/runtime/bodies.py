"""Input no service can store: refused with a 422 naming where, before any handler runs.

Python's JSON parser takes `NaN`, `Infinity`, `1e999`, lone surrogates, NUL characters and
integers of any size, and a URL may carry NUL (`%00`); no database column takes them (PostgreSQL
refuses NUL in text), and neither does a JSON response echoing them back. Refusing them once
here keeps every service's handlers to their own rules.
"""

from __future__ import annotations

import json
import math
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serviceline.model.fields import MAX_INT

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
Location = list[str | int]


class UnstorableInputError(ValueError):
    def __init__(self, loc: Location, msg: str, kind: str) -> None:
        super().__init__(msg)
        self.loc, self.msg, self.kind = loc, msg, kind

    def detail(self) -> list[dict[str, Any]]:
        """As FastAPI's HTTPValidationError, the shape every service's OpenAPI gives a 422."""
        return [{"loc": self.loc, "msg": self.msg, "type": self.kind}]


def check_storable(value: Any, loc: Location | None = None) -> None:
    """Numbers must be finite and fit 64 bits; text (keys too) UTF-8 without NUL."""
    loc = [] if loc is None else loc
    if isinstance(value, str):
        _check_text(value, loc)
    elif isinstance(value, bool):
        return
    elif isinstance(value, int) and abs(value) > MAX_INT:
        raise UnstorableInputError(loc, "integer too large for 64 bits", "int_too_large")
    elif isinstance(value, float) and not math.isfinite(value):
        raise UnstorableInputError(
            loc, "number must be finite (not NaN or Infinity)", "finite_number"
        )
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_storable(item, [*loc, index])
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, [*loc, key])
            check_storable(item, [*loc, key])


def _check_text(text: str, loc: Location) -> None:
    if "\x00" in text:
        raise UnstorableInputError(loc, "text must not contain the NUL character", "string_nul")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise UnstorableInputError(
            loc, "text must be valid Unicode, not a lone surrogate", "string_unicode"
        ) from error


def check_body(body: bytes) -> None:
    """UnstorableInputError naming where `body` holds what cannot be stored; JSON errors pass on."""
    try:
        decoded = json.loads(body)
    except ValueError:
        return  # not JSON at all: FastAPI's own validation answers that, naming where
    check_storable(decoded, ["body"])


def check_url(scope: Scope) -> None:
    """UnstorableInputError naming the path or query parameter that carries a NUL."""
    if "\x00" in scope["path"]:
        raise UnstorableInputError(["path"], "the path must not contain NUL", "string_nul")
    query = scope["query_string"].decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True):
        _check_text(name, ["query", name])
        _check_text(value, ["query", name])


class StorableInputMiddleware:
    """Reads a JSON write's body once, refuses what cannot be stored, and passes it on as read;
    a URL carrying NUL is refused whatever the method."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            check_url(scope)
        except UnstorableInputError as error:
            await _refuse(send, error)
            return
        # a write to a copy is refused unread, or its route reads and checks it (copy_changes)
        copy = scope["path"].startswith("/copies/")
        if scope["method"] not in WRITES or copy or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        body = await _read(receive)
        try:
            check_body(body)
        except UnstorableInputError as error:
            await _refuse(send, error)
            return
        await self.app(scope, _replay(body, receive), send)


def _is_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return b"json" in value.lower()
    return False


async def _read(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()  # what follows the body: a disconnect
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


async def _refuse(send: Send, error: UnstorableInputError) -> None:
    content = json.dumps({"detail": error.detail()}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(content)).encode()),
    ]
    await send({"type": "http.response.start", "status": 422, "headers": headers})
    await send({"type": "http.response.body", "body": content})
