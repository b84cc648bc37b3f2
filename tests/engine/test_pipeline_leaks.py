"""A typical pipeline leaves nothing behind per stream, however the consumer leaves.

Streams run through Tracing, Cost, Cache, Retry and Timeout, finished or
abandoned part-way; once the cache's store is full (it evicts from then on) and
the exporter's spans are cleared, the number of objects the garbage collector
tracks stays where it was, round after round, and no task is left running.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
from collections.abc import AsyncIterator

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from lluminary import Cache, Cost, Engine, Retry, Timeout, Tracing
from lluminary.events import ChatRequest, Event, Finish, Message, Start, TextDelta, Usage
from lluminary.providers import Provider
from lluminary.providers._http import Transport
from lluminary.stores import MemoryCache


class _Steady(Provider):
    """A provider of the user's own: fifty pieces of text, each after a turn of the loop."""

    name = "openai"

    async def stream(self, request: ChatRequest, model: str, transport: Transport) -> AsyncIterator[Event]:
        yield Start(id="s1", provider="openai", model=model)
        for i in range(50):
            await asyncio.sleep(0)  # the streams interleave, as over the network
            yield TextDelta(f"piece {i} ")
        yield Usage(10, 50)
        yield Finish("stop", "stop")


async def test_a_pipeline_holds_nothing_per_stream_once_streams_are_done() -> None:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    store = MemoryCache(max_bytes=64 * 1024)  # fills in the first round, then evicts
    cache = Cache(store)
    operators = [Tracing(tracer_provider), Cost(), cache, Retry(), Timeout(first_event=20, idle=30)]
    serial = itertools.count()
    finished = 0

    async with Engine(operators, providers={"openai": _Steady()}) as engine:

        async def one(leave_early: bool) -> None:
            nonlocal finished
            request = ChatRequest(model="openai:gpt-4o-mini", messages=[Message.user(f"question {next(serial)}")])
            async with engine.stream(request) as stream:
                async for event in stream:
                    if leave_early and isinstance(event, TextDelta) and event.text == "piece 9 ":
                        break
                    finished += isinstance(event, Finish)

        counts = []
        for _ in range(5):
            await asyncio.gather(*(one(i % 3 == 0) for i in range(200)))
            exporter.clear()
            gc.collect()
            counts.append(len(gc.get_objects()))
        assert len(asyncio.all_tasks()) == 1  # this test's own
    assert finished == 5 * (200 - 67)
    assert cache.stats.writes == 5 * (200 - 67)  # every finished stream was recorded and written
    # After the warm-up rounds (imports, the cache filling up, first-use caches),
    # not one tracked object more per round: 200 streams each.
    assert counts[4] - counts[2] <= 20, counts
