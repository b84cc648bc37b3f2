"""The SQLite disk cache: corruption is a miss, the size bound holds, values are kept as given."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio
import anyio.to_thread
import pytest

from lluminary.stores.disk import DiskCache


def _raw_rows(path: Path) -> list[tuple[str, bytes]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT key, value FROM cache ORDER BY key").fetchall()


def _patch_file(path: Path, offset: int, data: bytes) -> None:
    with path.open("r+b") as fh:
        fh.seek(offset)
        fh.write(data)


async def _filled(path: Path, count: int = 20, size: int = 3000) -> DiskCache:
    cache = DiskCache(path)
    for i in range(count):
        await cache.set(f"k{i}", bytes([i]) * size)
    return cache


async def test_values_are_stored_as_given_and_persist(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    cache = DiskCache(path)
    value = b"\x92\xa5hello\x00"  # msgpack-ish bytes: stored verbatim, never pickled
    await cache.set("k", value)
    await cache.aclose()
    assert await anyio.to_thread.run_sync(_raw_rows, path) == [("k", value)]
    again = DiskCache(path)
    assert await again.get("k") == value
    await again.aclose()


async def test_wal_mode(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path / "c.sqlite3")
    await cache.set("k", b"v")

    def mode() -> str:
        with sqlite3.connect(tmp_path / "c.sqlite3") as conn:
            return str(conn.execute("PRAGMA journal_mode").fetchone()[0])

    assert await anyio.to_thread.run_sync(mode) == "wal"
    await cache.aclose()


async def test_a_directory_path_holds_cache_sqlite3(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path)
    await cache.set("k", b"v")
    await cache.aclose()
    assert cache.path == tmp_path / "cache.sqlite3"


async def test_an_entry_with_damaged_bytes_is_a_miss(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    cache = DiskCache(path)
    await cache.set("k", b"the original value")
    await cache.set("other", b"fine")

    def damage() -> None:
        with sqlite3.connect(path) as conn:
            conn.execute("UPDATE cache SET value = ? WHERE key = 'k'", (b"the 0riginal value",))

    await anyio.to_thread.run_sync(damage)
    assert await cache.get("k") is None  # the checksum no longer matches: a miss, no exception
    assert cache.corruptions == 1
    assert await cache.get("other") == b"fine"
    assert await anyio.to_thread.run_sync(_raw_rows, path) == [("other", b"fine")]  # the damaged row is gone
    await cache.aclose()


async def test_flipped_bytes_inside_the_file_are_a_miss(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    marker = b"MARKER-" + bytes(range(200)) + b"-END"
    cache = DiskCache(path)
    await cache.set("k", marker)
    await cache.aclose()  # checkpoints the WAL into the main file
    data = await anyio.to_thread.run_sync(path.read_bytes)
    where = data.index(marker)
    await anyio.to_thread.run_sync(_patch_file, path, where + 50, b"\xff\xfe")
    again = DiskCache(path)
    assert await again.get("k") is None
    assert again.corruptions == 1
    await again.set("k", b"fresh")
    assert await again.get("k") == b"fresh"
    await again.aclose()


async def test_a_file_that_is_not_a_database_is_a_miss(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    cache = await _filled(path)
    await cache.aclose()
    await anyio.to_thread.run_sync(_patch_file, path, 0, b"this is not an sqlite header!!!!")
    again = DiskCache(path)
    assert await again.get("k1") is None  # no exception
    assert again.corruptions == 1
    await again.set("k1", b"works again")
    assert await again.get("k1") == b"works again"
    await again.aclose()
    # The damaged file was moved aside, not silently destroyed.
    assert any(p.name.startswith("c.sqlite3.corrupt-") for p in tmp_path.iterdir())  # noqa: ASYNC240 - test check


async def test_damaged_pages_are_a_miss(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    cache = await _filled(path, count=40, size=2000)
    await cache.aclose()
    size = (await anyio.to_thread.run_sync(path.stat)).st_size
    # Garbage over pages in the middle of the file: b-tree pages, not just values.
    await anyio.to_thread.run_sync(_patch_file, path, size // 3, b"\xde\xad\xbe\xef" * 2048)
    again = DiskCache(path)
    results = [await again.get(f"k{i}") for i in range(40)]  # never raises
    assert all(r is None or r == bytes([i]) * 2000 for i, r in enumerate(results))
    assert None in results
    assert again.corruptions >= 1
    await again.set("new", b"v")
    assert await again.get("new") == b"v"
    await again.aclose()


async def test_size_bound_evicts_least_recently_read(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path / "c.sqlite3", max_bytes=10_000)  # room for 9 entries of 1002 bytes
    for i in range(5):
        await cache.set(f"k{i}", b"x" * 1000)
    assert await cache.get("k0") == b"x" * 1000  # k0 is now more recent than k1..k4
    for i in range(5, 10):
        await cache.set(f"k{i}", b"x" * 1000)
        assert await cache.total_bytes() <= 10_000
    assert cache.evictions == 1
    assert await cache.get("k1") is None  # the least recently read went first
    assert [await cache.get(f"k{i}") is not None for i in (0, *range(2, 10))] == [True] * 9
    for i in range(10, 30):
        await cache.set(f"k{i}", b"x" * 1000)
    present = [i for i in range(30) if await cache.get(f"k{i}") is not None]
    assert await cache.total_bytes() == sum(len(f"k{i}") + 1000 for i in present) <= 10_000
    assert present[-1] == 29
    await cache.aclose()


async def test_a_value_larger_than_the_bound_is_not_stored(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path / "c.sqlite3", max_bytes=1000)
    await cache.set("small", b"s")
    await cache.set("huge", b"h" * 5000)
    assert await cache.get("huge") is None
    assert await cache.get("small") == b"s"
    await cache.aclose()


async def test_expired_rows_are_misses_and_are_removed(tmp_path: Path) -> None:
    now = [1000.0]
    cache = DiskCache(tmp_path / "c.sqlite3", clock=lambda: now[0])
    await cache.set("k", b"v", ttl=10)
    assert await cache.get("k") == b"v"
    now[0] += 10.5
    assert await cache.get("k") is None
    assert await anyio.to_thread.run_sync(_raw_rows, tmp_path / "c.sqlite3") == []
    await cache.aclose()


async def test_closed_cache_refuses_work(tmp_path: Path) -> None:
    from lluminary.stores import StoreError

    cache = DiskCache(tmp_path / "c.sqlite3")
    await cache.aclose()
    with pytest.raises(StoreError, match="closed"):
        await cache.get("k")


async def test_two_instances_share_one_file(tmp_path: Path) -> None:
    one, two = DiskCache(tmp_path / "c.sqlite3"), DiskCache(tmp_path / "c.sqlite3")
    async with anyio.create_task_group() as tg:
        for i in range(20):
            tg.start_soon(one.set, f"a{i}", b"1")
            tg.start_soon(two.set, f"b{i}", b"2")
    assert [await two.get(f"a{i}") for i in range(20)] == [b"1"] * 20
    assert [await one.get(f"b{i}") for i in range(20)] == [b"2"] * 20
    await one.aclose()
    await two.aclose()
