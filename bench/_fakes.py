"""Zero-latency stand-ins for the models, so benchmarks measure our own overhead (transport, graph, database)."""

from __future__ import annotations

import hashlib

import numpy as np
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

ANSWER = "Reviews should take at most one business day [1]."


class InstantChatModel(BaseChatModel):
    """Answers at once with a fixed sentence, streamed word by word."""

    @property
    def _llm_type(self) -> str:
        return "instant"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=ANSWER))])

    def _stream(self, messages, stop=None, run_manager=None, **kwargs):
        for word in ANSWER.split(" "):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=word + " "))
            if run_manager:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs):
        return self._generate(messages, stop)

    async def _astream(self, messages, stop=None, run_manager=None, **kwargs):
        # Natively async, as Gemini's client is: without this LangChain runs `_stream` in a worker
        # thread, one hop per token, which no real model here costs.
        for word in ANSWER.split(" "):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=word + " "))
            if run_manager:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    def bind_tools(self, tools, **kwargs):
        return self


class HashEmbedder:
    """Deterministic unit vectors from a hash: no model, microseconds per text."""

    name = "hash-384"
    dim = 384

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "little")
            v = np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)
            out[i] = v / np.linalg.norm(v)
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]
