"""The operator type: a function from one handler to another.

A handler takes a :class:`ChatRequest` and returns an async iterator of events.
An operator wraps a handler, like tower's ``Layer`` or ASGI middleware, so it
sees the request (to key a cache, to retry) as well as the stream. Configuration
goes in the operator's ``__init__``; per-call state lives inside the call.

``Engine(operators=[a, b, c])`` runs ``a`` outermost: a request passes a → b → c
→ provider, and events flow back c → b → a.

Pure per-event transforms use :class:`EventMap`, so they are a few lines.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Protocol, TypeAlias

from lluminary.events import ChatRequest, Error, Event
from lluminary.providers._base import keeps_invariants

__all__ = ["RAN_DRY", "EventMap", "Handler", "Operator", "compose", "keeps_invariants", "ran_dry"]

#: What a stream that ended without a ``finish`` or ``error`` event ends with instead.
RAN_DRY = "the stream ended without a finish or error event"

Handler: TypeAlias = Callable[[ChatRequest], AsyncIterator[Event]]


class Operator(Protocol):
    def __call__(self, inner: Handler, /) -> Handler: ...


def compose(handler: Handler, operators: Sequence[Operator]) -> Handler:
    """Fold ``operators`` around ``handler``; the first operator ends up outermost."""
    for operator in reversed(operators):
        handler = operator(handler)
    return handler


class EventMap:
    """An operator from a function ``(request, event) -> event | None``.

    Returning None drops the event. Terminal events are passed to the function
    too, but must not be dropped: the stream still ends with exactly one.
    """

    def __init__(self, fn: Callable[[ChatRequest, Event], Event | None]) -> None:
        self._fn = fn

    def __call__(self, inner: Handler) -> Handler:
        fn = self._fn

        async def handler(request: ChatRequest) -> AsyncIterator[Event]:
            stream = inner(request)
            try:
                async for event in stream:
                    mapped = fn(request, event)
                    if mapped is not None:
                        yield mapped
            finally:
                await aclose(stream)

        return handler


async def aclose(stream: AsyncIterator[Event]) -> None:
    """Close ``stream`` if it can be closed (async generators can; a plain iterator may not)."""
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


def ran_dry(provider: str | None) -> Error:
    """The ``protocol`` error that ends a stream whose source stopped without a terminal event."""
    return Error(code="protocol", message=RAN_DRY, provider=provider)
