"""The FastAPI app factory. Resources are built in the lifespan, never at import."""

from __future__ import annotations

import functools
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from allin.chats.after_turn import after_turn
from allin.config import Settings, load_settings
from api import __version__
from api.assistant import drain_after_turns, start_assistant, stop_assistant
from api.knowledge_jobs import start_knowledge_jobs, stop_knowledge_jobs
from api.errors import install_error_handlers
from api.lifespan import lifespan
from api.memory import start_memory, stop_memory
from api.metrics import Metrics
from api.middleware import RequestMiddleware
from api.routes import admin_feedback, admin_prompts, admin_users, health, web
from api.routes import chats as chat_routes
from api.routes import knowledge as knowledge_routes
from api.routes import attachments as attachment_routes
from api.routes import memory as memory_routes
from api.ws import endpoint as ws_endpoint
from api.ws.voice import start_voice
from api.state import Resources
from api.tracing import start_tracing, stop_tracing


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
    app.state.res.extras.update(chat_model_override=chat_model, embedder_override=embedder,
                                # titles and turn embeddings after each completed turn (memory chains in front)
                                on_turn_done=functools.partial(after_turn, app.state.res))
    app.state.on_startup = [start_tracing, start_memory, start_assistant, start_voice, start_knowledge_jobs]
    # Run in reverse: turns end, then their after-turn work, then memory drains.
    app.state.on_shutdown = [stop_assistant, stop_tracing, stop_knowledge_jobs, stop_memory, drain_after_turns,
                             ws_endpoint.close_all]
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
    app.include_router(admin_prompts.router)
    app.include_router(admin_feedback.router)
    app.include_router(ws_endpoint.router)
    app.include_router(web.router)  # the web client: /, /static/..., /me
    app.include_router(chat_routes.router)
    app.include_router(memory_routes.router)
    app.include_router(knowledge_routes.router)
    app.include_router(attachment_routes.router)
    return app
