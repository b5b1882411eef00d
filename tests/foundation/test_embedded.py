"""The embedded Postgres (pgserver wheel) starts, keeps its data and restarts quickly."""

import asyncio
import shutil
import subprocess
import sys
import time

import psycopg

from tests.conftest import short_tmpdir

SCRIPT = """
import sys, time, psycopg
from pathlib import Path
from allin.db.embedded import start_embedded
t = time.perf_counter()
url = start_embedded(Path(sys.argv[1]))
with psycopg.connect(url, autocommit=True) as c:
    c.execute("CREATE TABLE IF NOT EXISTS kept (v text)")
    if sys.argv[2] == 'write':
        c.execute("INSERT INTO kept VALUES ('still here')")
    print(c.execute("SELECT count(*) FROM kept").fetchone()[0], round(time.perf_counter() - t, 2))
"""


def test_embedded_postgres_keeps_data_across_restarts():
    root = short_tmpdir("ale")
    try:
        first = subprocess.run([sys.executable, "-c", SCRIPT, str(root), "write"], capture_output=True, text=True, timeout=60)
        assert first.returncode == 0, first.stderr
        assert first.stdout.split()[0] == "1"
        # The server stopped with the first process; a new process starts it again on the same data.
        second = subprocess.run([sys.executable, "-c", SCRIPT, str(root), "read"], capture_output=True, text=True, timeout=60)
        assert second.returncode == 0, second.stderr
        count, seconds = second.stdout.split()
        assert count == "1"
        assert float(seconds) < 5
        assert (root / "pg" / "PG_VERSION").exists()
    finally:
        shutil.rmtree(root, ignore_errors=True)
