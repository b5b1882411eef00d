"""Which model errors are worth a retry, and what the user is told when they persist."""

from __future__ import annotations

import asyncio

import httpx
import psycopg
from psycopg_pool import PoolTimeout
from langchain_core.exceptions import ModelError

_TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}


class TurnTimeout(Exception):
    """A whole turn ran past TURN_TIMEOUT_S."""


def _status(exc: BaseException) -> int | None:
    for obj in (exc, exc.__cause__):
        code = getattr(obj, "code", None)
        if isinstance(code, int):
            return code
    return None


def is_transient_model_error(exc: BaseException) -> bool:
    """Rate limits, server errors, timeouts and dropped connections: another try may work."""
    if isinstance(exc, ModelError):
        return exc.is_retryable
    if isinstance(exc, (asyncio.TimeoutError, httpx.TimeoutException, httpx.TransportError, ConnectionError)):
        return True
    return _status(exc) in _TRANSIENT_STATUS


def user_message(exc: BaseException) -> tuple[str, str]:
    """(error code, sentence) for the client; never the provider's raw text."""
    if isinstance(exc, TurnTimeout):
        return "turn_timeout", "This answer took too long and was stopped. Please try again."
    if isinstance(exc, (psycopg.Error, PoolTimeout)):
        return "database_unavailable", "The database is not answering right now. Please try again shortly."
    status = _status(exc)
    if status == 429:
        return "model_rate_limited", "The model is busy right now (rate limited). Please try again in a moment."
    if status in (401, 403) or status == 400 and "key" in str(exc).lower():
        return "model_auth_failed", "The model rejected our API key; an admin needs to check GOOGLE_API_KEY."
    if isinstance(exc, (asyncio.TimeoutError, httpx.TimeoutException)) or status in (408, 504):
        return "model_timeout", "The model took too long to answer. Please try again."
    if status is not None and status >= 500 or is_transient_model_error(exc):
        return "model_unavailable", "The model is unavailable right now. Please try again shortly."
    return "model_error", "The model could not answer this request."
