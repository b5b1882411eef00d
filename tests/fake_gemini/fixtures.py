"""pytest plugin: the `fake_gemini` fixture.

Registered from tests/conftest.py with
`pytest_plugins = ["tests.fake_gemini.fixtures"]`.

One TLS server per test session; every test gets it reset (script, journal,
files, caches, Live sessions) and an environment where a plain
`genai.Client()` or `ChatGoogleGenerativeAI(model=...)` talks to it:
SSL_CERT_FILE (the fake's certificate only), GOOGLE_GEMINI_BASE_URL and
GOOGLE_API_KEY. Build clients inside the test: the SDK reads these when a
Client is constructed.

    def test_answer(fake_gemini):
        fake_gemini.enqueue(Text("It prints 2."))
        client = genai.Client()
        ...
        assert fake_gemini.last_request("generate").texts == ["What does it print?"]

Replies, defaults and journal helpers: tests/fake_gemini/README.md.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .fake import FakeGemini

# Env that would send the SDK elsewhere or change its auth.
CLEARED_ENV = ("GEMINI_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_CLOUD_PROJECT",
               "GOOGLE_CLOUD_LOCATION", "GOOGLE_VERTEX_BASE_URL", "SSL_CERT_DIR",
               "GOOGLE_APPLICATION_CREDENTIALS")


@pytest.fixture(scope="session")
def fake_gemini_server() -> Iterator[FakeGemini]:
    fake = FakeGemini().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def fake_gemini(fake_gemini_server: FakeGemini, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGemini]:
    fake = fake_gemini_server
    fake.reset()
    for name in CLEARED_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", str(fake.cert_file))
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake.base_url)
    monkeypatch.setenv("GOOGLE_API_KEY", fake.api_key)
    yield fake
    fake.reset()
