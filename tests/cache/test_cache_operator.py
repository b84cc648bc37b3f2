"""The Cache operator end to end: recorded streams over loopback HTTP, through Engine, on every real store.

A hit must replay exactly what the live stream delivered (tool calls, reasoning
with signatures, usage), announced by ``cache-hit`` right after ``start``; a stream
that did not end in ``finish`` (cut, errored, abandoned, cancelled, timed out)
must never be written. Store failures are covered in ``test_cache_faults.py``.
"""

from __future__ import annotations

import random
from typing import Any

import anyio
import msgspec
import pytest

from lluminary import Engine, Retry, Timeout
from lluminary.cache import ENTRY_VERSION, decode_entry
from lluminary.engine.operators._cache import Cache
from lluminary.events import (
    CacheHit,
    ChatRequest,
    Error,
    Event,
    Finish,
    Message,
    ReasoningDelta,
    ResponseBuilder,
    Start,
    TextDelta,
    ToolCallEnd,
    Usage,
)
from lluminary.events import Retry as RetryEvent
from lluminary.providers import create_provider
from lluminary.stores import CacheStore
from lluminary.stores.memory import MemoryCache
from tests.support import ReplayServer, Reply, check_invariants, fixture_bytes

STREAMS = {
    "openai-tool-call": ("openai", fixture_bytes("openai_chat", "tool_call_stream_include_usage.sse")),
    "anthropic-thinking": ("anthropic", fixture_bytes("anthropic", "thinking_stream.sse")),
    "anthropic-tool-use": ("anthropic", fixture_bytes("anthropic", "tool_use_stream.sse")),
}
MODELS = {"openai": "openai:gpt-4o-mini", "anthropic": "anthropic:claude-sonnet-4-5"}
OPENAI_TEXT = fixture_bytes("openai_chat", "text_stream_include_usage.sse")


def engine_for(server: ReplayServer, *operators: Any, provider: str = "openai") -> Engine:
    base = server.url + ("/v1" if provider == "openai" else "")
    instance = create_provider(provider, api_key="sk-test-key-123", base_url=base)
    return Engine(list(operators), providers={provider: instance}, env={})


def request(provider: str = "openai", text: str = "What is the weather in Paris?", **fields: Any) -> ChatRequest:
    return ChatRequest(model=MODELS[provider], messages=[Message.user(text)], **fields)


async def collect(engine: Engine, req: ChatRequest) -> list[Event]:
    async with engine.stream(req) as stream:
        return [event async for event in stream]


@pytest.mark.parametrize("name", sorted(STREAMS))
async def test_a_hit_replays_exactly_the_live_stream(store: CacheStore, name: str) -> None:
    provider, body = STREAMS[name]
    cache = Cache(store)
    req = request(provider)
    async with ReplayServer([Reply(body, chunk_size=97)]) as server, engine_for(server, cache, provider=provider) as e:
        live = await collect(e, req)
        replayed = await collect(e, req)
        assert len(server.requests) == 1  # the second answer came from the store
    key = cache.key(req)
    assert key is not None
    check_invariants(live)
    check_invariants(replayed)
    assert isinstance(live[0], Start)
    assert isinstance(live[-1], Finish)
    assert replayed == [live[0], CacheHit(key=key), *live[1:]]
    assert (cache.stats.hits, cache.stats.misses, cache.stats.writes) == (1, 1, 1)
    live_response, replayed_response = ResponseBuilder(), ResponseBuilder()
    for event in live:
        live_response.add(event)
    for event in replayed:
        replayed_response.add(event)
    assert replayed_response.build() == live_response.build()
    assert any(isinstance(e, Usage) for e in replayed)
    if "thinking" in name:
        assert any(isinstance(e, ReasoningDelta) and e.signature for e in replayed)
    if "tool" in name:
        assert any(isinstance(e, ToolCallEnd) for e in replayed)
    stored = await store.get(key)
    assert stored is not None
    assert b"sk-test-key-123" not in stored


