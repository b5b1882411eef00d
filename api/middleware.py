"""Pure ASGI middleware (streaming- and WebSocket-safe): request ids, access log, headers, metrics."""

from __future__ import annotations

import time
import uuid

from loguru import logger
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from allin.logging import redact

# The page is plain ES modules: no inline script, nothing from other origins.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", CSP.encode()),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"microphone=(self), camera=(), geolocation=()"),
]


class RequestMiddleware:
    def __init__(self, app: ASGIApp, metrics=None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _header(scope, b"x-request-id") or uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers.append((b"x-request-id", request_id.encode()))
                headers.extend(h for h in SECURITY_HEADERS if h[0] not in present)
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            route_path = getattr(route, "path", None) or "unmatched"
            path = scope.get("path", "")
            query = scope.get("query_string", b"").decode("latin-1")
            if query:
                path = f"{path}?{query}"
            log = logger.info if status < 500 else logger.error
            if route_path in ("/health", "/ready", "/metrics") and status < 400:
                log = logger.debug
            log("{} {} {} {} {:.1f}ms", request_id, scope["method"], redact(path), status, elapsed * 1000)
            if self.metrics is not None:
                self.metrics.http_requests.labels(scope["method"], route_path, str(status)).inc()
                self.metrics.http_latency.labels(scope["method"], route_path).observe(elapsed)


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope.get("headers", []):
        if k.lower() == name:
            value = v.decode("latin-1")[:64]
            return value if value.replace("-", "").isalnum() else None
    return None
