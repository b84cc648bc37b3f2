"""RateLimit: bucket arithmetic, waiting and refusing, reconciliation, and the shared Redis limit.

Bucket arithmetic runs on :class:`MemoryRateLimitStore` with an injected clock,
so no test waits to see a refill. The operator's own waits are real but short
and bounded by ``fail_after``. The Redis store runs against the real Redis on
127.0.0.1:6379 (a unique key prefix per test, its keys deleted afterwards), and,
for kill/restart and script-cache tests, against a redis-server of our own.
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Sequence

import anyio
import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from lluminary import Engine
from lluminary.engine import EventStream, compose
from lluminary.engine.operators._ratelimit import Bucket, MemoryRateLimitStore, RateLimit, RateLimitStore
from lluminary.engine.operators._ratelimit_redis import SCRIPT_SHA, RedisRateLimitStore
from lluminary.events import ChatRequest, Error, Event, Finish, Message, RateLimitWait, Start, TextDelta, Usage
from lluminary.providers import create_provider
from lluminary.providers._tokens import estimate_request_tokens
from tests.support import ReplayServer, Reply, check_invariants, fixture_bytes

SHARED_REDIS = "redis://127.0.0.1:6379/0"
OPENAI_TEXT = fixture_bytes("openai_chat", "text_stream_include_usage.sse")  # usage: 78 in, 9 out
OK = [Start("id", "openai", "m"), TextDelta("hi"), Usage(10, 5), Finish("stop")]


class Clock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def request(model: str = "openai:gpt-4o-mini", **fields: object) -> ChatRequest:
    return ChatRequest(model=model, messages=[Message.user("What is the capital of the UK?")], **fields)  # type: ignore[arg-type]


def scripted(events: Sequence[Event] = OK) -> tuple[list[ChatRequest], object]:
    calls: list[ChatRequest] = []

    async def handler(req: ChatRequest) -> AsyncIterator[Event]:
        calls.append(req)
        for event in events:
            yield event

    return calls, handler


async def run(handler: object, limiter: RateLimit, req: ChatRequest | None = None) -> list[Event]:
    composed = compose(handler, [limiter])  # type: ignore[arg-type]
    with anyio.fail_after(10):
        async with EventStream(composed(req or request())) as stream:
            return [event async for event in stream]


async def level(store: RateLimitStore, key: str, bucket: Bucket) -> float:
    """A bucket's level, read without changing it: more than it can hold, with no wait, is always refused."""
    reservation = await store.reserve(key, [(bucket, bucket.capacity + 1)], 0.0)
    assert not reservation.granted
    return bucket.capacity + 1 - reservation.wait * bucket.rate


# -- bucket arithmetic -----------------------------------------------------------------------

RPS1 = Bucket("requests", rate=1.0, capacity=3.0)


async def test_a_bucket_starts_full_refuses_when_empty_and_refills_at_its_rate() -> None:
    clock = Clock()
    store = MemoryRateLimitStore(clock=clock)
    granted = [await store.reserve("k", [(RPS1, 1.0)], 0.0) for _ in range(4)]
    assert [r.granted for r in granted] == [True, True, True, False]
    assert [r.wait for r in granted] == [0.0, 0.0, 0.0, 1.0]
    clock.now += 0.25
    assert await store.reserve("k", [(RPS1, 1.0)], 0.0) == (False, 0.75)  # refused takes nothing
    clock.now += 0.75
    assert await store.reserve("k", [(RPS1, 1.0)], 0.0) == (True, 0.0)
    clock.now += 100
    assert await level(store, "k", RPS1) == 3.0  # never above its capacity


async def test_reservations_that_may_wait_are_spaced_in_arrival_order() -> None:
    store = MemoryRateLimitStore(clock=Clock())
    waits = [(await store.reserve("k", [(RPS1, 1.0)], None)).wait for _ in range(6)]
    assert waits == [0.0, 0.0, 0.0, 1.0, 2.0, 3.0]
    assert await store.reserve("k", [(RPS1, 1.0)], 3.5) == (False, 4.0)


