"""The app as a real server process (`allin serve`), for tests about processes.

Restarts, a second replica on the same database, SIGTERM and kill -9 need a
process of their own: the in-thread `live_server` fixture shares the test's
memory and cannot be killed. The child gets its settings from the environment
only (cwd is its data dir, so no developer `.env` is read) and logs to a file
that a failing test prints.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from allin.config import Settings
from tests.support.pg import free_port

ALLIN = Path(sys.executable).with_name("allin")
# Settings this helper sets itself; anything else in the parent's environment with these
# prefixes would leak a developer's key or database into the child.
SHUTDOWN_DONE = "Application shutdown complete"
SCRUBBED_PREFIXES = ("ALLIN_", "GOOGLE_", "GEMINI_", "DATABASE_URL", "LANGSMITH_", "LANGCHAIN_")


class AppProcess:
    def __init__(self, settings: Settings, name: str, **env: str) -> None:
        self.settings = settings
        self.name = name
        self.port = free_port()
        self.extra_env = env
        self.log_path = Path(settings.data_dir).parent / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"AppProcess({self.name}, port {self.port})"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED_PREFIXES)}
        env.update(
            DATABASE_URL=str(self.settings.database_url),
            ALLIN_DATA_DIR=str(self.settings.data_dir),
            ALLIN_KNOWLEDGE_DIR=str(self.settings.knowledge_dir),
            ALLIN_PORT=str(self.port),
            LOG_LEVEL="INFO",
            ORT_DISABLE_TELEMETRY="1",
        )
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 90) -> AppProcess:
        Path(self.settings.data_dir).mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [str(ALLIN), "serve"], env=self.environment(), cwd=self.settings.data_dir,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.kill()
        raise TimeoutError(f"{self.name} not ready in {timeout} s:\n{self.log()}")

    def terminate(self, timeout: float = 30) -> bool:
        """SIGTERM (what a deploy sends); True when the app shut down cleanly.

        uvicorn re-raises the signal after its own shutdown, so a clean exit
        reads as -SIGTERM; the lifespan's last log line tells it from a crash.
        """
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        return code in (0, -signal.SIGTERM) and SHUTDOWN_DONE in self.log()

    def kill(self) -> None:
        """kill -9: no shutdown code runs."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
