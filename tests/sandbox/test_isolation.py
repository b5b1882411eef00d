"""What a snippet must not reach, on every backend: network, secrets, the app, the host's files."""

from __future__ import annotations

import os
import platform
import secrets
import shutil
import socket
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.sandbox import Sandbox, SandboxLimits, runner, seccomp
from tools.sandbox import backends as bk

REPO = Path(__file__).resolve().parents[2]
LIMITS = SandboxLimits(wall_s=8.0)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP port this test listens on: the snippet must not reach it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        server.setblocking(False)
        yield server
        with pytest.raises(BlockingIOError):  # nobody connected
            server.accept()


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> str:
    value = "sk-" + secrets.token_hex(16)
    monkeypatch.setenv("ALLIN_SANDBOX_TEST_SECRET", value)
    monkeypatch.setenv("GOOGLE_API_KEY", value)
    return value


@pytest.fixture
def app_dir(secret_env: str) -> Iterator[Path]:
    """Stands in for the app's directory: world-readable, like a checkout, with a .env and a data dir."""
    root = Path(tempfile.mkdtemp(prefix="allin-app-"))
    root.chmod(0o755)
    (root / ".env").write_text(f"GOOGLE_API_KEY={secret_env}\n")
    (root / "data").mkdir(mode=0o755)
    (root / "data" / "notes.txt").write_text(f"data {secret_env}\n")
    for path in (root / ".env", root / "data" / "notes.txt"):
        path.chmod(0o644)
    yield root
    shutil.rmtree(root)


