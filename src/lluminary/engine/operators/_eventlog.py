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

The writer (:class:`lluminary._background.BackgroundWriter`, shared with the
cost ledger) runs in a task group when the logger is used as ``async with
EventLogger(log) as logger`` (any anyio backend); otherwise it is started on
first use as an asyncio task. ``flush()`` waits until everything offered so far
is written or dropped; ``aclose()`` flushes (for at most ``flush_timeout``) and
stops the writer.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from types import TracebackType
from typing import Protocol, runtime_checkable

from lluminary._background import BackgroundWriter
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
        self.hold = hold
        self._clock = clock
        self._writer = BackgroundWriter[_Item](
            self._write,
            sink="the event log",
            unit="events",
            verb="logged",
            logger=_log,
            buffer=buffer,
            batch=batch,
            write_timeout=write_timeout,
            flush_timeout=flush_timeout,
            report_interval=report_interval,
        )

    @property
    def logged(self) -> int:
        """Events written to the log."""
        return self._writer.written

    @property
    def dropped(self) -> int:
        """Events the log never got: buffer full, log down, or logger closed."""
        return self._writer.dropped

    def __repr__(self) -> str:
        return f"EventLogger(log={self.log!r}, logged={self.logged}, dropped={self.dropped})"

    # -- the operator ---------------------------------------------------------------------

    def __call__(self, inner: Handler) -> Handler:
        offer = self._writer.offer

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
                        offer((request_id, seq, ts, early))
                        seq += 1
                    held.clear()
                    offer((request_id, seq, now, event))
                    seq += 1
                    yield event
            finally:
                if held:  # the stream ended before any id turned up
                    request_id = request_id or uuid.uuid4().hex
                    for ts, early in held:
                        offer((request_id, seq, ts, early))
                        seq += 1
                await stream.aclose()  # type: ignore[attr-defined]

        return handler

    async def _write(self, items: list[_Item]) -> None:
        rows = [LoggedEvent(request_id=r, seq=s, ts=t, event=encode_event(e)) for r, s, t, e in items]
        if isinstance(self.log, _BatchLog):
            await self.log.append_many(rows)
        else:
            for row in rows:
                await self.log.append(row.request_id, row.seq, row.ts, row.event)

    # -- lifecycle ------------------------------------------------------------------------

    async def flush(self) -> None:
        """Wait until every event offered so far has been written or dropped."""
        await self._writer.flush()

    async def __aenter__(self) -> EventLogger:
        await self._writer.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._writer.__aexit__(exc_type, exc, tb)

    async def aclose(self) -> None:
        """Flush for at most ``flush_timeout`` seconds, then stop the writer."""
        await self._writer.aclose()
