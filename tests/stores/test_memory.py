"""The in-process stores' bounds, with an injected clock (no waiting)."""

from __future__ import annotations

import pytest

from lluminary.stores import StoreError
from lluminary.stores.memory import MemoryCache, MemoryEventLog, MemoryVectorIndex


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_cache_is_bounded_by_entries_lru_first() -> None:
    cache = MemoryCache(max_entries=3)
    for key in "abc":
        await cache.set(key, key.encode())
    assert await cache.get("a") == b"a"  # a is now the most recently used
    await cache.set("d", b"d")
    assert await cache.get("b") is None
    assert [await cache.get(k) for k in "acd"] == [b"a", b"c", b"d"]
    assert len(cache) == 3
    assert cache.evictions == 1


async def test_cache_is_bounded_by_bytes() -> None:
    cache = MemoryCache(max_bytes=100)
    for i in range(10):
        await cache.set(f"k{i}", b"x" * 30)  # 32 bytes each with the key
        assert cache.total_bytes <= 100
    assert [await cache.get(f"k{i}") is not None for i in range(10)] == [False] * 7 + [True] * 3
    await cache.set("huge", b"x" * 200)  # larger than the whole budget: not stored, evicts nothing
    assert await cache.get("huge") is None
    assert await cache.get("k9") == b"x" * 30
    await cache.set("k9", b"y")  # overwriting gives its bytes back
    assert cache.total_bytes == 32 * 2 + 3


async def test_cache_ttl_uses_the_clock() -> None:
    clock = Clock()
    cache = MemoryCache(clock=clock)
    await cache.set("k", b"v", ttl=5)
    clock.now += 4.9
    assert await cache.get("k") == b"v"
    clock.now += 0.2
    assert await cache.get("k") is None
    assert cache.total_bytes == 0


async def test_views_share_entries_and_budget() -> None:
    base = MemoryCache(max_entries=2, prefix="a:")
    other = base.with_prefix("b:")
    await base.set("k", b"1")
    await other.set("k", b"2")
    assert (await base.get("k"), await other.get("k")) == (b"1", b"2")
    await other.set("j", b"3")  # a third entry in the shared budget evicts the oldest
    assert await base.get("k") is None
    assert len(base) == len(other) == 2


async def test_vector_index_is_bounded_and_expires() -> None:
    clock = Clock()
    index = MemoryVectorIndex(max_entries=2, clock=clock)
    await index.add("ns", "a", [1.0, 0.0], b"a", ttl=10)
    await index.add("ns", "b", [0.0, 1.0], b"b")
    await index.add("other", "c", [1.0, 1.0], b"c")  # evicts the oldest entry overall
    assert [h.key for h in await index.nearest("ns", [1.0, 0.0], k=5)] == ["b"]
    assert len(index) == 2
    await index.add("ns", "d", [1.0, 0.1], b"d", ttl=1)
    clock.now += 2
    assert [h.key for h in await index.nearest("ns", [1.0, 0.0], k=5)] == []
    assert index.dim == 2
    with pytest.raises(StoreError):
        await index.add("ns", "e", [1.0, 0.0, 0.0], b"")


async def test_event_log_keeps_the_first_of_a_repeated_seq() -> None:
    log = MemoryEventLog()
    await log.append("r", 0, 1.0, b"first")
    await log.append("r", 0, 2.0, b"second")
    assert [(e.ts, e.event) for e in await log.read("r")] == [(1.0, b"first")]
    with pytest.raises(StoreError):
        await log.append("r", -1, 0.0, b"")


def test_bounds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        MemoryCache(max_entries=0)
    with pytest.raises(ValueError, match="positive"):
        MemoryVectorIndex(max_entries=0)
    with pytest.raises(ValueError, match="positive"):
        MemoryEventLog(max_requests=0)
