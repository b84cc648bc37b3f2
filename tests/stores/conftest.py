"""Fixtures for the store tests: real backends only.

- Postgres: ``LLUMINARY_DATABASE_URL`` when set, else ONE embedded pgserver (with
  pgvector) per test session, its data in a private tmp dir. Tests that stop or
  restart Postgres start their own instance instead.
- Redis: the machine's server on 127.0.0.1:6379, under a unique key prefix per
  test whose keys are deleted afterwards (never FLUSH: the server is shared).
  Tests that kill Redis start their own ``redis-server`` (``redis_process``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from lluminary.stores.postgres import open_pool
from tests.stores._backends import RedisProcess, private_tmp_dir

REDIS_URL = os.environ.get("LLUMINARY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def pg_tmp_path() -> Iterator[Path]:
    """A tmp dir a pgserver instance can live in (see :func:`private_tmp_dir`)."""
    with private_tmp_dir() as tmp:
        yield tmp


@pytest.fixture
async def pg_pool(pg_dsn: str) -> AsyncIterator[Any]:
    pool = await open_pool(pg_dsn, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
def unique() -> str:
    """A fresh token for keys, namespaces, prefixes and request ids."""
    return uuid.uuid4().hex[:12]


@pytest.fixture
async def redis_prefix(unique: str) -> AsyncIterator[str]:
    """A key prefix on the shared Redis; its keys are deleted after the test."""
    prefix = f"lluminary-test:{unique}:"
    yield prefix
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
def redis_process() -> Iterator[RedisProcess]:
    server = RedisProcess()
    server.start()
    try:
        yield server
    finally:
        if server.proc is not None:
            server.kill()
