"""Factories: the chat model and the route classifier for the configured mode.

Gemini when `GOOGLE_API_KEY` is set, the offline models otherwise. Building
a Gemini model opens no connection; the first request does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import BaseMessage

from allin.config import Settings
from allin.models.classify_gemini import ROUTE_INSTRUCTIONS, ModelRouteClassifier
from allin.models.classify_local import LocalRouteClassifier
from allin.models.context import Route
from allin.models.extractive import ExtractiveChatModel
from allin.models.text import Embedder

# The Google SDK reads max_retries=0 as "its default" (5 retries); 1 means a single attempt.
# Retries belong to our code (tenacity), where they are bounded and logged.
_SINGLE_ATTEMPT = 1


class RouteClassifier(Protocol):
    async def aclassify(self, text: str, history: Sequence[BaseMessage] = ()) -> Route: ...


def _gemini(settings: Settings, model: str, *, streaming: bool, temperature: float | None = None) -> BaseChatModel:
    from langchain_google_genai import ChatGoogleGenerativeAI  # heavy import, only when keyed

    assert settings.google_api_key is not None
    sampling = {} if temperature is None else {"temperature": temperature}  # else the library's default
    return ChatGoogleGenerativeAI(
        model=model,
        **sampling,
        google_api_key=settings.google_api_key,
        timeout=settings.model_timeout_s,
        max_retries=_SINGLE_ATTEMPT,
        base_url=settings.google_gemini_base_url,
        disable_streaming=not streaming,
    )


def make_chat_model(settings: Settings, *, embedder: Embedder, streaming: bool = True) -> BaseChatModel:
    """The answering model: Gemini (`settings.chat_model`) when keyed, else the extractive model."""
    if settings.gemini_enabled:
        return _gemini(settings, settings.chat_model, streaming=streaming)
    return ExtractiveChatModel(embedder=embedder, disable_streaming=not streaming)


def make_route_classifier(
    settings: Settings, *, embedder: Embedder, instructions: str = ROUTE_INSTRUCTIONS
) -> RouteClassifier:
    """Gemini structured output (`settings.classify_model`) with a local fallback when keyed, else local."""
    local = LocalRouteClassifier(embedder)
    if settings.gemini_enabled:
        return ModelRouteClassifier(
            # Temperature 0: the same message should take the same route every time.
            _gemini(settings, settings.classify_model, streaming=False, temperature=0.0), local,
            instructions=instructions,
        )
    return local
