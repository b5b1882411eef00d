"""The `allin` command line: serve, migrate, backup, restore, doctor, users (and more as features land)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from allin.config import ConfigError, Settings, load_settings
from allin.db.embedded import EmbeddedPostgresError
from allin.logging import setup_logging

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Allin, from Team 8: the onboarding assistant.")
users_app = typer.Typer(no_args_is_help=True, help="Create, list, rotate and revoke users and their tokens.")
app.add_typer(users_app, name="users")
err = Console(stderr=True, soft_wrap=True)
out = Console()
T = TypeVar("T")


def fail(message: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def settings_or_exit(**overrides: Any) -> Settings:
    try:
        settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        fail(str(exc), 2)
    setup_logging(settings.log_level, settings.log_json)
    return settings


def run_async(fn: Callable[[], Awaitable[T]]) -> T:
    try:
        return asyncio.run(fn())
    except EmbeddedPostgresError as exc:
        fail(str(exc))
    except ConnectionError as exc:
        fail(str(exc))
    raise AssertionError("unreachable")


async def open_database(settings: Settings, *, migrate_schema: bool = True):
    """Connect (embedded or DATABASE_URL) and migrate; a clear one-line error otherwise."""
    from allin.db.migrate import migrate, setup_checkpointer_tables
    from allin.db.pool import connect_once, describe_url, resolve_database_url

    url = await asyncio.to_thread(resolve_database_url, settings)
    try:
        conn = await connect_once(url, timeout=3)
    except Exception as exc:  # noqa: BLE001 - reduce psycopg's multi-line message to one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConnectionError(f"cannot reach the database at {describe_url(url)}: {first}") from None
    if migrate_schema:
        await migrate(conn, embedding_dim=settings.embedding_dim)
        await setup_checkpointer_tables(conn)
    return conn


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
) -> None:
    """Run the HTTP + WebSocket server."""
    settings = settings_or_exit(host=host, port=port)

    async def precheck() -> None:
        conn = await open_database(settings)
        await conn.close()

    run_async(precheck)
    from api.app import create_app
    from api.server import serve as serve_app

    serve_app(create_app(settings), settings)


@app.command()
def migrate() -> None:
    """Create or update the database schema (idempotent)."""
    settings = settings_or_exit()

    async def go() -> None:
        conn = await open_database(settings)
        await conn.close()

    run_async(go)
    out.print("schema is up to date")


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


@app.command()
def backup(
    path: Annotated[Path, typer.Argument(help="File to write (pg_dump custom format), e.g. allin-2025-01-31.dump.")],
) -> None:
    """Dump the whole database (chats, checkpoints, knowledge, users) to a file."""
    settings = settings_or_exit()
    from allin.db.backup import BackupError
    from allin.db.backup import backup as dump
    from allin.db.pool import resolve_database_url

    async def go() -> Any:
        url = await asyncio.to_thread(resolve_database_url, settings)
        return await dump(url, path)

    try:
        result = run_async(go)
    except BackupError as exc:
        fail(str(exc))
    out.print(
        f"backed up PostgreSQL {result.server_version} to {result.path} "
        f"({_size(result.size_bytes)} in {result.seconds:.1f} s)",
        highlight=False, soft_wrap=True,
    )


@app.command()
def restore(
    path: Annotated[Path, typer.Argument(help="A file made by `allin backup`.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Replace the database's contents with a backup (all or nothing). Stop the servers first."""
    settings = settings_or_exit()
    from allin.db.backup import BackupError
    from allin.db.backup import restore as load
    from allin.db.pool import describe_url, resolve_database_url

    if not path.is_file():
        fail(f"no backup file at {path}")
    if not yes:
        if not sys.stdin.isatty():
            fail("restore replaces the database's contents: pass --yes to confirm")
        typer.confirm(f"Replace the database's contents with {path}?", abort=True)

    async def go() -> tuple[str, float]:
        url = await asyncio.to_thread(resolve_database_url, settings)
        return describe_url(url), await load(url, path)

    try:
        where, seconds = run_async(go)
    except BackupError as exc:
        fail(str(exc))
    out.print(f"restored {path} into {where} in {seconds:.1f} s; "
              "the next start applies any newer migrations", highlight=False, soft_wrap=True)


