"""The Cache operator when its store is down: requests succeed uncached, and each store call is bounded.

Every failing store here is a real Redis client: pointed at a port nobody
listens on (refused at once), at a socket that accepts and never answers (the
bound must cut the call), or at our own ``redis-server``, killed and restarted.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator, Iterator

import anyio
import pytest
import redis.asyncio as aioredis

from lluminary import Engine
from lluminary.cache import engine_base_url
from lluminary.engine.operators._cache import Cache
from lluminary.events import CacheHit, ChatRequest, Error, Event, Finish, Message
from lluminary.providers import create_provider
from lluminary.stores.redis import RedisCache
from tests.stores._backends import RedisProcess, free_port
from tests.support import ReplayServer, Reply, fixture_bytes

OPENAI_TEXT = fixture_bytes("openai_chat", "text_stream_include_usage.sse")
REQUEST = ChatRequest(model="openai:gpt-4o-mini", messages=[Message.user("What is the capital of the UK?")])


def engine_for(server: ReplayServer, *operators: Cache) -> Engine:
    provider = create_provider("openai", api_key="sk-test", base_url=server.url + "/v1")
    return Engine(list(operators), providers={"openai": provider}, env={})


async def timed(engine: Engine) -> tuple[list[Event], float]:
    started = anyio.current_time()
    async with engine.stream(REQUEST) as stream:
        events = [event async for event in stream]
    return events, anyio.current_time() - started


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A port whose kernel accepts connections that nobody ever answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield sock.getsockname()[1]


async def test_a_refused_store_fails_open_without_a_write_attempt(caplog: pytest.LogCaptureFixture) -> None:
    store = RedisCache(f"redis://127.0.0.1:{free_port()}/0", timeout=1.0)
    cache = Cache(store, op_timeout=0.1)
    with caplog.at_level(logging.WARNING, logger="lluminary.cache"):
        async with ReplayServer([Reply(OPENAI_TEXT)]) as server, engine_for(server, cache) as engine:
            outcomes = [await timed(engine) for _ in range(3)]
            assert len(server.requests) == 3
    await store.aclose()
    assert all(isinstance(events[-1], Finish) for events, _ in outcomes)
    assert all(elapsed < 1.0 for _, elapsed in outcomes)  # refused at once, far from the store's own 1 s
    # One failed lookup per request; its write was not even tried.
    assert (cache.stats.errors, cache.stats.writes, cache.stats.hits) == (3, 0, 0)
    warnings = [r for r in caplog.records if r.name == "lluminary.cache"]
    assert len(warnings) == 1  # once per outage, not once per request
    assert "sk-test" not in caplog.text


async def test_a_hanging_store_costs_each_request_at_most_op_timeout(black_hole: int) -> None:
    # The store's own bound (5 s) is far away: only the operator's 100 ms can cut the call.
    store = RedisCache(f"redis://127.0.0.1:{black_hole}/0", timeout=5.0)
    cache = Cache(store, op_timeout=0.1)
    async with ReplayServer([Reply(OPENAI_TEXT)]) as server:
        async with engine_for(server) as plain:
            baselines = [(await timed(plain))[1] for _ in range(3)]
        async with engine_for(server, cache) as engine:
            outcomes = [await timed(engine) for _ in range(3)]
    await store.aclose()
    assert all(isinstance(events[-1], Finish) for events, _ in outcomes)
    elapsed = [e for _, e in outcomes]
    assert all(e >= 0.1 for e in elapsed), elapsed  # the lookup really hung until the bound
    # One bounded lookup and no write: 100 ms on top of a live request, plus scheduling slack.
    assert all(e - min(baselines) < 0.1 + 0.4 for e in elapsed), (elapsed, baselines)
    assert (cache.stats.errors, cache.stats.writes) == (3, 0)


async def test_a_hanging_write_delays_finish_by_at_most_op_timeout() -> None:
    """Our own redis-server with writes paused (CLIENT PAUSE WRITE): GET answers, SET hangs."""
    redis_server = RedisProcess()
    redis_server.start()
    admin = aioredis.Redis.from_url(redis_server.url)
    store = RedisCache(redis_server.url, timeout=5.0)
    cache = Cache(store, op_timeout=0.1)
    finish_waits: list[float] = []
    try:
        await admin.execute_command("CLIENT", "PAUSE", "60000", "WRITE")
        async with (
            ReplayServer([Reply(OPENAI_TEXT)]) as server,
            engine_for(server, cache) as engine,
            engine.stream(REQUEST) as stream,
        ):
            last = anyio.current_time()
            async for event in stream:
                now = anyio.current_time()
                if isinstance(event, Finish):
                    finish_waits.append(now - last)
                last = now
        await admin.execute_command("CLIENT", "UNPAUSE")
    finally:
        await admin.aclose()
        await store.aclose()
        redis_server.kill()
    assert len(finish_waits) == 1
    assert 0.1 - 0.005 <= finish_waits[0] < 0.1 + 0.4  # the write hung until the bound, then gave up
    assert (cache.stats.misses, cache.stats.writes, cache.stats.errors, cache.stats.skipped) == (1, 0, 1, 1)


async def test_caching_resumes_when_the_store_comes_back(caplog: pytest.LogCaptureFixture) -> None:
    redis_server = RedisProcess()
    redis_server.start()
    store = RedisCache(redis_server.url, timeout=0.5)
    cache = Cache(store, op_timeout=0.5)
    try:
        with caplog.at_level(logging.INFO, logger="lluminary.cache"):
            async with ReplayServer([Reply(OPENAI_TEXT)]) as server, engine_for(server, cache) as engine:
                await timed(engine)  # written
                hit, _ = await timed(engine)
                redis_server.kill()
                down, _ = await timed(engine)  # served live, uncached
                redis_server.start()  # same port, empty: no persistence
                await timed(engine)  # a miss, written again
                again, _ = await timed(engine)
                assert len(server.requests) == 3
    finally:
        await store.aclose()
        if redis_server.proc is not None:
            redis_server.kill()
    assert isinstance(hit[1], CacheHit)
    assert isinstance(again[1], CacheHit)
    assert isinstance(down[-1], Finish)
    assert not any(isinstance(e, CacheHit) for e in down)
    assert (cache.stats.hits, cache.stats.writes, cache.stats.errors) == (2, 2, 1)
    messages = [r.getMessage() for r in caplog.records if r.name == "lluminary.cache"]
    assert any("unavailable" in m for m in messages)
    assert any("answers again" in m for m in messages)


async def test_an_unresolvable_provider_bypasses_the_cache() -> None:
    store = RedisCache(f"redis://127.0.0.1:{free_port()}/0", timeout=1.0)
    engine = Engine(env={})  # no OpenAI key anywhere: the provider cannot be built
    cache = Cache(store, base_url=engine_base_url(engine))

    async def inner(request: ChatRequest) -> AsyncIterator[Event]:
        yield Error(code="auth", message="no key")

    events = [event async for event in cache(inner)(REQUEST)]
    await engine.aclose()
    await store.aclose()
    assert events == [Error(code="auth", message="no key")]
    assert cache.key(REQUEST) is None
    assert (cache.stats.misses, cache.stats.errors) == (0, 0)  # the store was never asked


async def test_sigkill_during_a_thousand_cached_requests() -> None:
    """Redis dies (SIGKILL) a third of the way through 1,000 cached requests and comes back later.

    Not one request fails; while Redis is down each request pays at most its two bounded
    cache operations (a read and a write, 100 ms each); after the restart, caching resumes.
    """
    redis_server = RedisProcess()
    redis_server.start()
    store = RedisCache(redis_server.url, timeout=0.1)
    cache = Cache(store, op_timeout=0.1)
    durations: dict[str, list[float]] = {"up": [], "down": [], "back": []}
    outcomes: list[Event] = []
    hits_after_restart = 0

    async def one(engine: Engine, i: int, phase: str) -> None:
        nonlocal hits_after_restart
        request = ChatRequest(model="openai:gpt-4o-mini", messages=[Message.user(f"question {i % 50}")])
        started = anyio.current_time()
        with anyio.fail_after(10):
            async with engine.stream(request) as stream:
                events = [event async for event in stream]
        durations[phase].append(anyio.current_time() - started)
        outcomes.append(events[-1])
        if phase == "back" and any(isinstance(e, CacheHit) for e in events):
            hits_after_restart += 1

    try:
        async with ReplayServer([Reply(OPENAI_TEXT)]) as server, engine_for(server, cache) as engine:
            for batch in range(0, 1000, 20):
                if batch == 300:
                    redis_server.kill()
                elif batch == 700:
                    redis_server.start()  # same port, empty: no persistence
                phase = "up" if batch < 300 else "down" if batch < 700 else "back"
                async with anyio.create_task_group() as tg:
                    for i in range(batch, batch + 20):
                        tg.start_soon(one, engine, i, phase)
    finally:
        await store.aclose()
        if redis_server.proc is not None:
            redis_server.kill()
    assert len(outcomes) == 1000
    assert all(isinstance(event, Finish) for event in outcomes)  # 0 requests failed
    typical = sorted(durations["up"])[len(durations["up"]) // 2]
    worst_down = max(durations["down"])
    # Two cache operations per request, each bounded by 100 ms, on top of a live request.
    assert worst_down <= typical + 2 * 0.1 + 0.15, (typical, worst_down)
    assert hits_after_restart > 0  # caching resumed
    assert cache.stats.errors > 0
