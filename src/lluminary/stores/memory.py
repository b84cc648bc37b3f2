"""In-process stores for tests and small deployments: a cache, a vector index, an event log.

Everything is bounded, because an unbounded in-memory cache is a slow memory
leak: :class:`MemoryCache` is an LRU bounded by entries *and* total bytes,
:class:`MemoryVectorIndex` by entries, :class:`MemoryEventLog` by requests. Expiry
uses a monotonic clock (injectable, so tests need no sleeps) and is lazy: an
expired entry is a miss and is dropped when it is next seen or evicted.

No method awaits anything, so no lock is needed: each call runs to completion
without yielding to another task. Nothing here raises :class:`StoreError` for
availability; only a vector that no index could hold is refused.
"""

from __future__ import annotations

import heapq
import math
import operator
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lluminary.stores._common import check_vector, norm_ttl
from lluminary.stores._protocols import LoggedEvent, StoreError, VectorHit

__all__ = ["MemoryCache", "MemoryEventLog", "MemoryVectorIndex"]

Clock = Callable[[], float]


@dataclass(slots=True)
class _Entry:
    value: bytes
    expires_at: float  # math.inf for no expiry


class MemoryCache:
    """A least-recently-used cache bounded by ``max_entries`` and ``max_bytes``.

    ``max_bytes`` counts key and value bytes. A value larger than the whole
    budget is not stored (storing it would evict everything else for nothing).
    :meth:`with_prefix` gives another view of the same entries and budget under
    another key prefix, as two prefixes on one Redis or Postgres would be.
    """

    def __init__(
        self,
        *,
        max_entries: int = 10_000,
        max_bytes: int = 64 * 1024 * 1024,
        prefix: str = "",
        clock: Clock = time.monotonic,
    ) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("max_entries and max_bytes must be positive")
        self.prefix = prefix
        self._lru = _LRU(max_entries, max_bytes, clock)

    def with_prefix(self, prefix: str) -> MemoryCache:
        """A cache sharing this one's entries and bounds, with keys under ``prefix``."""
        view = MemoryCache.__new__(MemoryCache)
        view.prefix = prefix
        view._lru = self._lru
        return view

    def __repr__(self) -> str:
        lru = self._lru
        return f"MemoryCache(prefix={self.prefix!r}, entries={len(lru.data)}, bytes={lru.bytes}/{lru.max_bytes})"

    @property
    def max_entries(self) -> int:
        return self._lru.max_entries

    @property
    def max_bytes(self) -> int:
        return self._lru.max_bytes

    @property
    def total_bytes(self) -> int:
        return self._lru.bytes

    @property
    def evictions(self) -> int:
        return self._lru.evictions

    def __len__(self) -> int:
        return len(self._lru.data)

    async def get(self, key: str) -> bytes | None:
        return self._lru.get(self.prefix + key)

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        self._lru.set(self.prefix + key, bytes(value), norm_ttl(ttl))

    async def delete(self, key: str) -> None:
        self._lru.remove(self.prefix + key)

    async def aclose(self) -> None:
        """Nothing to release; entries stay for other views until the object is dropped."""


class _LRU:
    """The entries and bounds behind one or more :class:`MemoryCache` views."""

    def __init__(self, max_entries: int, max_bytes: int, clock: Clock) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.clock = clock
        self.data: OrderedDict[str, _Entry] = OrderedDict()
        self.bytes = 0
        self.evictions = 0

    def get(self, key: str) -> bytes | None:
        entry = self.data.get(key)
        if entry is None:
            return None
        if entry.expires_at <= self.clock():
            self.remove(key)
            return None
        self.data.move_to_end(key)
        return entry.value

    def set(self, key: str, value: bytes, seconds: float | None) -> None:
        self.remove(key)
        size = _size(key, value)
        if seconds == 0.0 or size > self.max_bytes:
            return
        expires_at = math.inf if seconds is None else self.clock() + seconds
        self.data[key] = _Entry(value, expires_at)
        self.bytes += size
        while len(self.data) > self.max_entries or self.bytes > self.max_bytes:
            self.remove(next(iter(self.data)))
            self.evictions += 1

    def remove(self, key: str) -> None:
        entry = self.data.pop(key, None)
        if entry is not None:
            self.bytes -= _size(key, entry.value)


def _size(key: str, value: bytes) -> int:
    return len(key.encode()) + len(value)


@dataclass(slots=True)
class _Vector:
    unit: list[float]  # normalised once, so a query is one dot product per entry
    payload: bytes
    expires_at: float


