"""Redis as a running system: killed mid-run, silent, password-protected, from the environment."""

from __future__ import annotations

import socket
import time

import anyio
import anyio.to_thread
import pytest

from lluminary.stores import StoreError
from lluminary.stores._factory import open_cache
from lluminary.stores.redis import DEFAULT_PREFIX, RedisCache
from tests.stores._backends import RedisProcess, free_port

BOUND = 0.1  # RedisCache's default per-operation bound
SLACK = 0.1  # "none blocks more than 100 ms past the bound"


async def test_sigkill_mid_run_fails_fast_and_recovers(redis_process: RedisProcess) -> None:
    """1,000 operations from 4 concurrent workers; Redis is SIGKILLed after 300 and restarted after 700."""
    cache = RedisCache(redis_process.url, prefix="kill:")
    assert cache.timeout == BOUND
    outcomes: list[tuple[float, float, bool]] = []  # (start, end, ok), perf_counter seconds
    kill_began = killed_at = restart_began = restarted_at = float("inf")
    reached_300, reached_700 = anyio.Event(), anyio.Event()
    counter = iter(range(1000))

    async def worker() -> None:
        for i in counter:
            key = f"k{i % 50}"
            started = time.perf_counter()
            try:
                if i % 3 == 0:
                    await cache.set(key, f"v{i}".encode(), ttl=60)
                elif i % 3 == 1:
                    await cache.get(key)
                else:
                    await cache.delete(key)
                ok = True
            except StoreError:
                ok = False  # the only exception allowed
            outcomes.append((started, time.perf_counter(), ok))
            if len(outcomes) >= 300:
                reached_300.set()
            if len(outcomes) >= 700:
                reached_700.set()

    async def chaos() -> None:
        nonlocal kill_began, killed_at, restart_began, restarted_at
        await reached_300.wait()
        kill_began = time.perf_counter()
        await anyio.to_thread.run_sync(redis_process.kill)  # while the workers' operations are in flight
        killed_at = time.perf_counter()
        await reached_700.wait()
        restart_began = time.perf_counter()
        await anyio.to_thread.run_sync(redis_process.start)  # same port; returns once it answers PING
        restarted_at = time.perf_counter()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(chaos)
            for _ in range(4):
                tg.start_soon(worker)
    finally:
        await cache.aclose()

    assert len(outcomes) == 1000
    down = [end - start for start, end, _ in outcomes if start >= killed_at and end <= restart_began]
    back = [ok for start, _, ok in outcomes if start >= restarted_at]
    worst_down = max(down)
    worst_any = max(end - start for start, end, _ in outcomes)
    print(
        f"\nRedis down: {len(down)} operations, max latency {worst_down * 1000:.1f} ms;"
        f" max over all 1000: {worst_any * 1000:.1f} ms (bound {BOUND * 1000:.0f} ms)"
    )
    assert len(down) >= 100
    assert worst_any <= BOUND + SLACK  # in flight at the kill, while down, and after
    assert all(ok for _, end, ok in outcomes if end <= kill_began), "healthy Redis: every operation succeeds"
    assert not any(ok for start, end, ok in outcomes if start >= killed_at and end <= restart_began)
    # Back on the same port: the same store works again, without being recreated.
    assert back
    assert all(back)


async def test_a_silent_server_times_out_within_the_bound() -> None:
    # A socket that accepts connections but never answers: a hung or blackholed Redis.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        port = listener.getsockname()[1]
        cache = RedisCache(f"redis://127.0.0.1:{port}/0")  # the default bound
        try:
            latencies = []
            for op in (cache.get("k"), cache.set("k", b"v"), cache.delete("k")):
                started = time.perf_counter()
                with pytest.raises(StoreError, match=r"longer than|Timeout"):
                    await op
                latencies.append(time.perf_counter() - started)
            print(f"\nsilent Redis: max latency {max(latencies) * 1000:.1f} ms (bound {BOUND * 1000:.0f} ms)")
            assert max(latencies) <= BOUND + SLACK
            assert not await cache.ping()
        finally:
            await cache.aclose()


async def test_ttl_is_set_in_milliseconds(redis_prefix: str) -> None:
    cache = RedisCache(prefix=redis_prefix, timeout=2.0, url="redis://127.0.0.1:6379/0")
    try:
        await cache.set("k", b"v", ttl=12.3456)
        pttl = await cache.client.pttl(redis_prefix + "k")
        assert 12_000 < pttl <= 12_346
        await cache.set("tiny", b"v", ttl=0.0001)  # rounds up to 1 ms rather than to "no expiry"
        assert await cache.client.pttl(redis_prefix + "tiny") in (-2, 0, 1)
        await cache.set("forever", b"v")
        assert await cache.client.pttl(redis_prefix + "forever") == -1
    finally:
        await cache.aclose()


async def test_passwords_never_appear_in_errors_or_reprs() -> None:
    url = f"redis://:s3cret-pw@127.0.0.1:{free_port()}/0"
    cache = RedisCache(url)
    try:
        assert "s3cret-pw" not in repr(cache)
        assert ":***@" in repr(cache)
        with pytest.raises(StoreError) as info:
            await cache.get("k")
        assert "s3cret-pw" not in f"{info.value} {info.value!r} {info.value.__cause__!r}"
    finally:
        await cache.aclose()


async def test_wrong_password_is_a_store_error_without_the_password() -> None:
    server = RedisProcess(args=["--requirepass", "right-pw"])
    await anyio.to_thread.run_sync(server.start)
    try:
        wrong = RedisCache(f"redis://:wrong-pw@127.0.0.1:{server.port}/0", timeout=2.0)
        with pytest.raises(StoreError) as info:
            await wrong.set("k", b"v")
        assert "wrong-pw" not in f"{info.value} {info.value!r}"
        await wrong.aclose()
        right = RedisCache(f"redis://:right-pw@127.0.0.1:{server.port}/0", timeout=2.0)
        await right.set("k", b"v")
        assert await right.get("k") == b"v"
        await right.aclose()
    finally:
        await anyio.to_thread.run_sync(server.kill)


async def test_bare_redis_url_uses_the_environment(monkeypatch: pytest.MonkeyPatch, redis_prefix: str) -> None:
    monkeypatch.setenv("LLUMINARY_REDIS_URL", "redis://127.0.0.1:6379/0")
    cache = await open_cache("redis://", prefix=redis_prefix)
    try:
        assert isinstance(cache, RedisCache)
        assert cache.url == "redis://127.0.0.1:6379/0"
        await cache.set("k", b"v")
        assert await cache.get("k") == b"v"
    finally:
        await cache.aclose()
    monkeypatch.delenv("LLUMINARY_REDIS_URL")
    default = await open_cache("redis://")
    assert isinstance(default, RedisCache)
    assert default.prefix == DEFAULT_PREFIX
    await default.aclose()