@app.command()
def doctor() -> None:
    """Check the database, the mode and every offline component; exit 1 if something needed is missing."""
    settings = settings_or_exit()
    from api import doctor as d

    async def checks() -> list:
        return [*d.check_platform(), *await d.check_database(settings), *d.check_mode(settings),
                *d.check_components(), *d.check_sandbox()]

    results = asyncio.run(checks())
    table = Table(title="allin doctor", show_lines=False)
    for col in ("", "check", "detail"):
        table.add_column(col)
    for c in results:
        mark = "[green]ok[/]" if c.ok else ("[yellow]--[/]" if c.optional else "[red]MISSING[/]")
        table.add_row(mark, c.name, c.detail)
    out.print(table)
    if any(not c.ok and not c.optional for c in results):
        raise typer.Exit(1)


@users_app.command("create")
def users_create(
    name: str,
    admin: Annotated[bool, typer.Option("--admin", help="Give the user admin rights.")] = False,
) -> None:
    """Create a user; prints its token alone on the last line (shown once)."""
    settings = settings_or_exit()
    from allin.users import UserExists, create_user

    async def go() -> tuple[Any, str]:
        conn = await open_database(settings)
        try:
            return await create_user(conn, name, "admin" if admin else "user")
        finally:
            await conn.close()

    try:
        user, token = run_async(go)
    except UserExists:
        fail(f"a user named {name!r} already exists (use `allin users rotate {name}` for a new token)")
    out.print(f"created {user.role} {user.name}; login: {settings.base_url}/?token={token}", highlight=False, soft_wrap=True)
    print(token)


@users_app.command("list")
def users_list() -> None:
    """List users (without tokens, which are never stored)."""
    settings = settings_or_exit()
    from allin.users import list_users

    async def go() -> list[dict]:
        conn = await open_database(settings)
        try:
            return await list_users(conn, include_revoked=True)
        finally:
            await conn.close()

    rows = run_async(go)
    table = Table()
    for col in ("name", "role", "created", "status"):
        table.add_column(col)
    for r in rows:
        status = "revoked" if r["revoked_at"] else "active"
        table.add_row(r["name"], r["role"], r["created_at"].strftime("%Y-%m-%d %H:%M"), status)
    out.print(table)


@users_app.command("rotate")
def users_rotate(name: str) -> None:
    """Give the user a new token (the old one stops working); prints it alone on the last line."""
    settings = settings_or_exit()
    from allin.users import UserNotFound, rotate_token

    async def go() -> tuple[Any, str]:
        conn = await open_database(settings)
        try:
            return await rotate_token(conn, name=name)
        finally:
            await conn.close()

    try:
        user, token = run_async(go)
    except UserNotFound:
        fail(f"no user named {name!r}")
    out.print(f"new token for {user.name}; login: {settings.base_url}/?token={token}", highlight=False, soft_wrap=True)
    print(token)


@users_app.command("revoke")
def users_revoke(name: str) -> None:
    """Disable the user's token at once (their chats are kept)."""
    settings = settings_or_exit()
    from allin.users import UserNotFound, revoke

    async def go() -> Any:
        conn = await open_database(settings)
        try:
            return await revoke(conn, name=name)
        finally:
            await conn.close()

    try:
        run_async(go)
    except UserNotFound:
        fail(f"no active user named {name!r}")
    out.print(f"revoked {name}")


def _register_commands() -> None:
    import api.cli_knowledge  # noqa: F401 - adds ingest and sync
    import api.cli_eval  # noqa: F401 - adds eval and studio-copy


def main() -> None:
    _register_commands()
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