class MemoryVectorIndex:
    """Exact cosine search over at most ``max_entries`` vectors (oldest evicted first).

    The dimension is ``dim`` if given, else fixed by the first ``add``; a vector
    of another size is a :class:`StoreError`, as in :class:`PgVectorIndex`. A
    query costs one dot product per entry of the namespace: fine for thousands
    of entries, use pgvector beyond that.
    """

    def __init__(self, *, dim: int | None = None, max_entries: int = 10_000, clock: Clock = time.monotonic) -> None:
        if dim is not None and dim < 1:
            raise ValueError("dim must be positive")
        if max_entries < 1:
            raise ValueError("max_entries must be positive")
        self.dim = dim
        self.max_entries = max_entries
        self._clock = clock
        # (namespace, key) in insertion order across namespaces, for global eviction.
        self._order: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._spaces: dict[str, dict[str, _Vector]] = {}

    def __repr__(self) -> str:
        return f"MemoryVectorIndex(dim={self.dim}, entries={len(self._order)})"

    def __len__(self) -> int:
        return len(self._order)

    async def add(
        self, namespace: str, key: str, vector: Sequence[float], payload: bytes, ttl: float | None = None
    ) -> None:
        values = check_vector(vector, self.dim)
        seconds = norm_ttl(ttl)
        await self.delete(namespace, key)
        if seconds == 0.0:
            return
        if self.dim is None:
            self.dim = len(values)
        norm = math.sqrt(math.fsum(x * x for x in values))
        expires_at = math.inf if seconds is None else self._clock() + seconds
        self._spaces.setdefault(namespace, {})[key] = _Vector([x / norm for x in values], bytes(payload), expires_at)
        self._order[(namespace, key)] = None
        while len(self._order) > self.max_entries:
            old_ns, old_key = next(iter(self._order))
            await self.delete(old_ns, old_key)

    async def nearest(self, namespace: str, vector: Sequence[float], k: int = 1) -> list[VectorHit]:
        if k < 1:
            return []
        if self.dim is None:
            check_vector(vector, None)
            return []
        values = check_vector(vector, self.dim)
        norm = math.sqrt(math.fsum(x * x for x in values))
        query = [x / norm for x in values]
        space = self._spaces.get(namespace, {})
        now = self._clock()
        expired = [key for key, entry in space.items() if entry.expires_at <= now]
        for key in expired:
            await self.delete(namespace, key)
        scored = ((sum(map(operator.mul, query, entry.unit)), key, entry.payload) for key, entry in space.items())
        best = heapq.nlargest(k, scored, key=operator.itemgetter(0))
        return [VectorHit(key=key, similarity=min(1.0, max(-1.0, sim)), payload=payload) for sim, key, payload in best]

    async def delete(self, namespace: str, key: str) -> None:
        space = self._spaces.get(namespace)
        if space is not None and space.pop(key, None) is not None:
            self._order.pop((namespace, key), None)
            if not space:
                del self._spaces[namespace]

    async def aclose(self) -> None:
        self._spaces.clear()
        self._order.clear()


class MemoryEventLog:
    """Every event of the last ``max_requests`` requests, for replay in tests and small setups.

    A repeated ``(request_id, seq)`` keeps the first event, as the Postgres log
    does, so a retried append is harmless.
    """

    def __init__(self, *, max_requests: int = 1_000) -> None:
        if max_requests < 1:
            raise ValueError("max_requests must be positive")
        self.max_requests = max_requests
        self._requests: OrderedDict[str, dict[int, LoggedEvent]] = OrderedDict()

    def __repr__(self) -> str:
        return f"MemoryEventLog(requests={len(self._requests)})"

    async def append(self, request_id: str, seq: int, ts: float, event: bytes) -> None:
        self._put(LoggedEvent(request_id=request_id, seq=seq, ts=ts, event=bytes(event)))

    async def append_many(self, events: Sequence[LoggedEvent]) -> None:
        """Append several events at once (what :class:`EventLogger` uses when it can)."""
        for logged in events:
            self._put(logged)

    async def read(self, request_id: str) -> list[LoggedEvent]:
        events = self._requests.get(request_id, {})
        return [events[seq] for seq in sorted(events)]

    async def aclose(self) -> None:
        self._requests.clear()

    def _put(self, logged: LoggedEvent) -> None:
        if logged.seq < 0:
            raise StoreError("seq must not be negative")
        events = self._requests.get(logged.request_id)
        if events is None:
            events = self._requests[logged.request_id] = {}
            while len(self._requests) > self.max_requests:
                self._requests.popitem(last=False)
        events.setdefault(logged.seq, logged)
