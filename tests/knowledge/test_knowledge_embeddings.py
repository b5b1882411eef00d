"""Local MiniLM embeddings: shape, normalisation, determinism, meaning; Gemini wrapper logic."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from allin.knowledge.embeddings import (
    Embedder,
    EmbeddingModelError,
    GeminiEmbedder,
    LocalMiniLM,
    as_langchain,
    default_model_path,
    get_local_embedder,
)

SENTENCES = [
    "One business day is the maximum time it should take to respond to a code review request.",
    "Reviewers should respond quickly to code review requests.",
    "The cafeteria serves lasagna on Fridays.",
    "Our Kubernetes cluster autoscaler adds nodes when pods are pending.",
]


def test_shape_dtype_and_unit_length(embedder) -> None:
    assert isinstance(embedder, Embedder)
    assert (embedder.name, embedder.dim) == ("minilm-l6-v2-int8", 384)
    vectors = embedder.embed(SENTENCES)
    assert vectors.shape == (4, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    query = embedder.embed_query("how fast should I review code?")
    assert query.shape == (384,) and abs(float(np.linalg.norm(query)) - 1) < 1e-5
    assert embedder.embed([]).shape == (0, 384)


def test_deterministic_and_independent_of_batching(embedder) -> None:
    once = embedder.embed(SENTENCES)
    again = embedder.embed(list(reversed(SENTENCES)))[::-1]
    alone = np.stack([embedder.embed_query(s) for s in SENTENCES])
    np.testing.assert_allclose(once, again, atol=1e-5)
    np.testing.assert_allclose(once, alone, atol=1e-5)
    assert float(once[0] @ alone[0]) == pytest.approx(1.0, abs=1e-5)


def test_related_sentences_are_closer_than_unrelated(embedder) -> None:
    v = embedder.embed(SENTENCES)
    q = embedder.embed_query("How quickly do I need to answer a code review?")
    scores = v @ q
    assert scores[0] > 0.5 and scores[1] > 0.5
    assert min(scores[0], scores[1]) > max(scores[2], scores[3]) + 0.3
    assert float(v[0] @ v[1]) > float(v[0] @ v[2]) + 0.3


def test_parallel_single_text_runs_match_one_batched_run(embedder) -> None:
    texts = [f"{s} ({i})" * (1 + i % 5) for i, s in enumerate(SENTENCES * 6)]  # mixed lengths: padding
    batched = LocalMiniLM(threads=1, batch_size=32)
    assert embedder.threads == 2 and embedder.batch_size == 1  # the defaults the throughput relies on
    np.testing.assert_allclose(embedder.embed(texts), batched.embed(texts), atol=1e-5)


def test_long_texts_are_truncated_not_rejected(embedder) -> None:
    long = "code review " * 2000
    assert embedder.embed([long, "short"]).shape == (2, 384)


def test_factory_is_cached_and_lazy() -> None:
    assert get_local_embedder() is get_local_embedder()
    fresh = LocalMiniLM()
    assert fresh._session is None  # nothing loads until the first embed


def test_model_checksum_is_verified(tmp_path: Path) -> None:
    tampered = tmp_path / "model.onnx"
    shutil.copy(default_model_path(), tampered)
    with tampered.open("r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02\x03")
    with pytest.raises(EmbeddingModelError, match="sha256"):
        LocalMiniLM(model_path=tampered).embed(["x"])


def test_langchain_adapter(embedder) -> None:
    from langchain_core.embeddings import Embeddings

    adapter = as_langchain(embedder)
    assert isinstance(adapter, Embeddings)
    docs = adapter.embed_documents(SENTENCES[:2])
    assert len(docs) == 2 and len(docs[0]) == 384 and isinstance(docs[0][0], float)
    assert np.allclose(adapter.embed_query(SENTENCES[0]), docs[0], atol=1e-5)


# --- Gemini: the request shape, re-normalisation, retries (a stand-in for the SDK client) ---


class _Models:
    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.calls: list[dict] = []

    def embed_content(self, *, model, contents, config):
        self.calls.append({"model": model, "contents": list(contents), "config": config})
        if self.failures:
            raise self.failures.pop(0)
        dim = config.output_dimensionality
        return SimpleNamespace(
            embeddings=[SimpleNamespace(values=[float(i + 1)] * dim) for i in range(len(contents))]
        )


def _client(failures: list[Exception] | None = None):
    return SimpleNamespace(models=_Models(failures or []))


def test_gemini_requests_dimension_and_renormalises() -> None:
    client = _client()
    embedder = GeminiEmbedder(client, "gemini-embedding-001", 768, batch_size=2)
    vectors = embedder.embed(["a", "b", "c"])
    assert vectors.shape == (3, 768)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    calls = client.models.calls
    assert [c["contents"] for c in calls] == [["a", "b"], ["c"]]
    assert calls[0]["config"].output_dimensionality == 768
    assert calls[0]["config"].task_type == "RETRIEVAL_DOCUMENT"
    embedder.embed_query("q")
    assert calls[-1]["config"].task_type == "RETRIEVAL_QUERY"
    with pytest.raises(ValueError):
        GeminiEmbedder(client, "m", 3072)  # over pgvector's HNSW limit


def test_gemini_retries_rate_limits_and_server_errors_only() -> None:
    from google.genai import errors

    client = _client(
        [errors.ClientError(429, {"error": {"message": "slow down"}}), errors.ServerError(503, {})]
    )
    embedder = GeminiEmbedder(client, "m", 8, retry_wait_s=0)
    assert embedder.embed(["x"]).shape == (1, 8)
    assert len(client.models.calls) == 3
    bad = _client([errors.ClientError(400, {"error": {"message": "bad request"}})])
    with pytest.raises(errors.ClientError):
        GeminiEmbedder(bad, "m", 8, retry_wait_s=0).embed(["x"])
    assert len(bad.models.calls) == 1
    always = _client([errors.ServerError(500, {}) for _ in range(10)])
    with pytest.raises(errors.ServerError):
        GeminiEmbedder(always, "m", 8, max_retries=2, retry_wait_s=0).embed(["x"])
    assert len(always.models.calls) == 3  # bounded


def test_concurrent_callers_get_the_same_vectors(embedder) -> None:
    from concurrent.futures import ThreadPoolExecutor

    expected = embedder.embed(SENTENCES)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: embedder.embed(SENTENCES), range(8)))
    for result in results:
        np.testing.assert_allclose(result, expected, atol=1e-5)


def test_a_recent_question_is_not_computed_again_for_its_exchange() -> None:
    """After a turn, its question and answer are embedded together; the question's vector was made
    for search minutes before and is reused (the same numbers), only the answer is computed."""
    computed: list[list[str]] = []

    class Recording(LocalMiniLM):
        def _compute(self, texts):
            computed.append(list(texts))
            return super()._compute(texts)

    embedder = Recording(threads=1)
    question, answer = "How fast should reviews be?", "Within one business day [1]."
    asked = embedder.embed_query(question)
    asked[:] = 0  # callers get a copy: scaling it leaves the kept vector alone
    pair = embedder.embed([question, answer])
    assert computed == [[question], [answer]]
    np.testing.assert_array_equal(pair[0], embedder.embed_query(question))
    np.testing.assert_allclose(pair, LocalMiniLM(threads=1).embed([question, answer]), atol=1e-5)
    assert len(computed) == 2  # the second embed_query was kept too
