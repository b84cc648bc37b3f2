"""Fallback over real loopback HTTP: two recorded providers, each behind its own server.

The primary model is OpenAI (server ``a``), the fallback Anthropic (server
``b``), or the other way round; every response is a recorded stream or error
body replayed by :class:`tests.support.ReplayServer`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import aiohttp
import anyio
import pytest

from lluminary import Engine, Retry
from lluminary.engine import EventStream, compose
from lluminary.engine.operators._budget_retry import RetryBudget
from lluminary.engine.operators._fallback import Fallback
from lluminary.errors import ConfigError
from lluminary.events import ChatRequest, Error, Event, Finish, Message, Start, TextDelta, Usage
from lluminary.events import Fallback as FallbackEvent
from lluminary.events import Retry as RetryEvent
from lluminary.providers import AiohttpTransport, create_provider
from tests.support import ReplayServer, Reply, check_invariants, fixture_bytes

OPENAI_TEXT = fixture_bytes("openai_chat", "text_stream_include_usage.sse")
ANTHROPIC_TEXT = fixture_bytes("anthropic", "text_stream.sse")
# Anthropic accepts the request, then reports overload in band, before any content.
ANTHROPIC_OVERLOADED = (
    ANTHROPIC_TEXT[: ANTHROPIC_TEXT.index(b"event: content_block_start")]
    + b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
)
JSON = {"content-type": "application/json"}
OPENAI_503 = Reply(b'{"error": {"message": "overloaded", "type": "server_error"}}', status=503, headers=JSON)
ANTHROPIC_500 = Reply(b'{"type":"error","error":{"type":"api_error","message":"boom"}}', status=500, headers=JSON)

GPT = "openai:gpt-4o-mini"
CLAUDE = "anthropic:claude-3-opus-latest"


def engine(a: ReplayServer, b: ReplayServer, *operators: object) -> Engine:
    # env={}: no provider can be built from the environment, so any other provider lacks its key.
    providers = {
        "openai": create_provider("openai", api_key="sk-test", base_url=a.url + "/v1"),
        "anthropic": create_provider("anthropic", api_key="k-test", base_url=b.url),
    }
    return Engine(list(operators), providers=providers, env={})  # type: ignore[arg-type]


def request(model: str = GPT) -> ChatRequest:
    return ChatRequest(model=model, messages=[Message.user("Say hello")], max_tokens=50)


async def collect(e: Engine, req: ChatRequest) -> list[Event]:
    with anyio.fail_after(10):
        async with e.stream(req) as stream:
            return [event async for event in stream]


async def run(
    a_replies: Sequence[Reply], b_replies: Sequence[Reply], *operators: object, model: str = GPT
) -> tuple[list[Event], ReplayServer, ReplayServer]:
    """Serve OpenAI from ``a`` and Anthropic from ``b``, and stream one request."""
    async with ReplayServer(a_replies) as a, ReplayServer(b_replies) as b, engine(a, b, *operators) as e:
        return await collect(e, request(model)), a, b


def text_of(events: Sequence[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


async def test_503_on_the_first_model_gives_the_second_models_stream() -> None:
    events, a, b = await run([OPENAI_503], [Reply(ANTHROPIC_TEXT, chunk_size=9)], Fallback([CLAUDE]))
    check_invariants(events)
    assert events[0] == FallbackEvent(attempt=1, model=CLAUDE, code="overloaded")
    assert [e for e in events if isinstance(e, Start)] == [Start(events[1].id, "anthropic", "claude-3-opus-latest")]  # type: ignore[union-attr]
    assert text_of(events) == "Hello there!"
    assert [e for e in events if isinstance(e, Usage)] == [Usage(input_tokens=11, output_tokens=6)]
    assert isinstance(events[-1], Finish)
    assert (len(a.requests), len(b.requests)) == (1, 1)
    # Everything but the model is sent as it was.
    assert b.requests[0].json() == {
        "model": "claude-3-opus-latest",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Say hello"}]}],
        "stream": True,
    }


async def test_in_band_error_after_start_falls_back_with_one_start_and_no_stale_usage() -> None:
    """Anthropic starts, reports usage, then overloads: its start stays, its usage goes, OpenAI's start is dropped."""
    events, a, b = await run([Reply(OPENAI_TEXT)], [Reply(ANTHROPIC_OVERLOADED)], Fallback([GPT]), model=CLAUDE)
    check_invariants(events)
    starts = [e for e in events if isinstance(e, Start)]
    assert len(starts) == 1
    assert starts[0].provider == "anthropic"  # the one that went out first
    assert events[1] == FallbackEvent(attempt=1, model=GPT, code="overloaded")
    assert text_of(events) == "The capital of the UK is London."
    usages = [e for e in events if isinstance(e, Usage)]
    assert len(usages) == 1
    assert usages[0].input_tokens != 11  # OpenAI's usage, not the failed Anthropic attempt's
    assert (len(a.requests), len(b.requests)) == (1, 1)


