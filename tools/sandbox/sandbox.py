"""The sandbox: pick the strongest backend that works here, run snippets through it, report.

`Sandbox` holds the choices (backend, concurrency, interpreter). Probe results
are machine facts, so they are cached per process and shared by every
`Sandbox`; nothing is probed before the first run or report.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import platform
import tempfile
import threading
import weakref
from pathlib import Path

from . import backends as bk
from . import probe, runner, seccomp, uids
from .blocks import normalize_language
from .models import CodeResult, SandboxLimits

AUTO = "auto"
MAX_CODE_BYTES = 256_000
PROBE_LIMITS = SandboxLimits(wall_s=20.0, cpu_s=10.0)

_probe_cache: dict[tuple, probe.BackendStatus] = {}
_interpreter_cache: dict[str, bk.Interpreter | str] = {}
_cache_lock = threading.RLock()


class Sandbox:
    """Runs untrusted snippets in a separate, limited, isolated process.

    backend: "auto" (strongest available) or one of `backends.BACKENDS` (tests
    and operators force one; a forced backend that does not work here gives
    outcome "unavailable", it never silently falls back).
    max_concurrency: runs at once per event loop; more wait their turn.
    python: the interpreter for snippets (default: the system python3).
    """

    def __init__(
        self,
        backend: str = AUTO,
        max_concurrency: int = 2,
        python: str | None = None,
        uid_pool: uids.UidPool | None = None,
    ) -> None:
        if backend != AUTO and backend not in bk.BACKENDS:
            raise ValueError(f"unknown sandbox backend {backend!r}; choose auto or one of {', '.join(bk.BACKENDS)}")
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        self.backend = backend
        self.max_concurrency = max_concurrency
        self.python = python
        self.uid_pool = uid_pool or _default_uid_pool()
        self._semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    # --- running ---

    async def run(self, code: str, language: str = "python", limits: SandboxLimits | None = None) -> CodeResult:
        limits = limits or SandboxLimits()
        lang = normalize_language(language)

        def unavailable(message: str) -> CodeResult:
            return CodeResult(lang, code, "", "", "unavailable", None, 0, False, message)

        if lang not in bk.LANGUAGES or (lang == "bash" and not bk.bash_path()):
            runnable = "Python and Bash" if bk.bash_path() else "Python"
            return unavailable(f"Only {runnable} can run here, not {language!r}.")
        payload = code.encode("utf-8", "surrogateescape")
        if len(payload) > MAX_CODE_BYTES:
            return unavailable(f"The code is too long to run ({len(payload):,} bytes; at most {MAX_CODE_BYTES:,}).")

        async with self._semaphore():
            chosen = await self.choose_backend()
            if isinstance(chosen, str):
                return unavailable(chosen)
            interpreter = await self.interpreter()
            assert isinstance(interpreter, bk.Interpreter)  # a backend works, so the interpreter does
            try:
                return await self._run_with(chosen.name, interpreter, lang, code, payload, limits)
            except OSError as exc:  # the machine changed under us (a binary removed, a uid refused, ...)
                return unavailable(f"The sandbox could not start: {exc}.")

    async def _run_with(
        self, backend: str, interpreter: bk.Interpreter, lang: str, code: str, payload: bytes, limits: SandboxLimits
    ) -> CodeResult:
        run_uid = self.uid_pool.acquire() if os.geteuid() == 0 else None
        host_workdir = None
        try:
            if backend == bk.RLIMITS:
                host_workdir = await asyncio.to_thread(_make_host_workdir, run_uid)
            bwrap_opts = await bk.bwrap_options() if backend == bk.BWRAP else frozenset()
            launch = bk.build_launch(
                backend, bk.LANGUAGES[lang], interpreter, limits, payload, run_uid, _seccomp_program(backend),
                host_workdir, bwrap_opts,
            )
            raw = await runner.execute(launch, limits)
            return runner.to_result(raw, lang, code, limits, launch.signal_exit_codes)
        finally:
            if host_workdir is not None:
                await asyncio.to_thread(runner.remove_tree, host_workdir)
            if run_uid is not None:
                self.uid_pool.release(run_uid)

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        sem = self._semaphores.get(loop)
        if sem is None:
            sem = self._semaphores[loop] = asyncio.Semaphore(self.max_concurrency)
        return sem

    # --- choosing ---

    async def interpreter(self) -> bk.Interpreter | str:
        """The interpreter's facts, or why it cannot be used."""
        path = self.python or bk.default_python()
        cached = _interpreter_cache.get(path)
        if cached is None:
            try:
                cached = await bk.inspect_interpreter(path)
            except (TimeoutError, OSError, RuntimeError, ValueError) as exc:
                cached = f"the interpreter {path} does not work: {exc}"
            with _cache_lock:
                _interpreter_cache[path] = cached
        return cached

    async def status(self, backend: str) -> probe.BackendStatus:
        """Probe one backend (once per process and interpreter)."""
        interpreter = await self.interpreter()
        key = (backend, self.python or bk.default_python())
        cached = _probe_cache.get(key)
        if cached is not None:
            return cached
        if isinstance(interpreter, str):
            status = probe.BackendStatus(backend, False, interpreter)
        elif (why := probe.precondition(backend)) is not None:
            status = probe.BackendStatus(backend, False, why)
        else:
            status = await self._probe(backend, interpreter)
        with _cache_lock:
            _probe_cache[key] = status
        return status

    async def _probe(self, backend: str, interpreter: bk.Interpreter) -> probe.BackendStatus:
        code = probe.probe_code(probe.app_marker_path())
        try:
            result = await self._run_with(backend, interpreter, "python", code, code.encode(), PROBE_LIMITS)
        except (TimeoutError, OSError, RuntimeError, ValueError) as exc:
            return probe.BackendStatus(backend, False, f"could not start: {exc!r}")
        facts = probe.parse_facts(result.stdout)
        if result.outcome != "ok" or facts is None:
            detail = (result.stderr.strip().splitlines() or [result.message])[-1]
            return probe.BackendStatus(backend, False, f"the probe failed ({result.outcome}): {detail[:300]}")
        if (why := probe.judge(backend, facts)) is not None:
            return probe.BackendStatus(backend, False, f"ran, but {why}", facts)
        return probe.BackendStatus(backend, True, "works", facts)

    async def choose_backend(self) -> probe.BackendStatus | str:
        """The backend runs use, or a sentence saying why none can be used."""
        if self.backend != AUTO:
            status = await self.status(self.backend)
            return status if status.available else f"The {self.backend} sandbox does not work here: {status.reason}."
        reasons = []
        for name in bk.BACKENDS:
            status = await self.status(name)
            if status.available and name == bk.RLIMITS and os.geteuid() != 0:
                # Without namespaces and without a uid of its own, a snippet could read the
                # app's files and signal its processes: too weak to pick on our own.
                reasons.append(f"{name}: works, but not chosen automatically when the app is not root")
                continue
            if status.available:
                return status
            reasons.append(f"{name}: {status.reason}")
        return "Code execution is unavailable: no sandbox works here (" + "; ".join(reasons) + ")."

    # --- reporting ---

    async def report(self) -> dict:
        statuses = {name: await self.status(name) for name in bk.BACKENDS}
        chosen = await self.choose_backend()
        interpreter = await self.interpreter()
        return build_report(self, statuses, chosen, interpreter)