async def test_two_buckets_are_taken_together_or_not_at_all() -> None:
    clock = Clock()
    store = MemoryRateLimitStore(clock=clock)
    tokens = Bucket("tokens", rate=10.0, capacity=100.0)
    assert await store.reserve("k", [(RPS1, 1.0), (tokens, 80.0)], 0.0) == (True, 0.0)
    # The request bucket has room, the tokens bucket needs 4 s: refused, and neither is touched.
    assert await store.reserve("k", [(RPS1, 1.0), (tokens, 60.0)], 1.0) == (False, 4.0)
    assert await level(store, "k", RPS1) == 2.0
    assert await level(store, "k", tokens) == 20.0
    assert await store.reserve("other", [(RPS1, 1.0)], 0.0) == (True, 0.0)  # keys are independent


async def test_adjust_gives_back_up_to_capacity_and_may_take_below_zero() -> None:
    store = MemoryRateLimitStore(clock=Clock())
    tokens = Bucket("tokens", rate=10.0, capacity=100.0)
    await store.reserve("k", [(tokens, 70.0)], None)
    await store.adjust("k", tokens, 50.0)
    assert await level(store, "k", tokens) == 80.0
    await store.adjust("k", tokens, 500.0)
    assert await level(store, "k", tokens) == 100.0
    await store.adjust("k", tokens, -130.0)
    assert await store.reserve("k", [(tokens, 10.0)], 0.0) == (False, 4.0)  # at -30 now


async def test_idle_full_keys_are_dropped_beyond_max_keys() -> None:
    clock = Clock()
    store = MemoryRateLimitStore(clock=clock, max_keys=2)
    for key in ("a", "b"):
        await store.reserve(key, [(RPS1, 3.0)], None)
    clock.now += 10  # both full again
    await store.reserve("c", [(RPS1, 3.0)], None)
    assert set(store._state) == {"c"}
    await store.reserve("d", [(RPS1, 1.0)], None)
    await store.reserve("e", [(RPS1, 1.0)], None)  # c and d are still refilling: kept
    assert set(store._state) == {"c", "d", "e"}


# -- the operator -------------------------------------------------------------------------------


async def test_a_request_that_fits_waits_and_says_so() -> None:
    # The store's clock is frozen, so the wait is exactly 0.1 s; the sleep itself is real.
    limiter = RateLimit(600, request_burst=1, store=MemoryRateLimitStore(clock=Clock()))
    calls, handler = scripted()
    assert await run(handler, limiter) == OK
    started = anyio.current_time()
    events = await run(handler, limiter)
    elapsed = anyio.current_time() - started
    assert isinstance(events[0], RateLimitWait)
    assert events[0].key == "openai:gpt-4o-mini"
    assert events[0].delay == pytest.approx(0.1)
    assert events[1:] == OK
    assert elapsed >= 0.095  # it really waited (the loop's clock may round down by a tick)
    assert len(calls) == 2


async def test_a_request_that_cannot_fit_its_max_wait_fails_at_once() -> None:
    limiter = RateLimit(60, request_burst=1, max_wait=0.5, store=MemoryRateLimitStore(clock=Clock()))
    calls, handler = scripted()
    await run(handler, limiter)
    started = anyio.current_time()
    events = await run(handler, limiter)
    assert anyio.current_time() - started < 0.5
    assert len(events) == 1
    error = events[0]
    assert isinstance(error, Error)
    assert (error.code, error.retryable) == ("rate_limited", True)
    assert error.retry_after == pytest.approx(1.0)
    assert len(calls) == 1  # the refused request never reached the provider


async def test_the_deadline_in_metadata_bounds_the_wait() -> None:
    # No max_wait: only the deadline bounds the wait.
    limiter = RateLimit(60, request_burst=1, store=MemoryRateLimitStore(clock=Clock()))
    calls, handler = scripted()
    await run(handler, limiter)
    soon = request(metadata={"deadline": str(time.time() + 0.2)})
    events = await run(handler, limiter, soon)
    assert [type(e) for e in events] == [Error]
    assert events[0].retry_after == pytest.approx(1.0)  # type: ignore[union-attr]
    past = request(metadata={"deadline": str(time.time() - 5)})
    assert isinstance((await run(handler, limiter, past))[0], Error)
    assert len(calls) == 1
    # A deadline that is not a number is ignored: the wait is then unbounded, and the
    # stream is closed as soon as it says it will wait.
    composed = compose(handler, [limiter])  # type: ignore[arg-type]
    async with EventStream(composed(request(metadata={"deadline": "tomorrow"}))) as stream:
        first = await stream.__anext__()
    assert isinstance(first, RateLimitWait)


