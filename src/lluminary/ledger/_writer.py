"""LedgerWriter: a bounded hand-off from streams to a ledger that never slows a stream.

``submit()`` is synchronous and never waits: it puts the entry in a bounded
anyio memory stream and returns. One background writer drains that stream into
the ledger in batches. When the ledger is slow or down, entries are dropped
from the *ledger* (the streams are unaffected), ``dropped`` counts them and a
warning says so at most every ``report_interval`` seconds: the Cost operator
fails open. ``submit()`` works from a ``finally`` block too, which is where a
cancelled stream's cost is recorded.

The writer is an asyncio task started on first use, or runs in a task group
under ``async with`` (any anyio backend). ``flush()`` waits until everything
submitted so far is written or dropped; ``aclose()`` flushes for at most
``flush_timeout`` seconds and stops the writer. This is the design of
:class:`~lluminary.engine.operators._eventlog.EventLogger`, for ledger rows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from types import TracebackType

import anyio
from anyio.abc import TaskGroup

from lluminary.ledger._entry import Ledger, LedgerEntry

__all__ = ["LedgerWriter"]

log = logging.getLogger("lluminary.ledger")


class LedgerWriter:
    def __init__(
        self,
        ledger: Ledger,
        *,
        buffer: int = 1024,
        batch: int = 128,
        write_timeout: float = 10.0,
        flush_timeout: float = 5.0,
        report_interval: float = 10.0,
    ) -> None:
        if buffer < 1 or batch < 1:
            raise ValueError("buffer and batch must be positive")
        self.ledger = ledger
        self.batch = batch
        self.write_timeout = write_timeout
        self.flush_timeout = flush_timeout
        self.report_interval = report_interval
        self.written = 0
        self.dropped = 0
        self._send, self._receive = anyio.create_memory_object_stream[LedgerEntry](buffer)
        self._submitted = 0
        self._settled = 0
        self._waiters: list[tuple[int, anyio.Event]] = []
        self._task: asyncio.Task[None] | None = None
        self._group: TaskGroup | None = None
        self._closed = False
        self._last_report = -float("inf")

    def __repr__(self) -> str:
        return f"LedgerWriter(ledger={self.ledger!r}, written={self.written}, dropped={self.dropped})"

    def submit(self, entry: LedgerEntry) -> bool:
        """Hand ``entry`` to the writer without waiting; False if it had to be dropped."""
        if self._closed:
            self._drop(1, "the ledger writer is closed")
            return False
        self._ensure_writer()
        try:
            self._send.send_nowait(entry)
        except anyio.WouldBlock:
            self._drop(1, "the ledger is falling behind")
            return False
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._drop(1, "the ledger writer is closed")
            return False
        self._submitted += 1
        return True

    async def flush(self) -> None:
        """Wait until every entry submitted so far has been written or dropped."""
        target = self._submitted
        if self._settled >= target:
            return
        event = anyio.Event()
        self._waiters.append((target, event))
        await event.wait()

    # -- the writer -----------------------------------------------------------------------

    def _ensure_writer(self) -> None:
        if self._group is not None or (self._task is not None and not self._task.done()):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not asyncio: entries wait in the buffer until `async with` starts a writer
        self._task = loop.create_task(self._write_loop(), name="lluminary-ledger-writer")

    async def _write_loop(self) -> None:
        async for first in self._receive:
            entries = [first]
            while len(entries) < self.batch:
                try:
                    entries.append(self._receive.receive_nowait())
                except (anyio.WouldBlock, anyio.EndOfStream):
                    break
            await self._write(entries)

    async def _write(self, entries: list[LedgerEntry]) -> None:
        try:
            with anyio.fail_after(self.write_timeout):
                await self.ledger.record_many(entries)
        except Exception as exc:  # noqa: BLE001 - the writer must outlive any ledger failure; it is reported
            self._drop(len(entries), f"the ledger failed ({type(exc).__name__}: {exc})")
        else:
            self.written += len(entries)
        self._settle(len(entries))

    def _drop(self, count: int, why: str) -> None:
        self.dropped += count
        now = time.monotonic()
        if now - self._last_report >= self.report_interval:
            self._last_report = now
            log.warning("%s: %d ledger entries not recorded so far (the streams are unaffected)", why, self.dropped)

    def _settle(self, count: int) -> None:
        self._settled += count
        ready = [event for target, event in self._waiters if target <= self._settled]
        self._waiters = [(t, e) for t, e in self._waiters if t > self._settled]
        for event in ready:
            event.set()

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> LedgerWriter:
        if self._task is not None or self._group is not None:
            raise RuntimeError("the ledger writer is already running")
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
        self._send.close()  # ends the writer's loop once the buffer is drained
        if group is not None:
            with anyio.move_on_after(self.flush_timeout) as scope:
                await self.flush()
            if scope.cancelled_caught:
                group.cancel_scope.cancel()

    def _abandon(self) -> None:
        """Count what the stopped writer did not get to as dropped, and wake flush() waiters."""
        self._receive.close()
        unwritten = self._submitted - self._settled
        if unwritten:
            self._drop(unwritten, "the ledger writer stopped with entries unwritten")
            self._settle(unwritten)
