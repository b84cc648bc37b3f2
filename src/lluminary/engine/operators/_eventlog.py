"""EventLogger: every event of every request persisted to an event log, for replay.

Each event is passed downstream at once and, separately, handed to a bounded
anyio memory stream; one background writer drains it into the log in batches.
So the stream is never slowed by the database: when the log falls behind or is
down, events are dropped *from the log* (never from the stream), ``dropped``
counts them and a warning says so (at most every ``report_interval`` seconds).

Each event is logged under a request id (``request.metadata["request_id"]`` if
the caller set one, else the ``start`` event's id, else a fresh uuid), a
sequence number from 0, and its arrival time. Until the id is known (a ``retry``
event may come before ``start``) up to ``hold`` events wait in the call, not in
the stream. Give requests a ``request_id`` when a cache sits inside this
operator: a replayed cache hit repeats the original ``start`` id.

The writer runs in a task group when the logger is used as ``async with
EventLogger(log) as logger`` (any anyio backend); otherwise it is started on
first use as an asyncio task. ``flush()`` waits until everything offered so far
is written or dropped; ``aclose()`` flushes (for at most ``flush_timeout``) and
stops the writer.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from types import TracebackType
from typing import Protocol, runtime_checkable

import anyio
from anyio.abc import TaskGroup

from lluminary.engine._operator import Handler
from lluminary.events import ChatRequest, Event, Start, encode_event
from lluminary.stores._protocols import EventLog, LoggedEvent

__all__ = ["EventLogger"]

_log = logging.getLogger("lluminary.eventlog")

# (request_id, seq, ts, event): encoding waits for the writer, off the stream's path.
_Item = tuple[str, int, float, Event]


@runtime_checkable
class _BatchLog(Protocol):
    async def append_many(self, events: Sequence[LoggedEvent]) -> None: ...


class EventLogger:
    def __init__(
        self,
        log: EventLog,
        *,
        buffer: int = 1024,
        batch: int = 256,
        hold: int = 64,
        write_timeout: float = 10.0,
        flush_timeout: float = 5.0,
        report_interval: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if buffer < 1 or batch < 1 or hold < 0:
            raise ValueError("buffer and batch must be positive, hold not negative")
        self.log = log
        self.batch = batch
        self.hold = hold
        self.write_timeout = write_timeout
        self.flush_timeout = flush_timeout
        self.report_interval = report_interval
        self.logged = 0  # events written to the log
        self.dropped = 0  # events the log never got: buffer full, log down, or logger closed
        self._clock = clock
        self._send, self._receive = anyio.create_memory_object_stream[_Item](buffer)
        self._offered = 0
        self._settled = 0  # written or dropped after being offered
        self._waiters: list[tuple[int, anyio.Event]] = []
        self._task: asyncio.Task[None] | None = None
        self._group: TaskGroup | None = None
        self._closed = False
        self._last_report = -float("inf")

    def __repr__(self) -> str:
        return f"EventLogger(log={self.log!r}, logged={self.logged}, dropped={self.dropped})"

    # -- the operator ---------------------------------------------------------------------

    def __call__(self, inner: Handler) -> Handler:
        async def handler(request: ChatRequest) -> AsyncIterator[Event]:
            request_id = request.metadata.get("request_id")
            held: list[tuple[float, Event]] = []
            seq = 0
            stream = inner(request)
            try:
                async for event in stream:
                    now = self._clock()
                    if request_id is None:
                        if isinstance(event, Start):
                            request_id = event.id
                        elif len(held) < self.hold:
                            held.append((now, event))
                            yield event
                            continue
                        else:
                            request_id = uuid.uuid4().hex
                    for ts, early in held:
                        self._offer((request_id, seq, ts, early))
                        seq += 1
                    held.clear()
                    self._offer((request_id, seq, now, event))
                    seq += 1
                    yield event
            finally:
                if held:  # the stream ended before any id turned up
                    request_id = request_id or uuid.uuid4().hex
                    for ts, early in held:
                        self._offer((request_id, seq, ts, early))
                        seq += 1
                await stream.aclose()  # type: ignore[attr-defined]

        return handler

    def _offer(self, item: _Item) -> None:
        if self._closed:
            self._drop(1, "the event logger is closed")
            return
        self._ensure_writer()
        try:
            self._send.send_nowait(item)
        except anyio.WouldBlock:
            self._drop(1, "the event log is falling behind")
            return
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._drop(1, "the event logger is closed")
            return
        self._offered += 1

    # -- the writer -----------------------------------------------------------------------

    def _ensure_writer(self) -> None:
        if self._group is not None or self._task is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not asyncio: events wait in the buffer until `async with` starts a writer
        self._task = loop.create_task(self._write_loop(), name="lluminary-event-logger")

    async def _write_loop(self) -> None:
        async for first in self._receive:
            items = [first]
            while len(items) < self.batch:
                try:
                    items.append(self._receive.receive_nowait())
                except (anyio.WouldBlock, anyio.EndOfStream):
                    break
            await self._write(items)

    async def _write(self, items: list[_Item]) -> None:
        rows = [LoggedEvent(request_id=r, seq=s, ts=t, event=encode_event(e)) for r, s, t, e in items]
        try:
            with anyio.fail_after(self.write_timeout):
                if isinstance(self.log, _BatchLog):
                    await self.log.append_many(rows)
                else:
                    for row in rows:
                        await self.log.append(row.request_id, row.seq, row.ts, row.event)
        except Exception as exc:  # noqa: BLE001 - the writer must outlive any log's failure; it is reported below
            self._drop(len(rows), f"the event log failed: {exc}")
        else:
            self.logged += len(rows)
        self._settle(len(rows))

    def _drop(self, count: int, why: str) -> None:
        self.dropped += count
        now = time.monotonic()
        if now - self._last_report >= self.report_interval:
            self._last_report = now
            _log.warning("%s: %d events not logged so far (the streams are unaffected)", why, self.dropped)

    def _settle(self, count: int) -> None:
        self._settled += count
        ready = [event for target, event in self._waiters if target <= self._settled]
        self._waiters = [(t, e) for t, e in self._waiters if t > self._settled]
        for event in ready:
            event.set()

    # -- lifecycle ------------------------------------------------------------------------

    async def flush(self) -> None:
        """Wait until every event offered so far has been written or dropped."""
        target = self._offered
        if self._settled >= target:
            return
        event = anyio.Event()
        self._waiters.append((target, event))
        await event.wait()

    async def __aenter__(self) -> EventLogger:
        if self._task is not None or self._group is not None:
            raise RuntimeError("the event logger's writer is already running")
        group = anyio.create_task_group()
        await group.__aenter__()
        group.start_soon(self._write_loop)
        self._group = group
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        group, self._group = self._group, None
        try:
            await self._stop(group)
        finally:
            if group is not None:
                await group.__aexit__(exc_type, exc, tb)
            self._abandon()

    async def aclose(self) -> None:
        """Flush for at most ``flush_timeout`` seconds, then stop the writer."""
        task, self._task = self._task, None
        await self._stop(None)
        if task is not None:
            with anyio.move_on_after(self.flush_timeout):
                await asyncio.shield(task)
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._abandon()

    async def _stop(self, group: TaskGroup | None) -> None:
        if self._closed:
            return
        self._closed = True
        # Closing the send side ends the writer's loop once the buffer is drained.
        self._send.close()
        if group is not None:
            with anyio.move_on_after(self.flush_timeout) as scope:
                await self.flush()
            if scope.cancelled_caught:
                group.cancel_scope.cancel()

    def _abandon(self) -> None:
        """Count whatever the stopped writer did not get to as dropped, and wake flush() waiters."""
        self._receive.close()
        unwritten = self._offered - self._settled
        if unwritten:
            self._drop(unwritten, "the event logger stopped with events unwritten")
            self._settle(unwritten)
