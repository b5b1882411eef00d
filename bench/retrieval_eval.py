"""Retrieval quality over Google's eng-practices PDFs: vector, full-text and hybrid.

    .venv/bin/python bench/retrieval_eval.py [--database-url URL] [--rrf-k N] [--candidates N]

Ingests the PDFs with the real pipeline (`sync_paths`, local MiniLM) into its own
Postgres (or DATABASE_URL / --database-url), asks each question below through
`hybrid_search` with weights 1/0 (vector only), 0/1 (full text only) and 1/1
(hybrid), ranks documents by their first hit, and prints hit@1, hit@5 and MRR.
Targets for hybrid: hit@1 >= 0.8, hit@5 >= 0.95, MRR >= 0.85.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _kb import CORPUS, database, make_user, pool  # noqa: E402

from allin.knowledge import search  # noqa: E402
from allin.knowledge.embeddings import get_local_embedder  # noqa: E402
from allin.knowledge.sync import sync_paths  # noqa: E402

PDFS = CORPUS / "eng-practices" / "pdf"

# (question, expected document = file stem). Written from the guide's content,
# phrased as a new engineer would ask, mostly without the guide's own words.
QUESTIONS: list[tuple[str, str]] = [
    ("What should the first line of a change description say?", "review_developer_cl-descriptions"),
    ("Is 'Fix bug' an acceptable commit message?", "review_developer_cl-descriptions"),
    ("Should I update the CL description before submitting if the change evolved during review?",
     "review_developer_cl-descriptions"),
    ("What goes into the body of a CL description besides the summary?", "review_developer_cl-descriptions"),
    ("Why are small changelists better than big ones?", "review_developer_small-cls"),
    ("How many lines of code is too large for one change?", "review_developer_small-cls"),
    ("How can I split a large change into several smaller ones?", "review_developer_small-cls"),
    ("Should refactorings be sent separately from feature changes?", "review_developer_small-cls"),
    ("Can I put the tests in a different CL than the code?", "review_developer_small-cls"),
    ("The reviewer's comment felt rude; how should I react?", "review_developer_handling-comments"),
    ("A reviewer didn't understand my code; should I explain it in the review tool?",
     "review_developer_handling-comments"),
    ("How do I resolve a conflict when I disagree with my reviewer?", "review_developer_handling-comments"),
    ("What counts as an emergency that justifies a rushed code review?", "review_emergencies"),
    ("Is a launch deadline a good reason to skip the normal review standards?", "review_emergencies"),
    ("What should happen after an emergency change has been submitted?", "review_emergencies"),
    ("What is the senior principle that code review rests on: approve when the code health improves?",
     "review_reviewer_standard"),
    ("Should a reviewer block a change because it is not perfect?", "review_reviewer_standard"),
    ("What does the 'Nit:' prefix mean in review comments?", "review_reviewer_standard"),
    ("Do style guide rules override personal preference in reviews?", "review_reviewer_standard"),
    ("How quickly should I respond to a code review request?", "review_reviewer_speed"),
    ("What is the maximum time to reply to a review, one business day?", "review_reviewer_speed"),
    ("Should I interrupt my focused coding work to do a review?", "review_reviewer_speed"),
    ("Is it okay to give LGTM with comments so the author can submit after fixing them?",
     "review_reviewer_speed"),
    ("What aspects of the code should a reviewer check, like design, functionality and complexity?",
     "review_reviewer_looking-for"),
    ("How do I spot over-engineering in a change?", "review_reviewer_looking-for"),
    ("Should the reviewer look at every line of code in the change?", "review_reviewer_looking-for"),
    ("Should I compliment the author when they did something well?", "review_reviewer_looking-for"),
    ("In which order should I read the files of a change I review?", "review_reviewer_navigate"),
    ("First take a broad view of the change, then look at the main part", "review_reviewer_navigate"),
    ("How should I phrase review comments so they are courteous and explain why?",
     "review_reviewer_comments"),
    ("Should the reviewer fix the code themselves or point out the problem?", "review_reviewer_comments"),
    ("The author pushes back on my suggestion; who is right?", "review_reviewer_pushback"),
    ("The developer promises to clean it up later; should I accept that?", "review_reviewer_pushback"),
    ("Will insisting on strict reviews upset developers?", "review_reviewer_pushback"),
]


def document_ranks(hits: list, expected: str) -> int | None:
    """1-based rank of `expected` among the distinct documents of `hits` (in first-hit order)."""
    seen: list[str] = []
    for hit in hits:
        stem = Path(hit.path).stem
        if stem not in seen:
            seen.append(stem)
    return seen.index(expected) + 1 if expected in seen else None


async def evaluate(conn, user_id, embedder, weights: tuple[float, float], misses: list | None = None) -> dict:
    hit1 = hit5 = rr = 0.0
    for question, expected in QUESTIONS:
        hits = await search.hybrid_search(conn, user_id=user_id, text=question, vector=embedder.embed_query(question),
                                          limit=10, vector_weight=weights[0], text_weight=weights[1])
        rank = document_ranks(hits, expected)
        hit1 += rank == 1
        hit5 += rank is not None and rank <= 5
        rr += 1 / rank if rank else 0
        if misses is not None and rank != 1:
            misses.append((question, expected, rank, Path(hits[0].path).stem if hits else None))
    n = len(QUESTIONS)
    return {"hit@1": hit1 / n, "hit@5": hit5 / n, "MRR": rr / n}


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--database-url")
    ap.add_argument("--rrf-k", type=int, nargs="*", default=[], help="also try these RRF k values (hybrid)")
    args = ap.parse_args()
    if not PDFS.is_dir():
        sys.exit(f"corpus not found at {PDFS}")
    embedder = get_local_embedder()
    async with database(args.database_url) as url, pool(url) as p:
        user_id = await make_user(p)
        report = await sync_paths(p, roots=[PDFS], knowledge_dir=PDFS, embedder=embedder, max_bytes=50_000_000)
        print(f"ingested: {report.summary()}")
        async with p.connection() as conn:
            n = (await (await conn.execute("SELECT count(*) AS n FROM chunks")).fetchone())["n"]
            print(f"{len(QUESTIONS)} questions over {report.ingested + report.unchanged} documents, {n} chunks\n")
            print(f"{'retriever':<22}{'hit@1':>8}{'hit@5':>8}{'MRR':>8}")
            misses: list = []
            for name, w in [("vector only", (1.0, 0.0)), ("full text only", (0.0, 1.0)), ("hybrid 1/1", (1.0, 1.0))]:
                m = await evaluate(conn, user_id, embedder, w, misses if name.startswith("hybrid") else None)
                print(f"{name:<22}{m['hit@1']:>8.3f}{m['hit@5']:>8.3f}{m['MRR']:>8.3f}")
            default_k = search.RRF_K
            for k in args.rrf_k:
                search.RRF_K = k
                m = await evaluate(conn, user_id, embedder, (1.0, 1.0))
                print(f"{f'hybrid 1/1, k={k}':<22}{m['hit@1']:>8.3f}{m['hit@5']:>8.3f}{m['MRR']:>8.3f}")
            search.RRF_K = default_k
            print("\nhybrid misses at rank 1 (question, expected, its rank, top document):")
            for miss in misses:
                print("  ", miss)


if __name__ == "__main__":
    asyncio.run(main())
