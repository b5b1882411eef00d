"""What a snippet's run gives back, on every backend: output, errors, limits, concurrency."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import time

from tests.sandbox.conftest import leftover_sandbox_pids
from tools.sandbox import Sandbox, SandboxLimits

FAST = SandboxLimits(wall_s=5.0)


async def test_correct_snippet_gives_its_output(sandbox: Sandbox) -> None:
    result = await sandbox.run("import math\nprint('sum', sum(range(10)), math.sqrt(16))", limits=FAST)
    assert result.outcome == "ok", result
    assert result.stdout == "sum 45 4.0\n"
    assert result.stderr == ""
    assert result.exit_code == 0
    assert result.message == "Finished."
    assert 0 < result.duration_ms < 5000
    frame = result.to_frame()
    assert frame == {
        "language": "python", "code": result.code, "stdout": "sum 45 4.0\n", "stderr": "",
        "outcome": "ok", "duration_ms": result.duration_ms,
    }


async def test_exception_is_a_normal_result_with_traceback(sandbox: Sandbox) -> None:
    code = "def f():\n    raise ValueError('boom')\nprint('before')\nf()\n"
    result = await sandbox.run(code, limits=FAST)
    assert result.outcome == "error"
    assert result.exit_code == 1
    assert result.stdout == "before\n"
    assert "Traceback (most recent call last)" in result.stderr
    assert 'main.py", line 4' in result.stderr  # line numbers are the user's own
    assert result.stderr.rstrip().endswith("ValueError: boom")
    assert "ValueError: boom" in result.message


async def test_exit_code_is_kept(sandbox: Sandbox) -> None:
    result = await sandbox.run("raise SystemExit(3)", limits=FAST)
    assert (result.outcome, result.exit_code) == ("error", 3)
    assert result.message == "Exited with code 3."


async def test_infinite_loop_stops_at_the_wall_clock(sandbox: Sandbox) -> None:
    limits = SandboxLimits(wall_s=1.0)
    started = time.monotonic()
    result = await sandbox.run("print('looping', flush=True)\nwhile True: pass", limits=limits)
    elapsed = time.monotonic() - started
    assert result.outcome == "timeout"
    assert result.message == "Stopped after 1 s (time limit)."
    assert result.stdout == "looping\n"  # output before the kill survives
    assert elapsed < limits.wall_s + 1.0
    assert not leftover_sandbox_pids()


async def test_cpu_limit_stops_a_busy_loop(sandbox: Sandbox) -> None:
    result = await sandbox.run("while True: pass", limits=SandboxLimits(wall_s=15.0, cpu_s=1.0))
    assert result.outcome == "timeout"
    assert "CPU" in result.message, result.message


async def test_huge_allocation_reports_memory(sandbox: Sandbox) -> None:
    result = await sandbox.run("x = bytearray(1 << 30)\nprint('allocated')", limits=FAST)
    assert result.outcome == "memory"
    assert result.message == "Ran out of memory (limit 256 MB)."
    assert "MemoryError" in result.stderr
    assert "allocated" not in result.stdout


async def test_fork_bomb_is_contained(sandbox: Sandbox) -> None:
    limits = SandboxLimits(wall_s=5.0)
    started = time.monotonic()
    result = await sandbox.run("import os\nwhile True: os.fork()", limits=limits)
    assert time.monotonic() - started < limits.wall_s + 1.0
    assert result.outcome in ("error", "timeout", "killed")
    assert "Resource temporarily unavailable" in result.stderr  # the process limit said no
    assert not leftover_sandbox_pids()
    # The host still forks.
    proc = await asyncio.create_subprocess_exec("true")
    assert await proc.wait() == 0


async def test_ten_megabytes_of_output_are_cut_with_a_marker(sandbox: Sandbox) -> None:
    result = await sandbox.run("import sys\nsys.stdout.write('x' * 10_000_000)", limits=FAST)
    assert result.outcome == "output_limit"
    assert result.truncated
    kept, marker = result.stdout[:64_000], result.stdout[64_000:]
    assert kept == "x" * 64_000
    assert marker.startswith("\n[output truncated: at least ")
    assert len(result.stdout) < 64_000 + 200
    assert "64,000-byte limit" in result.message


async def test_moderate_overflow_finishes_and_counts_what_was_dropped(sandbox: Sandbox) -> None:
    code = "import sys\nsys.stdout.write('a' * 100_000)\nsys.stderr.write('é' * 10)"
    result = await sandbox.run(code, limits=SandboxLimits(wall_s=5.0, max_output_bytes=64_000))
    assert result.outcome == "ok"
    assert result.truncated
    assert result.stdout == "a" * 64_000 + "\n[output truncated: 36,000 more bytes not shown]\n"
    assert result.stderr == "é" * 10
    assert result.message == "Finished; output truncated."


async def test_killed_by_a_signal(sandbox: Sandbox) -> None:
    result = await sandbox.run("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)", limits=FAST)
    assert (result.outcome, result.exit_code) == ("killed", -11)
    assert result.message == "Killed by SIGSEGV."


async def test_bash_runs_too(sandbox: Sandbox) -> None:
    result = await sandbox.run('echo "hello $((6 * 7))"; echo oops >&2; exit 3', language="sh", limits=FAST)
    assert result.language == "bash"
    assert (result.outcome, result.exit_code) == ("error", 3)
    assert (result.stdout, result.stderr) == ("hello 42\n", "oops\n")


async def test_event_loop_keeps_serving_during_a_run(sandbox: Sandbox) -> None:
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.05)

    task = asyncio.create_task(ticker())
    try:
        result = await sandbox.run("import time\ntime.sleep(2)\nprint('slept')", limits=FAST)
    finally:
        task.cancel()
    assert result.outcome == "ok" and result.stdout == "slept\n"
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert len(ticks) >= 30  # ~40 expected over 2 s
    assert max(gaps) < 0.25, f"the loop stalled for {max(gaps):.3f} s"


async def test_concurrent_runs_work_and_respect_the_cap(sandbox: Sandbox) -> None:
    capped = Sandbox(backend=sandbox.backend, max_concurrency=2)
    code = "import time, sys\ntime.sleep(0.5)\nprint('run', {n})"
    started = time.monotonic()
    results = await asyncio.gather(*(capped.run(code.format(n=n), limits=FAST) for n in range(4)))
    elapsed = time.monotonic() - started
    assert [r.outcome for r in results] == ["ok"] * 4
    assert [r.stdout for r in results] == [f"run {n}\n" for n in range(4)]
    assert elapsed >= 1.0  # four half-second runs, two at a time
    assert not leftover_sandbox_pids()


async def test_runs_as_an_unprivileged_uid_when_we_are_root(sandbox: Sandbox) -> None:
    if os.geteuid() != 0:
        return
    result = await sandbox.run("import os\nprint(os.getuid())\nprint(open('/proc/self/status').read())", limits=FAST)
    lines = result.stdout.splitlines()
    status = dict(line.split(":", 1) for line in lines[1:] if ":" in line)
    assert int(status["CapEff"].strip(), 16) == 0
    assert status["NoNewPrivs"].strip() == "1"
    if sandbox.backend != "unshare-userns":  # there uid 0 is a mapped, capability-less uid
        assert int(lines[0]) in range(60000, 61000)


async def test_cancelled_run_leaves_nothing_behind(sandbox: Sandbox) -> None:
    task = asyncio.create_task(sandbox.run("import time\nprint('up', flush=True)\ntime.sleep(30)", limits=FAST))
    await asyncio.sleep(0.5)
    task.cancel()
    started = time.monotonic()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 2.0
    assert not leftover_sandbox_pids()