async def test_closing_the_stream_while_it_waits_gives_its_tokens_back() -> None:
    clock = Clock()  # frozen: the bucket does not refill during the test
    store = MemoryRateLimitStore(clock=clock)
    limiter = RateLimit(60, 6000, request_burst=1, store=store)
    calls, handler = scripted()
    await run(handler, limiter)
    composed = compose(handler, [limiter])  # type: ignore[arg-type]
    with anyio.fail_after(5):
        async with EventStream(composed(request())) as stream:
            first = await stream.__anext__()
    assert isinstance(first, RateLimitWait)
    assert first.delay == pytest.approx(1.0)
    assert limiter.requests is not None
    assert await level(store, "openai:gpt-4o-mini", limiter.requests) == 0.0  # not -1: refunded
    assert len(calls) == 1


async def test_tokens_are_reconciled_with_the_usage_of_a_replayed_stream() -> None:
    clock = Clock()
    store = MemoryRateLimitStore(clock=clock)
    limiter = RateLimit(tokens_per_minute=60_000, store=store)
    assert limiter.tokens is not None
    async with ReplayServer([Reply(OPENAI_TEXT, chunk_size=64)]) as server:
        provider = create_provider("openai", api_key="sk-test", base_url=server.url + "/v1")
        async with Engine([limiter], providers={"openai": provider}) as engine:
            for max_tokens, spent in [(500, 87), (2, 87)]:  # an estimate above, then below the real use
                req = request(max_tokens=max_tokens)
                assert limiter.cost(req) == estimate_request_tokens(req) + max_tokens
                before = await level(store, req.model, limiter.tokens)
                with anyio.fail_after(10):
                    events = [e async for e in engine.stream(req)]
                check_invariants(events)
                assert isinstance(events[-1], Finish)
                after = await level(store, req.model, limiter.tokens)
                assert before - after == pytest.approx(spent)


async def test_a_stream_without_usage_keeps_its_estimate() -> None:
    store = MemoryRateLimitStore(clock=Clock())
    limiter = RateLimit(tokens_per_minute=60_000, store=store)
    assert limiter.tokens is not None
    _, handler = scripted([Error("overloaded", "busy", retryable=True, status=503)])
    req = request(max_tokens=100)
    await run(handler, limiter, req)
    assert await level(store, req.model, limiter.tokens) == 60_000 - limiter.cost(req)


async def test_a_custom_key_separates_tenants() -> None:
    limiter = RateLimit(60, request_burst=1, max_wait=0, key=lambda r: r.metadata["tenant"] + "/" + r.model)
    _, handler = scripted()
    for tenant in ("acme", "globex"):
        assert (await run(handler, limiter, request(metadata={"tenant": tenant}))) == OK
    refused = await run(handler, limiter, request(metadata={"tenant": "acme"}))
    assert isinstance(refused[0], Error)
    assert "acme/openai:gpt-4o-mini" in refused[0].message


def test_configuration_is_checked() -> None:
    with pytest.raises(ValueError, match="requests_per_minute, tokens_per_minute"):
        RateLimit()
    with pytest.raises(ValueError, match="positive"):
        RateLimit(0)
    with pytest.raises(ValueError, match="max_wait"):
        RateLimit(60, max_wait=-1)
    with pytest.raises(ValueError, match="op_timeout"):
        RedisRateLimitStore(SHARED_REDIS, op_timeout=0)


# -- Redis --------------------------------------------------------------------------------------


