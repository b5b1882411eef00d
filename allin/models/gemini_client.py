"""The google-genai client for the configured key and endpoint (built on demand, never at import)."""

from __future__ import annotations

from typing import Any

from allin.config import Settings


def make_genai_client(settings: Settings) -> Any:
    from google import genai
    from google.genai import types

    if settings.google_api_key is None:
        raise RuntimeError("GOOGLE_API_KEY is not set")
    options = types.HttpOptions(
        base_url=settings.google_gemini_base_url,
        timeout=int(settings.model_timeout_s * 1000),
    ) if settings.google_gemini_base_url else types.HttpOptions(timeout=int(settings.model_timeout_s * 1000))
    return genai.Client(api_key=settings.google_api_key.get_secret_value(), http_options=options)


def api_status(exc: BaseException) -> int | None:
    """The HTTP status of a google-genai APIError (None for other errors)."""
    code = getattr(exc, "code", None)
    return code if isinstance(code, int) else None


class UsesGenaiClient:
    """Holds the settings and makes the google-genai client on first use (or takes one, in tests)."""

    def __init__(self, settings: Settings, *, client: Any = None) -> None:
        self._settings = settings
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = make_genai_client(self._settings)
        return self._client
