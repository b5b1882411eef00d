"""Per-run unprivileged uids (when the app runs as root) and the sweep of their processes.

RLIMIT_NPROC counts every process of a uid, and the kernel does not apply it
to root. So a root app runs each snippet as its own uid from a range that has
no /etc/passwd entry: the fork limit then holds, runs cannot see or signal
each other, and after a run every process of that uid can be killed without
touching anything else.
"""

from __future__ import annotations

import os
import pwd
import random
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

DEFAULT_UID_RANGE = range(60000, 61000)


class UidPool:
    """Hands out uids no other run of this process is using (thread-safe)."""

    def __init__(self, uids: range = DEFAULT_UID_RANGE) -> None:
        self._uids = uids
        self._in_use: set[int] = set()
        self._lock = threading.Lock()

    @property
    def range(self) -> range:
        return self._uids

    def _usable(self, uid: int) -> bool:
        try:
            pwd.getpwuid(uid)  # a real account: not ours to borrow
        except KeyError:
            return True
        return False

    def acquire(self) -> int:
        with self._lock:
            free = [u for u in self._uids if u not in self._in_use]
            # Random, so that several app processes on one host rarely pick the same uid.
            random.shuffle(free)
            for uid in free:
                if self._usable(uid):
                    self._in_use.add(uid)
                    return uid
        raise RuntimeError(f"no free sandbox uid in {self._uids.start}-{self._uids.stop - 1}")

    def release(self, uid: int) -> None:
        with self._lock:
            self._in_use.discard(uid)

    @contextmanager
    def lease(self) -> Iterator[int]:
        uid = self.acquire()
        try:
            yield uid
        finally:
            self.release(uid)


def live_processes(proc: Path = Path("/proc")) -> Iterator[tuple[int, int]]:
    """(pid, real uid) of every live process (reads /proc/*/status; zombies are already dead)."""
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("State", "").strip().startswith(("Z", "X")):
            continue
        yield int(entry.name), int(fields["Uid"].split()[0])


def pids_of_uid(uid: int) -> list[int]:
    return [pid for pid, owner in live_processes() if owner == uid]


def kill_uid(uid: int, within_s: float = 5.0) -> int:
    """SIGKILL every process of `uid` until none is left; returns how many were left after.

    Blocking (reads /proc): call it through `asyncio.to_thread`. A process that is
    forking while we kill may add a child after the scan, hence the loop. A killed
    process stays listed until the kernel has torn it down, which for a few hundred
    processes of a fork bomb on a busy machine can take longer than a few scans: the
    loop runs until /proc shows none, within `within_s`.
    """
    if uid == 0 or uid == os.getuid():
        raise ValueError("refusing to kill every process of our own uid or root")
    deadline = time.monotonic() + within_s
    pause = 0.005
    empty_scans = 0
    # Done after two empty scans in a row: a scan reads /proc one entry at a time, and a fork
    # bomb's child whose fork completes meanwhile can be missed by it.
    while empty_scans < 2:
        pids = pids_of_uid(uid)
        if not pids:
            empty_scans += 1
            time.sleep(0.005)
            continue
        empty_scans = 0
        if time.monotonic() > deadline:
            return len(pids)
        for pid in pids:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(pause)
        pause = min(pause * 2, 0.1)
    return 0
