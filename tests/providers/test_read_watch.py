"""The aiohttp transport's read timeout, now kept by one lazy timer per body (see _http._ReadWatch)."""

from __future__ import annotations

import time

import aiohttp
import pytest

from lluminary import Engine
from lluminary.events import ChatRequest, Error, Finish, Message, TextDelta
from lluminary.providers import AiohttpTransport, create_provider
from tests.support import ReplayServer, Reply, check_invariants, fixture_bytes

OPENAI_TEXT = fixture_bytes("openai_chat", "text_stream_include_usage.sse")
STALL = OPENAI_TEXT.index(b"London")


def request() -> ChatRequest:
    return ChatRequest(model="openai:gpt-4o-mini", messages=[Message.user("What is the capital of the UK?")])


async def run(server: ReplayServer, transport: AiohttpTransport, pause: float = 0.0) -> tuple[float, list[object]]:
    provider = create_provider("openai", api_key="sk-test", base_url=server.url + "/v1")
    engine = Engine(providers={"openai": provider}, transport=transport)
    began, events = time.monotonic(), []
    async with engine.stream(request()) as stream:
        async for event in stream:
            events.append(event)
            if pause and isinstance(event, TextDelta):
                await anyio_sleep(pause)
    return time.monotonic() - began, events


async def anyio_sleep(seconds: float) -> None:
    import anyio

    await anyio.sleep(seconds)  # the consumer's own pace, not a wait on the code under test


async def test_a_stalled_body_ends_in_a_timeout_without_any_operator() -> None:
    transport = AiohttpTransport(read_timeout=0.3)
    try:
        async with ReplayServer([Reply(OPENAI_TEXT, stall_after=STALL)]) as server:
            took, events = await run(server, transport)
    finally:
        await transport.aclose()
    check_invariants(events)
    last = events[-1]
    assert isinstance(last, Error)
    assert last.code == "timeout"
    assert 0.3 <= took < 1.0


async def test_a_session_of_ones_own_keeps_its_sock_read() -> None:
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_read=0.2))
    try:
        async with ReplayServer([Reply(OPENAI_TEXT, stall_after=STALL)]) as server:
            took, events = await run(server, AiohttpTransport(session))
    finally:
        await session.close()
    last = events[-1]
    assert isinstance(last, Error)
    assert last.code == "timeout"
    assert 0.2 <= took < 0.9


async def test_slow_but_steady_bodies_and_slow_consumers_do_not_time_out() -> None:
    transport = AiohttpTransport(read_timeout=0.25)
    try:
        async with ReplayServer([Reply(OPENAI_TEXT, chunk_size=200, delay=0.1), Reply(OPENAI_TEXT)]) as server:
            _, paced = await run(server, transport)
            _, slow = await run(server, transport, pause=0.3)  # the consumer's time is not a stall
    finally:
        await transport.aclose()
    assert isinstance(paced[-1], Finish)
    assert isinstance(slow[-1], Finish)


async def test_a_pooled_connection_reused_after_a_watched_body_still_times_out() -> None:
    transport = AiohttpTransport(read_timeout=0.3)
    try:
        async with ReplayServer([Reply(OPENAI_TEXT), Reply(OPENAI_TEXT, stall_after=STALL)]) as server:
            _, first = await run(server, transport)
            took, second = await run(server, transport)
    finally:
        await transport.aclose()
    assert isinstance(first[-1], Finish)
    last = second[-1]
    assert isinstance(last, Error)
    assert last.code == "timeout"
    assert took < 1.0


async def test_a_small_read_buffer_pauses_the_socket_but_loses_nothing() -> None:
    # The read buffer bounds what one connection holds in memory when the consumer is
    # slower than the server (aiohttp pauses reading past twice the buffer). Events bigger
    # than it, and a consumer that falls behind, still get every byte, in order.
    big = fixture_bytes("openai_chat", "tool_call_stream_include_usage.sse")
    small = AiohttpTransport(read_buffer=1024)
    default = AiohttpTransport()
    try:
        async with ReplayServer([Reply(big), Reply(big), Reply(OPENAI_TEXT), Reply(OPENAI_TEXT)]) as server:
            _, through_small = await run(server, small, pause=0.01)
            _, through_default = await run(server, default)
            _, text_small = await run(server, small, pause=0.01)
            _, text_default = await run(server, default)
    finally:
        await small.aclose()
        await default.aclose()
    assert through_small == through_default
    assert text_small == text_default
    assert isinstance(through_small[-1], Finish)
    check_invariants(through_small)


def test_a_read_buffer_below_a_kilobyte_is_refused() -> None:
    with pytest.raises(ValueError, match="read_buffer"):
        AiohttpTransport(read_buffer=100)
