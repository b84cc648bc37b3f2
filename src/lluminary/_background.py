"""A bounded hand-off from streams to a slow sink that never slows a stream.

The event log and the cost ledger both persist what streams produce, and both
must never hold a stream up: :meth:`BackgroundWriter.offer` is synchronous and
never waits. It puts the item in a bounded anyio memory stream and returns; one
background writer drains that stream into the sink in batches. When the sink is
slow or down, items are dropped *from the sink* (the streams are unaffected),
``dropped`` counts them and a warning says so at most every ``report_interval``
seconds. ``offer()`` works from a ``finally`` block too, which is where a
cancelled stream's last words are recorded.

The writer is an asyncio task started on first use, or runs in a task group
under ``async with`` (any anyio backend). ``flush()`` waits until everything
offered so far is written or dropped; ``aclose()`` flushes for at most
``flush_timeout`` seconds and stops the writer; what it did not get to is
counted as dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Generic, Self, TypeVar

import anyio
from anyio.abc import TaskGroup

__all__ = ["BackgroundWriter"]

T = TypeVar("T")


class BackgroundWriter(Generic[T]):
    """Drains offered items into ``write`` (one call per batch) in the background.

    ``sink`` names the destination in log lines ("the ledger"), ``unit`` what is
    written ("ledger entries") and ``verb`` what writing is called ("recorded");
    ``logger`` is where drops are reported.
    """

    def __init__(
        self,
        write: Callable[[list[T]], Awaitable[object]],
        *,
        sink: str,
        unit: str,
        verb: str,
        logger: logging.Logger,
        buffer: int = 1024,
        batch: int = 128,
        write_timeout: float = 10.0,
        flush_timeout: float = 5.0,
        report_interval: float = 10.0,
    ) -> None:
        if buffer < 1 or batch < 1:
            raise ValueError("buffer and batch must be positive")
        self._write_batch = write
        self._sink = sink
        self._unit = unit
        self._verb = verb
        self._logger = logger
        self.batch = batch
        self.write_timeout = write_timeout
        self.flush_timeout = flush_timeout
        self.report_interval = report_interval
        self.written = 0  # items the sink accepted
        self.dropped = 0  # items the sink never got: buffer full, sink down, or writer closed
        self._send, self._receive = anyio.create_memory_object_stream[T](buffer)
        self._offered = 0
        self._settled = 0  # written or dropped after being offered
        self._waiters: list[tuple[int, anyio.Event]] = []
        self._task: asyncio.Task[None] | None = None
        self._group: TaskGroup | None = None
        self._closed = False
        self._last_report = -float("inf")

    def offer(self, item: T) -> bool:
        """Hand ``item`` to the writer without waiting; False if it had to be dropped."""
        if self._closed:
            self._drop(1, f"the writer for {self._sink} is closed")
            return False
        self._ensure_writer()
        try:
            self._send.send_nowait(item)
        except anyio.WouldBlock:
            self._drop(1, f"{self._sink} is falling behind")
            return False
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._drop(1, f"the writer for {self._sink} is closed")
            return False
        self._offered += 1
        return True

    async def flush(self) -> None:
        """Wait until every item offered so far has been written or dropped."""
        target = self._offered
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
            return  # not asyncio: items wait in the buffer until `async with` starts a writer
        self._task = loop.create_task(self._write_loop(), name=f"lluminary-writer ({self._sink})")

    async def _write_loop(self) -> None:
        async for first in self._receive:
            batch = [first]
            while len(batch) < self.batch:
                try:
                    batch.append(self._receive.receive_nowait())
                except (anyio.WouldBlock, anyio.EndOfStream):
                    break
            await self._write(batch)

    async def _write(self, batch: list[T]) -> None:
        try:
            with anyio.fail_after(self.write_timeout):
                await self._write_batch(batch)
        except Exception as exc:  # noqa: BLE001 - the writer must outlive any sink failure; it is reported
            self._drop(len(batch), f"{self._sink} failed ({type(exc).__name__}: {exc})")
        else:
            self.written += len(batch)
        self._settle(len(batch))

    def _drop(self, count: int, why: str) -> None:
        self.dropped += count
        now = time.monotonic()
        if now - self._last_report >= self.report_interval:
            self._last_report = now
            self._logger.warning(
                "%s: %d %s not %s so far (the streams are unaffected)", why, self.dropped, self._unit, self._verb
            )

    def _settle(self, count: int) -> None:
        self._settled += count
        ready = [event for target, event in self._waiters if target <= self._settled]
        self._waiters = [(t, e) for t, e in self._waiters if t > self._settled]
        for event in ready:
            event.set()

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._task is not None or self._group is not None:
            raise RuntimeError(f"the writer for {self._sink} is already running")
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
        unwritten = self._offered - self._settled
        if unwritten:
            self._drop(unwritten, f"the writer for {self._sink} stopped with {self._unit} unwritten")
            self._settle(unwritten)
