"""Timeout: caps the wait for the first event, between events, and for the whole stream.

When a cap is hit the upstream is cancelled (which closes its HTTP response) and
the stream ends with ``error`` ``timeout``, retryable only if no content was sent,
so a Retry outside this operator can try again exactly when that is safe.
"""

from __future__ import annotations

import asyncio
import math
import types
from collections.abc import AsyncIterator, Generator
from typing import Any

from lluminary.engine._operator import Handler
from lluminary.events import ChatRequest, Error, Event, Finish, TextDelta, is_content

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
            # No cancel scope per event: entering and leaving one cost more than the rest
            # of the pipeline together. The inner step is driven by hand; when it completes
            # without waiting (events the provider already has in hand) no cap can expire.
            # A real wait is watched by one timer per stream, which cancels the task the
            # way ``asyncio.timeout`` does, so outer anyio scopes and task cancellation
            # still win (see _Watchdog.expired). The transports make the engine asyncio-only.
            loop = asyncio.get_running_loop()
            clock = loop.time
            watchdog = _Watchdog(loop)
            start = clock()
            total_deadline = start + total_cap if total_cap is not None else math.inf
            output = False
            first = True
            stream = inner(request)
            try:
                while True:
                    step = stream.__anext__().__await__()
                    try:
                        pending = step.send(None)
                    except StopIteration as done:
                        event = done.value
                    except StopAsyncIteration:
                        return
                    else:
                        cap = first_cap if first else idle_cap
                        deadline = min(total_deadline, clock() + cap if cap is not None else math.inf)
                        watchdog.watch(deadline)
                        try:
                            event = await _resume(step, pending)
                        except StopAsyncIteration:
                            watchdog.expired()
                            return
                        except asyncio.CancelledError:
                            if not watchdog.expired():
                                raise
                            if deadline == total_deadline:
                                what = f"the stream took longer than {total_cap:g}s in total"
                            elif first:
                                what = f"no event within {first_cap:g}s"
                            else:
                                what = f"no event for {idle_cap:g}s"
                            yield Error(code="timeout", message=what, retryable=not output)
                            return
                        except BaseException:
                            watchdog.expired()
                            raise
                        # A wait that ended normally after all keeps its event, as a cancel
                        # scope whose cancellation never landed would.
                        watchdog.expired()
                    first = False
                    if event.__class__ is TextDelta:  # the bulk of every stream: content, not terminal
                        output = True
                        yield event
                        continue
                    if not output and is_content(event):
                        output = True
                    yield event
                    if isinstance(event, (Finish, Error)):
                        return
            finally:
                watchdog.close()
                await stream.aclose()  # type: ignore[attr-defined]

        return handler


class _Watchdog:
    """One timer per stream for the deadline of the wait in progress.

    Deadlines nearly always move forward, so the timer stays where it is from one
    wait to the next; when it fires it cancels the task if the wait in progress has
    run out, or moves on to that wait's deadline. Between waits (the consumer holds
    an event) no cap runs, as before.
    """

    __slots__ = ("_at", "_cancelling", "_fired", "_handle", "_loop", "_task", "_waiting", "deadline")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._task: asyncio.Task[Any] | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._at = math.inf  # when the timer fires; inf while none is set
        self._waiting = False
        self._fired = False  # this wait's deadline cancelled the task
        self._cancelling = 0  # the task's cancellation requests when the wait began
        self.deadline = math.inf

    def watch(self, deadline: float) -> None:
        """A wait begins."""
        # Asked each time: a consumer may hand a stream on to another task between events.
        task = self._task = asyncio.current_task()
        assert task is not None  # an async generator always runs in a task
        self._cancelling = task.cancelling()
        self._waiting = True
        self.deadline = deadline
        if deadline < self._at:  # no timer yet, or one that would fire too late
            if self._handle is not None:
                self._handle.cancel()
            self._arm(deadline)

    def expired(self) -> bool:
        """The wait is over: whether it ended by its deadline alone.

        As ``asyncio.timeout`` decides: our cancellation is withdrawn, and the wait
        counts as timed out only if nobody else asked to cancel the task meanwhile.
        """
        self._waiting = False
        if not self._fired:
            return False
        self._fired = False
        assert self._task is not None  # set by watch()
        return self._task.uncancel() <= self._cancelling

    def close(self) -> None:
        self._waiting = False
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _arm(self, at: float) -> None:
        self._at = at
        self._handle = self._loop.call_at(at, self._fire)

    def _fire(self) -> None:
        self._handle = None
        self._at = math.inf
        if not self._waiting or self._fired:
            return  # between waits: the next wait sets the timer again
        if self._loop.time() >= self.deadline:
            self._fired = True
            assert self._task is not None  # set by watch()
            self._task.cancel()
        else:
            self._arm(self.deadline)


@types.coroutine
def _resume(step: Generator[Any, Any, Event], pending: Any) -> Generator[Any, Any, Event]:
    """Finish awaiting ``step`` after its first ``send`` stopped at ``pending``.

    What ``await step`` would have done from there: waits go to the event loop, and
    what the loop sends or throws in (a cancellation) goes on to ``step``.
    """
    value = pending
    while True:
        try:
            try:
                sent = yield value
            except GeneratorExit:
                step.close()
                raise
            except BaseException as exc:  # noqa: BLE001 - forwarded to the awaited step, as await does
                value = step.throw(exc)
            else:
                value = step.send(sent)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
