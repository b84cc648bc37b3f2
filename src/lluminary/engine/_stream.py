"""``EventStream``: what ``Engine.stream()`` returns.

An async iterator and an async context manager around the composed handler. It
is the last guard of the stream invariants whatever the operators did: it stops
after the first terminal event (closing the upstream at once), and turns an
upstream that ends without one into a ``protocol`` error. With no operators the
upstream is the providers' own loop, which keeps those invariants itself, and
``async for`` reads it directly. ``async with`` (or
``aclose()``) releases the HTTP connection deterministically when a consumer
stops early; the ``finally`` blocks below run on task cancellation too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import TracebackType

from lluminary.errors import StreamError
from lluminary.events import Error, Event, Finish, Response, ResponseBuilder
from lluminary.providers._base import is_guarded

__all__ = ["EventStream"]

_TERMINAL = (Finish, Error)


class EventStream:
    __slots__ = ("_done", "_guarded", "_provider", "_source")

    def __init__(self, source: AsyncIterator[Event], provider: str | None = None) -> None:
        self._source = source
        self._done = False
        self._provider = provider
        # The providers' own loop (no operators) already ends with exactly one terminal
        # event and releases its response before yielding it: ``async for`` then runs
        # on it directly, without a Python-level step per event here.
        self._guarded = is_guarded(source)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._source if self._guarded else self

    async def __anext__(self) -> Event:
        if self._done:
            raise StopAsyncIteration
        try:
            event = await self._source.__anext__()
        except StopAsyncIteration:
            self._done = True
            if self._guarded:
                raise  # it ended with its terminal event, perhaps read through ``async for``
            return Error(
                code="protocol",
                message="the stream ended without a finish or error event",
                provider=self._provider,
            )
        except BaseException:
            self._done = True
            raise
        if isinstance(event, _TERMINAL):
            self._done = True
            await self.aclose()
        return event

    async def aclose(self) -> None:
        """Stop the stream now and release its connection."""
        self._done = True
        aclose = getattr(self._source, "aclose", None)
        if aclose is not None:
            await aclose()

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def collect(self) -> Response:
        """Read to the end and assemble the :class:`Response` (errors included, not raised)."""
        builder = ResponseBuilder()
        async with self:
            async for event in self:
                builder.add(event)
        return builder.build()

    async def response(self) -> Response:
        """Like :meth:`collect`, but a stream that ended in ``error`` raises :class:`StreamError`."""
        result = await self.collect()
        if result.error is not None:
            raise StreamError(result.error)
        return result
