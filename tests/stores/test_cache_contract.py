"""One CacheStore contract, run against every backend: memory, disk, Redis and Postgres.

Each backend is real (SQLite file, the machine's Redis, the session's embedded
Postgres). Expiry is checked against the store's own clock with short TTLs and
bounded polling, never a sleep standing in for "long enough".
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from lluminary.stores import CacheStore, StoreError
from lluminary.stores.disk import DiskCache
from lluminary.stores.memory import MemoryCache
from lluminary.stores.postgres import PostgresCache
from lluminary.stores.redis import RedisCache
from tests.stores.conftest import REDIS_URL

BACKENDS = ["memory", "disk", "redis", "postgres"]

# A factory makes a store on the test's backend under a given key prefix; two
# prefixes on one backend must not see each other's keys.
Factory = Callable[[str], Awaitable[CacheStore]]


@pytest.fixture(params=BACKENDS)
async def make_cache(
    request: pytest.FixtureRequest, tmp_path: Path, unique: str, redis_prefix: str, pg_pool: Any
) -> AsyncIterator[Factory]:
    made: list[CacheStore] = []
    backend = request.param

    async def make(prefix: str) -> CacheStore:
        store: CacheStore
        if backend == "memory":
            # Memory has no server to share: later stores are views of the first one's entries.
            first = made[0] if made else None
            store = first.with_prefix(prefix) if isinstance(first, MemoryCache) else MemoryCache(prefix=prefix)
        elif backend == "disk":
            store = DiskCache(tmp_path / "cache.sqlite3", prefix=prefix)
        elif backend == "redis":
            # A generous bound here: this suite checks behaviour, test_redis.py checks the bound.
            store = RedisCache(REDIS_URL, prefix=redis_prefix + prefix, timeout=2.0)
        else:
            store = PostgresCache(pg_pool, prefix=f"{unique}:{prefix}")
        made.append(store)
        return store

    yield make
    for store in reversed(made):
        await store.aclose()


@pytest.fixture
async def cache(make_cache: Factory) -> CacheStore:
    return await make_cache("a:")


async def test_is_a_cache_store(cache: CacheStore) -> None:
    assert isinstance(cache, CacheStore)


async def test_get_set_delete(cache: CacheStore) -> None:
    assert await cache.get("k") is None
    await cache.set("k", b"v1")
    assert await cache.get("k") == b"v1"
    await cache.delete("k")
    assert await cache.get("k") is None
    await cache.delete("k")  # deleting a missing key is not an error
    assert await cache.get("k") is None


async def test_overwrite_replaces_value_and_ttl(cache: CacheStore) -> None:
    await cache.set("k", b"first", ttl=0.2)
    await cache.set("probe", b"p", ttl=0.2)  # set after k, so it expires after k's first TTL
    await cache.set("k", b"second")  # no TTL now: it must not expire with the first one's
    assert await cache.get("k") == b"second"
    await _until_missing(cache, "probe", deadline=10)
    assert await cache.get("k") == b"second"


@pytest.mark.parametrize(
    "value",
    [b"", b"\x00", b"\x00\x01\xff\x00", bytes(range(256)), "ünïcödé ✓".encode(), b"\x80\x81 not utf-8 \xfe"],
    ids=["empty", "nul", "nul-mix", "all-bytes", "utf8", "invalid-utf8"],
)
async def test_binary_values_round_trip(cache: CacheStore, value: bytes) -> None:
    await cache.set("bin", value)
    got = await cache.get("bin")
    assert got == value
    assert isinstance(got, bytes)


async def test_large_value(cache: CacheStore) -> None:
    value = bytes(range(256)) * (8 * 1024)  # 2 MiB, every byte value
    await cache.set("large", value)
    assert await cache.get("large") == value


async def test_unusual_keys(cache: CacheStore) -> None:
    keys = ["with space", "ü-key", "a:b:c", "x" * 500, "'; DROP TABLE lluminary_cache; --"]
    for i, key in enumerate(keys):
        await cache.set(key, str(i).encode())
    for i, key in enumerate(keys):
        assert await cache.get(key) == str(i).encode()


async def test_ttl_expiry(cache: CacheStore) -> None:
    await cache.set("long", b"stays", ttl=120)
    started = time.monotonic()
    await cache.set("short", b"goes", ttl=0.3)
    # Expiry is on the store's clock; wait for it with a deadline instead of a fixed sleep.
    await _until_missing(cache, "short", deadline=10)
    assert time.monotonic() - started >= 0.3, "expired before its TTL"
    assert await cache.get("long") == b"stays"


async def test_ttl_zero_or_negative_means_already_expired(cache: CacheStore) -> None:
    await cache.set("k", b"old")
    await cache.set("k", b"new", ttl=0)
    assert await cache.get("k") is None
    await cache.set("n", b"v", ttl=-5)
    assert await cache.get("n") is None
    await cache.set("inf", b"v", ttl=float("inf"))
    assert await cache.get("inf") == b"v"
    with pytest.raises(ValueError, match="ttl"):
        await cache.set("nan", b"v", ttl=float("nan"))


async def test_concurrent_sets(cache: CacheStore) -> None:
    values = {f"same-{i}".encode() for i in range(20)}

    async with anyio.create_task_group() as tg:
        for i in range(40):
            tg.start_soon(cache.set, f"key-{i}", f"value-{i}".encode())
        for value in values:
            tg.start_soon(cache.set, "same", value)
    for i in range(40):
        assert await cache.get(f"key-{i}") == f"value-{i}".encode()
    assert await cache.get("same") in values


async def test_prefixes_namespace_keys(make_cache: Factory) -> None:
    one, two = await make_cache("one:"), await make_cache("two:")
    await one.set("k", b"from one")
    assert await two.get("k") is None
    await two.set("k", b"from two")
    assert await one.get("k") == b"from one"
    await one.delete("k")
    assert await one.get("k") is None
    assert await two.get("k") == b"from two"


async def test_aclose_is_idempotent(make_cache: Factory) -> None:
    store = await make_cache("closing:")
    await store.set("k", b"v")
    await store.aclose()
    await store.aclose()


async def _until_missing(cache: CacheStore, key: str, deadline: float) -> None:
    """Poll until ``key`` expires: expiry runs on the store's clock, which offers nothing to wait on."""
    with anyio.fail_after(deadline):
        while await cache.get(key) is not None:  # noqa: ASYNC110 - bounded polling of the backend's clock
            await anyio.sleep(0.02)


async def test_store_error_is_the_only_failure(tmp_path: Path) -> None:
    # A disk cache whose directory cannot exist (its parent is a file) fails with StoreError.
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    store = DiskCache(blocker / "sub" / "cache.sqlite3")
    with pytest.raises(StoreError):
        await store.get("k")
    await store.aclose()
