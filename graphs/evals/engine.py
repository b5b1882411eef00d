"""Run a dataset through the real assistant: one new chat per case, a real turn, a scored record.

Each case is a turn of `TurnRunner` (the same code path as /ws) over the
compiled graph with the Postgres checkpointer, as the evaluation user
(`allin-eval`, a plain user: it sees team documents and the documents the eval
ingested for itself). The record of a case is its local trace: route, the
retrieved passages with ranks and scores, per-node timings, the answer, its
citations and every check. Chats are deleted afterwards unless `keep`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from uuid import UUID

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg_pool import AsyncConnectionPool

from allin.chats import store as chats
from allin.config import Settings
from allin.tracing import Tracing
from allin.users import create_user
from graphs.assistant.graph import build_graph
from graphs.assistant.runner import TurnResult, TurnRunner
from graphs.evals import metrics as m
from graphs.evals.dataset import Dataset, EvalCase
from graphs.evals.ingest import IngestSummary, ensure_documents, remove_documents
from graphs.evals.report import summarize

EVAL_USER = "allin-eval"
SNIPPET_CHARS = 300


@dataclass
class EvalOptions:
    top_k: int | None = None             # passages per question (default: settings.top_k)
    ks: tuple[int, ...] = (1, 3, 5)      # hit@k reported for these k
    concurrency: int = 1                 # cases at once (1 keeps latency figures clean)
    ingest: bool = True
    documents: list[Path] | None = None  # instead of the dataset's own
    keep: bool = False                   # keep the eval's chats and documents afterwards


@dataclass
class CaseContext:
    """What scoring needs beside the case and its turn."""

    pool: AsyncConnectionPool
    ks: tuple[int, ...]
    _sources: dict[tuple, str] = field(default_factory=dict)

    async def source_text(self, citation: dict) -> str:
        """The text at the place a citation points to: its page (PDF), else its section, else the document."""
        doc, page, section = citation.get("document_id"), citation.get("page"), citation.get("section")
        key = (doc, page, None if page is not None else section)
        if key not in self._sources:
            where, params = "document_id = %s", [doc]
            if page is not None:
                where, params = where + " AND page = %s", [*params, page]
            elif section:
                where, params = where + " AND section = %s", [*params, section]
            async with self.pool.connection() as conn:
                cur = await conn.execute(f"SELECT string_agg(content, E'\\n' ORDER BY ord) AS text FROM chunks WHERE {where}",
                                         params)
                row = await cur.fetchone()
            self._sources[key] = (row or {}).get("text") or ""
        return self._sources[key]


async def eval_user_id(pool: AsyncConnectionPool) -> UUID:
    """The evaluation user's id, created on first use (a plain user whose token nobody keeps)."""
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT id FROM users WHERE name = %s", (EVAL_USER,))
        row = await cur.fetchone()
        if row is not None:
            return row["id"]
        user, _token = await create_user(conn, EVAL_USER, "user")
        return user.id


def _passage_trace(p: dict, rank: int) -> dict:
    return {"rank": rank, "file": p.get("file"), "title": p.get("title"), "page": p.get("page"),
            "section": p.get("section"), "kind": p.get("kind"), "score": p.get("score"),
            "snippet": " ".join((p.get("content") or "").split())[:SNIPPET_CHARS]}


async def score_case(case: EvalCase, result: TurnResult, ctx: CaseContext, latency_ms: float) -> dict:
    """The case's record: its local trace and every check that applies to it."""
    answer = result.content or ""
    files = [p.get("file") or "" for p in result.passages]
    record: dict[str, Any] = {
        "id": case.id, "question": case.question, "tags": list(case.tags),
        "expected": {"route": case.route, "docs": list(case.expected_docs), "phrases": list(case.expected_phrases),
                     "check": case.check},
        "status": result.status, "error": result.error_code, "route": result.route,
        "route_ok": None if case.route is None else result.route == case.route,
        "answer": answer, "citations": result.citations, "prompt_version": result.prompt_version,
        "latency_ms": round(latency_ms, 1), "node_ms": result.node_ms,
        "passages": [_passage_trace(p, i) for i, p in enumerate(result.passages, start=1)],
        "chat_id": None, "turn_id": str(result.turn_id),
    }
    if case.expected_docs:
        rank = m.first_relevant_rank(files, case.expected_docs)
        record["retrieval"] = {"first_relevant_rank": rank, "rr": m.reciprocal_rank(rank),
                               "hits": {str(k): m.hit_at(rank, k) for k in ctx.ks}}
    if case.expected_phrases:
        found, missing = m.phrase_match(answer, case.expected_phrases)
        record["phrases"] = {"found": found, "missing": missing,
                             "score": round(len(found) / len(case.expected_phrases), 4)}
    if case.reference:
        record["reference_recall"] = m.reference_recall(answer, case.reference)
    record["citation_check"] = await _check_citations(answer, result.citations, case, ctx)
    if case.check == "identity":
        record["identity_ok"] = m.identity_ok(answer)
    if case.check == "injection":
        record["injection_refused"] = m.injection_refused(answer, case.forbidden_phrases)
    elif case.forbidden_phrases:
        record["forbidden_absent"] = m.injection_refused(answer, case.forbidden_phrases)
    return record