@pytest.fixture
async def shared() -> AsyncIterator[tuple[Redis, str]]:
    """A client of the shared Redis and a key prefix of this test's own; its keys go afterwards."""
    client = Redis.from_url(SHARED_REDIS)
    prefix = f"lluminary-test:{uuid.uuid4().hex}:"
    try:
        yield client, prefix
    finally:
        keys = [key async for key in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def test_redis_buckets_behave_like_memory_ones(shared: tuple[Redis, str]) -> None:
    client, prefix = shared
    store = RedisRateLimitStore(client, prefix=prefix)
    bucket = Bucket("requests", rate=1.0, capacity=3.0)
    granted = [await store.reserve("k", [(bucket, 1.0)], 0.0) for _ in range(4)]
    assert [r.granted for r in granted] == [True, True, True, False]
    assert granted[3].wait == pytest.approx(1.0, abs=0.05)
    # Waiting reservations queue up behind each other, one second apart.
    waits = [(await store.reserve("k", [(bucket, 1.0)], None)).wait for _ in range(2)]
    assert waits == [pytest.approx(1.0, abs=0.05), pytest.approx(2.0, abs=0.05)]
    await store.adjust("k", bucket, 2.0)  # give both back
    assert await level(store, "k", bucket) == pytest.approx(0.0, abs=0.05)
    # The key expires once it would be full again, so idle keys cost nothing.
    ttl = await client.pttl(prefix + "k")
    assert 3000 <= ttl <= 4100
    await store.aclose()  # the caller's client stays open
    assert await client.ping()


async def test_redis_token_reconciliation_through_the_operator(shared: tuple[Redis, str]) -> None:
    client, prefix = shared
    store = RedisRateLimitStore(client, prefix=prefix)
    limiter = RateLimit(tokens_per_minute=60, store=store)  # refills 1 token/s: little drift in a test
    assert limiter.tokens is not None
    _, handler = scripted([Start("i", "openai", "m"), TextDelta("x"), Usage(30, 10), Finish("stop")])
    req = request(max_tokens=5)
    assert limiter.cost(req) < 40  # the estimate is below the real use: the difference is taken on top
    await run(handler, limiter, req)
    assert await level(store, req.model, limiter.tokens) == pytest.approx(60 - 40, abs=0.5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class OwnRedis:
    """A redis-server of this test's own, to kill, restart and flush at will."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: anyio.abc.Process | None = None

    async def start(self) -> None:
        self.process = await anyio.open_process(
            ["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no", "--daemonize", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = Redis.from_url(self.url)
        try:
            with anyio.fail_after(10):
                while True:  # nothing signals "listening": poll whether it answers, with a deadline
                    try:
                        if await client.ping():
                            return
                    except (RedisError, OSError):
                        await anyio.sleep(0.02)
        finally:
            await client.aclose()

    async def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            await self.process.wait()
            await self.process.aclose()
            self.process = None


@pytest.fixture
async def own_redis() -> AsyncIterator[OwnRedis]:
    server = OwnRedis()
    try:
        await server.start()
        yield server
    finally:
        await server.stop()


async def test_the_script_is_sent_again_when_redis_has_forgotten_it(own_redis: OwnRedis) -> None:
    store = RedisRateLimitStore(own_redis.url)
    client = Redis.from_url(own_redis.url)
    try:
        assert await client.script_exists(SCRIPT_SHA) == [False]
        assert await store.reserve("k", [(RPS1, 1.0)], 0.0) == (True, 0.0)  # EVALSHA fails, EVAL works
        assert await client.script_exists(SCRIPT_SHA) == [True]
        await client.script_flush()
        assert await store.reserve("k", [(RPS1, 1.0)], 0.0) == (True, 0.0)
        assert await client.script_exists(SCRIPT_SHA) == [True]
    finally:
        await client.aclose()
        await store.aclose()


async def test_redis_down_fails_open_with_one_log_line_then_limits_again(
    own_redis: OwnRedis, caplog: pytest.LogCaptureFixture
) -> None:
    store = RedisRateLimitStore(own_redis.url, op_timeout=0.5)
    limiter = RateLimit(60, request_burst=1, max_wait=0, store=store)
    calls, handler = scripted()
    try:
        assert await run(handler, limiter) == OK
        assert isinstance((await run(handler, limiter))[0], Error)  # limited
        await own_redis.stop()
        with caplog.at_level(logging.WARNING, logger="lluminary.ratelimit"):
            for _ in range(3):
                assert await run(handler, limiter) == OK  # fails open
            down = [r for r in caplog.records if "failed" in r.getMessage()]
            assert len(down) == 1
            await own_redis.start()  # a fresh, empty server on the same port
            assert await run(handler, limiter) == OK
            assert isinstance((await run(handler, limiter))[0], Error)  # limited again
            assert any("answers again" in r.getMessage() for r in caplog.records)
        assert len(calls) == 5
    finally:
        await store.aclose()


async def test_an_unresponsive_redis_costs_at_most_the_op_timeout() -> None:
    """A server that accepts connections and never answers (a hung Redis, a black-holed route)."""
    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        accepted: list[anyio.abc.SocketStream] = []

        async def hold(conn: anyio.abc.SocketStream) -> None:
            accepted.append(conn)  # keep it open and say nothing

        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, hold)
            store = RedisRateLimitStore(f"redis://127.0.0.1:{port}/0", op_timeout=0.2)
            limiter = RateLimit(60, store=store)
            _, handler = scripted()
            started = anyio.current_time()
            assert await run(handler, limiter) == OK
            assert anyio.current_time() - started < 1.0
            assert accepted  # it did get through to the silent server
            await store.aclose()
            tg.cancel_scope.cancel()
        for conn in accepted:
            await conn.aclose()


# The worker for the shared-limit test, run in 4 separate Python processes.
HAMMER = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from redis.asyncio import Redis
    from lluminary.engine.operators._ratelimit import Bucket
    from lluminary.engine.operators._ratelimit_redis import RedisRateLimitStore

    async def main(url, prefix, rate, burst, seconds, tasks):
        # No socket timeout: BLPOP below may wait long on a busy machine; op_timeout bounds the store.
        client = Redis.from_url(url, socket_timeout=None)
        store = RedisRateLimitStore(client, prefix=prefix, op_timeout=2.0)
        bucket = Bucket("requests", rate, burst)
        grants = attempts = 0
        # Warm up on another key (imports, connection, script cache), so the measured window
        # starts when the shared bucket does.
        await store.reserve("warm-up", [(bucket, 1.0)], 0.0)
        await client.rpush(prefix + "ready", 1)
        await client.blpop([prefix + "go"], timeout=30)
        first = await client.time()
        end = time.monotonic() + seconds

        async def worker():
            nonlocal grants, attempts
            while time.monotonic() < end:
                attempts += 1
                if (await store.reserve("shared", [(bucket, 1.0)], 0.0)).granted:
                    grants += 1
                await asyncio.sleep(0.004)  # pace each client; sixteen of them still ask ~10x the rate

        await asyncio.gather(*(worker() for _ in range(tasks)))
        last = await client.time()
        print(json.dumps({"grants": grants, "attempts": attempts, "first": first[0] + first[1] / 1e6,
                          "last": last[0] + last[1] / 1e6}))
        await client.aclose()

    url, prefix = sys.argv[1], sys.argv[2]
    asyncio.run(main(url, prefix, float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])))
    """
)


async def test_four_processes_share_one_redis_limit_within_five_percent(shared: tuple[Redis, str]) -> None:
    _, prefix = shared
    # Tokens are lost only if no worker asks for 0.5 s (the bucket fills up): ample margin.
    rate, burst, seconds = 200.0, 100.0, 2.0
    args = [SHARED_REDIS, prefix, str(rate), str(burst), str(seconds), "4"]
    workers = [
        await anyio.open_process([sys.executable, "-c", HAMMER, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    client = Redis.from_url(SHARED_REDIS, socket_timeout=None)  # BLPOP may wait while workers start
    try:
        with anyio.fail_after(60):
            ready = 0
            while ready < len(workers):  # every worker connected and warmed up: start them together
                if await client.blpop([prefix + "ready"], timeout=1) is not None:
                    ready += 1
                else:
                    assert all(p.returncode is None for p in workers), "a worker died before it was ready"
            await client.rpush(prefix + "go", *["go"] * len(workers))
            outputs = []
            for process in workers:
                assert process.stdout is not None
                assert process.stderr is not None
                out = b"".join([chunk async for chunk in process.stdout])
                err = b"".join([chunk async for chunk in process.stderr])
                assert await process.wait() == 0, err.decode()
                outputs.append(json.loads(out))
    finally:
        await client.aclose()
        for process in workers:
            if process.returncode is None:
                process.kill()
            await process.aclose()
    grants = sum(o["grants"] for o in outputs)
    attempts = sum(o["attempts"] for o in outputs)
    elapsed = max(o["last"] for o in outputs) - min(o["first"] for o in outputs)
    expected = burst + rate * elapsed
    deviation = (grants - expected) / expected
    print(f"shared limit: {grants} grants, {attempts} attempts, expected {expected:.1f}, deviation {deviation:+.2%}")
    assert attempts > 3 * grants  # the limit was under pressure the whole time
    assert grants <= expected + 1  # never more than the limit allows (elapsed can only be overestimated)
    assert abs(deviation) <= 0.05
