"""A cache in Redis: ``SET key value PX ttl`` under a key prefix, failing fast when Redis is down.

A cache that hangs when its server dies turns an optimisation into an outage,
so every operation has a hard bound (``timeout``, 100 ms by default): connect
and socket timeouts are set to it, redis-py's own retries are turned off (its
default retries with backoff would multiply the wait), and the whole call runs
under a deadline as well, which also covers waiting for a pooled connection.
When the bound passes or the connection fails, the call raises
:class:`StoreError`, and the operator above decides to fail open. A broken
connection is dropped by the pool, so once Redis is back the next call simply
reconnects: the store never has to be recreated.

This module is the one place redis exceptions are translated.
"""

from __future__ import annotations

import math
import os
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

import anyio
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from lluminary.stores._common import norm_ttl, redact_url, scrub
from lluminary.stores._protocols import StoreError

__all__ = ["DEFAULT_PREFIX", "DEFAULT_REDIS_URL", "RedisCache"]

T = TypeVar("T")

#: Used when neither an argument nor ``LLUMINARY_REDIS_URL`` names a server.
DEFAULT_REDIS_URL: Final = "redis://127.0.0.1:6379/0"
#: Redis servers are often shared, so keys live under this namespace by default.
DEFAULT_PREFIX: Final = "lluminary:"


class RedisCache:
    """A :class:`~lluminary.stores.CacheStore` over ``redis.asyncio``.

    ``url`` defaults to ``LLUMINARY_REDIS_URL``, then :data:`DEFAULT_REDIS_URL`.
    Pass ``client`` to share a configured client instead (it is then not closed
    by :meth:`aclose`, and ``timeout`` bounds only the overall call).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        prefix: str = DEFAULT_PREFIX,
        timeout: float = 0.1,
        max_connections: int = 64,
        client: aioredis.Redis | None = None,
    ) -> None:
        if not timeout > 0:
            raise ValueError("timeout must be a positive number of seconds")
        self.url = url or os.environ.get("LLUMINARY_REDIS_URL") or DEFAULT_REDIS_URL
        self.prefix = prefix
        self.timeout = timeout
        self._owns_client = client is None
        if client is None:
            client = aioredis.Redis.from_url(
                self.url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 0),
                retry_on_timeout=False,
                max_connections=max_connections,
            )
        self._client = client

    def __repr__(self) -> str:
        return f"RedisCache(url={redact_url(self.url)!r}, prefix={self.prefix!r}, timeout={self.timeout})"

    @property
    def client(self) -> aioredis.Redis:
        return self._client

    async def get(self, key: str) -> bytes | None:
        value = await self._call("GET", lambda: self._client.get(self.prefix + key))
        if value is None:
            return None
        if isinstance(value, str):  # a client configured with decode_responses
            return value.encode()
        return bytes(value)

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        seconds = norm_ttl(ttl)
        name = self.prefix + key
        data = bytes(value)
        if seconds == 0.0:
            await self.delete(key)
        elif seconds is None:
            await self._call("SET", lambda: self._client.set(name, data))
        else:
            # PX takes whole milliseconds, and 0 is an error: round up.
            millis = max(1, math.ceil(seconds * 1000))
            await self._call("SET", lambda: self._client.set(name, data, px=millis))

    async def delete(self, key: str) -> None:
        await self._call("DEL", lambda: self._client.delete(self.prefix + key))

    async def ping(self) -> bool:
        """True if Redis answers within the bound."""
        try:
            await self._call("PING", lambda: self._client.ping())
        except StoreError:
            return False
        return True

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def _call(self, what: str, op: Callable[[], Awaitable[T]]) -> T:
        try:
            with anyio.fail_after(self.timeout):
                return await op()
        except TimeoutError:
            raise StoreError(f"redis {what} took longer than {self.timeout:g}s ({redact_url(self.url)})") from None
        except (RedisError, OSError) as exc:
            message = scrub(f"{type(exc).__name__}: {exc}", self.url)
            raise StoreError(f"redis {what} failed ({redact_url(self.url)}): {message}") from None
