"""How each isolation backend starts a run: the command line and the launcher's instructions.

Backends, strongest first (the probe picks the first that works here):

- `bwrap`: bubblewrap with every namespace; the filesystem is a whitelist
  (/usr and the interpreter, read-only) with a private size-limited /tmp.
- `unshare-userns`: util-linux `unshare -U -r` with net/mount/pid/ipc/uts
  namespaces; the launcher hides every other top-level directory behind an
  empty read-only tmpfs and drops all capabilities.
- `unshare-root`: the same without a user namespace (needs real root, for
  kernels that refuse unprivileged user namespaces); the launcher drops to
  the run's uid.
- `rlimits`: no namespaces; rlimits, seccomp and (as root) a throwaway uid.
"""

from __future__ import annotations

import asyncio
import json
import marshal
import math
import os
import re
import shutil
import socket
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from .models import SandboxLimits

BWRAP = "bwrap"
UNSHARE_USERNS = "unshare-userns"
UNSHARE_ROOT = "unshare-root"
RLIMITS = "rlimits"
BACKENDS = (BWRAP, UNSHARE_USERNS, UNSHARE_ROOT, RLIMITS)
NAMESPACE_BACKENDS = (BWRAP, UNSHARE_USERNS, UNSHARE_ROOT)

# Top-level entries the sandbox may see (read-only); everything else is hidden.
SYSTEM_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
# The few files of /etc the dynamic linker and `time` want.
ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime")
SANDBOX_WORKDIR = "/tmp/sandbox"
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
TOP_ENV = {"PATH": SAFE_PATH, "LANG": "C.UTF-8"}  # of the processes that set the sandbox up
DEV_SHM_BYTES = 1 << 20


@dataclass(frozen=True)
class Interpreter:
    """The Python that runs snippets: never the app's venv (that would expose the app)."""

    path: str
    version: str
    prefix: str
    site_dirs: tuple[str, ...]

    @property
    def needs_bind(self) -> bool:
        """True when the interpreter lives outside the system directories (e.g. pyenv under /root)."""
        top = Path(self.prefix).parts[1] if len(Path(self.prefix).parts) > 1 else ""
        return top not in SYSTEM_DIRS


def default_python() -> str:
    """The system interpreter when there is one (fast to start, readable by any uid), else the app's base."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.access(candidate, os.X_OK):
            return candidate
    # sys.executable may be a venv's: its base interpreter carries no site-packages of ours.
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}"
    return str(base)


_INSPECT = (
    "import json, site, sys; print(json.dumps({'version': sys.version.split()[0], "
    "'prefix': sys.base_prefix, 'site': site.getsitepackages()}))"
)


async def inspect_interpreter(path: str) -> Interpreter:
    proc = await asyncio.create_subprocess_exec(
        path, "-I", "-c", _INSPECT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={"PATH": SAFE_PATH, "LANG": "C.UTF-8"},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    if proc.returncode != 0:
        raise RuntimeError(f"{path} did not start: {err.decode(errors='replace').strip()}")
    info = json.loads(out)
    return Interpreter(
        path=path, version=info["version"], prefix=os.path.realpath(info["prefix"]),
        site_dirs=tuple(d for d in info["site"] if os.path.isdir(d)),
    )


@dataclass(frozen=True)
class Language:
    name: str
    main_file: str

    def argv(self, interpreter: Interpreter, workdir: str) -> list[str]:
        main = f"{workdir}/{self.main_file}"
        if self.name == "python":
            # -I: no env vars, no user site, no script-dir games; -B: no .pyc; -u: output survives a kill.
            return [interpreter.path, "-I", "-B", "-u", "-X", "utf8", main]
        return [bash_path() or "/bin/bash", "--noprofile", "--norc", main]


LANGUAGES = {"python": Language("python", "main.py"), "bash": Language("bash", "main.sh")}


# bwrap options newer than the oldest bubblewrap still shipped (0.6 in Ubuntu 22.04):
# used when present, since seccomp and rlimits already cover what they add.
OPTIONAL_BWRAP_OPTIONS = ("--disable-userns", "--size", "--perms")
_bwrap_options: frozenset[str] | None = None


async def bwrap_options() -> frozenset[str]:
    """The options the installed bwrap knows (read once from `bwrap --help`)."""
    global _bwrap_options
    if _bwrap_options is None:
        proc = await asyncio.create_subprocess_exec(
            "bwrap", "--help", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env={"PATH": SAFE_PATH},
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
        _bwrap_options = frozenset(re.findall(r"--[a-z][a-z-]+", out.decode(errors="replace")))
    return _bwrap_options


@cache
def prlimit_path() -> str | None:
    return shutil.which("prlimit", path=SAFE_PATH)


@cache
def bash_path() -> str | None:
    return shutil.which("bash", path="/usr/bin:/bin")


@cache
def launcher_source() -> str:
    return (Path(__file__).with_name("_launcher.py")).read_text()


FD_PLACEHOLDER = "@fd{}@"  # in argv, replaced by the descriptor the runner opens for payload N


@dataclass
class Launch:
    """One run's process: what to spawn, as whom, what it reads, and what to clean up after."""

    argv: list[str]
    env: dict[str, str]
    stdin: bytes | None = None  # written to the process's stdin (the launcher reads the code there)
    fd_payloads: list[bytes] = field(default_factory=list)  # passed as memfds (bwrap's --seccomp, --file)
    user: int | None = None  # spawn as this uid/gid (root only); None: as ourselves
    sweep_uid: int | None = None  # kill every process of this uid afterwards
    signal_exit_codes: bool = False  # bwrap reports a signal death as 128+N


