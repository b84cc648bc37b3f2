"""Stores from URLs: every scheme opens the right store, bad URLs are clear ConfigErrors."""

from __future__ import annotations

from pathlib import Path

import pytest

from lluminary.errors import ConfigError
from lluminary.stores._factory import open_cache, open_event_log, open_vector_index
from lluminary.stores.disk import DiskCache
from lluminary.stores.memory import MemoryCache, MemoryEventLog, MemoryVectorIndex
from lluminary.stores.postgres import PgVectorIndex, PostgresCache, PostgresEventLog
from lluminary.stores.redis import RedisCache


async def test_memory_urls() -> None:
    cache = await open_cache("memory://?max_entries=5&max_bytes=1000")
    assert isinstance(cache, MemoryCache)
    assert (cache.max_entries, cache.max_bytes) == (5, 1000)
    index = await open_vector_index("memory://", dim=3)
    assert isinstance(index, MemoryVectorIndex)
    assert index.dim == 3
    log = await open_event_log("memory://?max_requests=7")
    assert isinstance(log, MemoryEventLog)
    assert log.max_requests == 7


async def test_disk_url(tmp_path: Path) -> None:
    cache = await open_cache(f"disk://{tmp_path}/c.sqlite3?max_bytes=5000", prefix="p:")
    assert isinstance(cache, DiskCache)
    assert (cache.path, cache.max_bytes, cache.prefix) == (tmp_path / "c.sqlite3", 5000, "p:")
    await cache.set("k", b"v")
    assert await cache.get("k") == b"v"
    await cache.aclose()


async def test_redis_url(redis_prefix: str) -> None:
    cache = await open_cache("redis://127.0.0.1:6379/0", prefix=redis_prefix)
    assert isinstance(cache, RedisCache)
    await cache.set("k", b"v")
    assert await cache.get("k") == b"v"
    await cache.aclose()


async def test_postgres_urls_and_the_default(pg_dsn: str, monkeypatch: pytest.MonkeyPatch, unique: str) -> None:
    cache = await open_cache(pg_dsn, prefix=unique)
    assert isinstance(cache, PostgresCache)
    await cache.set("k", b"v")
    await cache.aclose()  # the factory's store owns its pool and closes it
    assert cache.pool.is_closing()

    # No URL: LLUMINARY_DATABASE_URL (else the embedded server, covered in test_postgres.py).
    monkeypatch.setenv("LLUMINARY_DATABASE_URL", pg_dsn)
    default = await open_cache(None, prefix=unique)
    assert isinstance(default, PostgresCache)
    assert await default.get("k") == b"v"
    await default.aclose()
    log = await open_event_log()
    assert isinstance(log, PostgresEventLog)
    await log.aclose()
    index = await open_vector_index(None, name=f"f{unique}", dim=2)
    assert isinstance(index, PgVectorIndex)
    assert index.dim == 2
    async with index.pool.acquire() as conn:
        await conn.execute(f'DROP TABLE "lluminary_vectors_f{unique}"')
        await conn.execute("DELETE FROM lluminary_vector_indexes WHERE name = $1", f"f{unique}")
    await index.aclose()


@pytest.mark.parametrize(
    ("opener", "url", "message"),
    [
        (open_cache, "ftp://user:topsecret@host/x", "no cache"),
        (open_cache, "nohost", "needs a scheme"),
        (open_cache, "disk://", "needs a path"),
        (open_cache, "memory://?max_entries=-1", "max_entries"),
        (open_cache, "memory://?max_bytes=lots", "max_bytes"),
        (open_vector_index, "redis://:topsecret@localhost", "no vector index"),
        (open_event_log, "disk:///tmp/x", "no event log"),
    ],
)
async def test_bad_urls_are_config_errors_without_secrets(opener: object, url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        await opener(url)  # type: ignore[operator]
    assert "topsecret" not in str(info.value)
