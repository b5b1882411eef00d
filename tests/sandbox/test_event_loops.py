"""The sandbox keeps its strongest backend on uvloop too (what uvicorn runs `allin serve` on when installed).

uvloop's subprocess_exec takes no user/group arguments: without setpriv the
per-run user could not be set there, the bwrap probe failed, and the server
quietly fell back to a weaker backend.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = """
import asyncio, sys
from tools.sandbox import Sandbox

async def main():
    sandbox = Sandbox()
    status = await sandbox.choose_backend()
    result = await sandbox.run("import os; print(os.getuid(), os.getgroups())")
    print(getattr(status, "name", status), result.outcome, result.stdout.strip(), sep="|")

if sys.argv[1] == "uvloop":
    import uvloop
    uvloop.run(main())
else:
    asyncio.run(main())
"""


def backend_under(loop: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", SCRIPT, loop], capture_output=True, text=True, timeout=120,
                          cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1].split("|")


@pytest.mark.skipif(os.geteuid() != 0, reason="snippets get a user of their own only when the server runs as root")
def test_uvloop_gets_the_same_backend_and_a_per_run_user():
    pytest.importorskip("uvloop")
    stdlib_backend, stdlib_outcome, _ = backend_under("asyncio")
    uv_backend, uv_outcome, uv_output = backend_under("uvloop")
    assert (uv_backend, uv_outcome) == (stdlib_backend, stdlib_outcome) == (stdlib_backend, "ok")
    uid, groups = uv_output.split(" ", 1)
    assert int(uid) != 0 and groups == "[]"
