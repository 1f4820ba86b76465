"""Retries with exponential backoff and jitter, only for calls that are safe to repeat:
network errors and timeouts, 429 (at least its Retry-After), 502/503/504 / UNAVAILABLE,
004's 5000. What is not idempotent is attempted once."""

from __future__ import annotations

import random
import secrets
import time
from dataclasses import dataclass
from typing import Callable, TypeVar

T = TypeVar("T")

DEFAULT_TIMEOUT = 10.0  # seconds per attempt


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 2
    base_delay: float = 0.2
    max_delay: float = 10.0

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds before retry number `attempt` (0-based): half fixed, half random."""
        exp = min(self.max_delay, self.base_delay * 2 ** attempt)
        jittered = exp / 2 + random.random() * exp / 2
        return jittered if retry_after is None else min(self.max_delay, max(jittered, retry_after))


def with_retries(idempotent: bool, policy: RetryPolicy, attempt: Callable[[int], T],
                 sleep: Callable[[float], None] = time.sleep) -> T:
    limit = policy.max_retries if idempotent else 0
    n = 0
    while True:
        try:
            return attempt(n)
        except Exception as err:  # only VipayError subclasses are retryable
            if n >= limit or not getattr(err, "retryable", False):
                raise
            sleep(policy.backoff(n, getattr(err, "retry_after", None)))
            n += 1


def new_request_id() -> str:
    return secrets.token_hex(16)
