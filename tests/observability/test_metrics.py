"""The Metrics operator: GenAI client metrics and our counters, read back from an in-memory reader."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lluminary import Engine, Retry
from lluminary.events import (
    CacheHit,
    Cost,
    Error,
    Event,
    Fallback,
    Finish,
    ReasoningDelta,
    Start,
    TextDelta,
    Usage,
)
from lluminary.events import Retry as RetryEvent
from lluminary.observability import Metrics
from lluminary.providers import create_provider
from tests.observability.helpers import metering, one_point, points, request, run, scripted
from tests.support import ReplayServer, Reply, fixture_bytes

OPENAI_TEXT = fixture_bytes("openai_chat", "text_stream_include_usage.sse")  # usage: 78 in, 9 out
DURATION = "gen_ai.client.operation.duration"
TOKENS = "gen_ai.client.token.usage"
TTFC = "gen_ai.client.operation.time_to_first_chunk"
TPOC = "gen_ai.client.operation.time_per_output_chunk"
TPOT = "lluminary.client.time_per_output_token"
ACTIVE = "lluminary.client.active_streams"


def ticking(*times: float) -> object:
    """A clock that returns ``times`` in order: the operator reads it at fixed points."""
    it: Iterator[float] = iter(times)
    return lambda: next(it)


async def test_request_metrics_over_http() -> None:
    meter_provider, reader = metering()
    async with ReplayServer([Reply(OPENAI_TEXT, chunk_size=64)]) as server:
        openai = create_provider("openai", api_key="sk-test", base_url=server.url + "/v1")
        metrics = Metrics(meter_provider, servers={"openai": openai})
        async with Engine([metrics], providers={"openai": openai}) as engine:
            for _ in range(3):
                events = [e async for e in engine.stream(request("openai:gpt-4o-mini"))]
                assert isinstance(events[-1], Finish)
        port = server.port
    common = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "server.address": "127.0.0.1",
        "server.port": port,
    }
    duration = one_point(reader, DURATION)
    assert dict(duration.attributes) == common  # no error.type: all three finished
    assert duration.count == 3
    assert 0 < duration.sum < 30
    assert one_point(reader, TOKENS, gen_ai__token__type="input").sum == 3 * 78
    assert one_point(reader, TOKENS, gen_ai__token__type="output").sum == 3 * 9
    assert one_point(reader, TTFC).count == 3
    assert one_point(reader, TPOT).count == 3
    assert points(reader, TPOC) == []  # per-chunk timing is opt-in
    (active,) = points(reader, ACTIVE)
    assert active.value == 0
    assert dict(active.attributes) == {k: v for k, v in common.items() if k != "gen_ai.response.model"}


async def test_timings_from_the_clock() -> None:
    meter_provider, reader = metering()
    events: list[Event] = [
        Start("r", "openai", "m"),
        TextDelta("a"),
        TextDelta("b"),
        TextDelta("c"),
        TextDelta("d"),
        Usage(10, 9, reasoning_tokens=4),
        Finish("stop"),
    ]
    # Read at: the call, each of the four content events, the finish.
    clock = ticking(0.0, 0.5, 0.6, 0.7, 0.9, 1.0)
    metrics = Metrics(meter_provider, chunk_timing=True, clock=clock)  # type: ignore[arg-type]
    await run(scripted(events), [metrics])
    assert one_point(reader, DURATION).sum == pytest.approx(1.0)
    assert one_point(reader, TTFC).sum == pytest.approx(0.5)
    chunks = one_point(reader, TPOC)
    assert (chunks.count, chunks.sum) == (3, pytest.approx(0.4))
    # 9 output tokens, 4 of them reasoning the stream never showed: 5 visible, 4 after the first.
    assert one_point(reader, TPOT).sum == pytest.approx((0.9 - 0.5) / 4)


async def test_visible_reasoning_counts_in_time_per_output_token() -> None:
    meter_provider, reader = metering()
    events: list[Event] = [ReasoningDelta("hmm"), TextDelta("a"), Usage(1, 9, reasoning_tokens=4), Finish("stop")]
    metrics = Metrics(meter_provider, clock=ticking(0.0, 0.2, 1.0, 1.1))  # type: ignore[arg-type]
    await run(scripted(events), [metrics])
    assert one_point(reader, TPOT).sum == pytest.approx((1.0 - 0.2) / 8)


async def test_retries_errors_and_cancellation_are_labelled() -> None:
    meter_provider, reader = metering()
    replies = [
        Reply(b'{"error": {"message": "slow down"}}', status=429, headers={"retry-after": "0"}),
        Reply(OPENAI_TEXT, chunk_size=64),
        Reply(b'{"error": {"message": "bad"}}', status=400, headers={"content-type": "application/json"}),
        Reply(OPENAI_TEXT, chunk_size=64),
    ]
    async with ReplayServer(replies) as server:
        openai = create_provider("openai", api_key="sk-test", base_url=server.url + "/v1")
        operators = [Metrics(meter_provider), Retry(base_delay=0, codes={"rate_limited"})]
        async with Engine(operators, providers={"openai": openai}) as engine:  # type: ignore[arg-type]
            first = [e async for e in engine.stream(request("openai:gpt-4o-mini"))]
            second = [e async for e in engine.stream(request("openai:gpt-4o-mini"))]
            async with engine.stream(request("openai:gpt-4o-mini")) as stream:
                async for event in stream:
                    if isinstance(event, TextDelta):
                        (during,) = points(reader, ACTIVE)
                        assert during.value == 1  # in flight while it streams
                        break
    assert [type(e) for e in first].count(RetryEvent) == 1
    assert isinstance(second[-1], Error)
    retries = one_point(reader, "lluminary.client.retries")
    assert (retries.value, retries.attributes["error.type"]) == (1, "rate_limited")
    assert one_point(reader, DURATION, error__type="invalid_request").count == 1
    assert one_point(reader, DURATION, error__type="cancelled").count == 1
    finished = [p for p in points(reader, DURATION) if "error.type" not in p.attributes]
    assert [p.count for p in finished] == [1]
    (active,) = points(reader, ACTIVE)
    assert active.value == 0


async def test_cache_cost_fallback_and_tenant() -> None:
    meter_provider, reader = metering()
    metrics = Metrics(meter_provider, count_cache_misses=True, by_tenant=True)
    hit: list[Event] = [
        CacheHit("k"),
        Start("r", "openai", "m"),
        TextDelta("a"),
        Usage(5, 2),
        Cost(0.25),
        Finish("stop"),
    ]
    missed: list[Event] = [
        Start("r", "openai", "m"),
        Fallback(1, "anthropic:claude-haiku", "overloaded"),
        TextDelta("a"),
        Usage(5, 2, cache_read_tokens=20, estimated=True),
        Cost(0.5),
        Finish("stop"),
    ]
    await run(scripted(hit), [metrics])
    await run(scripted(missed), [metrics], request(metadata={"tenant": "acme"}))
    hits = one_point(reader, "lluminary.client.cache.hits")
    assert (hits.value, hits.attributes["lluminary.cache.kind"]) == (1, "exact")
    assert one_point(reader, "lluminary.client.cache.misses").value == 1
    assert one_point(reader, "lluminary.client.cost.usd", lluminary__tenant="acme").value == 0.5
    untenanted = [p for p in points(reader, "lluminary.client.cost.usd") if "lluminary.tenant" not in p.attributes]
    assert [p.value for p in untenanted] == [0.25]
    fallbacks = one_point(reader, "lluminary.client.fallbacks")
    assert (fallbacks.value, fallbacks.attributes["error.type"]) == (1, "overloaded")
    estimated = one_point(reader, TOKENS, gen_ai__token__type="input", lluminary__tenant="acme")
    assert estimated.sum == 25  # cache reads count as input, as the spec has it
    assert estimated.attributes["lluminary.usage.estimated"] is True


async def test_misses_are_not_counted_unless_asked() -> None:
    meter_provider, reader = metering()
    await run(scripted([Start("r", "openai", "m"), Usage(1, 1), Finish("stop")]), [Metrics(meter_provider)])
    assert points(reader, "lluminary.client.cache.misses") == []
    assert one_point(reader, DURATION).count == 1
    assert points(reader, TTFC) == []  # no content, no first chunk


async def test_a_stream_without_terminal_event_is_labelled_protocol() -> None:
    meter_provider, reader = metering()
    await run(scripted([Start("r", "openai", "m"), TextDelta("x")]), [Metrics(meter_provider)])
    assert one_point(reader, DURATION, error__type="protocol").count == 1


async def test_a_handler_failing_when_called_leaves_nothing_in_flight() -> None:
    meter_provider, reader = metering()

    def refuses(req: object) -> object:
        raise LookupError("no such route")

    with pytest.raises(LookupError):
        await run(refuses, [Metrics(meter_provider)])
    (active,) = points(reader, ACTIVE)
    assert active.value == 0
    assert one_point(reader, DURATION, error__type="LookupError").count == 1


def test_repr() -> None:
    meter_provider, _ = metering()
    assert repr(Metrics(meter_provider, by_tenant=True)) == (
        "Metrics(count_cache_misses=False, by_tenant=True, chunk_timing=False)"
    )