def _make_host_workdir(run_uid: int | None) -> Path:
    path = Path(tempfile.mkdtemp(prefix="allin-sandbox-"))
    if run_uid is not None:
        os.chown(path, run_uid, run_uid)
    return path


_seccomp_programs: dict[str, bytes | None] = {}


def _seccomp_program(backend: str) -> bytes | None:
    if backend not in _seccomp_programs:
        _seccomp_programs[backend] = seccomp.build_filter(bk.seccomp_families(backend))
    return _seccomp_programs[backend]


_uid_pool: uids.UidPool | None = None


def _default_uid_pool() -> uids.UidPool:
    """One pool per process: every Sandbox must draw from the same set of uids."""
    global _uid_pool
    with _cache_lock:
        if _uid_pool is None:
            _uid_pool = uids.UidPool()
        return _uid_pool


RLIMIT_NAMES = ["RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_FSIZE", "RLIMIT_CORE"]


def build_report(
    sandbox: Sandbox,
    statuses: dict[str, probe.BackendStatus],
    chosen: probe.BackendStatus | str,
    interpreter: bk.Interpreter | str,
) -> dict:
    root = os.geteuid() == 0
    active = chosen if isinstance(chosen, probe.BackendStatus) else None
    notes: list[str] = []
    if active is None:
        notes.append(str(chosen))
    else:
        notes.append(_BACKEND_SENTENCES[active.name])
    if not statuses[bk.BWRAP].available:
        notes.append(f"bubblewrap is not used: {statuses[bk.BWRAP].reason}.")
    if not root:
        notes.append(
            "The app does not run as root, so snippets keep the app's uid and rely on namespaces: "
            "without them a snippet could read the app's files and signal its processes, which is why "
            "the rlimits backend is not chosen automatically."
        )
    if active is not None and not active.network_isolated:
        notes.append("The network is NOT isolated: no network namespace and no seccomp filter here.")
    if active is not None and active.name == bk.RLIMITS:
        notes.append(
            "No namespaces: a snippet can read any world-readable file and see other processes; "
            "install bubblewrap or enable user namespaces for filesystem isolation."
        )
    if not seccomp.supported_arch():
        notes.append(f"No seccomp filter on {seccomp.machine_arch()} (only x86_64 and aarch64 are covered).")
    user_namespaces = statuses[bk.UNSHARE_USERNS].available or statuses[bk.BWRAP].available
    if not user_namespaces:
        notes.append("Unprivileged user namespaces do not work here (kernel setting or container policy).")
    return {
        "backend": active.name if active else None,
        "available": active is not None,
        "bubblewrap": statuses[bk.BWRAP].available,
        "user_namespaces": user_namespaces,
        "network_isolated": bool(active and active.network_isolated),
        "filesystem_isolated": bool(active and active.filesystem_isolated),
        "unprivileged_uid": root,  # as root, each run gets its own uid from uid_range
        "uid_range": [sandbox.uid_pool.range.start, sandbox.uid_pool.range.stop - 1] if root else None,
        "rlimits": RLIMIT_NAMES if active else [],
        "seccomp": {
            "active": bool(active and active.seccomp_active),
            "arch": seccomp.machine_arch(),
            "denies": seccomp.DENIED_SUMMARY,
        },
        "platform": platform.platform(),
        "python": (
            {"path": interpreter.path, "version": interpreter.version}
            if isinstance(interpreter, bk.Interpreter) else {"error": interpreter}
        ),
        "max_concurrency": sandbox.max_concurrency,
        "backends": {name: {"available": s.available, "reason": s.reason} for name, s in statuses.items()},
        "notes": notes,
    }


