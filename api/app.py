"""The FastAPI app factory. Resources are built in the lifespan, never at import."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from allin.config import Settings, load_settings
from api import __version__
from api.assistant import start_assistant
from api.errors import install_error_handlers
from api.lifespan import lifespan
from api.metrics import Metrics
from api.middleware import RequestMiddleware
from api.routes import admin_users, health
from api.ws import endpoint as ws_endpoint
from api.state import Resources


def create_app(settings: Settings | None = None, *, chat_model: Any = None, embedder: Any = None) -> FastAPI:
    """The app. `chat_model`/`embedder` replace the configured ones (benchmarks, tests of the edges)."""
    settings = settings or load_settings()
    app = FastAPI(
        title="Allin",
        version=__version__,
        description="Allin, from Team 8: answers from your team's documents, runs code, remembers you.",
        lifespan=lifespan,
    )
    metrics = Metrics()
    app.state.res = Resources(settings=settings, metrics=metrics)
    app.state.res.extras.update(chat_model_override=chat_model, embedder_override=embedder)
    app.state.on_startup = [start_assistant]
    app.state.on_shutdown = [ws_endpoint.close_all]
    install_error_handlers(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=False,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(RequestMiddleware, metrics=metrics)
    app.include_router(health.router)
    app.include_router(admin_users.router)
    app.include_router(ws_endpoint.router)
    return app
