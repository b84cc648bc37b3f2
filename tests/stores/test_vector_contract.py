"""One VectorIndex contract, run against the memory index and pgvector (real Postgres)."""

from __future__ import annotations

import itertools
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import pytest

from lluminary.stores import StoreError, VectorIndex
from lluminary.stores.memory import MemoryVectorIndex
from lluminary.stores.postgres import PgVectorIndex

BACKENDS = ["memory", "pgvector"]
DIM = 8

Factory = Callable[..., Awaitable[VectorIndex]]


@pytest.fixture(params=BACKENDS)
async def make_index(request: pytest.FixtureRequest, pg_pool: Any, unique: str) -> AsyncIterator[Factory]:
    made: list[VectorIndex] = []
    names: list[str] = []

    async def make(dim: int | None = DIM, name: str | None = None) -> VectorIndex:
        index: VectorIndex
        if request.param == "memory":
            index = MemoryVectorIndex(dim=dim)
        else:
            name = name or f"t{unique}{len(names)}"
            names.append(name)
            index = PgVectorIndex(pg_pool, name=name, dim=dim)
        made.append(index)
        return index

    yield make
    for index in made:
        await index.aclose()
    async with pg_pool.acquire() as conn:
        for name in set(names):
            await conn.execute(f'DROP TABLE IF EXISTS "lluminary_vectors_{name}"')
            await conn.execute("DELETE FROM lluminary_vector_indexes WHERE name = $1", name)


@pytest.fixture
async def index(make_index: Factory) -> VectorIndex:
    return await make_index()


def unit(angle: float) -> list[float]:
    """A vector in the first plane at ``angle`` radians from the x axis (padded to DIM)."""
    return [math.cos(angle), math.sin(angle)] + [0.0] * (DIM - 2)


async def test_is_a_vector_index(index: VectorIndex) -> None:
    assert isinstance(index, VectorIndex)


async def test_nearest_orders_by_cosine_similarity(index: VectorIndex) -> None:
    for name, angle in [("far", 1.2), ("near", 0.1), ("exact", 0.0), ("mid", 0.6), ("opposite", math.pi)]:
        await index.add("ns", name, unit(angle), payload=name.encode())
    hits = await index.nearest("ns", [2.0, 0.0] + [0.0] * (DIM - 2), k=5)  # the length does not matter
    assert [h.key for h in hits] == ["exact", "near", "mid", "far", "opposite"]
    assert [h.payload for h in hits] == [b"exact", b"near", b"mid", b"far", b"opposite"]
    assert hits[0].similarity == pytest.approx(1.0, abs=1e-6)
    assert hits[1].similarity == pytest.approx(math.cos(0.1), abs=1e-5)
    assert hits[-1].similarity == pytest.approx(-1.0, abs=1e-6)
    assert all(a.similarity >= b.similarity for a, b in itertools.pairwise(hits))


async def test_k_limits_results(index: VectorIndex) -> None:
    for i in range(6):
        await index.add("ns", f"k{i}", unit(i * 0.2), b"")
    assert [h.key for h in await index.nearest("ns", unit(0.0), k=1)] == ["k0"]
    assert [h.key for h in await index.nearest("ns", unit(0.0), k=3)] == ["k0", "k1", "k2"]
    assert len(await index.nearest("ns", unit(0.0), k=50)) == 6
    assert await index.nearest("ns", unit(0.0), k=0) == []


async def test_namespaces_are_isolated(index: VectorIndex) -> None:
    await index.add("tenant-a", "shared-key", unit(0.0), b"a")
    await index.add("tenant-b", "shared-key", unit(0.0), b"b")
    await index.add("tenant-b", "other", unit(0.05), b"b2")
    hits_a = await index.nearest("tenant-a", unit(0.0), k=10)
    assert [(h.key, h.payload) for h in hits_a] == [("shared-key", b"a")]
    assert await index.nearest("tenant-c", unit(0.0), k=10) == []
    await index.delete("tenant-a", "shared-key")
    assert await index.nearest("tenant-a", unit(0.0), k=10) == []
    assert len(await index.nearest("tenant-b", unit(0.0), k=10)) == 2


async def test_add_replaces_a_key(index: VectorIndex) -> None:
    await index.add("ns", "k", unit(0.0), b"old")
    await index.add("ns", "k", unit(math.pi / 2), b"new")
    hits = await index.nearest("ns", unit(math.pi / 2), k=10)
    assert [(h.key, h.payload) for h in hits] == [("k", b"new")]
    assert hits[0].similarity == pytest.approx(1.0, abs=1e-6)


async def test_delete(index: VectorIndex) -> None:
    await index.add("ns", "a", unit(0.0), b"a")
    await index.add("ns", "b", unit(0.1), b"b")
    await index.delete("ns", "a")
    await index.delete("ns", "missing")
    assert [h.key for h in await index.nearest("ns", unit(0.0), k=10)] == ["b"]


