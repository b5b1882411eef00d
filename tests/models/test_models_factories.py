"""The factories pick Gemini when keyed and the offline models otherwise, without touching the network."""

from __future__ import annotations

import socket

import pytest
from langchain_core.messages import HumanMessage

from allin.config import Settings
from allin.models.chat_models import make_chat_model, make_route_classifier
from allin.models.classify_gemini import ModelRouteClassifier
from allin.models.classify_local import LocalRouteClassifier
from allin.models.extractive import ExtractiveChatModel


def offline_settings() -> Settings:
    return Settings(_env_file=None, google_api_key=None, google_gemini_base_url=None)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keyed_settings(base_url: str = "http://127.0.0.1:9") -> Settings:
    return Settings(
        _env_file=None, GOOGLE_API_KEY="test-key", google_gemini_base_url=base_url,
        chat_model="gemini-2.5-flash", classify_model="gemini-2.5-flash-lite", model_timeout_s=12.5,
    )


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("network access while building a model")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_offline_gives_the_extractive_model_and_local_classifier(embedder, no_network) -> None:
    model = make_chat_model(offline_settings(), embedder=embedder)
    assert isinstance(model, ExtractiveChatModel) and model.disable_streaming is False
    assert "Allin" in model.invoke([HumanMessage("who are you?")]).content
    assert make_chat_model(offline_settings(), embedder=embedder, streaming=False).disable_streaming is True
    assert isinstance(make_route_classifier(offline_settings(), embedder=embedder), LocalRouteClassifier)


def test_keyed_builds_gemini_without_network(embedder, no_network) -> None:
    from langchain_google_genai import ChatGoogleGenerativeAI

    settings = keyed_settings()
    model = make_chat_model(settings, embedder=embedder)
    assert isinstance(model, ChatGoogleGenerativeAI)
    assert model.model.removeprefix("models/") == "gemini-2.5-flash"
    assert model.timeout == 12.5
    assert model.max_retries == 1  # a single attempt: the SDK reads 0 as "its default of 5 retries"
    assert model.base_url == "http://127.0.0.1:9"
    assert model.google_api_key.get_secret_value() == "test-key"

    classifier = make_route_classifier(settings, embedder=embedder)
    assert isinstance(classifier, ModelRouteClassifier)
    assert classifier._model.model.removeprefix("models/") == "gemini-2.5-flash-lite"


async def test_keyed_classifier_falls_back_when_gemini_is_unreachable(embedder) -> None:
    # Nothing listens on the port: the request fails fast and the local classifier answers.
    classifier = make_route_classifier(keyed_settings(f"http://127.0.0.1:{closed_port()}"), embedder=embedder)
    assert await classifier.aclassify("```\nprint(1)\n```", []) == "code"