async def test_error_after_content_is_passed_on_without_fallback() -> None:
    cut = OPENAI_TEXT.index(b"capital") + 200
    events, a, b = await run([Reply(OPENAI_TEXT, cut_after=cut)], [Reply(ANTHROPIC_TEXT)], Fallback([CLAUDE]))
    check_invariants(events)
    assert isinstance(events[-1], Error)
    assert events[-1].code in {"connection", "protocol"}
    assert not any(isinstance(e, FallbackEvent) for e in events)
    assert text_of(events).startswith("The capital")
    assert (len(a.requests), len(b.requests)) == (1, 0)


async def test_all_models_failing_ends_with_the_last_error() -> None:
    events, a, b = await run([OPENAI_503], [ANTHROPIC_500], Fallback([CLAUDE]))
    assert events[0] == FallbackEvent(attempt=1, model=CLAUDE, code="overloaded")
    assert len(events) == 2
    last = events[1]
    assert isinstance(last, Error)
    assert (last.code, last.status, last.provider) == ("server", 500, "anthropic")
    assert (len(a.requests), len(b.requests)) == (1, 1)


async def test_a_model_without_its_key_is_skipped() -> None:
    mistral = "mistral:mistral-small-latest"  # env={}: no MISTRAL_API_KEY
    events, a, b = await run([OPENAI_503], [Reply(ANTHROPIC_TEXT)], Fallback([mistral, CLAUDE]))
    check_invariants(events)
    assert events[:2] == [
        FallbackEvent(attempt=1, model=mistral, code="overloaded"),
        FallbackEvent(attempt=2, model=CLAUDE, code="auth"),
    ]
    assert text_of(events) == "Hello there!"
    assert isinstance(events[-1], Finish)
    assert (len(a.requests), len(b.requests)) == (1, 1)


async def test_a_missing_key_on_the_last_model_is_the_last_error() -> None:
    mistral = "mistral:mistral-small-latest"
    events, a, b = await run([OPENAI_503], [Reply(ANTHROPIC_TEXT)], Fallback([mistral]))
    assert isinstance(events[-1], Error)
    assert events[-1].code == "auth"
    assert "MISTRAL_API_KEY" in events[-1].message
    assert "sk-test" not in events[-1].message
    assert (len(a.requests), len(b.requests)) == (1, 0)


async def test_non_retryable_errors_do_not_fall_back_unless_listed() -> None:
    body = fixture_bytes("openai_chat", "error_404_model_not_found.json")
    for codes, falls_back in [(None, False), ({"not_found"}, True)]:
        fallback = Fallback([CLAUDE]) if codes is None else Fallback([CLAUDE], codes=codes)
        events, _, b = await run([Reply(body, status=404, headers=JSON)], [Reply(ANTHROPIC_TEXT)], fallback)
        assert isinstance(events[-1], Finish if falls_back else Error)
        assert len(b.requests) == int(falls_back)
        if not falls_back:
            assert events == [events[-1]]
            assert events[-1].code == "not_found"  # type: ignore[union-attr]


async def test_retry_inside_fallback_retries_each_model_first() -> None:
    events, a, b = await run(
        [OPENAI_503], [Reply(ANTHROPIC_TEXT)], Fallback([CLAUDE]), Retry(max_attempts=2, base_delay=0.0)
    )
    check_invariants(events)
    kinds = [type(e) for e in events]
    assert kinds[:3] == [RetryEvent, FallbackEvent, Start]
    assert text_of(events) == "Hello there!"
    assert (len(a.requests), len(b.requests)) == (2, 1)


