"""Hold many authenticated /ws connections while some of them send turns; print what the server sustained.

Loopback only and bounded in time. One server process (uvicorn) with zero-latency
models, on its own Postgres; this load generator shares the same 2 cores.

Each active connection sends a turn a second at its own phase within the second
(spread evenly, as independent users are), and every connection its heartbeat
at its own phase within --ping-every; --lockstep sends turns all at the same
instant and heartbeats in one burst instead, which measures bursts: N turns
queued at once.

Long-term memory is on, as by default (the bench's users have none, so a turn
costs it an indexed probe now and then, not a search). Its Postgres keeps
production durability (fsync and synchronous_commit on: a stored question has
reached the disk); --fast-pg turns them off, as the test suite runs it.

It prints the CPU of the server, this load generator and Postgres, and the
share of the cores the VM's host took (steal), overall and for the slowest
seconds.

    .venv/bin/python bench/ws_load.py [--connections 1000] [--active 50] [--seconds 60] [--fast-pg]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg
import websockets

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.pg import PgCluster, free_port  # noqa: E402


def slowest_seconds(sent_at: list[float], latencies: list[float], start: float, steal_by_second: dict[int, float],
                    n: int = 5) -> str:
    """The seconds of the phase with the worst turn latency, with the host's steal in each (a tail
    from a few stalls reads differently from one spread over the run, or from the host taking the cores)."""
    worst: dict[int, list[float]] = {}
    for t, ms in zip(sent_at, latencies):
        worst.setdefault(int(t - start), []).append(ms)
    ranked = sorted(worst.items(), key=lambda kv: -max(kv[1]))[:n]
    return ", ".join(f"s{sec}: max {max(v):.0f} ms, {sum(x > 100 for x in v)}/{len(v)} over 100, "
                     f"steal {steal_by_second.get(sec, float('nan')):.0%}" for sec, v in ranked)


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used (shows what a turn costs the server,
    which latency alone hides when the load generator competes for the same cores)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_times() -> tuple[int, int]:
    """(steal, total) jiffies of the whole machine: on a shared VM the host takes some of our cores'
    time (steal), which slows everything here alike and is no part of the server's cost."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])


def postgres_cpu_s(data_dir: Path | None) -> float:
    """CPU seconds of the bench's own Postgres: the postmaster and its live children (backends stay
    up for the whole run: the pools keep their connections)."""
    if data_dir is None:
        return float("nan")
    try:
        postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return float("nan")
    total = cpu_s(postmaster)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == postmaster:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


class Stats:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.sent_at: list[float] = []  # when each measured turn was sent (monotonic), beside its latency
        self.errors = 0
        self.dropped = 0
        self.sent = 0

    def reset(self) -> None:
        self.__init__()


async def connection(url: str, token: str, stats: Stats, stop: asyncio.Event, active: asyncio.Event,
                     held: list[int], ping_every: float, phase_s: float = 0.0, first_ping_s: float | None = None) -> None:
    try:
        async with websockets.connect(url, max_queue=64, open_timeout=60, ping_interval=None) as ws:
            await ws.send(json.dumps({"type": "hello", "token": token}))
            ready = json.loads(await ws.recv())
            if ready.get("type") != "ready":
                stats.errors += 1
                return
            held[0] += 1
            next_ping = time.monotonic() + (ping_every if first_ping_s is None else first_ping_s)
            was_active = False
            while not stop.is_set():
                if active.is_set() and not was_active:
                    was_active = True
                    await asyncio.sleep(phase_s)  # this user's moment within each second
                    continue
                was_active = active.is_set()
                if active.is_set():
                    t0 = time.perf_counter()
                    stats.sent += 1
                    await ws.send(json.dumps({"type": "text", "text": "How fast should reviews be?"}))
                    while True:
                        frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
                        if frame["type"] == "turn_complete":
                            stats.latencies.append((time.perf_counter() - t0) * 1000)
                            stats.sent_at.append(t0)
                            break
                        if frame["type"] == "error":
                            stats.errors += 1
                            break
                    # One turn a second per active connection.
                    await asyncio.sleep(max(0.0, 1.0 - (time.perf_counter() - t0)))
                else:
                    await asyncio.sleep(min(1.0, max(0.0, next_ping - time.monotonic())))
                if time.monotonic() >= next_ping:
                    await ws.send(json.dumps({"type": "ping"}))
                    next_ping = time.monotonic() + ping_every
                    if not active.is_set():
                        while True:  # frames of the last turn (a late `chat` title) may come first
                            frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
                            if frame["type"] == "pong":
                                break
                            if frame["type"] == "error":
                                stats.errors += 1
                                break
            held[0] -= 1
    except (websockets.ConnectionClosed, OSError, asyncio.TimeoutError):
        stats.dropped += 1


