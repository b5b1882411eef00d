"""The sandbox's API around the runs: code blocks, limits, the report, failure modes, the filter."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tools.sandbox import (
    Sandbox,
    SandboxLimits,
    _constants,
    asandbox_report,
    extract_code_blocks,
    sandbox_report,
    seccomp,
)
from tools.sandbox.backends import BACKENDS

REPO = Path(__file__).resolve().parents[2]


def test_extract_code_blocks_tags_and_untagged_python() -> None:
    text = (
        "Try this:\n\n```python\nprint('a')\n```\n\n"
        "Or in a shell:\n\n~~~sh\necho hi\n~~~\n\n"
        "```\nx = [i * 2 for i in range(3)]\nprint(x)\n```\n\n"
        "```\nthis is not { python\n```\n\n"
        "```Py3 title=demo\nimport os\n```\n\n"
        "```rust\nfn main() {}\n```\n\n"
        "    indented = 'not a fence'\n"
    )
    assert extract_code_blocks(text) == [
        ("python", "print('a')\n"),
        ("bash", "echo hi\n"),
        ("python", "x = [i * 2 for i in range(3)]\nprint(x)\n"),
        ("python", "import os\n"),
        ("rust", "fn main() {}\n"),
    ]
    assert extract_code_blocks("no code here") == []
    assert extract_code_blocks("```\n\n```") == []


def test_limits_are_validated() -> None:
    assert SandboxLimits().wall_s == 10.0 and SandboxLimits().memory_mb == 256
    SandboxLimits(wall_s=30)
    for bad in ({"wall_s": 30.5}, {"wall_s": 0}, {"cpu_s": 0}, {"memory_mb": 8}, {"max_procs": 1},
                {"max_open_files": 3}, {"max_output_bytes": 0}, {"max_file_bytes": 0}):
        with pytest.raises(ValueError):
            SandboxLimits(**bad)


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown sandbox backend"):
        Sandbox(backend="docker")


async def test_unsupported_language_is_unavailable() -> None:
    result = await Sandbox().run("fn main() {}", language="rust")
    assert result.outcome == "unavailable"
    assert "not 'rust'" in result.message
    assert result.exit_code is None


async def test_oversized_code_is_unavailable() -> None:
    result = await Sandbox().run("x = 1\n" * 100_000)
    assert result.outcome == "unavailable"
    assert "too long" in result.message


async def test_broken_interpreter_is_unavailable_with_a_reason() -> None:
    result = await Sandbox(python="/nonexistent/python3").run("print(1)")
    assert result.outcome == "unavailable"
    assert "/nonexistent/python3" in result.message


async def test_report_says_what_is_active() -> None:
    report = await asandbox_report()
    box = Sandbox()
    statuses = {name: await box.status(name) for name in BACKENDS}
    first = next((name for name in BACKENDS if statuses[name].available), None)
    assert report["backend"] == first
    assert report["available"] is (first is not None)
    assert report["bubblewrap"] is statuses["bwrap"].available
    assert set(report["backends"]) == set(BACKENDS)
    for name, entry in report["backends"].items():
        assert entry["available"] is statuses[name].available and entry["reason"]
    assert report["notes"] and all(isinstance(n, str) and n.endswith(".") for n in report["notes"])
    assert report["platform"] and report["python"]["version"].startswith("3.")
    if first in ("bwrap", "unshare-userns", "unshare-root"):
        assert report["network_isolated"] and report["filesystem_isolated"]
    if first is not None:
        assert "RLIMIT_NPROC" in report["rlimits"]
    if seccomp.supported_arch() and first is not None:
        assert report["seccomp"]["active"] is True


async def test_sync_report_works_inside_a_running_loop_and_is_cached() -> None:
    first = sandbox_report()  # probes on a private loop in a worker thread
    assert sandbox_report() is first
    assert await asandbox_report() is first


def test_import_probes_nothing() -> None:
    code = (
        "import tools.sandbox as sb, tools.sandbox.sandbox as impl\n"
        "assert impl._report is None and impl._default is None\n"
        "assert not impl._probe_cache and not impl._interpreter_cache\n"
        "import threading; assert threading.active_count() == 1\n"
        "print('lazy')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "lazy", out.stderr


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_seccomp_filter_is_well_formed(arch: str) -> None:
    program = seccomp.build_filter((1,), arch=arch)
    assert program is not None and len(program) % 8 == 0
    assert 10 < len(program) // 8 < 255  # classic BPF jumps are 8-bit: keep the program short
    assert seccomp.build_filter(arch="sparc") is None


def test_launcher_constants_agree() -> None:
    """_launcher.py runs standalone and repeats two values: they must match the package's."""
    tree = ast.parse((REPO / "tools" / "sandbox" / "_launcher.py").read_text())
    values = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id in ("LAUNCHER_FAILED", "MARKER")
    }
    assert values == {"LAUNCHER_FAILED": _constants.LAUNCHER_FAILED, "MARKER": _constants.LAUNCHER_MARKER}


async def test_launcher_failure_reads_as_unavailable(tmp_path: Path) -> None:
    """A sandbox that cannot set itself up says so instead of blaming the snippet."""
    from tools.sandbox import runner
    from tools.sandbox.runner import RawRun, StreamCapture

    err = StreamCapture(1000)
    err.feed(f"{_constants.LAUNCHER_MARKER} PermissionError(1, 'mount /root')\n".encode())
    raw = RawRun(_constants.LAUNCHER_FAILED, StreamCapture(1000), err, None, 5)
    result = runner.to_result(raw, "python", "print(1)", SandboxLimits(), signal_exit_codes=False)
    assert result.outcome == "unavailable"
    assert re.search(r"could not start: PermissionError", result.message)
