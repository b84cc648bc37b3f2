"""The engine end to end over real loopback HTTP: retry, timeouts, cancellation, pools.

Each test runs the recorded OpenAI and Anthropic streams through
:class:`tests.support.ReplayServer`, a real HTTP server in its own thread, so the
test's event loop holds only the client's tasks.
"""

from __future__ import annotations

import asyncio

import aiohttp
import anyio
import pytest

from lluminary import Engine, Retry, Timeout
from lluminary.events import (
    ChatRequest,
    Error,
    Finish,
    Message,
    Start,
    TextDelta,
    Usage,
)
from lluminary.events import Retry as RetryEvent
from lluminary.providers import AiohttpTransport, HttpxTransport, create_provider
from lluminary.providers._base import is_guarded
from tests.support import ReplayServer, Reply, check_invariants, fixture_bytes

OPENAI_TEXT = fixture_bytes("openai_chat", "text_stream_include_usage.sse")
ANTHROPIC_TEXT = fixture_bytes("anthropic", "text_stream.sse")


def openai_engine(server: ReplayServer, *operators: object, transport: object = None) -> Engine:
    provider = create_provider("openai", api_key="sk-test", base_url=server.url + "/v1")
    return Engine(list(operators), providers={"openai": provider}, transport=transport)  # type: ignore[arg-type]


def request(model: str = "openai:gpt-4o-mini") -> ChatRequest:
    return ChatRequest(model=model, messages=[Message.user("What is the capital of the UK?")])


async def collect(engine: Engine, req: ChatRequest | None = None) -> list[object]:
    async with engine.stream(req or request()) as stream:
        return [event async for event in stream]


