"""Fixtures for the cache tests: every cache backend, real, one after the other.

``store`` is parametrised over the four :class:`CacheStore` backends, all real:
memory, disk (SQLite in the test's tmp dir), Redis (the machine's server on
127.0.0.1:6379 under a unique prefix, its keys deleted afterwards; never
flushed) and Postgres (``LLUMINARY_DATABASE_URL`` when set, else one embedded
pgserver with pgvector for the session); ``test_semantic.py`` pairs the two
:class:`VectorIndex` backends the same way. Nothing here fakes a store.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from lluminary.embedders import LocalEmbedder
from lluminary.stores import CacheStore
from lluminary.stores.disk import DiskCache
from lluminary.stores.memory import MemoryCache
from lluminary.stores.postgres import PostgresCache, open_pool
from lluminary.stores.redis import RedisCache

REDIS_URL = os.environ.get("LLUMINARY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CACHE_BACKENDS = ("memory", "disk", "redis", "postgres")


@pytest.fixture(scope="session")
def embedder() -> LocalEmbedder:
    """The local MiniLM embedder, loaded once for every test that needs it."""
    return LocalEmbedder()


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:12]


async def _drop_redis_keys(prefix: str) -> None:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def make_store(kind: str, request: pytest.FixtureRequest, tmp_path: Path, unique: str) -> CacheStore:
    if kind == "memory":
        return MemoryCache()
    if kind == "disk":
        return DiskCache(tmp_path / "cache.sqlite3")
    if kind == "redis":
        return RedisCache(REDIS_URL, prefix=f"lluminary-test:{unique}:", timeout=1.0)
    # pg_dsn is a plain (sync) fixture, so it can be fetched from inside this async one.
    pool = await open_pool(request.getfixturevalue("pg_dsn"), min_size=1, max_size=4)
    return PostgresCache(pool, prefix=f"t{unique}:", owns_pool=True)


@pytest.fixture(params=CACHE_BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path, unique: str) -> AsyncIterator[CacheStore]:
    """Each real cache backend in turn."""
    kind: str = request.param
    cache = await make_store(kind, request, tmp_path, unique)
    try:
        yield cache
    finally:
        await cache.aclose()
        if kind == "redis":
            await _drop_redis_keys(f"lluminary-test:{unique}:")
