from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support.server import AppProcess


@pytest.fixture
def app_process(settings, users) -> Iterator[Callable[..., AppProcess]]:
    """Makes `allin serve` processes on the test's database (`name`, then env overrides); kills leftovers."""
    made: list[AppProcess] = []

    def make(name: str, **env: str) -> AppProcess:
        process = AppProcess(settings, name, **env)
        made.append(process)
        return process

    yield make
    for process in made:
        process.kill()
