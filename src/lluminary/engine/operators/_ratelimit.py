"""RateLimit: token buckets for requests and tokens per minute, in-process or shared.

Providers limit requests per minute (RPM) and tokens per minute (TPM); going
over earns 429s, and a fleet of workers that each keep to their share of a
limit by themselves still goes over together. This operator keeps the limits
on our side, per key (``"provider:model"``, the request's ``model``, by default,
or any function of the request, e.g. one that adds the tenant).

Each limit is a token bucket that holds up to its burst (a minute's worth by
default) and refills continuously at ``limit / 60`` per second. A request takes
one request token, and from the tokens bucket an estimate of what it will
spend: its input tokens (:func:`estimate_request_tokens`) plus ``max_tokens``
(or ``default_max_tokens`` when the request sets none). When the stream reports
``usage``, the difference between the estimate and the real count (input,
output, cache reads and writes) is given back or taken on top. A stream without
usage (failed, cancelled) keeps its estimate: we cannot know what it cost.

Buckets work by reservation, like Go's ``rate.Limiter.Reserve``: one atomic
step either takes the tokens now, leaving the bucket negative if it has to, and
says how long until they are really there, or takes nothing because that wait is
too long. Waiters are therefore served in order, and no herd wakes to race for
a refill. A request whose wait fits emits ``rate-limit-wait`` (delay and key),
sleeps, and goes ahead; one whose wait does not fit ends at once with ``error``
``rate_limited``, retryable, ``retry_after`` the wait it would have needed (so a
``Retry`` outside this operator knows when to come back). A request cancelled
while it waits gives its tokens back.

How long a request may wait: ``max_wait`` (None: as long as it takes), and, if
the request carries ``metadata["deadline"]`` (absolute Unix time in seconds, as
a string, the same clock as ``time.time()``), no longer than until then. A
deadline that is not a number is ignored.

The buckets live in a :class:`RateLimitStore`: :class:`MemoryRateLimitStore`
(this process; the default) or ``RedisRateLimitStore`` (shared by processes and
machines, atomic in one Lua script). When the store fails, the operator fails
open: the request goes through and one warning is logged until the store
answers again. A rate limiter must never be the outage.

Place RateLimit inside Retry, so each attempt is metered and a ``rate_limited``
refusal is retried after its ``retry_after``, and outside Timeout, so that time
spent waiting for the limiter is not taken for a silent upstream. Tokens taken
by a reservation whose reply was lost (cancelled mid-call to Redis) stay taken:
the error is on the safe side.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import NamedTuple, Protocol, runtime_checkable

import anyio

from lluminary.engine._operator import Handler
from lluminary.events import ChatRequest, Error, Event, RateLimitWait, Usage
from lluminary.providers._tokens import estimate_request_tokens
from lluminary.stores._protocols import StoreError

__all__ = ["Bucket", "MemoryRateLimitStore", "RateLimit", "RateLimitStore", "Reservation", "default_key"]

logger = logging.getLogger("lluminary.ratelimit")


class Bucket(NamedTuple):
    """One token bucket's shape; ``name`` tells the buckets of a key apart."""

    name: str
    rate: float  # tokens added per second
    capacity: float  # the most it holds: the burst


class Reservation(NamedTuple):
    """The answer to a reservation: granted or not, and the wait it means (seconds)."""

    granted: bool
    wait: float


@runtime_checkable
class RateLimitStore(Protocol):
    """Where buckets live. Implementations raise :class:`StoreError` when the backend fails."""

    async def reserve(self, key: str, takes: Sequence[tuple[Bucket, float]], max_wait: float | None) -> Reservation:
        """Atomically take ``cost`` from each bucket of ``key`` if the longest wait is ``<= max_wait``.

        ``max_wait`` None means any wait. A refused reservation takes nothing.
        """
        ...

    async def adjust(self, key: str, bucket: Bucket, amount: float) -> None:
        """Give ``amount`` back to a bucket (negative: take more), capped at its capacity."""
        ...

    async def aclose(self) -> None: ...


