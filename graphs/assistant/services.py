"""The real dependencies of the assistant graph: models, retrieval, sandbox, memory, prompts."""

from __future__ import annotations

import asyncio
from functools import cached_property
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from loguru import logger
from psycopg_pool import AsyncConnectionPool

from allin.config import Settings, load_settings
from allin.models.context import AttachedFile, CodeRun, Passage, snippet
from allin.prompts import Prompt, current_prompt
from graphs.assistant.context import Context
from graphs.assistant.files import pick_documents
from graphs.assistant.state import Route

if TYPE_CHECKING:
    from allin.knowledge.gemini_files import GeminiFiles


class ServiceDeps:
    """Built once per process (in the app's lifespan or the CLI) around a shared pool."""

    _files_offline_logged = False  # files mode without a key is logged once per process

    def __init__(self, settings: Settings, pool: AsyncConnectionPool | None, *, embedder: Any = None,
                 memory: Any = None, chat_model: BaseChatModel | None = None) -> None:
        self.settings = settings
        self._pool = pool
        self._context_cache: Any = None
        self._embedder = embedder
        self._chat_model = chat_model
        self.memory = memory  # allin.memory store, when configured

    # -- plumbing ---------------------------------------------------------------
    async def pool(self) -> AsyncConnectionPool | None:
        return self._pool

    @property
    def embedder_if_made(self):
        """The embedder if it exists already, else None (making one may read model files)."""
        return self._embedder

    @property
    def embedder(self):
        if self._embedder is None:
            from allin.knowledge.embedder_choice import get_embedder

            self._embedder = get_embedder(self.settings)
        return self._embedder

    @cached_property
    def _classifier(self):
        from allin.models.chat_models import make_route_classifier

        return make_route_classifier(self.settings, embedder=self.embedder)

    @cached_property
    def gemini_files(self) -> GeminiFiles | None:
        """Documents' Gemini Files API copies (files mode); None offline."""
        from allin.knowledge.gemini_files import GeminiFiles

        return GeminiFiles(self.settings) if self.settings.gemini_enabled else None

    @property
    def history_max_tokens(self) -> int:
        return self.settings.history_max_tokens

    @property
    def history_max_turns(self) -> int:
        return self.settings.history_max_turns

    @property
    def max_model_retries(self) -> int:
        return self.settings.model_max_retries

    # -- AssistantDeps ------------------------------------------------------------
    def chat_model(self) -> BaseChatModel:
        if self._chat_model is None:
            from allin.models.chat_models import make_chat_model

            self._chat_model = make_chat_model(self.settings, embedder=self.embedder)
        return self._chat_model

    async def classify(self, text: str, history: list[BaseMessage]) -> Route:
        return await self._classifier.aclassify(text, history)

    async def search(self, query: str, ctx: Context) -> list[Passage]:
        from tools.knowledge import search_knowledge

        pool = await self.pool()
        if pool is None or not ctx.user_id:
            return []
        return await search_knowledge(pool, self.embedder, query, user_id=ctx.user_id, top_k=ctx.top_k)

    async def files_cache(self, system_text: str, blocks: list[dict], files: list[AttachedFile]) -> str | None:
        """A Gemini context cache holding the system prompt and these files, or None (small, offline, failed)."""
        pool = await self.pool()
        if not self.settings.gemini_enabled or pool is None:
            return None
        from allin.knowledge.gemini_cache import GeminiContextCache

        if self._context_cache is None:
            self._context_cache = GeminiContextCache(self.settings)
        async with pool.connection() as conn:
            return await self._context_cache.for_files(
                conn, model=self.settings.chat_model, system_text=system_text, blocks=blocks,
                document_ids=[f.document_id for f in files])

    async def forget_files_cache(self, name: str) -> None:
        """The cache vanished remotely: drop its record so the next turn makes a new one."""
        pool = await self.pool()
        if pool is not None:
            async with pool.connection() as conn:
                await conn.execute("DELETE FROM gemini_caches WHERE name = %s", (name,))

    async def attach_files(self, passages: list[Passage], ctx: Context) -> list[AttachedFile]:
        pool = await self.pool()
        files = self.gemini_files
        if files is None or pool is None:
            if not ServiceDeps._files_offline_logged:
                ServiceDeps._files_offline_logged = True
                logger.info("retrieval_mode=files needs GOOGLE_API_KEY: answering from passages (chunks mode)")
            return []

        async def upload(document_id: str):
            async with pool.connection() as conn:  # one connection each: the lock is held in its transaction
                return await files.ensure_uploaded(conn, document_id)

        picked = pick_documents(passages)
        refs = await asyncio.gather(*(upload(p.document_id) for p in picked), return_exceptions=True)
        attached: list[AttachedFile] = []
        for best, ref in zip(picked, refs, strict=True):
            if isinstance(ref, BaseException):
                # That document's content is missing from this turn; the others still answer.
                logger.warning("could not attach {} as a Gemini file: {}", best.file, ref)
                continue
            attached.append(AttachedFile(n=len(attached) + 1, document_id=best.document_id, title=best.title,
                                         file=best.file, uri=ref.uri, mime=ref.mime,
                                         snippet=snippet(best.content)))  # checkpoints keep only this
        return attached

    async def run_code(self, text: str, history: list[BaseMessage], ctx: Context) -> list[CodeRun]:
        from tools.code import run_gemini_code, run_user_code

        if self.settings.gemini_enabled:
            return await run_gemini_code(self.chat_model(), text, history, max_retries=self.settings.model_max_retries)
        from tools.sandbox import SandboxLimits

        limits = SandboxLimits(wall_s=self.settings.sandbox_wall_s, cpu_s=self.settings.sandbox_wall_s,
                               memory_mb=self.settings.sandbox_memory_mb)
        return await run_user_code(text, limits)

    async def recall(self, query: str, ctx: Context) -> list[str]:
        if self.memory is None or not ctx.user_id:
            return []
        return await self.memory.recall(ctx.user_id, query)

    async def attachment_texts(self, ctx: Context) -> list[str]:
        pool = await self.pool()
        if pool is None or not ctx.attachment_ids or not ctx.user_id:
            return []
        async with pool.connection() as conn:
            cur = await conn.execute(
                "SELECT filename, text FROM attachments WHERE user_id = %s AND id = ANY(%s::uuid[]) AND text IS NOT NULL",
                (ctx.user_id, list(ctx.attachment_ids)),
            )
            return [f"{r['filename']}:\n{r['text']}" for r in await cur.fetchall()]

    async def system_prompt(self) -> Prompt:
        return await current_prompt(await self.pool())


