"""Timeout: caps the wait for the first event, between events, and for the whole stream.

When a cap is hit the upstream is cancelled (which closes its HTTP response) and
the stream ends with ``error`` ``timeout``, retryable only if no content was sent,
so a Retry outside this operator can try again exactly when that is safe.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections.abc import AsyncIterator, Callable
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
            # of the pipeline together. Each wait for the next event is watched by one
            # timer per stream, which cancels the task the way ``asyncio.timeout`` does,
            # so outer anyio scopes and task cancellation still win (see
            # _Watchdog.expired). The transports make the engine asyncio-only.
            loop = asyncio.get_running_loop()
            # asyncio's own loops tell time by time.monotonic: read it without the method call.
            clock = time.monotonic if type(loop).time is asyncio.BaseEventLoop.time else loop.time
            watchdog = _Watchdog(loop)
            current_task = _current_task
            start = clock()
            total_deadline = start + total_cap if total_cap is not None else math.inf
            output = False
            first = True
            stream = inner(request)
            step = stream.__anext__
            try:
                while True:
                    cap = first_cap if first else idle_cap
                    deadline = total_deadline
                    if cap is not None:
                        deadline = clock() + cap
                        if deadline > total_deadline:
                            deadline = total_deadline
                    # A wait begins (see _Watchdog). The task is asked each time: a
                    # consumer may hand a stream on to another task between events.
                    task = current_task(loop)
                    assert task is not None  # an async generator always runs in a task
                    watchdog.task = task
                    watchdog.cancelling = task.cancelling()
                    watchdog.deadline = deadline
                    if deadline < watchdog.at:
                        watchdog.move(deadline)
                    watchdog.waiting = True
                    try:
                        event = await step()
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
                    watchdog.waiting = False
                    if watchdog.fired:
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


def _task_lookup() -> Callable[[asyncio.AbstractEventLoop], asyncio.Task[Any] | None]:
    """``asyncio.current_task``, which is asked once per event.

    Before 3.12 it is a Python function around a lookup in the dict that the C
    ``_asyncio`` module keeps the running tasks in; the lookup itself costs a
    fifth. From 3.12 on, ``current_task`` is that C lookup.
    """
    if sys.version_info < (3, 12):
        running = getattr(asyncio.tasks, "_current_tasks", None)
        if isinstance(running, dict):
            return running.get
    return asyncio.current_task


_current_task = _task_lookup()


class _Watchdog:
    """One timer per stream for the deadline of the wait in progress.

    Deadlines nearly always move forward, so the timer stays where it is from one
    wait to the next; when it fires it cancels the task if the wait in progress has
    run out, or moves on to that wait's deadline. Between waits (the consumer holds
    an event) no cap runs. The handler sets ``task``, ``cancelling``, ``deadline``
    and ``waiting`` itself at the start of each wait, and calls :meth:`move` if the
    timer is set too late; that is most of the per-event cost, so it is inline.
    """

    __slots__ = ("_handle", "_loop", "at", "cancelling", "deadline", "fired", "task", "waiting")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._handle: asyncio.TimerHandle | None = None
        self.task: asyncio.Task[Any] | None = None
        self.at = math.inf  # when the timer fires; inf while none is set
        self.waiting = False
        self.fired = False  # this wait's deadline cancelled the task
        self.cancelling = 0  # the task's cancellation requests when the wait began
        self.deadline = math.inf

    def move(self, deadline: float) -> None:
        """Fire at ``deadline``, which is sooner than the timer set (or there is none)."""
        if self._handle is not None:
            self._handle.cancel()
        self._arm(deadline)

    def expired(self) -> bool:
        """The wait is over: whether it ended by its deadline alone.

        As ``asyncio.timeout`` decides: our cancellation is withdrawn, and the wait
        counts as timed out only if nobody else asked to cancel the task meanwhile.
        """
        self.waiting = False
        if not self.fired:
            return False
        self.fired = False
        assert self.task is not None  # set when the wait began
        return self.task.uncancel() <= self.cancelling

    def close(self) -> None:
        self.waiting = False
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _arm(self, at: float) -> None:
        self.at = at
        self._handle = self._loop.call_at(at, self._fire)

    def _fire(self) -> None:
        self._handle = None
        self.at = math.inf
        if not self.waiting or self.fired:
            return  # between waits: the next wait sets the timer again
        if self._loop.time() >= self.deadline:
            self.fired = True
            assert self.task is not None  # set when the wait began
            self.task.cancel()
        else:
            self._arm(self.deadline)