async def test_network_is_unreachable(sandbox: Sandbox, listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    code = (
        "import socket\n"
        "try:\n"
        f"    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
        "    print('CONNECTED')\n"
        "except OSError as exc:\n"
        "    print('refused', type(exc).__name__, exc)\n"
    )
    result = await sandbox.run(code, limits=LIMITS)
    assert result.outcome == "ok", result
    assert "CONNECTED" not in result.stdout
    assert result.stdout.startswith("refused")


async def test_network_is_unreachable_from_bash(sandbox: Sandbox, listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    code = f"if exec 3<>/dev/tcp/127.0.0.1/{port}; then echo CONNECTED; else echo refused; fi"
    result = await sandbox.run(code, language="bash", limits=LIMITS)
    assert "CONNECTED" not in result.stdout
    assert "refused" in result.stdout


async def test_environment_holds_nothing_of_the_app(sandbox: Sandbox, secret_env: str) -> None:
    code = (
        "import os, glob\n"
        "print(sorted(os.environ))\n"
        f"for path in ['/proc/1/environ', '/proc/{os.getpid()}/environ', '/proc/{os.getppid()}/environ',"
        " *glob.glob('/proc/*/environ')]:\n"
        "    try:\n"
        "        print(path, open(path, 'rb').read())\n"
        "    except OSError as exc:\n"
        "        print(path, type(exc).__name__)\n"
    )
    result = await sandbox.run(code, limits=LIMITS)
    assert result.outcome == "ok", result
    names = eval(result.stdout.splitlines()[0])
    assert set(names) <= {"PATH", "LANG", "LC_ALL", "HOME", "TMPDIR", "USER", "PYTHONDONTWRITEBYTECODE",
                          "PYTHONUNBUFFERED", "PYTHONIOENCODING", "PWD", "SHLVL", "_"}
    assert secret_env not in result.stdout + result.stderr


async def test_app_files_and_data_are_out_of_reach(isolated_fs: Sandbox, app_dir: Path, secret_env: str) -> None:
    code = (
        "import os\n"
        f"for path in [{str(app_dir / '.env')!r}, {str(app_dir / 'data' / 'notes.txt')!r},"
        f" {str(REPO / 'pyproject.toml')!r}, '/work/main/pyproject.toml', {str(REPO / '.env')!r}]:\n"
        "    try:\n"
        "        print(path, open(path).read()[:200])\n"
        "    except OSError as exc:\n"
        "        print(path, 'FAILED', type(exc).__name__)\n"
        f"print('listing', os.path.isdir({str(app_dir)!r}), os.path.isdir({str(REPO)!r}))\n"
    )
    result = await isolated_fs.run(code, limits=LIMITS)
    assert result.outcome == "ok", result
    assert secret_env not in result.stdout
    assert "[build-system]" not in result.stdout  # the repo's pyproject
    assert result.stdout.count("FAILED") == 5
    assert "listing False False" in result.stdout


async def test_the_app_cannot_be_imported(isolated_fs: Sandbox) -> None:
    code = (
        "import sys\n"
        f"sys.path[:0] = [{str(REPO)!r}, '/work/main']\n"
        "for name in ('allin', 'api', 'tools.sandbox', 'langgraph', 'pydantic'):\n"
        "    try:\n"
        "        __import__(name)\n"
        "        print(name, 'IMPORTED')\n"
        "    except ImportError as exc:\n"
        "        print(name, 'missing')\n"
    )
    result = await isolated_fs.run(code, limits=LIMITS)
    assert result.outcome == "ok", result
    assert "IMPORTED" not in result.stdout
    assert result.stdout.count("missing") == 5


async def test_writes_outside_the_work_dir_fail_or_vanish(sandbox: Sandbox) -> None:
    name = f"allin-sandbox-test-{uuid.uuid4().hex}"
    targets = {"repo": REPO / name, "root_home": Path("/root") / name, "tmp": Path("/tmp") / name}
    code = (
        "import os\n"
        f"targets = {({key: str(path) for key, path in targets.items()})!r}\n"
        f"targets['home'] = os.path.expanduser('~/{name}')\n"
        "for key, path in targets.items():\n"
        "    try:\n"
        "        with open(path, 'w') as f:\n"
        "            f.write('x')\n"
        "        print(key, 'WROTE', path)\n"
        "    except OSError as exc:\n"
        "        print(key, 'FAILED', type(exc).__name__)\n"
        "print('cwd', os.getcwd())\n"
    )
    try:
        result = await sandbox.run(code, limits=LIMITS)
        assert result.outcome == "ok", result
        assert "repo FAILED" in result.stdout
        assert "root_home FAILED" in result.stdout
        assert "home WROTE" in result.stdout  # the private work dir is writable...
        cwd = Path(result.stdout.split("cwd ", 1)[1].strip())
        assert not (REPO / name).exists() and not (Path("/root") / name).exists()
        if sandbox.backend != "rlimits":  # ...and gone with everything else the run wrote
            assert not (Path("/tmp") / name).exists()
            assert not (Path("/tmp/sandbox") / name).exists()
        assert not (cwd / name).exists()
    finally:
        # The rlimits backend shares the host's /tmp (documented); do not leave the file behind.
        (Path("/tmp") / name).unlink(missing_ok=True)


async def test_escape_tricks_gain_nothing(sandbox: Sandbox, secret_env: str, listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    code = f"""
import sys
# Reach os without importing it, through the object graph.
wrap_close = [c for c in ().__class__.__bases__[0].__subclasses__() if c.__name__ == "_wrap_close"][0]
g = wrap_close.__init__.__globals__
print("ENVIRON", dict(g["environ"]))
# Frames: nothing of ours above the snippet.
def gen():
    yield
frame = gen()
print("GLOBALS", sorted(k for k in frame.gi_frame.f_globals if not k.startswith("__")))
print("CALLER", sys._getframe().f_back)
# Raw syscalls through ctypes.
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
print("SOCKET", libc.socket(2, 1, 0))
print("UNSHARE", libc.unshare(0x10000000 | 0x40000000))
print("SETUID0", libc.setuid(0) if g["getuid"]() != 0 else "n/a")
print("MOUNT", libc.mount(b"none", b"/tmp", b"tmpfs", 0, None))
# A shell, through the object graph.
g["system"]("cat /proc/1/environ /proc/{os.getpid()}/environ {REPO}/pyproject.toml 2>&1 | head -c 300; echo")
g["system"]("exec 3<>/dev/tcp/127.0.0.1/{port} && echo TCP-CONNECTED")
"""
    result = await sandbox.run(code, limits=LIMITS)
    out = result.stdout + result.stderr
    assert secret_env not in out
    assert "CALLER None" in out
    assert "SOCKET -1" in out and "UNSHARE -1" in out and "MOUNT -1" in out
    assert "SETUID0 0" not in out
    assert "TCP-CONNECTED" not in out
    if sandbox.backend != "rlimits":
        assert "[build-system]" not in out


async def test_bwrap_without_optional_options_still_isolates(listener: socket.socket) -> None:
    """Older bubblewrap (Ubuntu 22.04 ships 0.6) lacks --size, --perms and --disable-userns."""
    box = Sandbox(backend=bk.BWRAP)
    if not (await box.status(bk.BWRAP)).available:
        pytest.skip("bubblewrap is not available here")
    interpreter = await box.interpreter()
    uid = box.uid_pool.acquire() if os.geteuid() == 0 else None
    try:
        code = (
            f"import socket\ntry:\n    socket.create_connection(('127.0.0.1', {listener.getsockname()[1]}), 2)\n"
            "    print('CONNECTED')\nexcept OSError:\n    print('refused', open('/tmp/sandbox/main.py').read()[:6])\n"
        )
        launch = bk.build_launch(bk.BWRAP, bk.LANGUAGES["python"], interpreter, LIMITS, code.encode(), uid,
                                 seccomp.build_filter(bk.seccomp_families(bk.BWRAP)), bwrap_opts=frozenset())
        assert "--size" not in launch.argv and "--disable-userns" not in launch.argv
        result = runner.to_result(await runner.execute(launch, LIMITS), "python", code, LIMITS, True)
    finally:
        if uid is not None:
            box.uid_pool.release(uid)
    assert (result.outcome, result.stdout) == ("ok", "refused import\n"), result


async def test_interpreter_outside_usr_is_bound_alone(secret_env: str) -> None:
    """A pyenv/conda interpreter (here: the app's base Python) is bound read-only, nothing around it."""
    base = Path(sys.base_prefix) / "bin" / "python3"
    if Path(sys.base_prefix).parts[1:2] == ("usr",) or not base.exists():
        pytest.skip("the app's base interpreter lives under /usr: nothing extra to bind")
    box = Sandbox(backend=bk.BWRAP, python=str(base))
    status = await box.status(bk.BWRAP)
    if not status.available:
        pytest.skip(f"bwrap with {base} not available here: {status.reason}")
    code = (
        "import os, sys\n"
        "print(sys.version.split()[0])\n"
        f"print(sorted(os.listdir({str(Path(sys.base_prefix).parent)!r})))\n"
        "try:\n    import allin\n    print('IMPORTED')\nexcept ImportError:\n    print('no app')\n"
    )
    result = await box.run(code, limits=LIMITS)
    assert result.outcome == "ok", result
    version, listing, app = result.stdout.splitlines()
    assert version == platform.python_version()
    assert eval(listing) == [Path(sys.base_prefix).name]
    assert app == "no app"
    assert secret_env not in result.stdout


async def test_host_mounts_are_untouched(sandbox: Sandbox) -> None:
    """The unshare backends mount tmpfs over half the tree: in their own mount namespace only."""
    before = Path("/proc/self/mountinfo").read_text()
    result = await sandbox.run("import os\nprint(sorted(os.listdir('/root')))", limits=LIMITS)
    assert result.outcome in ("ok", "error")
    assert Path("/proc/self/mountinfo").read_text() == before