class LazyServiceDeps(ServiceDeps):
    """For LangGraph Studio: settings, database and models are created on first use.

    Importing and constructing do nothing (langgraph.json loads the module at server start);
    the first call from any node, in any order (a replay may start mid-graph), reads the
    settings (env and .env), starts or connects to the database, migrates it and sets up
    the sandbox.
    """

    memory = None  # no long-term memory in Studio

    def __init__(self) -> None:  # noqa: D107 - nothing happens at import
        self._ready: asyncio.Lock | None = None
        self._initialised = False

    async def _init(self) -> None:
        if self._initialised:
            return
        if self._ready is None:
            self._ready = asyncio.Lock()
        async with self._ready:
            if self._initialised:
                return
            from allin.db.migrate import migrate_url
            from allin.db.pool import make_pool, resolve_database_url
            from tools.sandbox import Sandbox, set_default_sandbox

            settings = await asyncio.to_thread(load_settings)  # reads .env: file I/O off the loop
            url = await asyncio.to_thread(resolve_database_url, settings)
            await migrate_url(url, embedding_dim=settings.embedding_dim)
            pool = make_pool(url, settings, min_size=0, max_size=4)
            await pool.open()
            set_default_sandbox(Sandbox(backend=settings.sandbox_backend, python=settings.sandbox_python,
                                        max_concurrency=settings.sandbox_max_concurrency))
            ServiceDeps.__init__(self, settings, pool)
            self._initialised = True

    def _settings_ready(self) -> None:
        if not self._initialised:
            raise RuntimeError("dependencies not initialised: an async dependency call comes first")

    async def pool(self) -> AsyncConnectionPool | None:
        await self._init()
        return self._pool

    def chat_model(self) -> BaseChatModel:
        self._settings_ready()
        return super().chat_model()

    @property
    def history_max_tokens(self) -> int:
        self._settings_ready()
        return self.settings.history_max_tokens

    @property
    def history_max_turns(self) -> int:
        self._settings_ready()
        return self.settings.history_max_turns

    @property
    def max_model_retries(self) -> int:
        self._settings_ready()
        return self.settings.model_max_retries

    async def classify(self, text: str, history: list[BaseMessage]) -> Route:
        await self._init()
        return await super().classify(text, history)

    async def run_code(self, text: str, history: list[BaseMessage], ctx: Context) -> list[CodeRun]:
        await self._init()
        return await super().run_code(text, history, ctx)

    async def recall(self, query: str, ctx: Context) -> list[str]:
        await self._init()
        return await super().recall(query, ctx)