def text_of(events: list[object]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


async def test_plain_stream_over_http() -> None:
    async with ReplayServer([Reply(OPENAI_TEXT, chunk_size=7)]) as server, openai_engine(server) as engine:
        events = await collect(engine)
    check_invariants(events)  # type: ignore[arg-type]
    assert text_of(events) == "The capital of the UK is London."
    assert isinstance(events[-1], Finish)
    assert server.requests[0].path == "/v1/chat/completions"


async def test_retry_after_429_then_success_gives_one_clean_stream() -> None:
    replies = [
        Reply(
            b'{"error": {"message": "slow down", "type": "rate_limit_error"}}',
            status=429,
            headers={"content-type": "application/json", "retry-after": "0.05"},
        ),
        Reply(OPENAI_TEXT),
    ]
    retry = Retry(max_attempts=3, base_delay=0.01)
    async with ReplayServer(replies) as server, openai_engine(server, retry) as engine:
        started = anyio.current_time()
        events = await collect(engine)
        elapsed = anyio.current_time() - started
    check_invariants(events)  # type: ignore[arg-type]
    retries = [e for e in events if isinstance(e, RetryEvent)]
    assert len(retries) == 1
    assert retries[0].code == "rate_limited"
    assert retries[0].delay == pytest.approx(0.05)
    assert elapsed >= 0.05  # the server's Retry-After was honoured
    assert sum(isinstance(e, Start) for e in events) == 1
    assert text_of(events) == "The capital of the UK is London."
    assert len(server.requests) == 2


async def test_stream_cut_after_text_is_not_retried() -> None:
    cut = OPENAI_TEXT.index(b"capital") + 200  # well after the first text delta
    retry = Retry(max_attempts=5, base_delay=0.0)
    async with ReplayServer([Reply(OPENAI_TEXT, cut_after=cut)]) as server, openai_engine(server, retry) as engine:
        events = await collect(engine)
    check_invariants(events)  # type: ignore[arg-type]
    assert isinstance(events[-1], Error)
    assert events[-1].code in {"connection", "protocol"}
    assert not any(isinstance(e, RetryEvent) for e in events)
    assert len(server.requests) == 1
    assert text_of(events)  # what arrived was delivered, once
    assert "London" not in text_of(events) or text_of(events).count("London") == 1


async def test_cut_before_output_is_retried_without_duplicates() -> None:
    first_text = OPENAI_TEXT.index(b'"content":"The"')
    replies = [Reply(OPENAI_TEXT, cut_after=first_text - 50), Reply(OPENAI_TEXT)]
    async with ReplayServer(replies) as server, openai_engine(server, Retry(base_delay=0.0)) as engine:
        events = await collect(engine)
    check_invariants(events)  # type: ignore[arg-type]
    assert text_of(events) == "The capital of the UK is London."
    assert sum(isinstance(e, Start) for e in events) == 1
    assert sum(isinstance(e, Usage) for e in events) == 1
    assert [type(e) for e in events].count(RetryEvent) == 1


async def test_retry_gives_up_after_max_attempts() -> None:
    reply = Reply(
        b'{"error": {"message": "down", "type": "server_error"}}',
        status=500,
        headers={"content-type": "application/json"},
    )
    async with ReplayServer([reply]) as server, openai_engine(server, Retry(max_attempts=3, base_delay=0.0)) as engine:
        events = await collect(engine)
    assert [type(e) for e in events] == [RetryEvent, RetryEvent, Error]
    assert events[-1].status == 500  # type: ignore[union-attr]
    assert len(server.requests) == 3


async def test_retry_after_beyond_the_cap_fails_at_once() -> None:
    reply = Reply(b"{}", status=429, headers={"content-type": "application/json", "retry-after": "3000"})
    async with ReplayServer([reply]) as server, openai_engine(server, Retry(max_delay=5)) as engine:
        with anyio.fail_after(5):
            events = await collect(engine)
    assert len(events) == 1
    assert isinstance(events[0], Error)
    assert events[0].code == "rate_limited"
    assert events[0].retry_after == 3000


async def test_http_errors_become_one_error_event_with_retry_after() -> None:
    for status, code, headers in [
        (429, "rate_limited", {"retry-after": "7"}),
        (529, "overloaded", {"retry-after-ms": "1500"}),
        (500, "server", {}),
    ]:
        reply = Reply(
            b'{"type":"error","error":{"type":"x","message":"m"}}',
            status=status,
            headers={"content-type": "application/json", **headers},
        )
        async with ReplayServer([reply]) as server:
            provider = create_provider("anthropic", api_key="k", base_url=server.url)
            async with Engine(providers={"anthropic": provider}) as engine:
                events = await collect(engine, request("anthropic:claude-sonnet-4-5"))
        assert len(events) == 1, events
        error = events[0]
        assert isinstance(error, Error)
        assert (error.code, error.status, error.retryable) == (code, status, True)
        expected = {429: 7.0, 529: 1.5, 500: None}[status]
        assert error.retry_after == expected


async def test_idle_timeout_on_a_stalled_stream() -> None:
    stall = OPENAI_TEXT.index(b"London")
    async with (
        ReplayServer([Reply(OPENAI_TEXT, stall_after=stall)]) as server,
        openai_engine(server, Timeout(idle=0.3)) as engine,
    ):
        with anyio.fail_after(10):
            events = await collect(engine)
        server.release_stalls()
    check_invariants(events)  # type: ignore[arg-type]
    assert isinstance(events[-1], Error)
    assert events[-1].code == "timeout"
    assert events[-1].retryable is False  # text had already gone out


async def test_first_event_timeout_is_retryable_and_retried() -> None:
    replies = [Reply(OPENAI_TEXT, stall_after=0), Reply(OPENAI_TEXT)]
    async with (
        ReplayServer(replies) as server,
        openai_engine(server, Retry(base_delay=0.0), Timeout(first_event=0.3)) as engine,
    ):
        with anyio.fail_after(10):
            events = await collect(engine)
        server.release_stalls()
    check_invariants(events)  # type: ignore[arg-type]
    assert isinstance(events[-1], Finish)
    assert [e.code for e in events if isinstance(e, RetryEvent)] == ["timeout"]


async def test_total_timeout() -> None:
    async with (
        ReplayServer([Reply(OPENAI_TEXT, chunk_size=40, delay=0.05)]) as server,
        openai_engine(server, Timeout(total=0.3)) as engine,
    ):
        with anyio.fail_after(10):
            events = await collect(engine)
    assert isinstance(events[-1], Error)
    assert events[-1].code == "timeout"
    assert "in total" in events[-1].message


@pytest.mark.parametrize("how", ["break", "cancel"])
async def test_cancelling_midway_releases_the_connection(how: str) -> None:
    """With a pool of ONE connection, every stream after a cancelled one still gets through."""
    stall = OPENAI_TEXT.index(b"London")
    replies = [Reply(OPENAI_TEXT, stall_after=stall)] * 5 + [Reply(OPENAI_TEXT)]
    baseline = set(asyncio.all_tasks())
    async with ReplayServer(replies) as server:
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1))
        transport = AiohttpTransport(session)
        async with openai_engine(server, transport=transport) as engine:
            for _ in range(5):
                with anyio.fail_after(5):  # a leaked connection would block here forever
                    if how == "break":
                        async with engine.stream(request()) as stream:
                            async for event in stream:
                                if isinstance(event, TextDelta):
                                    break
                    else:
                        async with anyio.create_task_group() as tg:
                            seen = anyio.Event()

                            async def consume(seen: anyio.Event) -> None:
                                async for event in engine.stream(request()):
                                    if isinstance(event, TextDelta):
                                        seen.set()

                            tg.start_soon(consume, seen)
                            await seen.wait()
                            tg.cancel_scope.cancel()
                connector = session.connector
                assert connector is not None
                assert len(connector._acquired) == 0  # nothing checked out of the pool
            with anyio.fail_after(5):
                events = await collect(engine)
            assert isinstance(events[-1], Finish)
        await session.close()
    assert set(asyncio.all_tasks()) == baseline  # no task left behind


