"""Offline ingestion throughput: pages/s and chunks/s through `sync_paths`, embeddings included.

    .venv/bin/python bench/ingest.py [--pages 300] [--database-url URL] [--exclude PATTERN ...]

Copies the eng-practices PDFs and the readable wild PDFs repeatedly into a
temporary folder (one byte appended to each copy so every hash differs) until
the copies hold at least --pages pages, then syncs that folder into a fresh
database with the local MiniLM embedder and OCR, as the app does. Prints the
figures and the load average at start and end (on a shared machine the
wall-clock time is mostly waiting for a core).

Then it embeds a sample of the stored chunks again, alone on the cores, and
prints the ceiling that embedding by itself puts on pages/s for these
documents: what no overlap of parsing and embedding can go past.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _kb import CORPUS, database, make_user, pool  # noqa: E402

import pypdfium2 as pdfium  # noqa: E402

from allin.knowledge.chunk import Chunk, embedding_text  # noqa: E402
from allin.knowledge.embeddings import get_local_embedder  # noqa: E402
from allin.knowledge.sync import get_ocr, sync_paths  # noqa: E402


def readable_pdfs(exclude: list[str]) -> list[tuple[Path, int]]:
    """(path, pages) of the sample PDFs that open without a password and have text."""
    out = []
    for path in sorted([*(CORPUS / "eng-practices" / "pdf").glob("*.pdf"), *(CORPUS / "wild-pdfs").glob("*.pdf")]):
        if any(path.match(pattern) for pattern in exclude):
            continue
        try:
            doc = pdfium.PdfDocument(path)
        except pdfium.PdfiumError:
            continue
        n = len(doc)
        doc.close()
        if n:
            out.append((path, n))
    return out


def make_copies(target_pages: int, folder: Path, exclude: list[str]) -> tuple[int, int]:
    sources = readable_pdfs(exclude)
    files = pages = 0
    round_ = 0
    while pages < target_pages:
        for path, n in sources:
            dest = folder / f"r{round_:03d}" / path.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(path.read_bytes() + b"\n%" + str(round_).encode())  # new hash, still a valid PDF
            files += 1
            pages += n
        round_ += 1
    return files, pages


EMBED_SAMPLE = 300


def embedding_rate(embedder, stored: list[dict]) -> float:
    """Chunks/s the embedder reaches on the stored chunks' own texts, as the sync embedded them."""
    sample = random.Random(0).sample(stored, min(len(stored), EMBED_SAMPLE))
    texts = [embedding_text(r["title"], Chunk(0, r["kind"], r["content"], section=r["section"])) for r in sample]
    t0 = time.perf_counter()
    embedder.embed(texts)
    return len(texts) / (time.perf_counter() - t0)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=300)
    ap.add_argument("--database-url")
    ap.add_argument("--exclude", nargs="*", default=[],
                    help="file name patterns to leave out, e.g. federal-register* (8 scanned pages: OCR, ~5 s each)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="alliningest", dir="/tmp"))
    try:
        files, pages = make_copies(args.pages, tmp, args.exclude)
        embedder = get_local_embedder()
        embedder.embed_query("warm up")  # model load is start-up cost, not throughput
        get_ocr()
        async with database(args.database_url) as url, pool(url) as p:
            await make_user(p)
            load0 = os.getloadavg()
            cpu0 = time.process_time()
            t0 = time.perf_counter()
            report = await sync_paths(p, roots=[tmp], knowledge_dir=tmp, embedder=embedder, max_bytes=100_000_000)
            wall = time.perf_counter() - t0
            cpu = time.process_time() - cpu0
            load1 = os.getloadavg()
            async with p.connection() as conn:
                chunks = (await (await conn.execute("SELECT count(*) AS n FROM chunks")).fetchone())["n"]
                ok_pages = (await (await conn.execute(
                    "SELECT coalesce(sum(pages), 0) AS n FROM documents WHERE status = 'ready'")).fetchone())["n"]
                stored = await (await conn.execute(
                    "SELECT d.title, c.section, c.kind, c.content FROM chunks c JOIN documents d ON d.id = c.document_id"
                )).fetchall()
        print(f"files {files} ({report.ingested} ingested, {report.errors} failed), pages {pages} "
              f"({ok_pages} in ready documents), chunks {chunks}")
        print(f"wall {wall:.1f} s, process CPU {cpu:.1f} s (cores: {os.cpu_count()})")
        print(f"pages/s {pages / wall:.2f}   chunks/s {chunks / wall:.2f}")
        print(f"load average at start {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}; "
              f"at end {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
        embed_rate = embedding_rate(embedder, stored) if stored else float("nan")
        print(f"embedding alone (a sample of {min(len(stored), EMBED_SAMPLE)} stored chunks, nothing else running): "
              f"{embed_rate:.1f} chunks/s, so at most {pages * embed_rate / max(chunks, 1):.2f} pages/s for these documents")
        failed = [f for f in report.files if f.status == "error"]
        for f in failed[:5]:
            print("  failed:", f.path, f.error)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
