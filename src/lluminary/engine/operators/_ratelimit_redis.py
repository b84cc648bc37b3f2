"""RedisRateLimitStore: the RateLimit buckets, shared by every process that uses one Redis.

One Lua script does a whole reservation atomically on the server: it refills
each bucket of the key, computes the wait, and either commits every take or
none. Redis runs scripts one at a time, so concurrent callers on any number of
machines can never both spend the same token, and there is no read-modify-write
race to lose. Time comes from the Redis server (``TIME``), never from the
callers, so clock skew between machines does not mint or burn tokens.

The buckets of a key live in one hash (fields ``<bucket>:level`` and
``<bucket>:at``), so a reservation touches a single key and works on Redis
Cluster. The hash expires once its buckets would be full again: an idle key
costs no memory, and a missing key reads as full buckets, which is the same state.

The script is sent by its SHA-1 (``EVALSHA``); after a Redis restart or
``SCRIPT FLUSH`` the server no longer knows it, and the store falls back to
``EVAL``, which also caches it again. Every operation is bounded by
``op_timeout``; any Redis or socket failure, or that timeout, raises
:class:`StoreError` (the one place redis exceptions are translated), and the
RateLimit operator then fails open.

``redis`` is imported when the store is built, not when lluminary is imported.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

import anyio

from lluminary.engine.operators._ratelimit import Bucket, Reservation
from lluminary.providers._errors import redact
from lluminary.stores._protocols import StoreError

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisRateLimitStore"]

DEFAULT_URL: Final = "redis://127.0.0.1:6379/0"

# ARGV[1]: the longest wait to accept, in seconds (negative: any wait, and the
# takes are committed unconditionally, which is how refunds are applied).
# ARGV[2..]: per bucket, four values: name, rate per second, capacity, cost.
# Returns {granted (0 or 1), wait in seconds as a string}: Redis would truncate a
# Lua number reply to an integer.
SCRIPT: Final = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local max_wait = tonumber(ARGV[1])
local wait = 0
local names, levels, rates, capacities = {}, {}, {}, {}
local n = (#ARGV - 1) / 4
for i = 1, n do
  local base = 2 + (i - 1) * 4
  local name = ARGV[base]
  local rate = tonumber(ARGV[base + 1])
  local capacity = tonumber(ARGV[base + 2])
  local cost = tonumber(ARGV[base + 3])
  local saved = redis.call('HMGET', KEYS[1], name .. ':level', name .. ':at')
  local level = tonumber(saved[1])
  if level == nil then
    level = capacity
  else
    level = math.min(capacity, level + math.max(0, now - tonumber(saved[2])) * rate)
  end
  local need = (cost - level) / rate
  if need > wait then wait = need end
  names[i], levels[i], rates[i], capacities[i] = name, level - cost, rate, capacity
end
wait = math.floor(wait * 1000000 + 0.5) / 1000000
if max_wait >= 0 and wait > max_wait then
  return {0, string.format('%.6f', wait)}
end
local refill = 0
for i = 1, n do
  local level = math.min(capacities[i], levels[i])
  redis.call('HSET', KEYS[1], names[i] .. ':level', string.format('%.6f', level),
    names[i] .. ':at', string.format('%.6f', now))
  local full = (capacities[i] - level) / rates[i]
  if full > refill then refill = full end
end
redis.call('PEXPIRE', KEYS[1], math.ceil(refill * 1000) + 1000)
return {1, string.format('%.6f', wait)}
"""
SCRIPT_SHA: Final = hashlib.sha1(SCRIPT.encode(), usedforsecurity=False).hexdigest()


class RedisRateLimitStore:
    """Token buckets in Redis, shared by every process that uses the same ``prefix``.

    ``redis``: a URL (default: ``LLUMINARY_REDIS_URL``, else the local Redis) or
    a ``redis.asyncio.Redis`` client, which the caller then owns and closes.
    ``op_timeout`` bounds each operation, connecting included.
    """

    def __init__(
        self,
        redis: str | Redis | None = None,
        *,
        prefix: str = "lluminary:ratelimit:",
        op_timeout: float = 0.25,
    ) -> None:
        if not (op_timeout > 0 and math.isfinite(op_timeout)):
            raise ValueError("op_timeout must be a positive number of seconds")
        self.prefix = prefix
        self.op_timeout = op_timeout
        if redis is None or isinstance(redis, str):
            from redis.asyncio import Redis

            url = redis or os.environ.get("LLUMINARY_REDIS_URL") or DEFAULT_URL
            # The client is built here, the URL is not kept: it may hold a password.
            self._client: Redis = Redis.from_url(url, socket_timeout=op_timeout, socket_connect_timeout=op_timeout)
            self._owns_client = True
        else:
            self._client = redis
            self._owns_client = False

    def __repr__(self) -> str:
        return f"RedisRateLimitStore(prefix={self.prefix!r}, op_timeout={self.op_timeout!r})"

    async def reserve(self, key: str, takes: Sequence[tuple[Bucket, float]], max_wait: float | None) -> Reservation:
        limit = -1.0 if max_wait is None or math.isinf(max_wait) else max_wait
        granted, wait = await self._run(key, limit, takes)
        return Reservation(granted, wait)

    async def adjust(self, key: str, bucket: Bucket, amount: float) -> None:
        await self._run(key, -1.0, [(bucket, -amount)])

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def _run(self, key: str, max_wait: float, takes: Sequence[tuple[Bucket, float]]) -> tuple[bool, float]:
        from redis.exceptions import NoScriptError, RedisError

        args: list[str] = [repr(max_wait)]
        for bucket, cost in takes:
            args += [bucket.name, repr(bucket.rate), repr(bucket.capacity), repr(cost)]
        name = self.prefix + key
        reply: Any
        try:
            with anyio.fail_after(self.op_timeout):
                try:
                    reply = await self._client.evalsha(SCRIPT_SHA, 1, name, *args)
                except NoScriptError:
                    reply = await self._client.eval(SCRIPT, 1, name, *args)
        except (RedisError, OSError) as exc:  # TimeoutError (ours or the socket's) is an OSError
            message = redact(str(exc))[:200] or "no detail"
            raise StoreError(f"redis rate limit store: {type(exc).__name__}: {message}") from None
        granted, wait = reply
        return bool(int(granted)), float(wait)
