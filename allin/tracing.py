"""LangSmith tracing, on only when `LANGSMITH_API_KEY` is set.

Nothing here reads the environment or touches the network at import. The app's
startup and the CLI call `make_tracing(settings)`; without a key it returns
None and no LangSmith client, thread or request ever exists (LangSmith's own
env switch, `LANGSMITH_TRACING=true` without a key, warns and hangs ~28 s at
exit: we never rely on it). With a key, runs get a `LangChainTracer` callback
bound to our own client, so tracing follows the settings, not process-wide env.

An unreachable endpoint must not hold the process: the client uses short
timeouts and few retries, and `close()` waits a bounded time for the queue,
then drops what is left.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import queue
from typing import Any
from uuid import UUID

from allin.config import Settings

log = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 5.0
TIMEOUT_MS = (3_000, 10_000)  # connect, read
RETRIES = 1


def user_hash(user_id: UUID | str) -> str:
    """A stable pseudonym for a user in traces (no ids or names leave the server)."""
    return hashlib.sha256(f"allin-user:{user_id}".encode()).hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class Tracing:
    """Where runs go: a LangSmith client, a project, and what to attach to every run."""

    client: Any  # langsmith.Client
    project: str
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    example_id: UUID | None = None  # set for evaluation runs: links the run to a dataset example
    tags: tuple[str, ...] = ()
    # Tracers handed out by `callbacks()`, so a caller can find the root run it traced (evaluation feedback).
    _tracers: list = dataclasses.field(default_factory=list, init=False, repr=False, compare=False)

    def derive(self, **changes: Any) -> Tracing:
        """The same client with another project, example or extra metadata (merged)."""
        if "metadata" in changes:
            changes["metadata"] = {**self.metadata, **changes["metadata"]}
        return dataclasses.replace(self, **changes)

    def callbacks(self) -> list:
        """A fresh tracer per run: it holds that run's tree and its example link."""
        from langchain_core.tracers import LangChainTracer

        tracer = LangChainTracer(project_name=self.project, client=self.client, example_id=self.example_id,
                                 tags=list(self.tags) or None)
        self._tracers.append(tracer)
        del self._tracers[:-8]  # a long-lived app object: keep only the latest few
        return [tracer]

    def last_run_id(self) -> UUID | None:
        """The id of the last root run traced through this object's callbacks, if any finished."""
        for tracer in reversed(self._tracers):
            if tracer.latest_run is not None:
                return tracer.latest_run.id
        return None

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> int:
        """Send queued runs for at most `timeout` seconds, then drop the rest; returns how many were dropped."""
        self.client.flush(timeout=timeout)
        dropped = 0
        pending: queue.Queue | None = getattr(self.client, "tracing_queue", None)
        while pending is not None:
            try:
                pending.get_nowait()
            except queue.Empty:
                break
            pending.task_done()
            dropped += 1
        if dropped:
            log.warning("LangSmith unreachable: %d trace operations dropped at shutdown", dropped)
        self.client.cleanup(timeout=0)  # stops the background thread; nothing left to drain
        return dropped


def make_client(api_key: str, api_url: str | None = None) -> Any:
    """A LangSmith client with bounded waits. `api_url` None: LANGSMITH_ENDPOINT or the hosted service."""
    from langsmith import Client
    from urllib3.util.retry import Retry

    retry = Retry(total=RETRIES, backoff_factor=0.2, status_forcelist=[429, 500, 502, 503, 504],
                  allowed_methods=None, raise_on_status=False, respect_retry_after_header=True)
    return Client(api_url=api_url, api_key=api_key, timeout_ms=TIMEOUT_MS, retry_config=retry)


def make_tracing(settings: Settings, *, api_url: str | None = None, project: str | None = None) -> Tracing | None:
    """Tracing for this process, or None when no LangSmith key is configured."""
    key = settings.langsmith_api_key
    if key is None or not key.get_secret_value().strip():
        return None
    api_url = api_url or getattr(settings, "langsmith_endpoint", None)
    client = make_client(key.get_secret_value(), api_url)
    return Tracing(client=client, project=project or settings.langsmith_project,
                   metadata={"mode": settings.mode, "app": "allin"})
