"""Fixtures: a Sandbox per isolation backend, skipped (with the probe's reason) where it does not work here."""

from __future__ import annotations

import os

import pytest

from tools.sandbox import Sandbox
from tools.sandbox.backends import BACKENDS, RLIMITS
from tools.sandbox.uids import DEFAULT_UID_RANGE, live_processes


@pytest.fixture(scope="session", params=BACKENDS)
async def sandbox(request: pytest.FixtureRequest) -> Sandbox:
    """Each test runs once per backend: bwrap, unshare-userns, unshare-root, rlimits."""
    box = Sandbox(backend=request.param, max_concurrency=4)
    status = await box.status(request.param)
    if not status.available:
        pytest.skip(f"{request.param} backend not available here: {status.reason}")
    return box


@pytest.fixture
def isolated_fs(sandbox: Sandbox) -> Sandbox:
    """A sandbox whose backend hides the host filesystem (all but rlimits)."""
    if sandbox.backend == RLIMITS:
        pytest.skip("the rlimits backend has no filesystem isolation (only uid permissions)")
    return sandbox


def leftover_sandbox_pids() -> list[int]:
    """Live processes of any sandbox uid (only meaningful as root: otherwise runs use our uid)."""
    if os.geteuid() != 0:
        return []
    return [pid for pid, uid in live_processes() if uid in DEFAULT_UID_RANGE]