async def test_dimension_mismatch_is_a_store_error(index: VectorIndex) -> None:
    await index.add("ns", "a", unit(0.0), b"a")
    with pytest.raises(StoreError, match="dimension"):
        await index.add("ns", "b", [1.0, 0.0, 0.0], b"b")
    with pytest.raises(StoreError, match="dimension"):
        await index.nearest("ns", [1.0] * (DIM + 1), k=1)
    assert [h.key for h in await index.nearest("ns", unit(0.0), k=10)] == ["a"]


async def test_dimension_is_fixed_by_first_add_when_not_given(make_index: Factory) -> None:
    index = await make_index(dim=None)
    assert await index.nearest("ns", [1.0, 2.0, 3.0], k=3) == []
    await index.add("ns", "a", [1.0, 2.0, 3.0], b"a")
    with pytest.raises(StoreError, match="dimension"):
        await index.add("ns", "b", [1.0, 2.0], b"b")


async def test_unusable_vectors_are_refused(index: VectorIndex) -> None:
    for bad in ([0.0] * DIM, [math.nan] + [1.0] * (DIM - 1), [math.inf] + [1.0] * (DIM - 1), []):
        with pytest.raises(StoreError):
            await index.add("ns", "bad", bad, b"")
    assert await index.nearest("ns", unit(0.0), k=10) == []


async def test_ttl_expiry(index: VectorIndex) -> None:
    await index.add("ns", "stays", unit(0.3), b"s", ttl=120)
    await index.add("ns", "goes", unit(0.0), b"g", ttl=0.3)
    await index.add("ns", "never", unit(0.0), b"z", ttl=0)  # already expired: not stored
    with anyio.fail_after(10):
        # Expiry runs on the backend's clock: bounded polling, nothing to wait on.
        while "goes" in [h.key for h in await index.nearest("ns", unit(0.0), k=10)]:  # noqa: ASYNC110
            await anyio.sleep(0.02)
    assert [h.key for h in await index.nearest("ns", unit(0.0), k=10)] == ["stays"]


async def test_binary_payloads(index: VectorIndex) -> None:
    payload = bytes(range(256)) + b"\x00" * 10
    await index.add("ns", "k", unit(0.0), payload)
    assert (await index.nearest("ns", unit(0.0)))[0].payload == payload


async def test_pgvector_dimension_is_recorded_per_index_name(pg_pool: Any, unique: str) -> None:
    name = f"rec{unique}"
    first = PgVectorIndex(pg_pool, name=name, dim=4)
    try:
        await first.add("ns", "a", [1.0, 0.0, 0.0, 0.0], b"")
        # Another client that expects another dimension is refused up front.
        other = PgVectorIndex(pg_pool, name=name, dim=5)
        with pytest.raises(StoreError, match="holds 4 dimensions"):
            await other.add("ns", "b", [1.0] * 5, b"")
        # One that does not say learns the recorded dimension.
        learner = PgVectorIndex(pg_pool, name=name)
        assert [h.key for h in await learner.nearest("ns", [1.0, 0.0, 0.0, 0.0])] == ["a"]
        assert learner.dim == 4
        with pytest.raises(StoreError, match="dimension"):
            await learner.nearest("ns", [1.0, 0.0, 0.0], k=1)
    finally:
        async with pg_pool.acquire() as conn:
            await conn.execute(f'DROP TABLE IF EXISTS "lluminary_vectors_{name}"')
            await conn.execute("DELETE FROM lluminary_vector_indexes WHERE name = $1", name)


async def test_pgvector_uses_an_hnsw_cosine_index(pg_pool: Any, unique: str) -> None:
    name = f"hnsw{unique}"
    index = PgVectorIndex(pg_pool, name=name, dim=3)
    try:
        await index.add("ns", "a", [1.0, 0.0, 0.0], b"")
        async with pg_pool.acquire() as conn:
            definition = await conn.fetchval(
                "SELECT indexdef FROM pg_indexes WHERE tablename = $1 AND indexdef LIKE '%USING hnsw%'",
                f"lluminary_vectors_{name}",
            )
            column = await conn.fetchval(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                " WHERE attrelid = $1::regclass AND attname = 'embedding'",
                f'"lluminary_vectors_{name}"',
            )
            # The search statement itself must be one the HNSW index can serve.
            async with conn.transaction():
                await conn.execute("SET LOCAL enable_seqscan = off")
                await conn.execute("SET LOCAL enable_sort = off")  # tiny table: else a btree + sort wins
                plan = await conn.fetch(
                    "EXPLAIN " + PgVectorIndex(pg_pool, name=name)._sql.nearest, "ns", [1.0, 0.0, 0.0], 5
                )
        assert "vector_cosine_ops" in definition
        assert column == "vector(3)"
        assert f"lluminary_vectors_{name}_hnsw" in "\n".join(row[0] for row in plan)
    finally:
        async with pg_pool.acquire() as conn:
            await conn.execute(f'DROP TABLE IF EXISTS "lluminary_vectors_{name}"')
            await conn.execute("DELETE FROM lluminary_vector_indexes WHERE name = $1", name)


def test_pgvector_index_names_are_checked() -> None:
    for bad in ["", "Upper", "1starts-with-digit", 'x"; DROP TABLE t; --', "x" * 41, "ok\n"]:
        with pytest.raises(ValueError, match="index name"):
            PgVectorIndex(None, name=bad)
