"""Serving the app under uvicorn, with a drain step on shutdown.

uvicorn's own shutdown drops every WebSocket with 1012 before the app's
lifespan hears about it, so running turns would lose their sockets mid-answer.
Draining first (stop accepting, let running turns finish briefly, close
sockets with 1001 "going away") is what clients and the docs expect.
"""

from __future__ import annotations

import gc
import socket

import uvicorn
from fastapi import FastAPI

from allin.config import Settings
from api.ws import endpoint as ws_endpoint


# Young-generation collections every 10,000 net allocations instead of 700: a turn allocates tens
# of thousands of short-lived objects, and each collection has a fixed cost.
GC_THRESHOLDS = (10_000, 20, 20)


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self.allin_app = app

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        # Everything made at startup (modules, models, the graph) lives as long as the process:
        # freezing it keeps the cyclic GC from walking it again and again. Unfrozen, a full
        # collection took up to 0.34 s and the GC 8% of a busy server's time (bench/ws_load.py).
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()  # no new connections while running turns finish
        await ws_endpoint.close_all(self.allin_app.state.res)
        await super().shutdown(sockets)


def uvicorn_config(app: FastAPI, settings: Settings, **uvicorn_options) -> uvicorn.Config:
    """The server's options; the tests' live servers use them too, so they meet the same limits."""
    options = dict(
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        timeout_graceful_shutdown=15,
        ws_max_size=settings.ws_max_frame_kb * 1024,
        ws_ping_interval=settings.ws_ping_interval_s,
        ws_ping_timeout=settings.ws_ping_interval_s,
        # Frames are small and many (a token each): compressing them costs more CPU than it saves.
        ws_per_message_deflate=False,
    )
    return uvicorn.Config(app, **(options | uvicorn_options))


def serve(app: FastAPI, settings: Settings, **uvicorn_options) -> None:
    """Run until SIGTERM/SIGINT (blocking)."""
    DrainingServer(uvicorn_config(app, settings, **uvicorn_options), app).run()
