"""Bounded retries with backoff for model calls (tenacity), shared by every caller of a model."""

from __future__ import annotations

from collections.abc import Callable

from loguru import logger
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from allin.models.errors import is_transient_model_error

# First wait 0.5 s, doubling, plus up to 1 s of jitter so replicas hitting the same
# rate limit do not retry in step; never more than 8 s between attempts.
INITIAL_WAIT_S = 0.5
MAX_WAIT_S = 8.0


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    logger.warning("model call failed (attempt {}): {}; retrying in {:.1f}s", state.attempt_number, exc, wait)


def model_retrying(max_retries: int, *, retryable: Callable[[BaseException], bool] = is_transient_model_error,
                   ) -> AsyncRetrying:
    """`async for attempt in model_retrying(n): with attempt: ...` — at most 1 + `max_retries`
    attempts, only for transient errors (`retryable`); the last error is re-raised."""
    return AsyncRetrying(
        stop=stop_after_attempt(max_retries + 1),
        wait=wait_exponential_jitter(initial=INITIAL_WAIT_S, max=MAX_WAIT_S),
        retry=retry_if_exception(retryable),
        before_sleep=_log_retry,
        reraise=True,
    )
