"""The operator type: a function from one handler to another.

A handler takes a :class:`ChatRequest` and returns an async iterator of events.
An operator wraps a handler, like tower's ``Layer`` or ASGI middleware, so it
sees the request (to key a cache, to retry) as well as the stream. Configuration
goes in the operator's ``__init__``; per-call state lives inside the call.

``Engine(operators=[a, b, c])`` runs ``a`` outermost: a request passes a → b → c
→ provider, and events flow back c → b → a.

Pure per-event transforms use :class:`EventMap`, so they are a few lines.

An operator class may declare ``keeps_stream_invariants = True``: given an inner
stream that ends with exactly one terminal event and nothing after it, its own
stream does too (it may add events before the terminal one, or end early with a
terminal event of its own, but never emits after one or swallows it). When every
operator of an engine declares it, the engine guards only the provider's stream,
if that needs it, instead of adding a guard step to every event at the outside.
Only declare it for an operator that keeps the promise: nothing checks it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Protocol, TypeAlias

from lluminary.events import ChatRequest, Event

__all__ = ["EventMap", "Handler", "Operator", "compose", "keeps_stream_invariants"]

Handler: TypeAlias = Callable[[ChatRequest], AsyncIterator[Event]]


class Operator(Protocol):
    def __call__(self, inner: Handler, /) -> Handler: ...


def compose(handler: Handler, operators: Sequence[Operator]) -> Handler:
    """Fold ``operators`` around ``handler``; the first operator ends up outermost."""
    for operator in reversed(operators):
        handler = operator(handler)
    return handler


def keeps_stream_invariants(operators: Sequence[Operator]) -> bool:
    """Whether every one of ``operators`` declares ``keeps_stream_invariants`` (see above)."""
    return all(getattr(type(op), "keeps_stream_invariants", False) is True for op in operators)


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
                await _aclose(stream)

        return handler


async def _aclose(stream: AsyncIterator[Event]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()
