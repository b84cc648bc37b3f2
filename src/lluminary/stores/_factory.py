"""Stores from URLs, so configuration is one string.

=======================================  =============================================
URL                                      store
=======================================  =============================================
None                                     Postgres: ``LLUMINARY_DATABASE_URL``, else the
                                         embedded server (the default everywhere)
``postgresql://…`` / ``postgres://…``    Postgres at that DSN
``memory://[?max_entries=N&max_bytes=N]`` in this process
``disk:///path/to/cache.sqlite3``        SQLite on local disk (caches only)
``redis://…`` / ``rediss://…`` /         Redis (caches only); a bare ``redis://`` means
``unix://…``                             ``LLUMINARY_REDIS_URL``, else localhost
=======================================  =============================================

A store opened here owns what it opened (a Postgres pool, a Redis client) and
closes it in ``aclose()``. Errors name the URL with its password redacted.
Each backend's module is imported only when its scheme is used: redis-py alone
takes over half a second to import, which a memory cache should not pay.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import parse_qsl, unquote, urlsplit

from lluminary.errors import ConfigError
from lluminary.stores._common import redact_url
from lluminary.stores._protocols import CacheStore, EventLog, VectorIndex

__all__ = ["open_cache", "open_event_log", "open_vector_index"]

_POSTGRES: Final = frozenset({"postgresql", "postgres"})
_REDIS: Final = frozenset({"redis", "rediss", "unix"})


async def open_cache(url: str | None = None, *, prefix: str | None = None) -> CacheStore:
    """A :class:`~lluminary.stores.CacheStore` for ``url`` (see the table above)."""
    scheme, options = _parse(url)
    if scheme is None or scheme in _POSTGRES:
        from lluminary.stores.postgres import PostgresCache

        return await PostgresCache.open(url, prefix=prefix or "")
    if scheme == "memory":
        from lluminary.stores.memory import MemoryCache

        return MemoryCache(
            max_entries=_int(options, "max_entries", 10_000, url),
            max_bytes=_int(options, "max_bytes", 64 * 1024 * 1024, url),
            prefix=prefix or "",
        )
    if scheme == "disk":
        from lluminary.stores.disk import DiskCache

        parts = urlsplit(url or "")
        path = unquote(parts.netloc + parts.path)
        if not path:
            raise ConfigError(f"a disk cache URL needs a path, as in disk:///var/cache/lluminary.sqlite3: {url!r}")
        return DiskCache(path, max_bytes=_int(options, "max_bytes", 1024 * 1024 * 1024, url), prefix=prefix or "")
    if scheme in _REDIS:
        from lluminary.stores.redis import DEFAULT_PREFIX, RedisCache

        bare = scheme == "redis" and not urlsplit(url or "").netloc
        # Redis is often shared, so its keys get the "lluminary:" namespace unless told otherwise.
        return RedisCache(None if bare else url, prefix=DEFAULT_PREFIX if prefix is None else prefix)
    raise _unknown(url, "cache", "postgresql://, memory://, disk:// or redis://")


async def open_vector_index(url: str | None = None, *, name: str = "default", dim: int | None = None) -> VectorIndex:
    """A :class:`~lluminary.stores.VectorIndex`: pgvector (the default) or ``memory://``."""
    scheme, options = _parse(url)
    if scheme is None or scheme in _POSTGRES:
        from lluminary.stores.postgres import PgVectorIndex

        return await PgVectorIndex.open(url, name=name, dim=dim)
    if scheme == "memory":
        from lluminary.stores.memory import MemoryVectorIndex

        return MemoryVectorIndex(dim=dim, max_entries=_int(options, "max_entries", 10_000, url))
    raise _unknown(url, "vector index", "postgresql:// or memory://")


async def open_event_log(url: str | None = None) -> EventLog:
    """An :class:`~lluminary.stores.EventLog`: Postgres (the default) or ``memory://``."""
    scheme, options = _parse(url)
    if scheme is None or scheme in _POSTGRES:
        from lluminary.stores.postgres import PostgresEventLog

        return await PostgresEventLog.open(url)
    if scheme == "memory":
        from lluminary.stores.memory import MemoryEventLog

        return MemoryEventLog(max_requests=_int(options, "max_requests", 1_000, url))
    raise _unknown(url, "event log", "postgresql:// or memory://")


def _parse(url: str | None) -> tuple[str | None, dict[str, str]]:
    if url is None:
        return None, {}
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ConfigError(f"not a store URL: {redact_url(url)!r}") from None
    if not parts.scheme:
        raise ConfigError(f"a store URL needs a scheme, as in memory:// or postgresql://…: {redact_url(url)!r}")
    return parts.scheme.lower(), dict(parse_qsl(parts.query))


def _int(options: dict[str, str], name: str, default: int, url: str | None) -> int:
    raw = options.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"{name} must be a positive integer in {redact_url(url or '')!r}")
    return value


def _unknown(url: str | None, what: str, known: str) -> ConfigError:
    return ConfigError(f"no {what} for {redact_url(url or '')!r}: use {known}")
