"""Retries with exponential backoff and jitter, for calls that fail transiently.

Network calls to LLM servers fail in two ways: *transient* (timeouts, HTTP 429 and 5xx,
connection resets — worth retrying after a pause) and *permanent* (a bad request, a
missing model — retrying only wastes time).  :func:`is_transient` tells them apart and
:func:`retry_call` retries only the transient ones, a bounded number of times.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

_TRANSIENT_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class TransientError(RuntimeError):
    """Raise this from your own code for a failure that is worth retrying."""


def is_transient(exc: BaseException) -> bool:
    """True for timeouts, connection errors, HTTP 408/409/425/429/5xx and :class:`TransientError`."""
    if isinstance(exc, (TransientError, TimeoutError, ConnectionError)):
        return True
    status = getattr(exc, "status_code", None) or getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(status, int):
        return status in _TRANSIENT_STATUS or status >= 500
    try:  # the openai SDK's own classes, without importing it eagerly
        import openai
    except ImportError:
        return False
    return isinstance(
        exc, (openai.APITimeoutError, openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError)
    )


@dataclass(frozen=True)
class RetryPolicy:
    """How many times and how long to wait: ``base * 2**attempt``, capped, with full jitter."""

    attempts: int = 5  # total tries, including the first
    base_delay: float = 0.5  # seconds before the first retry (before jitter)
    max_delay: float = 30.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after failed try number ``attempt`` (0-based)."""
        return rng.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


def retry_call(
    fn: Callable[[], T],
    policy: RetryPolicy = RetryPolicy(),
    *,
    should_retry: Callable[[BaseException], bool] = is_transient,
    on_retry: Callable[[int, BaseException, float], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> T:
    """Call ``fn()`` and retry transient failures with backoff.

    Args:
        fn: the call to make.
        policy: attempts and delays.
        should_retry: which exceptions to retry (default :func:`is_transient`).
        on_retry: called as ``on_retry(attempt, exc, delay)`` before each pause.
        sleep / rng: injectable for tests.

    Raises:
        The last exception, once attempts are exhausted or it is not retryable.
    """
    rng = rng or random.Random()
    for attempt in range(policy.attempts):
        try:
            return fn()
        except Exception as exc:
            if attempt + 1 >= policy.attempts or not should_retry(exc):
                raise
            delay = policy.delay(attempt, rng)
            if on_retry is not None:
                on_retry(attempt, exc, delay)
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
