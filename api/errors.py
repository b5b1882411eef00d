"""Every error leaves as JSON: {"error": {"code", "message", "details"?}}."""

from __future__ import annotations

from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from loguru import logger
from psycopg_pool import PoolTimeout
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


class ErrorInfo(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorResponse(BaseModel):
    """The body of every error response (documented in OpenAPI, so clients and fuzzers can rely on it)."""

    error: ErrorInfo


_DESCRIPTIONS = {
    400: "The body could not be parsed (malformed JSON or multipart data)",
    401: "Missing, invalid or revoked bearer token",
    403: "The caller is not an admin",
    404: "Not found, or not the caller's (the two are indistinguishable)",
    409: "Conflicts with the current state",
    413: "The upload is over the size limit",
    415: "The upload's type is not supported",
    422: "The request is invalid; `details` lists the fields",
    503: "The database (or another backing service) is unavailable; retry shortly",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the error statuses a route (or router) can answer."""
    return {status: {"model": ErrorResponse, "description": _DESCRIPTIONS[status]} for status in statuses}


class AppError(Exception):
    """An error meant for the client: a status, a snake_case code and a sentence."""

    def __init__(self, status: int, code: str, message: str, details: Any = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.details, self.headers = status, code, message, details, headers


def not_found(what: str = "resource") -> AppError:
    return AppError(404, "not_found", f"{what} not found")


def error_body(code: str, message: str, details: Any = None) -> dict:
    err: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        err["details"] = details
    return {"error": err}


def _response(status: int, code: str, message: str, details: Any = None, headers: dict | None = None) -> JSONResponse:
    return JSONResponse(jsonable_encoder(error_body(code, message, details)), status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> JSONResponse:
        return _response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return _response(exc.status_code, code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        first = details[0] if details else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"] if p not in ("body", "query", "path"))
        return _response(422, "validation_error", f"{where or 'request'}: {first['msg']}", details)

    @app.exception_handler(psycopg.DataError)
    async def _bad_value(request: Request, exc: psycopg.DataError) -> JSONResponse:
        # A value the request carried that Postgres cannot store or compare (a NUL character in a
        # string, a number out of range, ...): the client's input, so a 422 rather than a 500.
        logger.warning("data error on {} {}: {}", request.method, request.url.path, str(exc).splitlines()[0])
        nul = "NUL" in str(exc)
        message = "text may not contain NUL (\\u0000) characters" if nul else "a value in the request cannot be stored"
        return _response(422, "invalid_value", message)

    @app.exception_handler(PoolTimeout)
    @app.exception_handler(psycopg.OperationalError)
    async def _db_down(_: Request, exc: Exception) -> JSONResponse:
        logger.warning("database unavailable: {}", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return _response(
            503, "database_unavailable", "The database is unavailable; try again shortly.", headers={"Retry-After": "2"}
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.opt(exception=exc).error("unhandled error on {} {}", request.method, request.url.path)
        return _response(500, "internal_error", "Something went wrong on our side; it has been logged.")
