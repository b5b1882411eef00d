"""Hybrid search latency at 10k and 100k chunks (target: p95 <= 25 ms at 100k).

    .venv/bin/python bench/search.py [--sizes 10000 100000] [--queries 120] [--database-url URL]

For each size, into a fresh `chunks` table: COPY (binary) chunks whose text is
composed from the eng-practices sentences (4-9 per chunk, so full-text
matching and ranking do realistic work) and whose embeddings are random unit
vectors; then builds the HNSW index after the bulk load (maintenance_work_mem
raised) and ANALYZEs. Times `hybrid_search` (weights 1/1, limit 10,
candidates 40) for --queries different questions after a warm-up; the query
embedding (local MiniLM) is computed beforehand and not timed: this measures
the database side. Prints p50/p95/max and the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _kb import CORPUS, database, make_user, pool  # noqa: E402

import numpy as np  # noqa: E402

from allin.knowledge.embeddings import MINILM_DIM, get_local_embedder  # noqa: E402
from allin.knowledge.search import forget_lexeme_stats, hybrid_search  # noqa: E402
from allin.knowledge.store import ensure_vector_types  # noqa: E402

TARGET_P95_MS = 25
CHUNKS_PER_DOC = 50
QUESTION_STARTS = ["How do I", "What is", "Why should", "When can", "Who decides", "Is it okay to"]


def corpus_sentences() -> list[str]:
    text = " ".join(p.read_text(encoding="utf-8") for p in sorted((CORPUS / "eng-practices" / "md").glob("*.md")))
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links → their words
    text = re.sub(r"[#*`>|_]+", " ", text)
    sentences = [" ".join(s.split()) for s in re.split(r"(?<=[.!?])\s+", text)]
    return [s for s in sentences if 6 <= len(s.split()) <= 60]


def questions(sentences: list[str], n: int, rng: random.Random) -> list[str]:
    out = []
    for s in rng.sample(sentences, n):
        words = [w.strip(".,;:!?()\"'") for w in s.split()]
        start = rng.randrange(0, max(1, len(words) - 6))
        out.append(f"{rng.choice(QUESTION_STARTS)} {' '.join(words[start:start + rng.randint(3, 7)]).lower()}?")
    return out


async def load(p, size: int, sentences: list[str], rng: random.Random) -> float:
    """Fill `chunks` with `size` rows (one document per CHUNKS_PER_DOC); seconds spent."""
    t0 = time.perf_counter()
    np_rng = np.random.default_rng(rng.randrange(1 << 30))
    async with p.connection() as conn:
        await ensure_vector_types(conn)
        await conn.execute("TRUNCATE documents CASCADE")
        await conn.execute("DROP INDEX IF EXISTS chunks_embedding")
        n_docs = (size + CHUNKS_PER_DOC - 1) // CHUNKS_PER_DOC
        doc_ids = [uuid.uuid4() for _ in range(n_docs)]
        async with conn.cursor() as cur:
            async with cur.copy("COPY documents (id, path, title, status, chunk_count) FROM STDIN") as copy:
                for i, d in enumerate(doc_ids):
                    await copy.write_row((d, f"bench/doc{i:06d}.pdf", f"Bench document {i}", "ready", CHUNKS_PER_DOC))
            async with cur.copy("COPY chunks (document_id, ord, kind, page, content, embedding)"
                                " FROM STDIN WITH (FORMAT BINARY)") as copy:
                copy.set_types(["uuid", "int4", "text", "int4", "text", "vector"])
                batch = 10_000
                for b0 in range(0, size, batch):
                    m = min(batch, size - b0)
                    vecs = np_rng.standard_normal((m, MINILM_DIM), dtype=np.float32)
                    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
                    for j in range(m):
                        i = b0 + j
                        text = " ".join(rng.choices(sentences, k=rng.randint(4, 9)))
                        await copy.write_row((doc_ids[i // CHUNKS_PER_DOC], i % CHUNKS_PER_DOC, "text",
                                              1 + (i % CHUNKS_PER_DOC) // 3, text, vecs[j]))
        await conn.execute("SET maintenance_work_mem = '1GB'")
        await conn.execute("SET max_parallel_maintenance_workers = 4")
        t1 = time.perf_counter()
        await conn.execute("CREATE INDEX chunks_embedding ON chunks USING hnsw (embedding vector_cosine_ops)")
        print(f"  HNSW build {time.perf_counter() - t1:.1f} s")
        await conn.execute("VACUUM ANALYZE chunks")
        await conn.execute("ANALYZE documents")
    forget_lexeme_stats()  # the previous size's word frequencies would prune the wrong words
    return time.perf_counter() - t0


async def time_queries(p, user_id, qs: list[str], vecs: np.ndarray) -> list[float]:
    out = []
    async with p.connection() as conn:
        for q, v in zip(qs[:10], vecs[:10]):  # warm-up: caches, plan paths
            await hybrid_search(conn, user_id=user_id, text=q, vector=v, limit=10)
        for q, v in zip(qs, vecs):
            t0 = time.perf_counter()
            hits = await hybrid_search(conn, user_id=user_id, text=q, vector=v, limit=10)
            out.append((time.perf_counter() - t0) * 1000)
            assert hits, f"no hits for {q!r}"
    return out


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--queries", type=int, default=120)
    ap.add_argument("--database-url")
    args = ap.parse_args()
    rng = random.Random(7)
    sentences = corpus_sentences()
    qs = questions(sentences, args.queries, rng)
    embedder = get_local_embedder()
    vecs = np.stack([embedder.embed_query(q) for q in qs])
    print(f"{len(sentences)} corpus sentences; {len(qs)} queries, e.g. {qs[0]!r}")
    async with database(args.database_url) as url, pool(url) as p:
        user_id = await make_user(p)
        for size in args.sizes:
            print(f"{size} chunks:")
            seconds = await load(p, size, sentences, rng)
            print(f"  loaded and indexed in {seconds:.1f} s")
            load0 = os.getloadavg()[0]
            ms = sorted(await time_queries(p, user_id, qs, vecs))
            p95 = ms[int(0.95 * (len(ms) - 1))]
            verdict = "meets" if p95 <= TARGET_P95_MS else "misses"
            print(f"  hybrid_search over {len(ms)} queries: p50 {statistics.median(ms):.1f} ms, p95 {p95:.1f} ms,"
                  f" max {ms[-1]:.1f} ms ({verdict} p95 <= {TARGET_P95_MS} ms)"
                  f"; load average {load0:.2f} -> {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
