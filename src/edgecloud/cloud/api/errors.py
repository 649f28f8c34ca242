"""Every error the API answers is JSON: ``{"error": <stable code>, "detail": <human text>}``.

    ApiError(status, error, detail)   raised by routes and dependencies on purpose
     +-- BadRequest   400             a parameter that parses but makes no sense
     +-- NotFound     404             an unknown device / node / token
    RequestValidationError -> 422     FastAPI's own parameter validation (adds ``errors``)
    ValidationFailed (core) -> 400    e.g. a bad scope when creating a token
    sqlalchemy DataError -> 400       a value the database refused (a safety net)
    sqlalchemy Operational/InterfaceError -> 503   the database is away
    HTTPException (Starlette) -> its status (404 unknown route, 405 ...)
    anything else -> 500, logged with the cause; the body never leaks internals

Bad input must never reach the last line: a test runs schemathesis to check it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from edgecloud.core.errors import ValidationFailed

log = logging.getLogger("edgecloud.cloud.api")

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    503: "unavailable",
}


class ErrorOut(BaseModel):
    error: str
    detail: str


class ApiError(Exception):
    def __init__(
        self, status: int, error: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {error}: {detail}")
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = headers


class BadRequest(ApiError):
    def __init__(self, error: str, detail: str) -> None:
        super().__init__(400, error, detail)


class NotFound(ApiError):
    def __init__(self, error: str, detail: str) -> None:
        super().__init__(404, error, detail)


def error_response(
    status: int, error: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail, **extra}, status, headers=headers)


def _loc(loc: Sequence[Any]) -> str:
    return ".".join(str(p) for p in loc)


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.error, exc.detail, exc.headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "loc": [str(p) for p in e.get("loc", ())],
            "msg": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in exc.errors()
    ]
    detail = "; ".join(f"{_loc(e['loc'])}: {e['msg']}" for e in errors) or "invalid request"
    return error_response(422, "invalid_request", detail, errors=errors)


async def _core_validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ValidationFailed)
    return error_response(400, exc.reason, exc.detail)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _CODES.get(exc.status_code, "error")
    headers = getattr(exc, "headers", None)
    return error_response(exc.status_code, code, str(exc.detail), headers)


async def _db_data_error(_: Request, exc: Exception) -> JSONResponse:
    # a value the database refused (out of range, bad encoding): the caller's input, so a 400
    log.info("database refused a value: %s", exc.__class__.__name__)
    return error_response(400, "bad_request", "a parameter is out of the range the database takes")


async def _db_unavailable(_: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable: %s", exc.__class__.__name__)
    return error_response(503, "unavailable", "the database is not available; retry shortly")


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error(
        "unhandled error on %s %s",
        request.method,
        request.url.path,
        exc_info=exc,
        extra={"path": request.url.path},
    )
    return error_response(500, "internal", "internal error; the server log has the cause")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ValidationFailed, _core_validation)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(sa_exc.DataError, _db_data_error)
    app.add_exception_handler(psycopg.DataError, _db_data_error)
    app.add_exception_handler(sa_exc.OperationalError, _db_unavailable)
    app.add_exception_handler(sa_exc.InterfaceError, _db_unavailable)
    app.add_exception_handler(psycopg.OperationalError, _db_unavailable)
    app.add_exception_handler(psycopg.InterfaceError, _db_unavailable)
    app.add_exception_handler(Exception, _unexpected)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` for the error statuses a route can answer."""
    return {s: {"model": ErrorOut, "description": _CODES.get(s, "error")} for s in statuses}
