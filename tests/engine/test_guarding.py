"""Where the engine guards the stream invariants, and that they hold wherever it does.

With operators that all declare ``keeps_stream_invariants`` the guard sits on the
provider's stream (when that is not the HTTP loop, which keeps them itself);
with any other operator it sits outside the whole pipeline. Either way a
provider that breaks the rules is held to them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from lluminary import Cost, Engine, EventMap, Retry, Timeout, Tracing
from lluminary.engine import keeps_stream_invariants
from lluminary.engine._stream import guard
from lluminary.events import ChatRequest, Error, Event, Finish, Start, TextDelta, Usage
from lluminary.providers import Provider
from lluminary.providers._base import is_guarded
from lluminary.providers._http import Transport


class _Unruly(Provider):
    """A user's provider that ends without a terminal event, or sends events after one."""

    name = "unruly"

    def __init__(self, tail: list[Event]) -> None:
        self.tail = tail

    async def stream(self, request: ChatRequest, model: str, transport: Transport) -> AsyncIterator[Event]:
        yield Start(id="u1", provider="unruly", model=model)
        yield TextDelta("hi")
        for event in self.tail:
            yield event


def _operators() -> list[Callable[[], list[object]]]:
    return [
        lambda: [],
        lambda: [Retry(), Timeout(idle=30)],
        lambda: [Tracing(), Cost(), Retry(), Timeout(idle=30)],
        lambda: [Timeout(idle=30), EventMap(lambda _request, event: event)],
    ]


@pytest.mark.parametrize("make", _operators())
async def test_a_stream_without_a_terminal_event_ends_in_a_protocol_error(make: Callable[[], list[object]]) -> None:
    engine = Engine(make(), providers={"openai": _Unruly([])})  # type: ignore[arg-type]
    events = [event async for event in engine.stream("hello", model="openai:m")]
    assert [type(event) for event in events[:2]] == [Start, TextDelta]
    terminal = [event for event in events if isinstance(event, (Finish, Error))]
    assert len(terminal) == 1
    assert events[-1] is terminal[0]
    assert isinstance(terminal[0], Error)
    assert terminal[0].code == "protocol"


@pytest.mark.parametrize("make", _operators())
async def test_nothing_follows_the_first_terminal_event(make: Callable[[], list[object]]) -> None:
    tail: list[Event] = [Usage(1, 1), Finish("stop"), TextDelta("after"), Finish("stop")]
    engine = Engine(make(), providers={"openai": _Unruly(tail)})  # type: ignore[arg-type]
    events = [event async for event in engine.stream("hello", model="openai:m")]
    assert isinstance(events[-1], Finish)
    assert sum(isinstance(event, (Finish, Error)) for event in events) == 1
    assert not any(isinstance(event, TextDelta) and event.text == "after" for event in events)


def test_only_operators_that_declare_it_are_trusted() -> None:
    assert keeps_stream_invariants([])
    assert keeps_stream_invariants([Tracing(), Cost(), Retry(), Timeout(idle=1)])
    assert not keeps_stream_invariants([Retry(), EventMap(lambda _request, event: event)])

    class Claims:
        keeps_stream_invariants = "yes"  # only True itself counts

        def __call__(self, inner: object) -> object:
            return inner

    assert not keeps_stream_invariants([Claims()])  # type: ignore[list-item]


async def test_trusted_operators_are_read_directly_and_others_through_the_guard() -> None:
    trusted = Engine([Retry()], providers={"openai": _Unruly([Finish("stop")])})
    stream = trusted.stream("hello", model="openai:m")
    assert stream.__aiter__().ag_code is not guard.__code__  # type: ignore[attr-defined]
    assert not is_guarded(stream.__aiter__())
    await stream.aclose()
    untrusted = Engine([EventMap(lambda _request, event: event)], providers={"openai": _Unruly([Finish("stop")])})
    stream = untrusted.stream("hello", model="openai:m")
    assert stream.__aiter__().ag_code is guard.__code__  # type: ignore[attr-defined]
    await stream.aclose()