def sandbox_env(workdir: str, tmpdir: str) -> dict[str, str]:
    """The whole environment of a snippet: nothing from the app's."""
    return {
        "PATH": SAFE_PATH,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HOME": workdir,
        "TMPDIR": tmpdir,
        "USER": "sandbox",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "PYTHONIOENCODING": "utf-8",
    }


def rlimits_for(limits: SandboxLimits) -> dict[str, tuple[int, int]]:
    cpu = max(1, math.ceil(limits.cpu_s))
    memory = limits.memory_mb * 1024 * 1024
    return {
        "RLIMIT_AS": (memory, memory),
        # SIGXCPU at the soft limit, SIGKILL a second later if it is caught.
        "RLIMIT_CPU": (cpu, cpu + 1),
        "RLIMIT_NPROC": (limits.max_procs, limits.max_procs),
        "RLIMIT_NOFILE": (limits.max_open_files, limits.max_open_files),
        "RLIMIT_FSIZE": (limits.max_file_bytes, limits.max_file_bytes),
        "RLIMIT_CORE": (0, 0),
    }


def _launcher_argv(interpreter: Interpreter, config: dict) -> list[str]:
    return [interpreter.path, "-I", "-S", "-c", launcher_source(), marshal.dumps(config).hex()]


def _prlimit_args(limits: SandboxLimits) -> list[str]:
    flags = {"RLIMIT_AS": "as", "RLIMIT_CPU": "cpu", "RLIMIT_NPROC": "nproc", "RLIMIT_NOFILE": "nofile",
             "RLIMIT_FSIZE": "fsize", "RLIMIT_CORE": "core"}
    return [f"--{flags[name]}={soft}:{hard}" for name, (soft, hard) in rlimits_for(limits).items()]


def _hidden_top_dirs() -> list[str]:
    """Every real top-level directory except the system ones, /dev, /proc and /tmp."""
    keep = set(SYSTEM_DIRS) | {"dev", "proc", "tmp"}
    hidden = []
    for entry in sorted(os.listdir("/")):
        path = f"/{entry}"
        if entry not in keep and os.path.isdir(path) and not os.path.islink(path):
            hidden.append(path)
    return hidden


def build_launch(
    backend: str,
    language: Language,
    interpreter: Interpreter,
    limits: SandboxLimits,
    code: bytes,
    run_uid: int | None,
    seccomp_program: bytes | None,
    host_workdir: Path | None = None,
    bwrap_opts: frozenset[str] = frozenset(),
) -> Launch:
    """The process to spawn for one run.

    run_uid: the run's throwaway uid (when we are root), else None.
    host_workdir: the rlimits backend's work directory, made by the caller.
    bwrap_opts: what `bwrap_options()` found, for the optional bwrap flags.
    """
    if backend == BWRAP:
        return _bwrap_launch(language, interpreter, limits, code, run_uid, seccomp_program, bwrap_opts)
    if backend in (UNSHARE_USERNS, UNSHARE_ROOT):
        return _unshare_launch(backend, language, interpreter, limits, code, run_uid, seccomp_program)
    if backend == RLIMITS:
        if host_workdir is None:
            raise ValueError("the rlimits backend needs a host work directory")
        # No namespaces: the launcher's seccomp filter is the only network barrier.
        config = _launcher_config(language, interpreter, limits, run_uid, seccomp_program, str(host_workdir))
        return Launch(_launcher_argv(interpreter, config), TOP_ENV, stdin=code, user=run_uid, sweep_uid=run_uid)
    raise ValueError(f"unknown sandbox backend {backend!r}; choose one of {', '.join(BACKENDS)}")


def _launcher_config(
    language: Language, interpreter: Interpreter, limits: SandboxLimits, run_uid: int | None,
    seccomp_program: bytes | None, workdir: str,
) -> dict:
    """What `_launcher.py` does, as plain data (it reads it with marshal)."""
    return {
        "workdir": workdir,
        "main_file": f"{workdir}/{language.main_file}",
        "argv": language.argv(interpreter, workdir),
        "env": sandbox_env(workdir, "/tmp" if workdir == SANDBOX_WORKDIR else workdir),
        "drop": None,  # "uid" | "caps"
        "uid": run_uid,
        "gid": run_uid,
        "rlimits": rlimits_for(limits),
        "seccomp": seccomp_program,
        "fs": None,  # the mounts of the unshare backends
        "init": False,  # stay behind as pid 1 of a pid namespace
    }


