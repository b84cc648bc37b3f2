"""The small protocols every store implements, so operators never know which backend they use.

- :class:`CacheStore`: bytes by key with a TTL (memory, disk, Redis, Postgres).
- :class:`VectorIndex`: nearest-neighbour search by cosine similarity within a
  namespace (Postgres with pgvector; memory for small deployments).
- :class:`EventLog`: every event of a request, in order, for replay.

Stores raise :class:`StoreError` (and only that) when the backend is down or
misbehaves; operators decide whether to fail open. Values are opaque bytes
(msgpack-encoded by the caller, never pickled).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import msgspec

from lluminary.errors import LLuminaryError

__all__ = ["CacheStore", "EventLog", "LoggedEvent", "StoreError", "VectorHit", "VectorIndex"]


class StoreError(LLuminaryError):
    """A store could not do what was asked: unreachable, timed out, or corrupt."""


@runtime_checkable
class CacheStore(Protocol):
    async def get(self, key: str) -> bytes | None:
        """The value, or None if absent or expired."""
        ...

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store ``value``; ``ttl`` in seconds, None for no expiry."""
        ...

    async def delete(self, key: str) -> None: ...

    async def aclose(self) -> None: ...


class VectorHit(msgspec.Struct, frozen=True):
    key: str
    similarity: float  # cosine similarity, 1.0 is identical
    payload: bytes


@runtime_checkable
class VectorIndex(Protocol):
    async def add(
        self, namespace: str, key: str, vector: Sequence[float], payload: bytes, ttl: float | None = None
    ) -> None:
        """Insert or replace ``key`` in ``namespace``."""
        ...

    async def nearest(self, namespace: str, vector: Sequence[float], k: int = 1) -> list[VectorHit]:
        """Up to ``k`` entries of ``namespace`` (never another's), most similar first."""
        ...

    async def delete(self, namespace: str, key: str) -> None: ...

    async def aclose(self) -> None: ...


class LoggedEvent(msgspec.Struct, frozen=True):
    request_id: str
    seq: int
    ts: float  # seconds since the epoch
    event: bytes  # the event's JSON, as the events codec writes it


@runtime_checkable
class EventLog(Protocol):
    async def append(self, request_id: str, seq: int, ts: float, event: bytes) -> None: ...

    async def read(self, request_id: str) -> list[LoggedEvent]:
        """Every logged event of ``request_id``, in sequence order."""
        ...

    async def aclose(self) -> None: ...
