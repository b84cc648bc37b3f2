"""Concurrency: at most N streams in flight per key, admitted first come, first served.

Providers cap concurrent requests as well as rates, and a process that opens a
thousand streams at once exhausts its connection pool and memory long before
any rate limit. This operator holds each request until one of ``max_in_flight``
slots of its key (the provider, by default) is free.

Waiters are admitted strictly in arrival order. A slot is handed directly to
the oldest waiter when a stream ends; it is never put back for whoever asks
next, so a newcomer cannot overtake the queue (``anyio.Semaphore`` does not
promise that order, hence this small FIFO of ``anyio.Event``).

A slot is taken when the stream is first iterated and given back when it ends
in any way: ``finish``, ``error``, the consumer closing it early, or the task
being cancelled, including a cancellation that lands just as the slot was
handed over (the slot then goes on to the next waiter). Release rides on the
generator's ``finally``, so it is immediate when the stream is closed, as
``EventStream`` does in ``aclose()`` and ``async with``.

``max_queue`` bounds the waiters per key: beyond it a request ends at once with
``error`` ``overloaded`` (retryable), rather than queueing without bound.

State is per operator instance, for one event loop: share the instance, not
the class, between engines that should share the limit.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable

import anyio

from lluminary.engine._operator import Handler
from lluminary.events import ChatRequest, Error, Event

__all__ = ["Concurrency", "provider_key"]


def provider_key(request: ChatRequest) -> str:
    """The provider part of ``"provider:model"``: providers cap concurrency per account."""
    return request.model.partition(":")[0]


class _Slots:
    """The slots of one key: a count in flight and the FIFO of waiters."""

    __slots__ = ("in_flight", "waiters")

    def __init__(self) -> None:
        self.in_flight = 0
        self.waiters: deque[anyio.Event] = deque()


class Concurrency:
    def __init__(
        self,
        max_in_flight: int,
        *,
        key: Callable[[ChatRequest], str] = provider_key,
        max_queue: int | None = None,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        if max_queue is not None and max_queue < 0:
            raise ValueError("max_queue must not be negative")
        self.max_in_flight = max_in_flight
        self.max_queue = max_queue
        self._key = key
        self._slots: dict[str, _Slots] = {}

    def in_flight(self, key: str) -> int:
        """Streams of ``key`` holding a slot now."""
        slots = self._slots.get(key)
        return 0 if slots is None else slots.in_flight

    def queued(self, key: str) -> int:
        """Requests of ``key`` waiting for a slot now."""
        slots = self._slots.get(key)
        return 0 if slots is None else len(slots.waiters)

    def __repr__(self) -> str:
        return f"Concurrency(max_in_flight={self.max_in_flight}, max_queue={self.max_queue})"

    def __call__(self, inner: Handler) -> Handler:
        async def handler(request: ChatRequest) -> AsyncIterator[Event]:
            key = self._key(request)
            if not await self._acquire(key):
                yield Error(
                    code="overloaded",
                    message=f"more than {self.max_queue} requests are waiting for {key!r} "
                    f"({self.max_in_flight} in flight)",
                    retryable=True,
                )
                return
            try:
                stream = inner(request)
                try:
                    async for event in stream:
                        yield event
                finally:
                    await stream.aclose()  # type: ignore[attr-defined]
            finally:
                self._release(key)

        return handler

    async def _acquire(self, key: str) -> bool:
        """Take a slot of ``key``, waiting in line; False when the line is full."""
        slots = self._slots.get(key)
        if slots is None:
            slots = self._slots[key] = _Slots()
        if slots.in_flight < self.max_in_flight and not slots.waiters:
            slots.in_flight += 1
            return True
        if self.max_queue is not None and len(slots.waiters) >= self.max_queue:
            return False
        ready = anyio.Event()
        slots.waiters.append(ready)
        try:
            await ready.wait()
        except BaseException:
            if ready.is_set():
                # The slot was handed to us as we were cancelled: pass it on.
                self._release(key)
            else:
                slots.waiters.remove(ready)
                self._forget(key, slots)
            raise
        return True  # the releaser handed its slot over: in_flight already counts us

    def _release(self, key: str) -> None:
        slots = self._slots[key]
        if slots.waiters:
            slots.waiters.popleft().set()
        else:
            slots.in_flight -= 1
            self._forget(key, slots)

    def _forget(self, key: str, slots: _Slots) -> None:
        # Idle keys are dropped so that per-tenant keys don't accumulate.
        if slots.in_flight == 0 and not slots.waiters:
            del self._slots[key]
