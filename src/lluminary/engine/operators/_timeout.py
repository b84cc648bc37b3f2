"""Timeout: caps the wait for the first event, between events, and for the whole stream.

When a cap is hit the upstream is cancelled (which closes its HTTP response) and
the stream ends with ``error`` ``timeout``, retryable only if no content was sent,
so a Retry outside this operator can try again exactly when that is safe.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import anyio

from lluminary.engine._operator import Handler
from lluminary.events import ChatRequest, Error, Event, Finish, is_content

__all__ = ["Timeout"]


class Timeout:
    def __init__(
        self,
        *,
        first_event: float | None = None,
        idle: float | None = None,
        total: float | None = None,
    ) -> None:
        for name, value in (("first_event", first_event), ("idle", idle), ("total", total)):
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a positive number of seconds")
        self.first_event = first_event
        self.idle = idle
        self.total = total

    def __call__(self, inner: Handler) -> Handler:
        first_cap, idle_cap, total_cap = self.first_event, self.idle, self.total

        async def handler(request: ChatRequest) -> AsyncIterator[Event]:
            start = anyio.current_time()
            total_deadline = start + total_cap if total_cap is not None else math.inf
            output = False
            first = True
            stream = inner(request)
            try:
                while True:
                    now = anyio.current_time()
                    cap = first_cap if first else idle_cap
                    deadline = min(total_deadline, now + cap if cap is not None else math.inf)
                    with anyio.CancelScope(deadline=deadline) as scope:
                        try:
                            event = await stream.__anext__()
                        except StopAsyncIteration:
                            return
                    if scope.cancelled_caught:
                        if deadline == total_deadline:
                            what = f"the stream took longer than {total_cap:g}s in total"
                        elif first:
                            what = f"no event within {first_cap:g}s"
                        else:
                            what = f"no event for {idle_cap:g}s"
                        yield Error(code="timeout", message=what, retryable=not output)
                        return
                    first = False
                    if not output and is_content(event):
                        output = True
                    yield event
                    if isinstance(event, (Finish, Error)):
                        return
            finally:
                await stream.aclose()  # type: ignore[attr-defined]

        return handler
