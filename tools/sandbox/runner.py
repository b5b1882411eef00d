"""Run one launch: feed the code, read both streams with a cap, enforce the wall clock, clean up."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import re
import shutil
import signal
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from loguru import logger

from . import uids
from ._constants import LAUNCHER_FAILED, LAUNCHER_MARKER
from .backends import FD_PLACEHOLDER, Launch
from .models import CodeResult, Outcome, SandboxLimits

READ_CHUNK = 1 << 16
# Past this many times the cap, stop reading and stop the program: it is flooding.
KILL_FACTOR = 4
# After the main process ends, how long stragglers may keep a pipe open.
DRAIN_GRACE_S = 1.0
# The last stderr line of a run that hit RLIMIT_AS: Python's traceback, or bash's allocator.
_MEMORY_ERROR = re.compile(r"^MemoryError\b|Cannot allocate memory|xmalloc: cannot allocate")


class StreamCapture:
    """The first `limit` bytes of a stream, and how many came in all."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.kept = bytearray()
        self.seen = 0

    def feed(self, chunk: bytes) -> None:
        self.seen += len(chunk)
        room = self.limit - len(self.kept)
        if room > 0:
            self.kept += chunk[:room]

    @property
    def truncated(self) -> bool:
        return self.seen > self.limit

    def text(self, stopped: bool) -> str:
        # An incremental decoder drops a multi-byte character cut in half at the cap.
        text = codecs.getincrementaldecoder("utf-8")("replace").decode(bytes(self.kept), final=not self.truncated)
        if self.truncated:
            more = "at least " if stopped else ""
            text += f"\n[output truncated: {more}{self.seen - len(self.kept):,} more bytes not shown]\n"
        return text


@dataclass
class RawRun:
    returncode: int | None
    stdout: StreamCapture
    stderr: StreamCapture
    stopped_for: str | None  # "timeout" | "output" | None
    duration_ms: int


class _RunProtocol(asyncio.SubprocessProtocol):
    """Captures both streams as they arrive and notes when the process exits.

    Our own protocol rather than `create_subprocess_exec`: its `wait()` also waits
    for the pipes to close, which a leftover grandchild can hold open forever.
    """

    def __init__(self, limits: SandboxLimits) -> None:
        self.captures = {1: StreamCapture(limits.max_output_bytes), 2: StreamCapture(limits.max_output_bytes)}
        self.kill_at = KILL_FACTOR * limits.max_output_bytes
        self.exited = asyncio.Event()
        self.flooded = asyncio.Event()
        self.pipes_closed = {1: asyncio.Event(), 2: asyncio.Event()}

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        capture = self.captures[fd]
        capture.feed(data)
        if capture.seen > self.kill_at:
            self.flooded.set()

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd in self.pipes_closed:
            self.pipes_closed[fd].set()

    def process_exited(self) -> None:
        self.exited.set()


def _kill(pid: int) -> None:
    """SIGKILL the process and its process group (it was started in a new session)."""
    for kill in (os.killpg, os.kill):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            kill(pid, signal.SIGKILL)


def _setpriv() -> str:
    path = shutil.which("setpriv")
    if path is None:
        raise RuntimeError("setpriv (util-linux) is needed to run snippets as their own user on this event loop")
    return path


def _memfd(payload: bytes) -> int:
    """A descriptor the child can read `payload` from, without a pipe that could fill up."""
    fd = os.memfd_create("allin-sandbox", 0)
    os.write(fd, payload)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


