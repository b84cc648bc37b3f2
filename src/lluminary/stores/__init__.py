"""Stores: caches, vector indexes and event logs behind small protocols.

The protocols and :class:`StoreError` load with this package. Each backend
loads on first use of one of its names, so importing the protocols (as every
operator does) costs nothing: redis-py alone takes over half a second to import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

from lluminary.stores._protocols import CacheStore, EventLog, LoggedEvent, StoreError, VectorHit, VectorIndex

if TYPE_CHECKING:
    from lluminary.stores._factory import open_cache, open_event_log, open_vector_index
    from lluminary.stores.disk import DiskCache
    from lluminary.stores.memory import MemoryCache, MemoryEventLog, MemoryVectorIndex
    from lluminary.stores.postgres import (
        EmbeddedUnavailableError,
        PgVectorIndex,
        PostgresCache,
        PostgresEventLog,
        open_pool,
    )
    from lluminary.stores.redis import RedisCache

__all__ = [
    "CacheStore",
    "DiskCache",
    "EmbeddedUnavailableError",
    "EventLog",
    "LoggedEvent",
    "MemoryCache",
    "MemoryEventLog",
    "MemoryVectorIndex",
    "PgVectorIndex",
    "PostgresCache",
    "PostgresEventLog",
    "RedisCache",
    "StoreError",
    "VectorHit",
    "VectorIndex",
    "open_cache",
    "open_event_log",
    "open_pool",
    "open_vector_index",
]

_LAZY: Final = {
    "open_cache": "lluminary.stores._factory",
    "open_event_log": "lluminary.stores._factory",
    "open_vector_index": "lluminary.stores._factory",
    "DiskCache": "lluminary.stores.disk",
    "MemoryCache": "lluminary.stores.memory",
    "MemoryEventLog": "lluminary.stores.memory",
    "MemoryVectorIndex": "lluminary.stores.memory",
    "EmbeddedUnavailableError": "lluminary.stores.postgres",
    "PgVectorIndex": "lluminary.stores.postgres",
    "PostgresCache": "lluminary.stores.postgres",
    "PostgresEventLog": "lluminary.stores.postgres",
    "open_pool": "lluminary.stores.postgres",
    "RedisCache": "lluminary.stores.redis",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
