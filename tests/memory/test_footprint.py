"""mem0 writes only under the data dir and sends nothing anywhere, even with HOME and its env unset.

A fresh process (mem0 reads its environment once, at its first import), HOME pointed at an
empty temp dir, MEM0_DIR and MEM0_TELEMETRY removed from the environment: the factory sets them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def test_memory_touches_only_the_data_dir_and_no_network(db_url, data_dir, users, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MEM0_", "XDG_CACHE", "XDG_CONFIG", "XDG_DATA"))}
    # onnxruntime (the local embedder's engine, not mem0) keeps a device id and an event store in
    # ~/.cache/Microsoft/DeveloperTools unless told not to: that is the embedder's to switch off.
    env |= {"HOME": str(home), "PYTHONDONTWRITEBYTECODE": "1", "ORT_DISABLE_TELEMETRY": "1"}
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-m", "tests.memory.footprint_worker", db_url, str(data_dir), str(users.alice.id)],
        cwd=root, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])

    assert len(report["ids"]) == 1 and report["recalled"] == ["I'm on the payments team."]
    assert report["listed"] == 1 and report["deleted"] == 1
    assert report["telemetry"] == [False, False]

    # Nothing in HOME (no ~/.mem0), mem0's folder in the data dir.
    assert list(home.iterdir()) == []
    assert (data_dir / "mem0" / "config.json").is_file()
    data = str(data_dir.resolve())
    outside = [e for e in report["events"] if e[0] not in ("resolve", "connect")
               and not os.path.realpath(e[1]).startswith(data) and not e[1].startswith("/dev/")]
    assert outside == []

    # No name lookups or connections except to this machine.
    remote = [e for e in report["events"] if e[0] in ("resolve", "connect")
              and not any(host in e[1] for host in LOOPBACK) and not e[1].startswith("'/")]
    assert remote == []
