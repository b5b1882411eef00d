"""mem0 set up for Allin: pgvector on our Postgres, our embedder, Gemini (keyed) for fact extraction.

mem0 2.2 reads two environment variables once, when it is first imported:
`MEM0_DIR` (it creates that folder and writes `config.json` into it, `~/.mem0`
by default) and `MEM0_TELEMETRY` (PostHog events and a notices fetch from
GitHub, on by default). `build_mem0` sets both and only then imports mem0.
This happens in the factory, not when this module is imported: the data dir
is known only from Settings at startup, and a process that imports `allin`
without using memory (CLI, tests) should not have its environment changed.

Everything here blocks (the first import of mem0 takes 2-4 s, opening a
pool): call `build_mem0` from a worker thread.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from loguru import logger

from allin.config import Settings
from allin.memory.facts import first_person
from allin.memory.options import COLLECTION, MemoryOptions

# What Gemini is asked to keep (mem0's own prompt also keeps what the assistant recommended
# and any "memorable" detail; Allin remembers the person, not the documents).
EXTRACTION_INSTRUCTIONS = (
    "Extract only lasting facts the user states about themselves: their name or what to call them, "
    "team, role, the projects or services they work on, their manager or mentor, location or time zone, "
    "the tools and ways of working they prefer. Do not extract questions, requests, anything the "
    "assistant said or recommended, the content of team documents or code, passing states or problems "
    "of the moment, or secrets (passwords, tokens, keys). Write each fact as one short sentence about "
    "the user."
)

# mem0's extraction answer, as a response schema so Gemini returns exactly that JSON.
FACTS_SCHEMA = {
    "type": "object",
    "properties": {
        "memory": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"id": {"type": "string"}, "text": {"type": "string"}},
                "required": ["text"],
            },
        }
    },
    "required": ["memory"],
}


class MemoryConfigError(RuntimeError):
    """Memory cannot run with these settings (the message says why)."""


def mem0_home(settings: Settings) -> Path:
    return settings.data_path / "mem0"


def prepare_mem0_environment(home: Path) -> None:
    """Point mem0 at `home` and switch its telemetry off, before it is imported."""
    home.mkdir(parents=True, exist_ok=True)
    os.environ["MEM0_DIR"] = str(home)
    os.environ["MEM0_TELEMETRY"] = "False"
    # Imported earlier by someone else: the flags were read then. Switch them off in place.
    telemetry = sys.modules.get("mem0.memory.telemetry")
    if telemetry is not None and getattr(telemetry, "MEM0_TELEMETRY", False):
        logger.warning("mem0 was imported before its telemetry was switched off; switching it off now")
        telemetry.MEM0_TELEMETRY = False
    main = sys.modules.get("mem0.memory.main")
    if main is not None:
        main.MEM0_TELEMETRY = False


class NoExtractionModel(BaseChatModel):
    """The LLM mem0 gets offline. Offline memories are stored verbatim (`infer=False`): nothing may call it."""

    @property
    def _llm_type(self) -> str:
        return "allin-no-extraction"

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        raise RuntimeError("offline memory stores statements verbatim; fact extraction needs GOOGLE_API_KEY")


class FirstPersonEmbeddings(Embeddings):
    """Embeds "User works on X" as "I work on X" (see `first_person`); questions pass unchanged.

    mem0 embeds memories and queries alike through `embed_query`.
    """

    def __init__(self, inner: Embeddings) -> None:
        self.inner = inner

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(first_person(text))

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.inner.embed_documents([first_person(t) for t in texts])


def extraction_model(settings: Settings, options: MemoryOptions) -> BaseChatModel:
    """Gemini in JSON mode with mem0's answer schema (keyed), or the model that refuses (offline)."""
    if not settings.gemini_enabled:
        return NoExtractionModel()
    from langchain_google_genai import ChatGoogleGenerativeAI

    return ChatGoogleGenerativeAI(
        model=options.extraction_model or settings.chat_model,
        google_api_key=settings.google_api_key,
        base_url=settings.google_gemini_base_url,
        timeout=settings.model_timeout_s,
        max_retries=1,  # one attempt (the SDK reads 0 as its default of 5); a failure falls back to verbatim
        temperature=0,
        disable_streaming=True,
        response_mime_type="application/json",
        response_schema=FACTS_SCHEMA,
    )


def _configure_connection(conn: Any) -> None:
    # A user's memories are a small part of the table: let the HNSW scan go on until the user's
    # filter has found enough rows (pgvector >= 0.8; older versions ignore the setting).
    conn.execute("SET hnsw.iterative_scan = relaxed_order")


def build_mem0(settings: Settings, *, db_url: str, embedder: Any, options: MemoryOptions) -> tuple[Any, Any]:
    """(mem0 AsyncMemory, its psycopg ConnectionPool). Blocking: run it in a worker thread.

    The pool is ours (mem0 would open one with a 30 s checkout wait and no way to close it
    but garbage collection); close it with `pool.close()` when done.
    """
    dim = getattr(embedder, "dim", None)
    if dim is not None and int(dim) != settings.embedding_dim:
        raise MemoryConfigError(
            f"the embedder makes {dim}-d vectors but EMBEDDING_DIM is {settings.embedding_dim} "
            "(the memories table was made for that)"
        )
    prepare_mem0_environment(mem0_home(settings))

    from mem0 import AsyncMemory
    from psycopg_pool import ConnectionPool

    from allin.db.pool import check_if_suspect_sync
    from allin.knowledge.embeddings import as_langchain

    pool = ConnectionPool(
        db_url,
        min_size=0,
        max_size=options.pool_max,
        # mem0 commits where it writes; autocommit keeps its reads from leaving transactions open.
        kwargs={"autocommit": True, "prepare_threshold": None, "connect_timeout": 3},
        timeout=settings.db_timeout_s,
        configure=_configure_connection,
        check=check_if_suspect_sync,  # a round trip only when the server has closed the connection
        open=False,
        name="allin-mem0",
    )
    pool.open(wait=False)
    config = {
        "vector_store": {
            "provider": "pgvector",
            "config": {
                "collection_name": COLLECTION,
                "embedding_model_dims": settings.embedding_dim,
                "hnsw": True,
                "diskann": False,
                "connection_pool": pool,
            },
        },
        "embedder": {
            "provider": "langchain",
            "config": {"model": FirstPersonEmbeddings(as_langchain(embedder)),
                       "embedding_dims": settings.embedding_dim},
        },
        "llm": {"provider": "langchain", "config": {"model": extraction_model(settings, options)}},
        # Nothing in Allin reads mem0's change history, and a file would keep the text of deleted
        # memories on one replica's disk: keep it in memory (it also holds the last few messages
        # per user that mem0 shows Gemini as context).
        "history_db_path": ":memory:",
        "custom_instructions": EXTRACTION_INSTRUCTIONS,
    }
    try:
        memory = AsyncMemory.from_config(config)
    except Exception:
        pool.close()
        raise
    return memory, pool
