"""Bounded concurrency and rate for /probe: 503 beyond the concurrency, 429 beyond the rate."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Admission:
    """The gate's answer: admitted, or the HTTP status and one-line reason to refuse with."""

    admitted: bool
    status: int = 200
    reason: str = ""
    retry_after: int = 0  # seconds, for the Retry-After header (0: none)


ADMITTED = Admission(True)


class ProbeGate:
    """At most `max_concurrent` probes at once, at most `max_per_second` started per second.

    The rate is a token bucket holding up to `max(1, max_per_second)` tokens, so short bursts
    pass. A probe refused for concurrency does not use up a token.
    """

    def __init__(
        self,
        max_concurrent: int,
        max_per_second: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_concurrent < 1 or max_per_second <= 0:
            raise ValueError("max_concurrent must be >= 1 and max_per_second > 0")
        self.max_concurrent = max_concurrent
        self.max_per_second = max_per_second
        self._capacity = max(1.0, max_per_second)
        self._tokens = self._capacity
        self._clock = clock
        self._last = clock()
        self._running = 0
        self._lock = threading.Lock()

    @property
    def running(self) -> int:
        return self._running

    def try_enter(self) -> Admission:
        with self._lock:
            if self._running >= self.max_concurrent:
                return Admission(
                    False,
                    503,
                    f"too many probes in flight ({self._running} running, "
                    f"limit {self.max_concurrent}); try again later",
                    retry_after=1,
                )
            now = self._clock()
            self._tokens = min(
                self._capacity, self._tokens + (now - self._last) * self.max_per_second
            )
            self._last = now
            if self._tokens < 1.0:
                wait = (1.0 - self._tokens) / self.max_per_second
                return Admission(
                    False,
                    429,
                    f"probe rate limit of {self.max_per_second:g} per second exceeded",
                    retry_after=max(1, math.ceil(wait)),
                )
            self._tokens -= 1.0
            self._running += 1
            return ADMITTED

    def leave(self) -> None:
        with self._lock:
            if self._running <= 0:
                raise RuntimeError("ProbeGate.leave() without a matching try_enter()")
            self._running -= 1
