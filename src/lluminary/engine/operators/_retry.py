"""Retry: try again on retryable errors, but only before any output.

Once content (text, reasoning, a tool call) has gone downstream, a retry would
duplicate it, so a later failure is passed on as the stream's ``error``, as in
gRPC's transparent-retry rule. Before that, a retryable ``error`` (rate limited,
overloaded, server, timeout, connection) is swallowed, a ``retry`` event says
what happens next, and the inner handler is called again after a delay:
exponential backoff with full jitter, or exactly the server's ``Retry-After``
when it sent one. Attempts and total time are both capped; a ``Retry-After``
longer than ``max_delay`` or past the deadline ends the stream with the error
instead of parking the request.

A repeated ``start`` from a later attempt is dropped, so the consumer sees one.
The failed attempt's ``usage`` is dropped with its error: it described a stream
that never reached the consumer.

With a shared :class:`RetryBudget` (``budget=``), each call counts as a request
and each retry must be allowed by the budget; when it is not, the error is
passed on as it is. That bounds the load a total outage multiplies.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable, Collection
from typing import TYPE_CHECKING, Final

import anyio

from lluminary.engine._operator import Handler
from lluminary.events import ChatRequest, Error, Event, Start, TextDelta, Usage, is_content
from lluminary.events import Retry as RetryEvent

if TYPE_CHECKING:
    from lluminary.engine.operators._budget_retry import RetryBudget

__all__ = ["Retry"]

DEFAULT_CODES: Final = frozenset({"rate_limited", "overloaded", "server", "timeout", "connection"})


class Retry:
    def __init__(
        self,
        *,
        max_attempts: int = 3,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
        total_timeout: float = 120.0,
        codes: Collection[str] = DEFAULT_CODES,
        random: Callable[[], float] = random.random,
        budget: RetryBudget | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if base_delay < 0 or max_delay < 0 or total_timeout <= 0:
            raise ValueError("delays must be non-negative and total_timeout positive")
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.total_timeout = total_timeout
        self.codes = frozenset(codes)
        self._random = random
        self.budget = budget

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before attempt ``attempt + 1``."""
        if retry_after is not None:
            return retry_after
        cap = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return cap * float(self._random())

    def __call__(self, inner: Handler) -> Handler:
        async def handler(request: ChatRequest) -> AsyncIterator[Event]:
            budget = self.budget
            if budget is not None:
                budget.record_request()
            deadline = anyio.current_time() + self.total_timeout
            attempt = 1
            started = False
            while True:
                failure: Error | None = None
                held: Usage | None = None
                output = False
                stream = inner(request)
                try:
                    async for event in stream:
                        if event.__class__ is TextDelta and held is None:
                            # The bulk of every stream: content, so no retry from here on.
                            output = True
                            yield event
                            continue
                        if held is not None:
                            if isinstance(event, Error) and self._retryable(event, attempt):
                                failure = event
                                break
                            yield held
                            held = None
                        if isinstance(event, Start):
                            if started:
                                continue
                            started = True
                        elif isinstance(event, Usage) and not output:
                            # Hold it: if an error follows, this attempt is discarded.
                            held = event
                            continue
                        elif isinstance(event, Error):
                            if not output and self._retryable(event, attempt):
                                failure = event
                                break
                        elif not output and is_content(event):
                            output = True
                        yield event
                    else:
                        if held is not None:
                            yield held
                finally:
                    await stream.aclose()  # type: ignore[attr-defined]
                if failure is None:
                    return
                wait = self.delay(attempt, failure.retry_after)
                if (
                    wait > self.max_delay
                    or anyio.current_time() + wait >= deadline
                    or (budget is not None and not budget.try_retry())
                ):
                    yield failure
                    return
                yield RetryEvent(attempt=attempt, delay=wait, code=failure.code, message=failure.message)
                await anyio.sleep(wait)
                attempt += 1

        return handler

    def _retryable(self, event: Error, attempt: int) -> bool:
        return event.retryable and event.code in self.codes and attempt < self.max_attempts
