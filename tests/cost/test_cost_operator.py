"""The Cost operator over real loopback HTTP: finished, failed, refused and cancelled streams.

Each stream is priced from its own usage (``usage``, ``cost``, then the terminal
event) and recorded once in the ledger: never silently zero, also when the
consumer walks away before the end. Operator-only rules (a stream cut by an
operator inside without usage) use a scripted inner handler, as the engine's
own operator tests do.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import anyio
import msgspec
import pytest

from lluminary import Engine, Retry
from lluminary.engine import EventStream, compose
from lluminary.engine.operators._cost import Cost
from lluminary.events import ChatRequest, Error, Event, Finish, Message, Start, TextDelta, Usage
from lluminary.events import Cost as CostEvent
from lluminary.events import Retry as RetryEvent
from lluminary.ledger import LedgerEntry, MemoryLedger, PostgresLedger
from lluminary.pricing import price
from lluminary.providers import create_provider
from lluminary.tokens import count_tokens
from tests.support import ReplayServer, Reply, check_invariants, fixture_bytes

OPENAI_TEXT = fixture_bytes("openai_chat", "text_stream_include_usage.sse")
ANTHROPIC_TEXT = fixture_bytes("anthropic", "text_stream.sse")
OLLAMA_TEXT = fixture_bytes("ollama", "chat_stream_text.docs.ndjson")


def request(model: str = "openai:gpt-4o-mini", **metadata: str) -> ChatRequest:
    return ChatRequest(model=model, messages=[Message.user("What is the capital of the UK?")], metadata=metadata)


def engine_for(server: ReplayServer, *operators: Any, provider: str = "openai") -> Engine:
    base = server.url + "/v1" if provider == "openai" else server.url
    made = create_provider(provider, api_key="sk-test", base_url=base)
    return Engine(list(operators), providers={provider: made})


async def collect(engine: Engine, req: ChatRequest) -> list[Event]:
    async with engine.stream(req) as stream:
        return [event async for event in stream]


def kinds(events: Sequence[Event]) -> list[str]:
    return [type(e).__name__ for e in events]


async def test_a_finished_stream_gets_its_cost_between_usage_and_finish() -> None:
    ledger = MemoryLedger()
    cost = Cost(ledger=ledger)
    async with ReplayServer([Reply(OPENAI_TEXT, chunk_size=50)]) as server, engine_for(server, cost) as engine:
        events = await collect(engine, request(tenant="acme", request_id="req-1"))
    await cost.aclose()
    check_invariants(events)
    assert kinds(events)[-3:] == ["Usage", "Cost", "Finish"]
    usage, priced = events[-3], events[-2]
    assert isinstance(usage, Usage)
    assert isinstance(priced, CostEvent)
    assert priced == price(usage, "openai", "gpt-4o-mini-2024-07-18")
    assert priced.usd == pytest.approx(78 * 0.15e-6 + 9 * 0.6e-6)
    assert not priced.estimated
    [entry] = ledger.entries
    assert (entry.request_id, entry.tenant, entry.status) == ("req-1", "acme", "finish")
    assert (entry.provider, entry.model) == ("openai", "gpt-4o-mini-2024-07-18")
    assert (entry.input_tokens, entry.output_tokens) == (78, 9)
    assert entry.cost_usd == priced.usd
    assert entry.latency_ms > 0


async def test_the_requested_model_prices_a_stream_whose_answering_model_is_not_in_the_table() -> None:
    # The recording answers as "claude-3-opus-latest" (retired, not priced); the request named Sonnet 4.5.
    async with (
        ReplayServer([Reply(ANTHROPIC_TEXT)]) as server,
        engine_for(server, Cost(), provider="anthropic") as engine,
    ):
        events = await collect(engine, request("anthropic:claude-sonnet-4-5"))
    [usage] = [e for e in events if isinstance(e, Usage)]
    [priced] = [e for e in events if isinstance(e, CostEvent)]
    assert priced == price(usage, "anthropic", "claude-sonnet-4-5")
    assert priced.usd == pytest.approx(11 * 3e-6 + 6 * 15e-6)


async def test_a_stream_cut_mid_way_is_priced_on_the_usage_the_decoder_reported() -> None:
    ledger = MemoryLedger()
    cost = Cost(ledger=ledger)
    cut = OPENAI_TEXT.index(b"capital") + 200
    async with ReplayServer([Reply(OPENAI_TEXT, cut_after=cut)]) as server, engine_for(server, cost) as engine:
        events = await collect(engine, request())
    await cost.aclose()
    check_invariants(events)
    assert isinstance(events[-1], Error)
    assert kinds(events)[-3:] == ["Usage", "Cost", "Error"]
    priced = events[-2]
    assert isinstance(priced, CostEvent)
    assert priced.estimated
    assert priced.usd > 0
    [entry] = ledger.entries
    assert entry.status == events[-1].code
    assert entry.cost_usd == priced.usd
    assert entry.estimated


async def test_a_request_refused_before_an_answer_costs_a_recorded_zero_and_no_event() -> None:
    ledger = MemoryLedger()
    cost = Cost(ledger=ledger)
    reply = Reply(b'{"error": {"message": "slow down"}}', status=429, headers={"content-type": "application/json"})
    async with ReplayServer([reply]) as server, engine_for(server, cost) as engine:
        events = await collect(engine, request())
    await cost.aclose()
    assert kinds(events) == ["Error"]
    [entry] = ledger.entries
    assert (entry.status, entry.cost_usd, entry.estimated) == ("rate_limited", 0.0, False)


async def test_a_cancelled_stream_is_recorded_with_a_cost_that_is_not_zero(pg_dsn: str) -> None:
    ledger = await PostgresLedger.open(pg_dsn)
    seen: list[LedgerEntry] = []
    cost = Cost(ledger=ledger, on_cost=seen.append)
    stall = OPENAI_TEXT.index(b"London")  # the server stops here and keeps the connection open
    req = request(tenant="cancel-test", request_id=f"cancel-{id(seen)}")
    try:
        async with ReplayServer([Reply(OPENAI_TEXT, stall_after=stall)]) as server, engine_for(server, cost) as engine:
            async with engine.stream(req) as stream:
                async for event in stream:
                    if isinstance(event, TextDelta):
                        break  # the consumer walks away: no usage, no finish ever comes
            server.release_stalls()
        await cost.flush()
        [entry] = await ledger.entries([req.metadata["request_id"]])
    finally:
        await cost.aclose()
        await ledger.aclose()
    # What the callback got is what the ledger stored (timestamptz keeps microseconds).
    assert len(seen) == 1
    assert seen[0].ts == pytest.approx(entry.ts, abs=2e-6)
    assert msgspec.structs.replace(seen[0], ts=0.0) == msgspec.structs.replace(entry, ts=0.0)
    assert entry.status == "cancelled"
    assert entry.estimated
    assert entry.cost_usd is not None
    assert entry.cost_usd > 0
    assert entry.input_tokens == count_tokens(req).tokens  # tiktoken if its data is on disk, else the estimate
    assert entry.output_tokens >= 1
    assert entry.tenant == "cancel-test"


async def test_a_cancelled_task_is_recorded_too() -> None:
    ledger = MemoryLedger()
    cost = Cost(ledger=ledger)
    stall = OPENAI_TEXT.index(b"London")
    got_text = anyio.Event()

    async def consume(engine: Engine) -> None:
        async with engine.stream(request()) as stream:
            async for event in stream:
                if isinstance(event, TextDelta):
                    got_text.set()

    async with ReplayServer([Reply(OPENAI_TEXT, stall_after=stall)]) as server, engine_for(server, cost) as engine:
        async with anyio.create_task_group() as group:
            group.start_soon(consume, engine)
            await got_text.wait()
            group.cancel_scope.cancel()
        server.release_stalls()
    await cost.aclose()
    [entry] = ledger.entries
    assert entry.status == "cancelled"
    assert entry.cost_usd is not None
    assert entry.cost_usd > 0


async def test_an_unknown_model_gets_no_made_up_cost_but_a_warning_and_an_unpriced_row(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ledger = MemoryLedger()
    cost = Cost(ledger=ledger)
    body = OPENAI_TEXT.replace(b"gpt-4o-mini-2024-07-18", b"my-private-model")
    with caplog.at_level(logging.WARNING, logger="lluminary.cost"):
        async with ReplayServer([Reply(body)]) as server, engine_for(server, cost) as engine:
            events = await collect(engine, request("openai:my-private-model"))
    await cost.aclose()
    check_invariants(events)
    assert not [e for e in events if isinstance(e, CostEvent)]
    assert "no price for openai:my-private-model" in caplog.text
    [entry] = ledger.entries
    assert entry.cost_usd is None
    assert (entry.input_tokens, entry.output_tokens) == (78, 9)
    report = await ledger.report(since=0)
    assert report.total.unpriced == 1


async def test_local_models_cost_exactly_zero() -> None:
    async with (
        ReplayServer([Reply(OLLAMA_TEXT, headers={"content-type": "application/x-ndjson"})]) as server,
        Engine([Cost()], providers={"ollama": create_provider("ollama", base_url=server.url)}) as engine,
    ):
        events = await collect(engine, request("ollama:llama3.2"))
    assert kinds(events)[-3:] == ["Usage", "Cost", "Finish"]
    assert events[-2] == CostEvent(usd=0.0)


async def test_a_ledger_that_is_down_loses_rows_not_streams(pg_dsn: str, caplog: pytest.LogCaptureFixture) -> None:
    ledger = await PostgresLedger.open(pg_dsn)
    await ledger.pool.close()  # every write now fails
    cost = Cost(ledger=ledger)
    with caplog.at_level(logging.WARNING, logger="lluminary.ledger"):
        async with ReplayServer([Reply(OPENAI_TEXT)]) as server, engine_for(server, cost) as engine:
            events = await collect(engine, request())
        await cost.flush()
    await cost.aclose()
    await ledger.aclose()
    assert isinstance(events[-1], Finish)
    assert any(isinstance(e, CostEvent) for e in events)
    assert cost.writer is not None
    assert cost.writer.dropped == 1
    assert "ledger entries not recorded" in caplog.text


async def test_outside_retry_a_retried_request_is_priced_once() -> None:
    ledger = MemoryLedger()
    cost = Cost(ledger=ledger)
    first_text = OPENAI_TEXT.index(b'"content":"The"')
    replies = [Reply(OPENAI_TEXT, cut_after=first_text - 50), Reply(OPENAI_TEXT)]
    async with ReplayServer(replies) as server, engine_for(server, cost, Retry(base_delay=0.0)) as engine:
        events = await collect(engine, request())
    await cost.aclose()
    check_invariants(events)
    assert [type(e) for e in events].count(RetryEvent) == 1
    assert sum(isinstance(e, Usage) for e in events) == 1
    assert sum(isinstance(e, CostEvent) for e in events) == 1
    assert len(ledger.entries) == 1


# -- scripted inner handlers --------------------------------------------------------------------


def scripted(events: Sequence[Event]) -> Any:
    async def handler(req: ChatRequest) -> AsyncIterator[Event]:
        for event in events:
            yield event

    return handler


async def run(handler: Any, *operators: Any, req: ChatRequest | None = None) -> list[Event]:
    composed = compose(handler, list(operators))
    async with EventStream(composed(req or request())) as stream:
        return [event async for event in stream]


async def test_a_stream_cut_without_usage_is_priced_from_what_was_seen() -> None:
    ledger = MemoryLedger()
    cost = Cost(ledger=ledger)
    cut: list[Event] = [Start("id", "openai", "gpt-4o"), TextDelta("x" * 40), Error("timeout", "no event for 5s")]
    events = await run(scripted(cut), cost)
    await cost.aclose()
    assert kinds(events) == ["Start", "TextDelta", "Cost", "Error"]
    estimated = Usage(input_tokens=count_tokens(request(), "openai", "gpt-4o").tokens, output_tokens=10, estimated=True)
    assert events[2] == price(estimated, "openai", "gpt-4o")
    assert ledger.entries[0].output_tokens == 10
    assert ledger.entries[0].status == "timeout"


async def test_an_on_cost_callback_that_fails_does_not_break_the_stream(caplog: pytest.LogCaptureFixture) -> None:
    def broken(entry: LedgerEntry) -> None:
        raise RuntimeError("bug in user code")

    ok: list[Event] = [Start("id", "openai", "gpt-4o"), TextDelta("hi"), Usage(3, 1), Finish("stop")]
    with caplog.at_level(logging.ERROR, logger="lluminary.cost"):
        events = await run(scripted(ok), Cost(on_cost=broken))
    assert kinds(events) == ["Start", "TextDelta", "Usage", "Cost", "Finish"]
    assert "on_cost callback failed" in caplog.text
