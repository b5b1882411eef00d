"""Start-to-result latency of the code sandbox, per isolation backend, against a bare subprocess.

    .venv/bin/python bench/sandbox.py [--runs 30] [--backend bwrap ...]

Each run is `print(1)` through `Sandbox.run` (spawn, isolate, limit, run,
collect, clean up). The baseline is the same interpreter started bare with
`python -c 'print(1)'` through an asyncio subprocess, in the same process and
the same minute, so the ratio holds on a noisy machine. Target: p50 <= 150 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools.sandbox import Sandbox
from tools.sandbox.backends import BACKENDS, default_python

TARGET_P50_MS = 150


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def bare_run(python: str) -> float:
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        python, "-c", "print(1)", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    assert out == b"1\n"
    return (time.perf_counter() - started) * 1000


async def sandbox_run(box: Sandbox) -> float:
    started = time.perf_counter()
    result = await box.run("print(1)")
    elapsed = (time.perf_counter() - started) * 1000
    if result.outcome != "ok" or result.stdout != "1\n":
        raise RuntimeError(f"{box.backend}: {result.outcome} {result.message} {result.stderr[-300:]}")
    return elapsed


async def main(runs: int, backends: list[str]) -> None:
    python = default_python()
    print(f"sandbox latency, print(1), {runs} runs each, sequential; {platform.platform()}; interpreter {python}")
    await bare_run(python)  # warm the page cache
    baseline = [await bare_run(python) for _ in range(runs)]
    base_p50 = statistics.median(baseline)
    rows = [("bare python -c", baseline)]
    for name in backends:
        box = Sandbox(backend=name)
        status = await box.status(name)  # probes once; not part of the figures
        if not status.available:
            print(f"{name:>16}: not available here ({status.reason})")
            continue
        await sandbox_run(box)  # warm-up
        rows.append((name, [await sandbox_run(box) for _ in range(runs)]))
    print(f"{'':>16}  {'p50 ms':>7}  {'p95 ms':>7}  {'min ms':>7}  {'x bare':>6}")
    for name, times in rows:
        p50 = statistics.median(times)
        print(f"{name:>16}  {p50:7.1f}  {percentile(times, 0.95):7.1f}  {min(times):7.1f}  {p50 / base_p50:6.2f}"
              + ("" if name.startswith("bare") or p50 <= TARGET_P50_MS else f"  (over the {TARGET_P50_MS} ms target)"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--backend", action="append", choices=BACKENDS, help="repeatable; default: all")
    args = parser.parse_args()
    if args.runs < 2:
        parser.error("--runs must be >= 2")
    asyncio.run(main(args.runs, args.backend or list(BACKENDS)))