async def run(args) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    root = Path(tempfile.mkdtemp(prefix="alws", dir="/tmp"))
    cluster = None
    url = os.environ.get("DATABASE_URL")
    if not url:
        cluster = PgCluster(root / "pg")
        cluster.init(durable=not args.fast_pg)  # production durability unless asked: commits wait for the WAL flush
        cluster.start()
        url = cluster.url()
        with psycopg.connect(url, autocommit=True) as c:
            c.execute("CREATE DATABASE wsbench")
        # The Unix socket, as `allin serve` reaches its embedded Postgres (TCP on loopback costs the
        # server ~0.25 ms of CPU a statement more: the kernel runs the receiving side inside send()).
        url = cluster.socket_url("wsbench")
    pg_dir = cluster.data_dir if cluster else None
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "ALLIN_DATA_DIR": str(root / "data"), "TURNS_PER_MINUTE": "10000",
           "DB_POOL_MAX": "20", "LOG_LEVEL": "WARNING", "WS_IDLE_TIMEOUT_S": "600"}
    env.pop("GOOGLE_API_KEY", None)
    server = subprocess.Popen([sys.executable, "-m", "bench._ws_server", str(port)], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=None if os.environ.get("BENCH_DEBUG") else subprocess.DEVNULL, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):
            if server.poll() is not None:
                raise SystemExit("the server exited; run with BENCH_DEBUG=1 to see why")
            try:
                if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
        from allin.users import create_user

        tokens = []
        async with await psycopg.AsyncConnection.connect(url, autocommit=True, row_factory=psycopg.rows.dict_row) as c:
            for i in range(args.users):
                tokens.append((await create_user(c, f"bench{i}"))[1])
        ws_url = f"ws://127.0.0.1:{port}/ws"
        stats, stop, held = Stats(), asyncio.Event(), [0]
        actives = [asyncio.Event() for _ in range(args.connections)]
        t_open = time.perf_counter()
        tasks = []
        for i in range(args.connections):
            phase_s = 0.0 if args.lockstep else (i * 0.6180339887) % 1.0  # golden ratio: evenly spread for any N
            # Heartbeats at their own moment within the interval too, as clients that connected at
            # different times send them; opened in a few seconds, they would all ping in the same 3 s.
            first_ping_s = None if args.lockstep else args.ping_every * ((i * 0.7548776662) % 1.0 or 1.0)
            tasks.append(asyncio.create_task(connection(ws_url, tokens[i % len(tokens)], stats, stop, actives[i], held,
                                                        args.ping_every, phase_s, first_ping_s)))
            if i % 50 == 49:
                await asyncio.sleep(0.05)
        while held[0] + stats.dropped + stats.errors < args.connections and time.perf_counter() - t_open < 120:
            await asyncio.sleep(0.2)
        print(f"opened {held[0]} connections in {time.perf_counter() - t_open:.1f}s "
              f"(dropped {stats.dropped}, errors {stats.errors}); server RSS {rss_mb(server.pid):.0f} MB")

        async def settle(limit_s: float = 30.0) -> None:
            """Until the server and its Postgres are idle: the last phase's queued turns and after-turn
            work are done, and so is the autovacuum its thousands of inserts set off."""
            end = time.perf_counter() + limit_s
            while time.perf_counter() < end:
                before, pg_before = cpu_s(server.pid), postgres_cpu_s(pg_dir)
                await asyncio.sleep(0.5)
                pg_busy = postgres_cpu_s(pg_dir) - pg_before  # nan (not ours to watch): never busy
                if cpu_s(server.pid) - before < 0.05 and not pg_busy >= 0.05:  # under 10% of a core each
                    return

        async def phase(n_active: int, seconds: float) -> dict:
            await settle()
            stats.reset()
            for ev in actives[:n_active]:
                ev.set()
            t0 = time.perf_counter()
            cpu0 = cpu_s(server.pid)
            load_cpu0, pg_cpu0 = time.process_time(), postgres_cpu_s(pg_dir)
            steal0, total0 = cpu_times()
            peak_rss = 0.0
            steal_by_second: dict[int, float] = {}
            last = (steal0, total0)
            while time.perf_counter() - t0 < seconds:
                await asyncio.sleep(1)
                peak_rss = max(peak_rss, rss_mb(server.pid))
                now = cpu_times()
                steal_by_second[int(time.perf_counter() - t0) - 1] = (now[0] - last[0]) / max(1, now[1] - last[1])
                last = now
            for ev in actives[:n_active]:
                ev.clear()
            await asyncio.sleep(1.5)  # let in-flight turns finish
            elapsed = time.perf_counter() - t0
            cpu = cpu_s(server.pid) - cpu0
            load_cpu, pg_cpu = time.process_time() - load_cpu0, postgres_cpu_s(pg_dir) - pg_cpu0
            steal1, total1 = cpu_times()
            lat = stats.latencies
            return {"active": n_active, "held": held[0], "turns": len(lat), "turns_per_s": len(lat) / elapsed,
                    "p50": pct(lat, 50), "p95": pct(lat, 95), "p99": pct(lat, 99), "errors": stats.errors,
                    "dropped": stats.dropped, "lost": stats.sent - len(lat) - stats.errors, "rss_mb": peak_rss,
                    "cpu_ms_per_turn": 1000 * cpu / max(1, len(lat)), "server_cpu": cpu / elapsed,
                    "load_cpu": load_cpu / elapsed, "pg_cpu": pg_cpu / elapsed,
                    "steal": (steal1 - steal0) / max(1, total1 - total0),
                    "slowest": slowest_seconds(stats.sent_at, lat, t0, steal_by_second)}

        main = await phase(args.active, args.seconds)
        print(f"\nmain phase: {args.connections} connections, {args.active} active at 1 turn/s for {args.seconds}s")
        print(f"  held {main['held']}  turns {main['turns']} ({main['turns_per_s']:.1f}/s)  "
              f"p50 {main['p50']:.1f} ms  p95 {main['p95']:.1f} ms  p99 {main['p99']:.1f} ms  "
              f"errors {main['errors']}  dropped {main['dropped']}  lost {main['lost']}  server RSS {main['rss_mb']:.0f} MB\n"
              f"  server CPU {main['server_cpu']:.0%} of a core, {main['cpu_ms_per_turn']:.1f} ms per turn; "
              f"on the same 2 cores: this load generator {main['load_cpu']:.0%}, Postgres {main['pg_cpu']:.0%}; "
              f"taken by the VM's host (steal) {main['steal']:.0%}\n"
              f"  slowest seconds: {main['slowest']}")
        print("\nramp (p95 ≤ 100 ms to pass):")
        best = None
        for n in args.ramp:
            if n > args.connections:
                break
            r = await phase(n, args.ramp_seconds)
            ok = r["p95"] <= 100 and r["errors"] == 0
            print(f"  active {n:4d}: {r['turns_per_s']:6.1f} turns/s  p50 {r['p50']:6.1f}  p95 {r['p95']:6.1f}  "
                  f"p99 {r['p99']:6.1f} ms  errors {r['errors']}  CPU: server {r['server_cpu']:4.0%}, "
                  f"load generator {r['load_cpu']:4.0%}, Postgres {r['pg_cpu']:4.0%}, steal {r['steal']:3.0%}  "
                  f"{'ok' if ok else 'over'}")
            if ok:
                best = r
            else:
                break
        if best:
            print(f"\nhighest sustained: {best['turns_per_s']:.1f} turns/s with p95 {best['p95']:.1f} ms "
                  f"({best['active']} active connections)")
        print(f"note: the load generator and the server share the same 2 cores; turns sent "
              f"{'in lockstep (bursts)' if args.lockstep else 'at spread phases within each second'}.")
        stop.set()
        await asyncio.wait(tasks, timeout=30)
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        if cluster:
            cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--active", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--ping-every", type=float, default=15.0)
    ap.add_argument("--ramp", type=int, nargs="*", default=[10, 20, 30, 40, 45, 50, 60, 75, 100])
    ap.add_argument("--ramp-seconds", type=float, default=20)
    ap.add_argument("--fast-pg", action="store_true",
                    help="own Postgres with fsync and synchronous_commit off, as the test suite runs it")
    ap.add_argument("--lockstep", action="store_true",
                    help="every active connection sends at the same instant, every connection pings in the same burst")
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
