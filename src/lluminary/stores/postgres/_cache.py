"""The cache in Postgres: opaque bytes by key in ``lluminary_cache``, with expiry.

Expiry is decided by the database's clock (``now()``), so every client agrees on
it whatever its own clock says. An expired row is a miss at once; it is deleted
when a read finds it, and every ``sweep_interval`` seconds a write also deletes
a batch of expired rows, so entries nobody reads again do not pile up.

Every statement is a single idempotent upsert, select or delete, so each is
safe to run again after a lost connection (see ``with_connection``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final

from lluminary.stores._common import norm_ttl
from lluminary.stores.postgres._base import PgStore
from lluminary.stores.postgres._pool import open_pool

__all__ = ["PostgresCache"]

_GET: Final = (
    "SELECT value, (expires_at IS NOT NULL AND expires_at <= now()) AS expired FROM lluminary_cache WHERE key = $1"
)
_SET: Final = (
    "INSERT INTO lluminary_cache (key, value, expires_at)"
    " VALUES ($1, $2, now() + make_interval(secs => $3::float8))"
    " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at"
)
_DROP_EXPIRED: Final = "DELETE FROM lluminary_cache WHERE key = $1 AND expires_at <= now()"
_DELETE: Final = "DELETE FROM lluminary_cache WHERE key = $1"
# ctid batches keep one sweep short however many rows have expired.
_SWEEP: Final = (
    "DELETE FROM lluminary_cache WHERE ctid = ANY(ARRAY("
    "SELECT ctid FROM lluminary_cache WHERE expires_at <= now() LIMIT $1))"
)


class PostgresCache(PgStore):
    """A :class:`~lluminary.stores.CacheStore` in the ``lluminary_cache`` table.

    ``prefix`` namespaces keys, so several caches can share the table.
    """

    def __init__(
        self,
        pool: Any,
        *,
        prefix: str = "",
        sweep_interval: float = 60.0,
        sweep_batch: int = 1000,
        owns_pool: bool = False,
        dsn: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(pool, owns_pool=owns_pool, dsn=dsn)
        self.prefix = prefix
        self.sweep_interval = sweep_interval
        self.sweep_batch = sweep_batch
        self.swept = 0
        self._clock = clock
        self._last_sweep = clock()

    @classmethod
    async def open(cls, dsn: str | None = None, **options: Any) -> PostgresCache:
        """A cache on its own pool (closed by :meth:`aclose`); ``dsn`` as in :func:`open_pool`."""
        return cls(await open_pool(dsn), owns_pool=True, dsn=dsn, **options)

    async def get(self, key: str) -> bytes | None:
        full = self.prefix + key

        async def work(conn: Any) -> bytes | None:
            row = await conn.fetchrow(_GET, full)
            if row is None:
                return None
            if row["expired"]:
                await conn.execute(_DROP_EXPIRED, full)
                return None
            return bytes(row["value"])

        return await self._run("cache get", work)

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        seconds = norm_ttl(ttl)
        if seconds == 0.0:
            await self.delete(key)
            return
        full, data = self.prefix + key, bytes(value)
        sweep = self._clock() - self._last_sweep >= self.sweep_interval
        if sweep:
            self._last_sweep = self._clock()

        async def work(conn: Any) -> None:
            # now() + NULL is NULL: no TTL, no expiry.
            await conn.execute(_SET, full, data, seconds)
            if sweep:
                status = await conn.execute(_SWEEP, self.sweep_batch)
                self.swept += int(status.rsplit(" ", 1)[-1])

        await self._run("cache set", work)

    async def delete(self, key: str) -> None:
        full = self.prefix + key

        async def work(conn: Any) -> None:
            await conn.execute(_DELETE, full)

        await self._run("cache delete", work)
