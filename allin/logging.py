"""Loguru for everything, including uvicorn's and libraries' stdlib logging."""

from __future__ import annotations

import logging
import re
import sys

from loguru import logger

_TOKEN_RE = re.compile(r"(token=)[^&\s\"']+", re.IGNORECASE)


def redact(text: str) -> str:
    """Hide `token=...` values (login URLs, query strings) in anything logged."""
    return _TOKEN_RE.sub(r"\1[redacted]", text)


class _InterceptHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        frame, depth = logging.currentframe(), 2
        while frame and frame.f_code.co_filename == logging.__file__:
            frame, depth = frame.f_back, depth + 1
        name = record.name
        logger.patch(lambda r: r.update(name=name)).opt(depth=depth, exception=record.exc_info).log(
            level, redact(record.getMessage())
        )


def _patch(record) -> None:
    record["message"] = redact(record["message"])


def setup_logging(level: str = "INFO", json: bool = False) -> None:
    """Route all logs through loguru to stderr (stdout is kept for the login URL and CLI output)."""
    logger.remove()
    logger.configure(patcher=_patch)
    if json:
        logger.add(sys.stderr, level=level, serialize=True, backtrace=False, diagnose=False)
    else:
        logger.add(
            sys.stderr,
            level=level,
            backtrace=False,
            diagnose=False,
            format="<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
            "<cyan>{name}</cyan> {message}",
        )
    # The stdlib threshold matches loguru's: at level 0 every library's debug record (and
    # uvicorn's per-frame TRACE logger, switched on by it) was built only to be dropped.
    stdlib_level = 5 if level == "TRACE" else logging.getLevelName(level)
    logging.basicConfig(handlers=[_InterceptHandler()], level=stdlib_level, force=True)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "fastapi", "httpx", "psycopg", "psycopg.pool"):
        lg = logging.getLogger(name)
        lg.handlers = [_InterceptHandler()]
        lg.propagate = False
    # Our own middleware writes one line per request; uvicorn's access log would double it.
    logging.getLogger("uvicorn.access").disabled = True
    for noisy in ("httpx", "httpcore", "psycopg.pool", "google_genai", "onnxruntime", "pgserver"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