async def test_the_stored_value_is_msgpack_with_the_recorded_gaps() -> None:
    store = MemoryCache()
    cache = Cache(store)
    async with ReplayServer([Reply(OPENAI_TEXT, chunk_size=200)]) as server, engine_for(server, cache) as engine:
        live = await collect(engine, request())
    key = cache.key(request())
    assert key is not None
    value = await store.get(key)
    assert value is not None
    decoded = decode_entry(value)
    assert decoded is not None
    events, gaps = decoded
    assert events == live
    assert len(gaps) == len(live)
    assert all(g >= 0 for g in gaps)
    assert msgspec.msgpack.decode(value)[0] == ENTRY_VERSION  # the entry version leads the array


async def test_pace_replays_at_the_recorded_pace() -> None:
    store = MemoryCache()
    async with ReplayServer([Reply(OPENAI_TEXT, chunk_size=400, delay=0.03)]) as server:
        async with engine_for(server, Cache(store)) as engine:
            await collect(engine, request())
        async with engine_for(server, Cache(store, pace=True)) as paced:
            started = anyio.current_time()
            await collect(paced, request())
            paced_time = anyio.current_time() - started
        async with engine_for(server, Cache(store)) as fast:
            started = anyio.current_time()
            await collect(fast, request())
            fast_time = anyio.current_time() - started
    key = Cache(store).key(request())
    assert key is not None
    value = await store.get(key)
    assert value is not None
    decoded = decode_entry(value)
    assert decoded is not None
    recorded = sum(decoded[1]) / 1000
    assert recorded >= 0.1  # the chunks came 30 ms apart
    assert paced_time >= recorded - 0.005  # sleep_until never wakes early
    assert fast_time < recorded / 2


async def test_a_cut_stream_is_never_written(store: CacheStore) -> None:
    """500 random cut offsets on the in-memory store over real HTTP; a sample of 40 on the others."""
    body = fixture_bytes("anthropic", "tool_use_stream.sse")
    rng = random.Random(7)
    runs = 500 if isinstance(store, MemoryCache) else 40
    offsets = [rng.randrange(0, len(body)) for _ in range(runs)]
    cache = Cache(store)
    req = request("anthropic")
    key = cache.key(req)
    assert key is not None
    finished = 0
    replies = [Reply(body, cut_after=n) for n in offsets]
    async with ReplayServer(replies) as server, engine_for(server, cache, provider="anthropic") as engine:
        for offset in offsets:
            events = await collect(engine, req)
            check_invariants(events)
            written = await store.get(key)
            if isinstance(events[-1], Finish):
                # The decoder saw the whole stream before the cut (only the last bytes were missing).
                finished += 1
                assert written is not None
                await store.delete(key)
            else:
                assert written is None, f"a stream cut at byte {offset} was cached"
    assert cache.stats.hits == 0
    assert cache.stats.writes == finished
    assert finished < runs * 0.05  # nearly every offset really cuts the stream


async def test_error_streams_are_never_written(store: CacheStore) -> None:
    overloaded = fixture_bytes("anthropic", "text_stream.sse").split(b"event: content_block_stop")[0] + (
        b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    )
    replies = [
        Reply(b'{"type":"error","error":{"type":"api_error","message":"boom"}}', status=500),
        Reply(b'{"type":"error","error":{"type":"rate_limit_error","message":"slow"}}', status=429),
        Reply(overloaded),
    ]
    cache = Cache(store)
    req = request("anthropic")
    async with ReplayServer(replies) as server, engine_for(server, cache, provider="anthropic") as engine:
        outcomes = [await collect(engine, req) for _ in replies]
        assert len(server.requests) == 3  # nothing was served from the cache
    assert [e[-1].code for e in outcomes] == ["server", "rate_limited", "overloaded"]  # type: ignore[union-attr]
    assert any(isinstance(e, TextDelta) for e in outcomes[2])  # the in-band error came after output
    key = cache.key(req)
    assert key is not None
    assert await store.get(key) is None
    assert (cache.stats.writes, cache.stats.skipped) == (0, 3)


async def test_a_consumer_that_stops_early_never_writes(store: CacheStore) -> None:
    cache = Cache(store)
    async with ReplayServer([Reply(OPENAI_TEXT, chunk_size=64)]) as server, engine_for(server, cache) as engine:
        async with engine.stream(request()) as stream:
            async for event in stream:
                if isinstance(event, TextDelta):
                    break
        key = cache.key(request())
        assert key is not None
        assert await store.get(key) is None
        await collect(engine, request())  # the same request read to the end is written
    assert await store.get(key) is not None
    assert (cache.stats.writes, cache.stats.skipped) == (1, 1)