def _unshare_launch(
    backend: str, language: Language, interpreter: Interpreter, limits: SandboxLimits, code: bytes,
    run_uid: int | None, seccomp_program: bytes | None,
) -> Launch:
    config = _launcher_config(language, interpreter, limits, run_uid, seccomp_program, SANDBOX_WORKDIR)
    expose = [p for p in ETC_FILES if os.path.exists(p)]
    if interpreter.needs_bind:
        expose.append(interpreter.prefix)
    config["fs"] = {
        "hide": _hidden_top_dirs(),
        "expose": expose,
        "mask": list(interpreter.site_dirs),
        "scratch": [("/tmp", limits.scratch_bytes), ("/dev/shm", DEV_SHM_BYTES)],
    }
    config["init"] = True
    namespaces = ["--net", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc", "--ipc", "--uts"]
    if backend == UNSHARE_USERNS:
        # Started as the run's uid, root only inside its own user namespace; the launcher
        # drops every capability before the snippet starts.
        config["drop"] = "caps"
        argv = ["unshare", "--user", "--map-root-user", *namespaces]
        user = run_uid
    else:
        # Started as real root (no user namespaces here); the launcher becomes the run's uid.
        if run_uid is None:
            raise ValueError("the unshare-root backend needs root and a run uid")
        config["drop"] = "uid"
        argv = ["unshare", *namespaces]
        user = None
    argv += ["--", *_launcher_argv(interpreter, config)]
    return Launch(argv, TOP_ENV, stdin=code, user=user, sweep_uid=run_uid, signal_exit_codes=True)


def _bwrap_args(
    interpreter: Interpreter, limits: SandboxLimits, env: dict[str, str], opts: frozenset[str]
) -> list[str]:
    """bubblewrap's namespaces and filesystem: a whitelist, read-only, plus a private /tmp."""

    def sized(size: int) -> list[str]:  # a tmpfs size cap, where bwrap can set one
        return ["--size", str(size)] if "--size" in opts else []

    argv = ["bwrap", "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session"]
    argv += ["--disable-userns"] if "--disable-userns" in opts else []
    argv += ["--cap-drop", "ALL", "--hostname", "sandbox", "--clearenv"]
    for key, value in env.items():
        argv += ["--setenv", key, value]
    for name in SYSTEM_DIRS:
        path = f"/{name}"
        if os.path.islink(path):
            argv += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            argv += ["--ro-bind", path, path]
    for path in ETC_FILES:
        argv += ["--ro-bind-try", path, path]
    if interpreter.needs_bind:
        argv += ["--ro-bind", interpreter.prefix, interpreter.prefix]
    for path in interpreter.site_dirs:  # stdlib only: nothing installed, least of all the app
        argv += [*sized(4096), "--tmpfs", path, "--remount-ro", path]
    argv += ["--proc", "/proc", "--dev", "/dev", *sized(limits.scratch_bytes), "--tmpfs", "/tmp"]
    return argv


def _bwrap_launch(
    language: Language, interpreter: Interpreter, limits: SandboxLimits, code: bytes,
    run_uid: int | None, seccomp_program: bytes | None, opts: frozenset[str],
) -> Launch:
    """bubblewrap does everything itself (seccomp via --seccomp, the code via --file), and
    prlimit sets the rlimits: no launcher interpreter to start, ~2x faster."""
    workdir = SANDBOX_WORKDIR
    argv = [*_bwrap_args(interpreter, limits, sandbox_env(workdir, "/tmp"), opts), "--dir", workdir, "--chdir", workdir]
    payloads = [code]
    argv += ["--perms", "0644"] if "--perms" in opts else []
    argv += ["--file", FD_PLACEHOLDER.format(0), f"{workdir}/{language.main_file}"]
    if seccomp_program:  # bwrap always sets no_new_privs
        payloads.append(seccomp_program)
        argv += ["--seccomp", FD_PLACEHOLDER.format(1)]
    argv += ["--remount-ro", "/"]  # the root tmpfs bwrap builds stays read-only: only /tmp is writable
    prlimit = [prlimit_path() or "/usr/bin/prlimit", *_prlimit_args(limits), "--"]
    argv += ["--", *prlimit, *language.argv(interpreter, workdir)]
    return Launch(argv, TOP_ENV, fd_payloads=payloads, user=run_uid, sweep_uid=run_uid, signal_exit_codes=True)


def seccomp_families(backend: str) -> tuple[int, ...]:
    return (socket.AF_UNIX,) if backend in NAMESPACE_BACKENDS else ()
