"""The stream the engine hands out keeps the invariants whatever the pipeline does.

A provider of the user's own that breaks the rules (no terminal event, events
after it) is held to them with and without operators, and the pipeline is
closed, its cleanup done, before the consumer sees the terminal event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from lluminary import Cost, Engine, EventMap, Retry, Timeout, Tracing
from lluminary.events import ChatRequest, Error, Event, Finish, Start, TextDelta, Usage
from lluminary.events import Cost as CostEvent
from lluminary.ledger import LedgerEntry
from lluminary.providers import Provider
from lluminary.providers._base import is_guarded
from lluminary.providers._http import Transport


class _Unruly(Provider):
    """A user's provider that ends without a terminal event, or sends events after one."""

    name = "openai"

    def __init__(self, tail: list[Event]) -> None:
        self.tail = tail

    async def stream(self, request: ChatRequest, model: str, transport: Transport) -> AsyncIterator[Event]:
        yield Start(id="u1", provider="openai", model=model)
        yield TextDelta("hi")
        for event in self.tail:
            yield event


_PIPELINES: list[Callable[[], list[object]]] = [
    lambda: [],
    lambda: [Retry(), Timeout(idle=30)],
    lambda: [Tracing(), Cost(), Retry(), Timeout(idle=30)],  # Tracing outermost: it is the guard
    lambda: [Cost(), Retry()],  # and Cost
    lambda: [Tracing()],
    lambda: [Timeout(idle=30), EventMap(lambda _request, event: event)],
]


@pytest.mark.parametrize("make", _PIPELINES)
async def test_a_stream_without_a_terminal_event_ends_in_a_protocol_error(make: Callable[[], list[object]]) -> None:
    engine = Engine(make(), providers={"openai": _Unruly([])})  # type: ignore[arg-type]
    events = [event async for event in engine.stream("hello", model="openai:m")]
    assert [type(event) for event in events[:2]] == [Start, TextDelta]
    terminal = [event for event in events if isinstance(event, (Finish, Error))]
    assert len(terminal) == 1
    assert events[-1] is terminal[0]
    assert isinstance(terminal[0], Error)
    assert terminal[0].code == "protocol"


@pytest.mark.parametrize("make", _PIPELINES)
async def test_nothing_follows_the_first_terminal_event(make: Callable[[], list[object]]) -> None:
    tail: list[Event] = [Usage(1, 1), Finish("stop"), TextDelta("after"), Finish("stop")]
    engine = Engine(make(), providers={"openai": _Unruly(tail)})  # type: ignore[arg-type]
    events = [event async for event in engine.stream("hello", model="openai:m")]
    assert isinstance(events[-1], Finish)
    assert sum(isinstance(event, (Finish, Error)) for event in events) == 1
    assert not any(isinstance(event, TextDelta) and event.text == "after" for event in events)


async def test_the_pipeline_has_cleaned_up_before_the_consumer_sees_the_terminal_event() -> None:
    """A consumer that stops at ``finish`` without closing the stream finds the call recorded."""
    recorded: list[LedgerEntry] = []
    engine = Engine(
        [Cost(on_cost=recorded.append), Retry()], providers={"openai": _Unruly([Usage(3, 1), Finish("stop")])}
    )
    stream = engine.stream("hello", model="openai:m")
    async for event in stream:
        if isinstance(event, Finish):
            assert len(recorded) == 1  # Cost's row is written as its generator closes
            assert recorded[0].status == "finish"
            break
    else:
        pytest.fail("no finish")


@pytest.mark.parametrize(
    ("make", "guarded"),
    [
        (lambda: [Tracing(), Cost(), Retry()], True),
        (lambda: [Cost(), Retry(), Timeout(idle=30)], True),
        (lambda: [Retry(), Tracing()], False),
        (lambda: [EventMap(lambda _request, event: event), Cost()], False),
    ],
)
def test_an_outermost_operator_that_guards_its_stream_is_read_directly(
    make: Callable[[], list[object]], guarded: bool
) -> None:
    engine = Engine(make(), providers={"openai": _Unruly([])})  # type: ignore[arg-type]
    stream = engine.stream("hello", model="openai:m")
    assert is_guarded(stream.__aiter__()) is guarded


async def test_tracing_outermost_has_ended_its_span_and_closed_the_pipeline_before_the_terminal_event() -> None:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    recorded: list[LedgerEntry] = []
    provider = _Unruly([Usage(3, 1), Finish("stop"), TextDelta("after")])
    engine = Engine([Tracing(tracer_provider), Cost(on_cost=recorded.append), Retry()], providers={"openai": provider})
    stream = engine.stream("hello", model="openai:m")
    async for event in stream:
        if isinstance(event, Finish):
            assert [entry.status for entry in recorded] == ["finish"]
            (span,) = exporter.get_finished_spans()
            assert "error.type" not in (span.attributes or {})
            break
    else:
        pytest.fail("no finish")


async def test_tracing_outermost_ends_a_stream_that_ran_dry_in_a_protocol_error_on_the_span_too() -> None:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    engine = Engine([Tracing(tracer_provider)], providers={"openai": _Unruly([])})
    events = [event async for event in engine.stream("hello", model="openai:m")]
    assert isinstance(events[-1], Error)
    assert (events[-1].code, events[-1].provider) == ("protocol", "openai")
    (span,) = exporter.get_finished_spans()
    assert (span.attributes or {})["error.type"] == "protocol"


async def test_cost_outermost_prices_and_records_a_stream_that_ran_dry_as_a_protocol_error() -> None:
    recorded: list[LedgerEntry] = []
    engine = Engine([Cost(on_cost=recorded.append)], providers={"openai": _Unruly([])})
    events = [event async for event in engine.stream("hello", model="openai:gpt-4o-mini")]
    assert isinstance(events[-1], Error)
    assert events[-1].code == "protocol"
    assert isinstance(events[-2], CostEvent)  # priced on what was seen, before the end
    assert events[-2].estimated
    (entry,) = recorded
    assert (entry.status, entry.estimated) == ("protocol", True)
    assert entry.cost_usd == events[-2].usd > 0
