"""RetryBudget: caps retries at a fraction of recent requests, as Envoy and Finagle do.

Per-request limits (``max_attempts``) do not stop a retry storm: when an upstream
is down, every request makes all of its attempts and the load on the failing
service multiplies by ``max_attempts`` exactly when it can least take it. A
budget shared by every retrying operator in the process bounds the total
instead: a retry is allowed only while

    retries in the window + 1  <=  max(ratio * requests in the window, floor)

where ``floor = min_retries_per_second * window`` lets a quiet service still
retry its rare failures (Envoy's ``min_retry_concurrency`` plays that part: the
larger of the two bounds applies, they do not add up). During a total outage the
upstream then sees at most ``(1 + ratio) * requests`` attempts per window once
traffic exceeds ``floor / ratio`` requests, whatever ``max_attempts`` says; in
normal operation (few failures) the budget never bites.

The window is a ring of ``slots`` counters (ten by default), so it slides in
steps of ``window / slots`` seconds and memory stays constant at any rate.

Who counts what: a retrying operator calls :meth:`RetryBudget.record_request`
once per call of its handler and :meth:`RetryBudget.try_retry` before each new
attempt, which records the retry when it is allowed. Share one budget among the
operators that retry against the same upstreams (several ``Retry`` instances,
several engines). If one budget is given both to a ``Fallback`` and to a
``Retry`` inside it, each model that the fallback tries is a new request for the
``Retry``, so a request that falls back counts once per model tried; the
ratio then loosens by at most the length of the model list.

The counters are guarded by a lock, so one budget may be shared across threads
and event loops.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

__all__ = ["RetryBudget"]


class RetryBudget:
    """A sliding-window retry budget shared between retrying operators.

    ``ratio``: retries allowed per request over the window (0.2: one retry per
    five requests). ``min_retries_per_second``: the floor that is always
    allowed, times ``window``. ``clock``: monotonic seconds, injectable for tests.
    """

    def __init__(
        self,
        ratio: float = 0.2,
        *,
        min_retries_per_second: float = 1.0,
        window: float = 10.0,
        slots: int = 10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not (ratio >= 0 and math.isfinite(ratio)):
            raise ValueError("ratio must be a non-negative number")
        if not (min_retries_per_second >= 0 and math.isfinite(min_retries_per_second)):
            raise ValueError("min_retries_per_second must be a non-negative number")
        if not (window > 0 and math.isfinite(window)):
            raise ValueError("window must be a positive number of seconds")
        if slots < 1:
            raise ValueError("slots must be at least 1")
        self.ratio = ratio
        self.min_retries_per_second = min_retries_per_second
        self.window = window
        self._width = window / slots
        self._clock = clock
        self._lock = threading.Lock()
        # One entry per slot: [slot number since the clock's epoch, requests, retries].
        self._ring: list[list[int]] = [[-1, 0, 0] for _ in range(slots)]

    @property
    def floor(self) -> float:
        """Retries allowed in a window with no requests at all."""
        return self.min_retries_per_second * self.window

    def record_request(self) -> None:
        """Count one request (a first attempt)."""
        with self._lock:
            self._slot()[1] += 1

    def try_retry(self) -> bool:
        """True, and the retry is counted, if the budget allows one more retry now."""
        with self._lock:
            requests, retries = self._totals()
            if retries + 1 > max(self.ratio * requests, self.floor):
                return False
            self._slot()[2] += 1
            return True

    def counts(self) -> tuple[int, int]:
        """``(requests, retries)`` in the current window."""
        with self._lock:
            return self._totals()

    def __repr__(self) -> str:
        requests, retries = self.counts()
        return (
            f"RetryBudget(ratio={self.ratio!r}, min_retries_per_second={self.min_retries_per_second!r}, "
            f"window={self.window!r}, requests={requests}, retries={retries})"
        )

    def _slot(self) -> list[int]:
        number = int(self._clock() // self._width)
        slot = self._ring[number % len(self._ring)]
        if slot[0] != number:
            # The slot last held a window that has slid out: start it afresh.
            slot[0], slot[1], slot[2] = number, 0, 0
        return slot

    def _totals(self) -> tuple[int, int]:
        oldest = int(self._clock() // self._width) - len(self._ring) + 1
        requests = retries = 0
        for number, req, ret in self._ring:
            if number >= oldest:
                requests += req
                retries += ret
        return requests, retries
