"""``EventStream``: what ``Engine.stream()`` returns.

An async iterator and an async context manager around the composed handler. It
is the last guard of the stream invariants whatever the operators did: it stops
after the first terminal event (closing the upstream at once), and turns an
upstream that ends without one into a ``protocol`` error. An upstream that keeps
those invariants itself is read by ``async for`` directly: the providers' own
loop (no operators), or an outermost operator that guards what it passes on
(``Tracing``, ``Cost``; see ``keeps_invariants``). ``async with`` (or
``aclose()``) releases the HTTP connection deterministically when a consumer
stops early; the ``finally`` blocks below run on task cancellation too.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from types import TracebackType

from lluminary.engine._operator import aclose as aclose_stream
from lluminary.engine._operator import ran_dry
from lluminary.errors import StreamError
from lluminary.events import Error, Event, Finish, Response, ResponseBuilder, TextDelta
from lluminary.providers._base import is_guarded

__all__ = ["EventStream"]

_TERMINAL = (Finish, Error)


class EventStream:
    __slots__ = ("_iter", "_source")

    def __init__(self, source: AsyncIterator[Event], provider: str | None = None) -> None:
        self._source = source
        # The providers' own loop (no operators), or an outermost operator marked with
        # keeps_invariants, already ends with exactly one terminal event and has closed
        # everything before yielding it: ``async for`` then runs on it directly. Anything
        # else is read through _guard, an async generator: a step of one costs a third
        # of an ``async def __anext__`` method's.
        self._iter: AsyncIterator[Event] = source if is_guarded(source) else _guard(source, provider)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iter

    def __anext__(self) -> Awaitable[Event]:
        return self._iter.__anext__()

    async def aclose(self) -> None:
        """Stop the stream now and release its connection."""
        await aclose_stream(self._iter)
        if self._iter is not self._source:
            await aclose_stream(self._source)  # never started: _guard's own cleanup did not run

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


async def _guard(source: AsyncIterator[Event], provider: str | None) -> AsyncGenerator[Event, None]:
    """``source`` up to and including its first terminal event, which it must send.

    The upstream is closed before the terminal event is handed on, so a consumer
    that has its ``finish`` has its connection back as well. An upstream that ends
    without a terminal event ends here in a ``protocol`` error.
    """
    try:
        async for event in source:
            if event.__class__ is TextDelta:  # the bulk of every stream, and never terminal
                yield event
                continue
            if isinstance(event, _TERMINAL):
                await aclose_stream(source)
                yield event
                return
            yield event
    finally:
        await aclose_stream(source)
    yield ran_dry(provider)