_BACKEND_SENTENCES = {
    bk.BWRAP: (
        "Snippets run in bubblewrap: no network, only /usr and the interpreter visible (read-only), "
        "a private /tmp, own process tree, no environment from the app."
    ),
    bk.UNSHARE_USERNS: (
        "Snippets run in namespaces made with `unshare -U -r` (bubblewrap is missing): no network, "
        "host directories hidden except /usr, a private /tmp, own process tree, no capabilities."
    ),
    bk.UNSHARE_ROOT: (
        "Snippets run in namespaces made by root with `unshare` (no user namespaces here): no network, "
        "host directories hidden except /usr, a private /tmp, own process tree, an unprivileged uid."
    ),
    bk.RLIMITS: "Snippets run with resource limits and a seccomp filter only (no namespaces work here).",
}


# --- module-level API (the default sandbox, built on first use) ---

_default: Sandbox | None = None
_report: dict | None = None


def default_sandbox() -> Sandbox:
    """The sandbox `run_code` uses: `Sandbox()` unless `set_default_sandbox` chose another."""
    global _default
    with _cache_lock:
        if _default is None:
            _default = Sandbox()
        return _default


def set_default_sandbox(sandbox: Sandbox) -> None:
    """Configure what `run_code` and `sandbox_report` use (the app's lifespan, from Settings)."""
    global _default, _report
    with _cache_lock:
        _default, _report = sandbox, None


async def run_code(code: str, language: str = "python", limits: SandboxLimits | None = None) -> CodeResult:
    """Run a snippet in the default sandbox. Never raises for what the snippet does."""
    return await default_sandbox().run(code, language, limits)


async def asandbox_report() -> dict:
    """`sandbox_report()` for async callers (the probes run on the caller's loop)."""
    global _report
    if _report is None:
        _report = await default_sandbox().report()
    return _report


def sandbox_report() -> dict:
    """Which protections are active on this machine (probed on first call, then cached).

    Blocking: it runs a probe snippet per backend. From async code use `asandbox_report()`.
    """
    global _report
    if _report is None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            _report = asyncio.run(default_sandbox().report())
        else:  # called from inside a loop: probe on a private loop in a worker thread
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                _report = pool.submit(asyncio.run, default_sandbox().report()).result()
    return _report
