"""`allin ingest` and `allin sync`: the knowledge base from the command line, with a progress bar."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from api.cli import app, fail, out, run_async, settings_or_exit


def _remote_cleanup(settings):
    """Keyed: removed documents' Gemini files (files mode) are deleted too."""
    if not settings.gemini_enabled:
        return None
    from allin.knowledge.gemini_files import GeminiFiles

    return GeminiFiles(settings).on_document_removed


async def _run(paths: list[Path], *, remove_missing: bool, force: bool, users: list[str] | None) -> None:
    from allin.db.pool import make_pool, resolve_database_url
    from allin.knowledge.embedder_choice import get_embedder
    from allin.knowledge.sync import sync_paths
    from api.cli import open_database

    settings = settings_or_exit()
    conn = await open_database(settings)
    await conn.close()
    url = await asyncio.to_thread(resolve_database_url, settings)
    pool = make_pool(url, settings, min_size=1, max_size=4)
    await pool.open()
    try:
        embedder = get_embedder(settings)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      TextColumn("{task.fields[current]}"), console=out, transient=False) as bar:
            task = bar.add_task("ingesting", total=None, current="scanning…")

            async def progress(state: dict) -> None:
                bar.update(task, total=state["total"] or 1, completed=state["done"], current=state["current"][-60:])

            report = await sync_paths(pool, roots=paths, knowledge_dir=settings.knowledge_path, embedder=embedder,
                                      max_bytes=settings.max_upload_mb << 20, remove_missing=remove_missing,
                                      force=force, progress=progress, after_remove=_remote_cleanup(settings))
            bar.update(task, completed=bar.tasks[0].total or 0, current="")
        if users is not None:
            from allin.knowledge.sync import document_key

            async with pool.connection() as c:
                cur = await c.execute("SELECT id FROM users WHERE name = ANY(%s)", (users,))
                ids = [r["id"] for r in await cur.fetchall()]
                keys = [document_key(Path(f.path), settings.knowledge_path) if Path(f.path).is_absolute() else f.path
                        for f in report.files if f.status in ("ingested", "unchanged")]
                await c.execute("UPDATE documents SET allowed_users = %s WHERE path = ANY(%s)", (ids, keys))
    finally:
        await pool.close()
    failed = [f for f in report.files if f.status == "error"]
    if failed:
        table = Table(title="files that could not be ingested")
        table.add_column("file")
        table.add_column("reason")
        for f in failed:
            table.add_row(f.path, f.error or "")
        out.print(table)
    out.print(report.summary())


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (a git checkout is read with its .gitignore).")],
    users: Annotated[str | None, typer.Option(help="Comma-separated user names who may see these documents.")] = None,
    force: Annotated[bool, typer.Option(help="Re-ingest even unchanged files.")] = False,
) -> None:
    """Ingest files or folders into the knowledge base (changed files only, unless --force)."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        fail(f"no such file or folder: {', '.join(missing)}")
    names = [u.strip() for u in users.split(",") if u.strip()] if users else None
    run_async(lambda: _run(paths, remove_missing=False, force=force, users=names))


@app.command()
def sync(force: Annotated[bool, typer.Option(help="Re-ingest even unchanged files.")] = False) -> None:
    """Scan ALLIN_KNOWLEDGE_DIR: ingest new and changed files, remove documents whose files are gone."""
    settings = settings_or_exit()
    root = settings.knowledge_path
    if not root.is_dir():
        fail(f"knowledge folder {root} does not exist (set ALLIN_KNOWLEDGE_DIR)")
    run_async(lambda: _run([root], remove_missing=True, force=force, users=None))
