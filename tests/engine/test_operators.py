"""Operators and the stream guard, driven by scripted inner handlers.

These test the operator logic itself (ordering, retry rules, the terminal-event
guard); the same operators run over real HTTP in test_engine_http.py.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Sequence

import anyio
import pytest

from lluminary import Engine, EventMap, Retry, Timeout
from lluminary.engine import EventStream, compose
from lluminary.errors import MissingKeyError, StreamError, UnknownModelError, UnknownProviderError
from lluminary.events import (
    ChatRequest,
    Error,
    Event,
    Finish,
    Message,
    Start,
    TextDelta,
    Usage,
)
from lluminary.events import Retry as RetryEvent

REQUEST = ChatRequest(model="openai:m", messages=[Message.user("hi")])
START = Start("id", "openai", "m")
OK = [START, TextDelta("hello"), Usage(3, 1), Finish("stop")]
RATE = Error("rate_limited", "slow down", retryable=True, status=429, retry_after=0.01)


def scripted(*attempts: Sequence[Event]) -> tuple[list[int], object]:
    """A handler that plays one list of events per call."""
    calls: list[int] = []

    async def handler(request: ChatRequest) -> AsyncIterator[Event]:
        calls.append(1)
        for event in attempts[min(len(calls) - 1, len(attempts) - 1)]:
            yield event

    return calls, handler


async def run(handler: object, *operators: object) -> list[Event]:
    composed = compose(handler, list(operators))  # type: ignore[arg-type]
    async with EventStream(composed(REQUEST)) as stream:
        return [event async for event in stream]


async def test_retry_before_output_then_success() -> None:
    calls, handler = scripted([START, Usage(1, 0), RATE], OK)
    events = await run(handler, Retry(base_delay=0))
    assert len(calls) == 2
    assert events == [START, RetryEvent(1, 0.01, "rate_limited", "slow down"), *OK[1:]]


async def test_no_retry_after_output() -> None:
    calls, handler = scripted([START, TextDelta("par"), RATE], OK)
    events = await run(handler, Retry(base_delay=0))
    assert len(calls) == 1
    assert events == [START, TextDelta("par"), RATE]


async def test_not_retryable_errors_pass_through() -> None:
    bad = Error("invalid_request", "no", retryable=False, status=400)
    calls, handler = scripted([bad], OK)
    assert await run(handler, Retry(base_delay=0)) == [bad]
    assert len(calls) == 1


@pytest.mark.parametrize("retry_after", [0.05, 0.2])
async def test_retry_after_is_honoured_within_ten_percent(retry_after: float) -> None:
    error = Error("overloaded", "busy", retryable=True, status=529, retry_after=retry_after)
    _, handler = scripted([error], OK)
    started = anyio.current_time()
    events = await run(handler, Retry(base_delay=5))
    waited = anyio.current_time() - started
    assert isinstance(events[-1], Finish)
    assert retry_after <= waited <= retry_after * 1.1 + 0.02


def test_backoff_is_capped_and_jittered() -> None:
    retry = Retry(base_delay=1, max_delay=8, random=lambda: 1.0)
    assert [retry.delay(n, None) for n in range(1, 7)] == [1, 2, 4, 8, 8, 8]
    assert Retry(base_delay=1, random=lambda: 0.25).delay(3, None) == 1.0
    assert retry.delay(1, 2.5) == 2.5


@pytest.mark.parametrize("kwargs", [{"max_attempts": 0}, {"base_delay": -1}, {"total_timeout": 0}])
def test_retry_rejects_bad_configuration(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message is what a user reads, checked below
        Retry(**kwargs)  # type: ignore[arg-type]


async def test_retry_respects_total_timeout() -> None:
    slow = Error("server", "x", retryable=True, retry_after=0.5)
    calls, handler = scripted([slow])
    events = await run(handler, Retry(max_attempts=10, total_timeout=0.2))
    assert events == [slow]
    assert len(calls) == 1


@pytest.mark.parametrize("value", [-1.0, math.nan, math.inf])
def test_timeout_rejects_absurd_values(value: float) -> None:
    with pytest.raises(ValueError, match="positive number"):
        Timeout(idle=value)


async def test_operator_order_first_is_outermost() -> None:
    seen: list[str] = []

    def tag(name: str) -> EventMap:
        def fn(request: ChatRequest, event: Event) -> Event:
            seen.append(name)
            return event

        return EventMap(fn)

    _, handler = scripted([Finish("stop")])
    await run(handler, tag("outer"), tag("inner"))
    assert seen == ["inner", "outer"]


async def test_event_map_can_drop_and_replace() -> None:
    def fn(request: ChatRequest, event: Event) -> Event | None:
        if isinstance(event, Usage):
            return None
        if isinstance(event, TextDelta):
            return TextDelta(event.text.upper())
        return event

    _, handler = scripted(OK)
    assert await run(handler, EventMap(fn)) == [START, TextDelta("HELLO"), Finish("stop")]


async def test_guard_adds_a_protocol_error_when_no_terminal_event_comes() -> None:
    _, handler = scripted([START, TextDelta("x")])
    events = await run(handler)
    assert events[:2] == [START, TextDelta("x")]
    assert isinstance(events[2], Error)
    assert events[2].code == "protocol"
    assert len(events) == 3


async def test_guard_stops_at_the_first_terminal_event() -> None:
    closed = anyio.Event()

    async def handler(request: ChatRequest) -> AsyncIterator[Event]:
        try:
            yield Finish("stop")
            yield TextDelta("after the end")
            yield Finish("stop")
        finally:
            closed.set()

    assert await run(handler) == [Finish("stop")]
    assert closed.is_set()  # the upstream was closed at once, not left to the garbage collector


async def test_engine_resolves_configuration_mistakes_eagerly() -> None:
    engine = Engine(env={})
    with pytest.raises(UnknownProviderError):
        engine.stream("hi", model="nosuch:model")
    with pytest.raises(MissingKeyError, match="OPENAI_API_KEY"):
        engine.stream("hi", model="openai:gpt-4o")
    with pytest.raises(UnknownModelError):
        engine.stream("hi", model="")
    with pytest.raises(UnknownModelError):
        engine.stream("hi", model="gpt-4o")  # no provider
    await engine.aclose()


async def test_engine_turns_a_late_configuration_mistake_into_an_error_event() -> None:
    """An operator that switches model (as Fallback will) gets an event, not an exception."""

    def switch(inner):  # type: ignore[no-untyped-def]
        def handler(request: ChatRequest) -> AsyncIterator[Event]:
            return inner(ChatRequest(model="anthropic:claude", messages=request.messages))

        return handler

    engine = Engine([switch], env={}, model="local:")
    events = [event async for event in engine.stream("hi")]
    assert len(events) == 1
    assert isinstance(events[0], Error)
    assert events[0].code == "auth"
    assert "ANTHROPIC_API_KEY" in events[0].message
    await engine.aclose()


async def test_complete_raises_stream_error() -> None:
    async def failing(request: ChatRequest) -> AsyncIterator[Event]:
        yield Error("rate_limited", "slow", retryable=True, provider="openai", status=429)

    engine = Engine([lambda inner: failing], env={"OPENAI_API_KEY": "k"})
    with pytest.raises(StreamError, match="openai rate_limited \\(HTTP 429\\): slow") as info:
        await engine.complete("hi", model="openai:m")
    assert info.value.code == "rate_limited"
    assert info.value.retryable
    await engine.aclose()
