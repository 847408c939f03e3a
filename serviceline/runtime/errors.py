"""How every service answers what it refuses, and how its OpenAPI says so."""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import IntegrityError

from serviceline.runtime.clock import ClockError
from serviceline.runtime.upstream import UpstreamError

# a refusal's body: the kernel's {"detail": ...}, or the error list of a real-shaped API
ERROR_SCHEMA: dict[str, Any] = {
    "title": "Refused",
    "type": "object",
    "properties": {
        "detail": {"anyOf": [{"type": "string"}, {"type": "array"}]},
        "errors": {"type": "array"},
        "message": {"type": "string"},
    },
}
ERRORS = {
    "4XX": {
        "description": "Refused: no or a wrong credential, not found, a conflict, bad input",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Refused"}}},
    }
}


# "field: message", or "[2] field: message" for the third record of a batch
NAMED = re.compile(r"(?:\[(?P<index>\d+)\] )?(?P<field>[\w.\[\]]+): (?P<message>.+)", re.DOTALL)


def _named(request: Request, detail: str) -> HTTPException:
    """A handler's own "field: message" as the list of FastAPI's validation errors."""
    named = NAMED.fullmatch(detail)
    loc: list[str | int] = ["body"]
    message = detail
    if named is not None:
        field, index, message = named["field"], named["index"], named["message"]
        loc = ["query" if field in request.query_params else "body"]
        loc += [*([] if index is None else [int(index)]), *_parts(field)]
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        [{"loc": loc, "msg": message, "type": "value_error"}],
    )


def _parts(field: str) -> list[str | int]:
    """`mentor_trainings[0].hours_completed` as a location: its names, and indexes as numbers."""
    return [int(p[1:-1]) if p.startswith("[") else p for p in re.findall(r"\w+|\[\d+\]", field)]


def add_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(HTTPException, _refused)
    app.add_exception_handler(IntegrityError, _conflict)
    app.add_exception_handler(UpstreamError, _upstream_failed)
    app.add_exception_handler(ClockError, _clock_refused)


def document_errors(app: FastAPI) -> None:
    """Every operation documents the refusals it may answer, in one shape."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
            schema.setdefault("components", {}).setdefault("schemas", {})["Refused"] = ERROR_SCHEMA
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    responses = operation.setdefault("responses", {})
                    for code, response in ERRORS.items():
                        responses.setdefault(code, response)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


async def _invalid(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    return JSONResponse(
        {"detail": [_echoable(item) for item in error.errors()]},
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


def _echoable(item: Any) -> Any:
    """A validation error as JSON can carry it: what it echoes of the input goes if it can't."""
    encoded = jsonable_encoder(item)
    try:
        json.dumps(encoded, allow_nan=False).encode("utf-8")
    except ValueError:
        return {key: encoded[key] for key in ("loc", "msg", "type") if key in encoded}
    return encoded


async def _refused(request: Request, error: Exception) -> Response:
    """A handler's own 422 "field: message" says which field, as the schema's list does."""
    assert isinstance(error, HTTPException)
    if error.status_code == status.HTTP_422_UNPROCESSABLE_CONTENT and isinstance(error.detail, str):
        error = _named(request, error.detail)
    return await http_exception_handler(request, error)


async def _conflict(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, IntegrityError)
    return JSONResponse(
        {"detail": f"conflicts with a stored record: {error.orig}"},
        status_code=status.HTTP_409_CONFLICT,
    )


async def _upstream_failed(_request: Request, error: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(error)}, status_code=status.HTTP_502_BAD_GATEWAY)


async def _clock_refused(_request: Request, error: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(error)}, status_code=status.HTTP_409_CONFLICT)