def refill(level: float | None, at: float, now: float, bucket: Bucket) -> float:
    """The bucket's level at ``now``; a bucket never seen (``level`` None) is full."""
    if level is None:
        return bucket.capacity
    return min(bucket.capacity, level + max(0.0, now - at) * bucket.rate)


def wait_for(level: float, cost: float, bucket: Bucket) -> float:
    """Seconds until a bucket at ``level`` holds ``cost``, to the microsecond (as the Lua script)."""
    return max(0.0, round((cost - level) / bucket.rate, 6))


class MemoryRateLimitStore:
    """Buckets in a dict: exact and fast, for one process (and one event loop).

    ``clock`` is monotonic seconds; inject one to test bucket arithmetic without
    waiting. Keys whose buckets are all full again are dropped once there are
    more than ``max_keys``, so per-tenant keys don't grow memory without bound.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, max_keys: int = 10_000) -> None:
        self._clock = clock
        self._max_keys = max_keys
        # key -> bucket name -> (level, time of that level, the bucket's shape)
        self._state: dict[str, dict[str, tuple[float, float, Bucket]]] = {}

    async def reserve(self, key: str, takes: Sequence[tuple[Bucket, float]], max_wait: float | None) -> Reservation:
        now = self._clock()
        after: list[tuple[Bucket, float]] = []
        wait = 0.0
        for bucket, cost in takes:
            level = self._level(key, bucket, now)
            wait = max(wait, wait_for(level, cost, bucket))
            after.append((bucket, level - cost))
        if max_wait is not None and wait > max_wait:
            return Reservation(False, wait)
        self._commit(key, after, now)
        return Reservation(True, wait)

    async def adjust(self, key: str, bucket: Bucket, amount: float) -> None:
        now = self._clock()
        self._commit(key, [(bucket, self._level(key, bucket, now) + amount)], now)

    async def aclose(self) -> None:
        self._state.clear()

    def _level(self, key: str, bucket: Bucket, now: float) -> float:
        entry = self._state.get(key, {}).get(bucket.name)
        return bucket.capacity if entry is None else refill(entry[0], entry[1], now, bucket)

    def _commit(self, key: str, levels: Sequence[tuple[Bucket, float]], now: float) -> None:
        if key not in self._state and len(self._state) >= self._max_keys:
            self._prune(now)
        state = self._state.setdefault(key, {})
        for bucket, level in levels:
            state[bucket.name] = (min(bucket.capacity, level), now, bucket)

    def _prune(self, now: float) -> None:
        for key in list(self._state):
            if all(refill(lv, at, now, b) >= b.capacity for lv, at, b in self._state[key].values()):
                del self._state[key]


def default_key(request: ChatRequest) -> str:
    """Limits are per model, as providers count them: ``"provider:model"``."""
    return request.model


class RateLimit:
    def __init__(
        self,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        *,
        key: Callable[[ChatRequest], str] = default_key,
        store: RateLimitStore | None = None,
        max_wait: float | None = None,
        request_burst: float | None = None,
        token_burst: float | None = None,
        default_max_tokens: int = 1024,
    ) -> None:
        if requests_per_minute is None and tokens_per_minute is None:
            raise ValueError("give requests_per_minute, tokens_per_minute or both")
        for name, value in (
            ("requests_per_minute", requests_per_minute),
            ("tokens_per_minute", tokens_per_minute),
            ("request_burst", request_burst),
            ("token_burst", token_burst),
        ):
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a positive number")
        if max_wait is not None and (math.isnan(max_wait) or max_wait < 0):
            raise ValueError("max_wait must be a non-negative number of seconds")
        if default_max_tokens < 0:
            raise ValueError("default_max_tokens must not be negative")
        self.requests: Bucket | None = None
        self.tokens: Bucket | None = None
        if requests_per_minute is not None:
            self.requests = Bucket("requests", requests_per_minute / 60.0, request_burst or requests_per_minute)
        if tokens_per_minute is not None:
            self.tokens = Bucket("tokens", tokens_per_minute / 60.0, token_burst or tokens_per_minute)
        self.max_wait = max_wait
        self.default_max_tokens = default_max_tokens
        self.store: RateLimitStore = store if store is not None else MemoryRateLimitStore()
        self._key = key
        self._store_ok = True

    def cost(self, request: ChatRequest) -> int:
        """The tokens taken up front: estimated input plus the output allowance."""
        allowance = request.max_tokens if request.max_tokens is not None else self.default_max_tokens
        return estimate_request_tokens(request) + allowance

    def allowed_wait(self, request: ChatRequest) -> float | None:
        """How long this request may wait for its tokens (None: without limit)."""
        allowed = self.max_wait
        raw = request.metadata.get("deadline")
        if raw is not None:
            try:
                deadline = float(raw)
            except ValueError:
                return allowed
            if math.isfinite(deadline):
                remaining = max(0.0, deadline - time.time())
                allowed = remaining if allowed is None else min(allowed, remaining)
        return allowed

    def __call__(self, inner: Handler) -> Handler:
        async def handler(request: ChatRequest) -> AsyncIterator[Event]:
            key = self._key(request)
            takes: list[tuple[Bucket, float]] = []
            if self.requests is not None:
                takes.append((self.requests, 1.0))
            estimate = 0
            if self.tokens is not None:
                estimate = self.cost(request)
                takes.append((self.tokens, float(estimate)))
            allowed = self.allowed_wait(request)
            reservation = await self._reserve(key, takes, allowed)
            if reservation is not None and not reservation.granted:
                yield Error(
                    code="rate_limited",
                    message=f"local rate limit for {key!r}: the request would wait {reservation.wait:.3g}s, "
                    f"longer than the {allowed or 0.0:.3g}s it may wait",
                    retryable=True,
                    retry_after=reservation.wait,
                )
                return
            if reservation is not None and reservation.wait > 0:
                try:
                    yield RateLimitWait(delay=reservation.wait, key=key)
                    await anyio.sleep(reservation.wait)
                except BaseException:
                    # Cancelled (or closed) while waiting: nothing was sent, so the tokens go back.
                    with anyio.CancelScope(shield=True):
                        for bucket, cost in takes:
                            await self._adjust(key, bucket, cost)
                    raise
            usage: Usage | None = None
            stream = inner(request)
            try:
                async for event in stream:
                    if isinstance(event, Usage):
                        usage = event
                    yield event
            finally:
                try:
                    await stream.aclose()  # type: ignore[attr-defined]
                finally:
                    if self.tokens is not None and reservation is not None and usage is not None:
                        spent = usage.input_tokens + usage.output_tokens
                        spent += usage.cache_read_tokens + usage.cache_write_tokens
                        if spent != estimate:
                            with anyio.CancelScope(shield=True):
                                await self._adjust(key, self.tokens, float(estimate - spent))

        return handler

    async def _reserve(
        self, key: str, takes: Sequence[tuple[Bucket, float]], allowed: float | None
    ) -> Reservation | None:
        """The store's answer, or None when the store failed and the request goes through unmetered."""
        try:
            reservation = await self.store.reserve(key, takes, allowed)
        except StoreError as exc:
            self._failed(exc)
            return None
        if not self._store_ok:
            self._store_ok = True
            logger.warning("rate limit store answers again; limiting resumes")
        return reservation

    async def _adjust(self, key: str, bucket: Bucket, amount: float) -> None:
        try:
            await self.store.adjust(key, bucket, amount)
        except StoreError as exc:
            self._failed(exc)

    def _failed(self, exc: StoreError) -> None:
        if self._store_ok:
            self._store_ok = False
            logger.warning("rate limit store failed (%s); letting requests through unmetered until it is back", exc)