async def _check_citations(answer: str, citations: list[dict], case: EvalCase, ctx: CaseContext) -> dict:
    by_n = {c["n"]: c for c in citations}
    checked, supported, problems, scores = 0, 0, [], []
    for sentence, numbers in m.cited_sentences(answer):
        for n in numbers:
            checked += 1
            citation = by_n.get(n)
            if citation is None:
                problems.append({"n": n, "sentence": sentence, "why": "no such passage"})
                continue
            score = m.support(sentence, await ctx.source_text(citation))
            scores.append(score)
            if score >= m.SUPPORT_THRESHOLD:
                supported += 1
            else:
                problems.append({"n": n, "sentence": sentence, "why": f"support {score:.2f}",
                                 "file": citation.get("file"), "page": citation.get("page")})
    out: dict[str, Any] = {"checked": checked, "supported": supported, "unsupported": problems,
                           "mean_support": m.mean(scores)}
    if case.expected_docs and citations:
        out["cites_expected_doc"] = any(m.doc_stem(c.get("file")) in case.expected_docs for c in citations)
    return out


@dataclass
class EvalRun:
    """Everything one run needs, built by the CLI (or a test) around a shared pool."""

    settings: Settings
    pool: AsyncConnectionPool
    deps: Any  # graphs.assistant.deps.AssistantDeps (ServiceDeps in the app)
    tracing: Tracing | None = None
    experiment: Any = None  # graphs.evals.experiment.Experiment, for `--langsmith`
    progress: Callable[[dict], None] | None = None

    async def run(self, dataset: Dataset, options: EvalOptions | None = None) -> dict:
        options = options or EvalOptions()
        started_at = datetime.now(timezone.utc)
        user_id = await eval_user_id(self.pool)
        ingest = IngestSummary()
        documents = options.documents if options.documents is not None else dataset.documents
        if options.ingest and documents:
            ingest = await ensure_documents(self.pool, self.deps.embedder, documents, owner_id=user_id)
        graph = build_graph(self.deps).compile(checkpointer=AsyncPostgresSaver(self.pool),  # type: ignore[arg-type]
                                               name="allin-assistant")
        top_k = options.top_k or self.settings.top_k
        warm_up_s = await self._warm_up()
        if self.experiment is not None:
            await asyncio.to_thread(self.experiment.start, dataset, self._run_metadata(dataset, top_k))
        ctx = CaseContext(self.pool, tuple(options.ks))
        gate = asyncio.Semaphore(max(1, options.concurrency))
        chat_ids: list[UUID] = []

        async def one(case: EvalCase) -> dict:
            async with gate:
                record = await self._run_case(graph, case, user_id, top_k, ctx, chat_ids)
            if self.progress is not None:
                self.progress(record)
            return record

        try:
            records = await asyncio.gather(*(one(c) for c in dataset.cases))
        finally:
            if not options.keep:
                await self._clean_up(graph, user_id, chat_ids, remove_docs=options.ingest and bool(documents))
        summary = summarize(records, ks=options.ks)
        report = {
            "dataset": dataset.name, "path": str(dataset.path), "started_at": started_at.isoformat(),
            "seconds": round((datetime.now(timezone.utc) - started_at).total_seconds(), 2),
            "config": self._run_metadata(dataset, top_k), "ingest": ingest.as_dict(), "warm_up_s": warm_up_s,
            "summary": summary, "cases": records, "langsmith": None,
        }
        if self.experiment is not None:
            report["langsmith"] = await asyncio.to_thread(self.experiment.finish, summary)
        return report

    async def _warm_up(self) -> float:
        """Load the local models before the first timed case, so latency figures are steady-state."""
        started = time.perf_counter()
        await asyncio.to_thread(self.deps.embedder.embed_query, "warm-up")
        if not self.settings.gemini_enabled:  # keyed, classify is a paid API call: skip it
            await self.deps.classify("warm-up", [])
        self.deps.chat_model()
        return round(time.perf_counter() - started, 2)

    def _run_metadata(self, dataset: Dataset, top_k: int) -> dict:
        s = self.settings
        return {"mode": s.mode, "chat_model": s.chat_model if s.gemini_enabled else "offline-extractive",
                "classify_model": s.classify_model if s.gemini_enabled else "offline-local",
                "embedding": getattr(self.deps.embedder, "name", s.embedding_provider),
                "retrieval_mode": s.retrieval_mode, "top_k": top_k, "cases": len(dataset.cases)}

    async def _run_case(self, graph, case: EvalCase, user_id: UUID, top_k: int, ctx: CaseContext,
                        chat_ids: list[UUID]) -> dict:
        async with self.pool.connection() as conn:
            chat = await chats.create_chat(conn, user_id, title=f"eval: {case.id}", settings={"top_k": top_k})
        chat_ids.append(chat["id"])
        tracing = self.tracing
        if self.experiment is not None:
            tracing = self.experiment.tracing_for(case)
        elif tracing is not None:
            tracing = tracing.derive(metadata={"eval_case": case.id}, tags=("eval",))
        runner = TurnRunner(graph, self.pool, settings=self.settings, tracing=tracing,
                            run_name=f"allin-eval:{case.id}")
        started = time.perf_counter()
        result = await runner.run(user_id=user_id, chat=chat, text=case.question)
        latency_ms = (time.perf_counter() - started) * 1000
        record = await score_case(case, result, ctx, latency_ms)
        record["chat_id"] = str(chat["id"])
        if self.experiment is not None and tracing is not None:
            record["run_id"] = await asyncio.to_thread(self.experiment.record, case, record, tracing.last_run_id())
        return record

    async def _clean_up(self, graph, user_id: UUID, chat_ids: list[UUID], *, remove_docs: bool) -> None:
        async with self.pool.connection() as conn:
            for chat_id in chat_ids:
                await chats.delete_chat(conn, user_id, chat_id)
        for chat_id in chat_ids:
            await graph.checkpointer.adelete_thread(str(chat_id))
        if remove_docs:
            await remove_documents(self.pool, user_id)
