"""`allin eval` (datasets through the real graph, scored) and `allin studio-copy` (a chat into LangGraph Studio)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Literal

import typer

from api.cli import app, err, fail, open_database, out, run_async, settings_or_exit

ReviewKind = Literal["all", "low_rated", "unanswered"]


async def _export_feedback(path: Path, kind: ReviewKind, limit: int) -> int:
    from allin.feedback import draft_case, review_items
    from graphs.evals.dataset import write_cases

    settings = settings_or_exit()
    conn = await open_database(settings)
    try:
        items = await review_items(conn, kind=kind, limit=limit)
    finally:
        await conn.close()
    cases, seen = [], set()
    for item in items:
        question = " ".join((item["question"] or "").split())
        if question and question.lower() not in seen:  # the same question asked twice is one case
            seen.add(question.lower())
            cases.append(draft_case(item))
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    header = {"dataset": path.stem.replace(" ", "_") or "from_feedback",
              "description": f"Drafted from user feedback ({kind}) on {stamp}. Review every case: fill in "
                             "expected_docs, expected_phrases or reference, and delete what is not worth keeping."}
    return write_cases(path, cases, header=header)


async def _evaluate(dataset_path: Path, *, report_path: Path | None, docs: list[Path] | None, ingest: bool,
                    keep: bool, top_k: int | None, cases: list[str] | None, limit: int | None, concurrency: int,
                    langsmith: bool, experiment_prefix: str | None) -> dict:
    from allin.tracing import make_tracing
    from graphs.evals.dataset import DatasetError, load_dataset

    settings = settings_or_exit()
    try:
        dataset = load_dataset(dataset_path)
    except DatasetError as exc:
        fail(str(exc), 2)
    if cases:
        unknown = sorted(set(cases) - {c.id for c in dataset.cases})
        if unknown:
            fail(f"no such case in {dataset_path.name}: {', '.join(unknown)}", 2)
        dataset.cases = [c for c in dataset.cases if c.id in set(cases)]
    if limit:
        dataset.cases = dataset.cases[:limit]
    tracing = make_tracing(settings)
    if langsmith and tracing is None:
        fail("--langsmith needs LANGSMITH_API_KEY (and LANGSMITH_ENDPOINT for a self-hosted LangSmith)", 2)
    experiment = None
    if langsmith:
        from graphs.evals.experiment import Experiment

        experiment = Experiment(tracing, prefix=experiment_prefix)  # type: ignore[arg-type]

    # The heavy imports (graph, models, sandbox) only once the arguments are known to be good.
    from allin.db.pool import make_pool, resolve_database_url
    from graphs.assistant.services import ServiceDeps
    from graphs.evals.engine import EvalOptions, EvalRun
    from graphs.evals.report import misses, misses_table, summary_table, write_report
    from tools.sandbox import Sandbox, set_default_sandbox

    conn = await open_database(settings)
    await conn.close()
    url = await asyncio.to_thread(resolve_database_url, settings)
    pool = make_pool(url, settings, min_size=1, max_size=max(4, concurrency + 2))
    await pool.open()
    set_default_sandbox(Sandbox(backend=settings.sandbox_backend, max_concurrency=settings.sandbox_max_concurrency,
                                python=settings.sandbox_python))

    def progress(record: dict) -> None:
        what = "; ".join(misses(record))
        mark = "[green]ok[/]  " if not what else "[yellow]miss[/]"
        err.print(f"{mark} {record['id']:<28} {record['latency_ms']:>7.0f} ms  {what}", highlight=False)

    try:
        run = EvalRun(settings, pool, ServiceDeps(settings, pool), tracing=tracing, experiment=experiment,
                      progress=progress)
        if ingest and (docs or dataset.documents):
            err.print("ingesting the dataset's documents (new or changed files only)…", highlight=False)
        report = await run.run(dataset, EvalOptions(top_k=top_k, ingest=ingest, documents=docs, keep=keep,
                                                    concurrency=concurrency))
    except FileNotFoundError as exc:
        fail(str(exc), 2)
    finally:
        await pool.close()
        if tracing is not None:
            await asyncio.to_thread(tracing.close)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    path = report_path or settings.data_path / "evals" / f"{dataset.name}-{settings.mode}-{stamp}.json"
    write_report(report, path)
    out.print(summary_table(report))
    table = misses_table(report)
    if table is not None:
        out.print(table)
    if report["ingest"]["failed"]:
        err.print(f"[yellow]{len(report['ingest']['failed'])} document(s) could not be ingested:[/] "
                  + "; ".join(f["path"] for f in report["ingest"]["failed"]), highlight=False)
    if report["langsmith"]:
        out.print(f"LangSmith experiment: {report['langsmith']['experiment']}", highlight=False)
    out.print(f"report: {path}", highlight=False, soft_wrap=True)
    return report


@app.command("eval")
def eval_command(
    dataset: Annotated[Path | None, typer.Argument(help="A JSONL dataset, e.g. evals/eng_practices.jsonl.")] = None,
    report: Annotated[Path | None, typer.Option("--out", "-o", help="Where to write the JSON report "
                                                "(default: <data dir>/evals/<dataset>-<mode>-<time>.json).")] = None,
    docs: Annotated[list[Path] | None, typer.Option("--docs", help="Files or folders to ingest instead of the "
                                                    "dataset's own documents (repeatable).")] = None,
    ingest: Annotated[bool, typer.Option("--ingest/--no-ingest", help="Ingest the documents the dataset needs "
                                         "(new or changed files only) or use the knowledge base as it is.")] = True,
    keep: Annotated[bool, typer.Option("--keep", help="Keep the eval's chats and documents afterwards.")] = False,
    top_k: Annotated[int | None, typer.Option("--top-k", min=1, max=50, help="Passages per question.")] = None,
    case: Annotated[list[str] | None, typer.Option("--case", help="Run only this case (repeatable).")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Run only the first N cases.")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, max=16,
                                             help="Cases at once (1 keeps latency figures clean).")] = 1,
    langsmith: Annotated[bool, typer.Option("--langsmith", help="Record the run as a LangSmith experiment "
                                            "(needs LANGSMITH_API_KEY).")] = False,
    experiment_prefix: Annotated[str | None, typer.Option("--experiment-prefix",
                                                          help="LangSmith experiment name prefix.")] = None,
    from_feedback: Annotated[Path | None, typer.Option("--from-feedback", help="Instead of running: write low-rated "
                                                       "and unanswered questions to this JSONL as a draft dataset.")] = None,
    kind: Annotated[str, typer.Option("--kind", help="With --from-feedback: all, low_rated or unanswered.")] = "all",
    max_items: Annotated[int, typer.Option("--max-items", min=1, max=10000,
                                           help="With --from-feedback: newest items to export.")] = 500,
) -> None:
    """Run an evaluation dataset through the real assistant graph and score it (or draft one from feedback)."""
    if from_feedback is not None:
        if kind not in ("all", "low_rated", "unanswered"):
            fail("--kind must be all, low_rated or unanswered", 2)
        written = run_async(lambda: _export_feedback(from_feedback, kind, max_items))  # type: ignore[arg-type]
        out.print(f"wrote {written} draft case(s) to {from_feedback}: review them before running `allin eval`",
                  highlight=False, soft_wrap=True)
        return
    if dataset is None:
        fail("give a dataset (e.g. evals/eng_practices.jsonl) or --from-feedback OUT.jsonl", 2)
    run_async(lambda: _evaluate(dataset, report_path=report, docs=docs, ingest=ingest, keep=keep, top_k=top_k,
                                cases=case, limit=limit, concurrency=concurrency, langsmith=langsmith,
                                experiment_prefix=experiment_prefix))


@app.command("studio-copy")
def studio_copy(
    chat_id: Annotated[str, typer.Argument(help="The chat to copy (its id, as in /chat/history).")],
    url: Annotated[str, typer.Option("--url", help="The LangGraph server (`langgraph dev`).")] = "http://127.0.0.1:2024",
) -> None:
    """Copy a stored chat into a new LangGraph Studio thread, to replay and step through it there."""
    import uuid

    from graphs.studio_copy import ChatNotFound, copy_to_studio, read_chat

    try:
        uuid.UUID(chat_id)
    except ValueError:
        fail(f"not a chat id: {chat_id!r}", 2)
    settings = settings_or_exit()

    async def go() -> tuple[dict, str]:
        conn = await open_database(settings)
        try:
            chat = await read_chat(conn, chat_id)
        finally:
            await conn.close()
        if not chat.messages:
            fail(f"chat {chat_id} has no messages yet")
        try:
            return await copy_to_studio(chat, url), chat.user_id
        except Exception as exc:  # noqa: BLE001 - httpx's connection errors and the server's refusals alike
            fail(f"could not write to the LangGraph server at {url}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
        raise AssertionError("unreachable")

    try:
        result, user_id = run_async(go)
    except ChatNotFound:
        fail(f"no chat {chat_id}")
    out.print(f"copied {result['messages']} messages ({result['turns']} turns, from the {result['source']}) "
              f"into thread {result['thread_id']}", highlight=False, soft_wrap=True)
    out.print(f"In Studio, open that thread; to continue it, run with context "
              f'{{"user_id": "{user_id}", "chat_id": "{result["thread_id"]}"}} so retrieval sees that user\'s documents.',
              highlight=False, soft_wrap=True)
    print(result["thread_id"])