async def test_live_events_are_not_held_back_and_cancellation_never_writes() -> None:
    store = MemoryCache()
    cache = Cache(store)
    stall = OPENAI_TEXT.index(b'"content":"The"') + 100
    first_text = anyio.Event()
    seen: list[Event] = []
    async with ReplayServer([Reply(OPENAI_TEXT, stall_after=stall)]) as server, engine_for(server, cache) as engine:

        async def consume() -> None:
            async with engine.stream(request()) as stream:
                async for event in stream:
                    seen.append(event)
                    if isinstance(event, TextDelta):
                        first_text.set()

        async with anyio.create_task_group() as group:
            group.start_soon(consume)
            # The upstream is stalled: this text can only have arrived unbuffered.
            await first_text.wait()
            group.cancel_scope.cancel()
        server.release_stalls()
    assert not any(isinstance(e, (Finish, Error)) for e in seen)
    assert len(store) == 0
    assert cache.stats.skipped == 1


@pytest.mark.parametrize("outermost", ["cache", "timeout"])
async def test_a_timed_out_stream_is_never_written(outermost: str) -> None:
    store = MemoryCache()
    cache, timeout = Cache(store), Timeout(idle=0.2)
    operators = [cache, timeout] if outermost == "cache" else [timeout, cache]
    stall = OPENAI_TEXT.index(b'"content":"The"') + 100
    async with ReplayServer([Reply(OPENAI_TEXT, stall_after=stall)]) as server, engine_for(server, *operators) as e:
        events = await collect(e, request())
        server.release_stalls()
    assert isinstance(events[-1], Error)
    assert events[-1].code == "timeout"
    assert len(store) == 0
    assert cache.stats.writes == 0


async def test_operator_events_of_the_live_call_are_not_replayed() -> None:
    store = MemoryCache()
    cache = Cache(store)
    replies = [
        Reply(b'{"error":{"message":"slow down","type":"rate_limit_error"}}', status=429, headers={"retry-after": "0"}),
        Reply(OPENAI_TEXT),
    ]
    async with ReplayServer(replies) as server, engine_for(server, cache, Retry(base_delay=0.0)) as engine:
        live = await collect(engine, request())
        replayed = await collect(engine, request())
    assert isinstance(live[0], RetryEvent)  # the retry happened before the provider's start
    response = [e for e in live if not isinstance(e, RetryEvent)]
    key = cache.key(request())
    assert replayed == [response[0], CacheHit(key=key or ""), *response[1:]]


async def test_tenants_and_namespaces_never_share_entries() -> None:
    store = MemoryCache()
    async with ReplayServer([Reply(OPENAI_TEXT)]) as server:
        async with engine_for(server, Cache(store)) as engine:
            await collect(engine, request(metadata={"tenant": "acme"}))
            await collect(engine, request(metadata={"tenant": "globex"}))
            await collect(engine, request(metadata={"tenant": "acme", "trace": "another"}))
        async with engine_for(server, Cache(store, namespace="other-app")) as engine:
            await collect(engine, request(metadata={"tenant": "acme"}))
        assert len(server.requests) == 3  # acme, globex, and acme under another namespace


async def test_corrupt_or_oversized_recordings_are_misses_and_not_written() -> None:
    store = MemoryCache()
    cache = Cache(store)
    key = cache.key(request())
    assert key is not None
    await store.set(key, b"\x93not an entry")
    async with ReplayServer([Reply(OPENAI_TEXT)]) as server:
        async with engine_for(server, Cache(store, max_events=3)) as engine:
            await collect(engine, request())  # too long to record: the garbage stays
        assert await store.get(key) == b"\x93not an entry"
        async with engine_for(server, cache) as engine:
            await collect(engine, request())  # a miss, written over the garbage
            hit = await collect(engine, request())
        assert len(server.requests) == 2
    assert isinstance(hit[1], CacheHit)