async def test_an_exhausted_budget_passes_the_error_on_as_is() -> None:
    budget = RetryBudget(ratio=0.0, min_retries_per_second=0.0)
    events, a, b = await run([OPENAI_503], [Reply(ANTHROPIC_TEXT)], Fallback([CLAUDE], budget=budget))
    assert len(events) == 1
    assert isinstance(events[0], Error)
    assert (events[0].code, events[0].status) == ("overloaded", 503)
    assert (len(a.requests), len(b.requests)) == (1, 0)
    assert budget.counts() == (1, 0)


async def test_moving_past_a_missing_key_costs_no_budget() -> None:
    # A floor of exactly one retry: the move past the 503 spends it, the move past the
    # missing key must not need another.
    budget = RetryBudget(ratio=0.0, min_retries_per_second=0.1, window=10.0)
    mistral = "mistral:mistral-small-latest"
    events, a, b = await run([OPENAI_503], [Reply(ANTHROPIC_TEXT)], Fallback([mistral, CLAUDE], budget=budget))
    assert [e.code for e in events if isinstance(e, FallbackEvent)] == ["overloaded", "auth"]
    assert isinstance(events[-1], Finish)
    assert budget.counts() == (1, 1)
    assert (len(a.requests), len(b.requests)) == (1, 1)


async def test_consumer_closing_early_after_a_fallback_releases_the_connection() -> None:
    """With a pool of ONE connection, the stream after an abandoned fallback stream still gets through."""
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1))
    try:
        async with (
            ReplayServer([OPENAI_503]) as a,
            ReplayServer([Reply(ANTHROPIC_TEXT, chunk_size=5)]) as b,
            Engine(
                [Fallback([CLAUDE])],
                providers={
                    "openai": create_provider("openai", api_key="sk-test", base_url=a.url + "/v1"),
                    "anthropic": create_provider("anthropic", api_key="k-test", base_url=b.url),
                },
                transport=AiohttpTransport(session),
                env={},
            ) as e,
        ):
            for _ in range(3):
                with anyio.fail_after(5):  # a leaked connection would block here
                    async with e.stream(request()) as stream:
                        async for event in stream:
                            if isinstance(event, TextDelta):
                                break
                assert session.connector is not None
                assert len(session.connector._acquired) == 0  # nothing checked out of the pool
            assert len(b.requests) == 3
    finally:
        await session.close()


def scripted(*attempts: Sequence[Event]) -> tuple[list[str], object]:
    models: list[str] = []

    async def handler(req: ChatRequest) -> AsyncIterator[Event]:
        models.append(req.model)
        for event in attempts[len(models) - 1]:
            yield event

    return models, handler


async def test_models_are_tried_in_order_and_usage_of_a_failed_attempt_is_held_back() -> None:
    overloaded = Error("overloaded", "busy", retryable=True, provider="x", status=529)
    ok = [Start("2", "b", "m2"), TextDelta("hi"), Usage(2, 1), Finish("stop")]
    models, handler = scripted([Start("1", "a", "m1"), Usage(5, 0), overloaded], [Usage(9, 9), overloaded], ok)
    composed = compose(handler, [Fallback(["openai:b", "anthropic:c"])])  # type: ignore[arg-type]
    async with EventStream(composed(request("openai:a"))) as stream:
        events = [event async for event in stream]
    assert models == ["openai:a", "openai:b", "anthropic:c"]
    assert events == [
        Start("1", "a", "m1"),
        FallbackEvent(1, "openai:b", "overloaded"),
        FallbackEvent(2, "anthropic:c", "overloaded"),
        TextDelta("hi"),
        Usage(2, 1),
        Finish("stop"),
    ]


def test_model_names_are_checked_when_built() -> None:
    with pytest.raises(ConfigError):
        Fallback(["opnai:gpt-4o"])
    with pytest.raises(ConfigError):
        Fallback(["gpt-4o"])  # no provider
    with pytest.raises(ValueError, match="at least one"):
        Fallback([])
    with pytest.raises(TypeError):
        Fallback("openai:gpt-4o")