async def execute(launch: Launch, limits: SandboxLimits) -> RawRun:
    loop = asyncio.get_running_loop()
    as_user: dict = {}
    drop: list[str] = []
    if os.geteuid() == 0 and launch.user is not None:
        if isinstance(loop, asyncio.BaseEventLoop):
            as_user = {"user": launch.user, "group": launch.user, "extra_groups": []}
        else:
            # Other loops (uvloop, which uvicorn picks when it is installed) take no user/group
            # arguments: setpriv (util-linux) takes the same three steps before the exec.
            drop = [_setpriv(), f"--reuid={launch.user}", f"--regid={launch.user}", "--clear-groups", "--"]
    fds = [_memfd(payload) for payload in launch.fd_payloads]
    argv = list(launch.argv)
    for n, fd in enumerate(fds):
        argv = [str(fd) if arg == FD_PLACEHOLDER.format(n) else arg for arg in argv]
    argv = [*drop, *argv]
    started = time.monotonic()
    try:
        transport, protocol = await loop.subprocess_exec(
            lambda: _RunProtocol(limits),
            *argv,
            stdin=subprocess.PIPE if launch.stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=launch.env,
            cwd="/",
            start_new_session=True,
            close_fds=True,
            pass_fds=fds,
            **as_user,
        )
    finally:
        for fd in fds:
            os.close(fd)
    pid = transport.get_pid()
    stopped_for: str | None = None
    duration_ms = 0
    try:
        if launch.stdin is not None:
            stdin = transport.get_pipe_transport(0)
            stdin.write(launch.stdin)
            stdin.close()  # flushes, then closes: the launcher reads to EOF
        exited = asyncio.create_task(protocol.exited.wait())
        flooded = asyncio.create_task(protocol.flooded.wait())
        try:
            await asyncio.wait({exited, flooded}, timeout=limits.wall_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            flooded.cancel()
        if not protocol.exited.is_set():
            stopped_for = "output" if protocol.flooded.is_set() else "timeout"
            _kill(pid)
            await exited
        duration_ms = round((time.monotonic() - started) * 1000)
    finally:
        # Also on cancellation: nothing of the run may outlive it.
        if transport.get_returncode() is None:
            _kill(pid)
        # Even when the first process of a pid namespace exited on its own (the kernel then kills
        # the rest), the /proc sweep runs: CI once saw a fork bomb's process still alive after
        # such a run returned. Finding nothing costs two scans of /proc.
        await _sweep(launch, pid)
        closing = [asyncio.create_task(e.wait()) for e in protocol.pipes_closed.values()]
        _, pending = await asyncio.wait(closing, timeout=DRAIN_GRACE_S)
        for task in pending:
            task.cancel()
        transport.close()
    return RawRun(transport.get_returncode(), protocol.captures[1], protocol.captures[2], stopped_for, duration_ms)


async def _sweep(launch: Launch, pid: int) -> None:
    """Kill whatever the run left behind: its process group and, as root, every process of its uid."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    if launch.sweep_uid is not None and os.geteuid() == 0:
        if left := await asyncio.to_thread(uids.kill_uid, launch.sweep_uid):
            logger.warning("sandbox uid {} still has {} processes after the sweep", launch.sweep_uid, left)


def remove_tree(path: Path) -> None:
    """rmtree that also gets through directories the snippet made unreadable."""

    def _retry(func, target, _exc) -> None:
        parent = os.path.dirname(target)
        with contextlib.suppress(OSError):
            os.chmod(parent, stat.S_IRWXU)
            os.chmod(target, stat.S_IRWXU)
        with contextlib.suppress(FileNotFoundError):
            func(target)

    shutil.rmtree(path, onerror=_retry)


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def signal_of(returncode: int | None, signal_exit_codes: bool) -> int | None:
    """The signal that ended the run, if one did (bwrap and our init report 128+N)."""
    if returncode is None:
        return None
    if returncode < 0:
        return -returncode
    if signal_exit_codes and returncode > 128 and (returncode - 128) in signal.valid_signals():
        return returncode - 128
    return None


def classify(raw: RawRun, limits: SandboxLimits, signal_exit_codes: bool) -> tuple[Outcome, str]:
    """The outcome and a sentence for the user."""
    if raw.stopped_for == "timeout":
        return "timeout", f"Stopped after {limits.wall_s:g} s (time limit)."
    if raw.stopped_for == "output":
        return "output_limit", f"Stopped: the output passed the {limits.max_output_bytes:,}-byte limit."
    rc = raw.returncode
    stderr_text = bytes(raw.stderr.kept).decode("utf-8", "replace")
    if rc == LAUNCHER_FAILED and LAUNCHER_MARKER in stderr_text:
        why = _last_line(stderr_text).replace(LAUNCHER_MARKER, "").strip()
        return "unavailable", f"The sandbox could not start: {why}"
    signum = signal_of(rc, signal_exit_codes)
    if signum == signal.SIGXCPU:
        return "timeout", f"Stopped after {max(1, round(limits.cpu_s))} s of CPU time (CPU limit)."
    if signum is not None:
        return "killed", f"Killed by {_signal_name(signum)}."
    if rc == 0:
        return "ok", "Finished."
    last = _last_line(stderr_text)
    if _MEMORY_ERROR.search(last):
        return "memory", f"Ran out of memory (limit {limits.memory_mb} MB)."
    return "error", f"Exited with code {rc}" + (f": {last[:200]}" if last else ".")


def to_result(raw: RawRun, language: str, code: str, limits: SandboxLimits, signal_exit_codes: bool) -> CodeResult:
    outcome, message = classify(raw, limits, signal_exit_codes)
    stopped = raw.stopped_for is not None
    truncated = raw.stdout.truncated or raw.stderr.truncated
    if truncated and outcome != "output_limit":
        message = message.rstrip(".") + "; output truncated."
    signum = signal_of(raw.returncode, signal_exit_codes)
    return CodeResult(
        language=language,
        code=code,
        stdout=raw.stdout.text(stopped),
        stderr=raw.stderr.text(stopped),
        outcome=outcome,
        # Python's convention whatever the backend: -N when signal N ended it.
        exit_code=-signum if signum is not None else raw.returncode,
        duration_ms=raw.duration_ms,
        truncated=truncated,
        message=message,
    )
