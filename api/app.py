"""The FastAPI app factory. Resources are built in the lifespan, never at import."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from allin.config import Settings, load_settings
from api import __version__
from api.errors import install_error_handlers
from api.lifespan import lifespan
from api.metrics import Metrics
from api.middleware import RequestMiddleware
from api.routes import admin_users, health
from api.state import Resources


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    app = FastAPI(
        title="Allin",
        version=__version__,
        description="Allin, from Team 8: answers from your team's documents, runs code, remembers you.",
        lifespan=lifespan,
    )
    metrics = Metrics()
    app.state.res = Resources(settings=settings, metrics=metrics)
    app.state.on_startup = []
    app.state.on_shutdown = []
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
    return app