@pytest.mark.parametrize("operators", [False, True])
async def test_the_connection_is_back_before_the_consumer_sees_the_terminal_event(operators: bool) -> None:
    """A consumer that stops at ``finish`` or ``error``, without ``async with``, holds no connection."""

    async with ReplayServer([Reply(OPENAI_TEXT), Reply(b"", status=500)]) as server:
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1))
        connector = session.connector
        assert connector is not None
        ops = [Timeout(first_event=5)] if operators else []
        async with openai_engine(server, *ops, transport=AiohttpTransport(session)) as engine:
            held_at_end: list[int] = []
            for _ in range(2):
                stream = engine.stream(request())
                # The provider's own loop is read directly only without operators.
                assert is_guarded(stream.__aiter__()) is not operators
                async for event in stream:
                    if isinstance(event, (Finish, Error)):
                        held_at_end.append(len(connector._acquired))
                        break
            assert held_at_end == [0, 0]
        await session.close()


async def test_a_stream_read_through_async_for_then_asked_again_stays_ended() -> None:
    async with ReplayServer([Reply(OPENAI_TEXT)]) as server, openai_engine(server) as engine:
        stream = engine.stream(request())
        events = [event async for event in stream]
        assert isinstance(events[-1], Finish)
        with pytest.raises(StopAsyncIteration):
            await stream.__anext__()  # nothing follows the terminal event, not even a protocol error


async def test_httpx_transport_streams_the_same_events() -> None:
    async with ReplayServer([Reply(OPENAI_TEXT, chunk_size=11)]) as server:
        async with openai_engine(server) as engine:
            via_aiohttp = await collect(engine)
        async with openai_engine(server, transport=HttpxTransport()) as engine:
            via_httpx = await collect(engine)
    assert via_httpx == via_aiohttp
    assert isinstance(via_httpx[-1], Finish)


async def test_connection_refused_is_a_connection_error() -> None:
    provider = create_provider("openai", api_key="k", base_url="http://127.0.0.1:9/v1")
    async with Engine(providers={"openai": provider}) as engine:
        events = await collect(engine)
    assert len(events) == 1
    assert isinstance(events[0], Error)
    assert events[0].code == "connection"
    assert events[0].retryable


async def test_anthropic_through_the_engine() -> None:
    async with ReplayServer([Reply(ANTHROPIC_TEXT, chunk_size=3)]) as server:
        provider = create_provider("anthropic", api_key="k", base_url=server.url)
        async with Engine(providers={"anthropic": provider}) as engine:
            response = await engine.complete(request("anthropic:claude-3-opus-latest"))
    assert response.text == "Hello there!"
    assert response.finish_reason == "stop"
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (11, 6)


async def test_a_finished_stream_leaves_no_generator_for_the_finalizer() -> None:
    """Every iterator on the read path is closed in place, not by asyncio's asyncgen hook (a task each)."""
    async with ReplayServer([Reply(OPENAI_TEXT, chunk_size=64)]) as server, openai_engine(server) as engine:
        for _ in range(3):
            events = await collect(engine)
            assert isinstance(events[-1], Finish)
            # The asyncgen hook schedules its aclose() task with call_soon: give the
            # loop one turn so that such a task, if any, would exist now.
            await asyncio.sleep(0)
            assert asyncio.all_tasks() == {asyncio.current_task()}
