"""The vector index in Postgres with pgvector: cosine search by HNSW within a namespace.

Each index name has its own table, ``lluminary_vectors_<name>``, because an HNSW
index needs a fixed dimension: ``embedding vector(dim)``. The dimension is
recorded in ``lluminary_vector_indexes`` when the table is created (on the first
``add``, or eagerly when ``dim`` is given); a client that expects another one,
or a vector of another size, is refused with :class:`StoreError` before any
row is touched. The table is created under an advisory lock, so concurrent
first uses do not race on ``CREATE TABLE``. Index names become SQL identifiers,
so they are checked against a strict pattern and quoted; every value is a bound
parameter.

``nearest`` orders by the ``<=>`` (cosine distance) operator, filtered by
namespace and expiry; similarity is ``1 - distance``. pgvector before 0.8 filters
*after* the HNSW scan, so the scan is widened (``hnsw.ef_search``) to keep
enough candidates; from 0.8 on, iterative scans are switched on instead.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

import anyio

from lluminary.stores._common import check_vector, norm_ttl
from lluminary.stores._protocols import StoreError, VectorHit
from lluminary.stores.postgres._base import PgStore
from lluminary.stores.postgres._pool import open_pool

__all__ = ["PgVectorIndex"]

_INDEX_NAME: Final = re.compile(r"[a-z][a-z0-9_]{0,39}")
_MAX_DIM: Final = 16_000  # pgvector's limit for the vector type
_MAX_HNSW_DIM: Final = 2_000  # and for an HNSW index on it
_LOCK_CLASS: Final = 0x6C6C7663  # advisory lock namespace for index creation ("llvc")
_RECORDED_DIM: Final = "SELECT dim FROM lluminary_vector_indexes WHERE name = $1"


class _Statements:
    """The SQL of one index's table, built once.

    The table name is interpolated (identifiers cannot be bound), which is safe
    because the index name matched ``_INDEX_NAME`` and is double-quoted; every
    value is still a bound parameter.
    """

    def __init__(self, name: str) -> None:
        table = self.table = f'"lluminary_vectors_{name}"'
        self.index = f'"lluminary_vectors_{name}_hnsw"'
        self.upsert = (
            f"INSERT INTO {table} (namespace, key, embedding, payload, expires_at)"  # noqa: S608 - see class doc
            " VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5::float8))"
            " ON CONFLICT (namespace, key) DO UPDATE SET embedding = EXCLUDED.embedding,"
            " payload = EXCLUDED.payload, expires_at = EXCLUDED.expires_at"
        )
        self.nearest = (
            f"SELECT key, 1 - (embedding <=> $2) AS similarity, payload FROM {table}"  # noqa: S608 - see class doc
            " WHERE namespace = $1 AND (expires_at IS NULL OR expires_at > now())"
            " ORDER BY embedding <=> $2 LIMIT $3"
        )
        self.delete = f"DELETE FROM {table} WHERE namespace = $1 AND key = $2"  # noqa: S608 - see class doc
        # ctid batches keep one sweep short however many rows have expired.
        self.sweep = (
            f"DELETE FROM {table} WHERE ctid = ANY(ARRAY("  # noqa: S608 - see class doc
            f"SELECT ctid FROM {table} WHERE expires_at <= now() LIMIT 1000))"
        )
        self.create_index = (
            f"CREATE INDEX IF NOT EXISTS {self.index} ON {table} USING hnsw (embedding vector_cosine_ops)"
        )

    def create_table(self, dim: int) -> str:
        return (
            f"CREATE TABLE IF NOT EXISTS {self.table} (namespace text NOT NULL, key text NOT NULL,"
            f" embedding vector({int(dim)}) NOT NULL, payload bytea NOT NULL,"
            " expires_at timestamptz, PRIMARY KEY (namespace, key))"
        )


class PgVectorIndex(PgStore):
    """A :class:`~lluminary.stores.VectorIndex` on pgvector.

    ``name`` picks the table (lowercase letters, digits and ``_``). ``dim`` is
    the dimension to expect; None takes the recorded one, or the first vector's.
    """

    def __init__(
        self,
        pool: Any,
        *,
        name: str = "default",
        dim: int | None = None,
        ef_search: int = 100,
        sweep_interval: float = 60.0,
        owns_pool: bool = False,
        dsn: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(pool, owns_pool=owns_pool, dsn=dsn)
        if not _INDEX_NAME.fullmatch(name):
            raise ValueError("an index name is 1-40 lowercase letters, digits or '_', starting with a letter")
        if dim is not None and not 0 < dim <= _MAX_DIM:
            raise ValueError(f"dim must be between 1 and {_MAX_DIM}")
        self.name = name
        self.dim = dim
        self.ef_search = ef_search
        self.sweep_interval = sweep_interval
        self._sql = _Statements(name)
        self._ready = False
        self._iterative = False
        self._lock = anyio.Lock()
        self._clock = clock
        self._last_sweep = clock()

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]}, name={self.name!r}, dim={self.dim})"

    @classmethod
    async def open(cls, dsn: str | None = None, **options: Any) -> PgVectorIndex:
        """An index on its own pool (closed by :meth:`aclose`); the table is ready on return if ``dim`` is given."""
        index = cls(await open_pool(dsn), owns_pool=True, dsn=dsn, **options)
        try:
            await index._ensure(index.dim)
        except BaseException:
            await index.aclose()
            raise
        return index

    async def add(
        self, namespace: str, key: str, vector: Sequence[float], payload: bytes, ttl: float | None = None
    ) -> None:
        values = check_vector(vector, self.dim)
        seconds = norm_ttl(ttl)
        await self._ensure(len(values))
        values = check_vector(values, self.dim)  # the recorded dimension may differ from our guess
        if seconds == 0.0:
            await self.delete(namespace, key)
            return
        sweep = self._clock() - self._last_sweep >= self.sweep_interval
        if sweep:
            self._last_sweep = self._clock()
        sql = self._sql

        async def work(conn: Any) -> None:
            await conn.execute(sql.upsert, namespace, key, values, bytes(payload), seconds)
            if sweep:
                await conn.execute(sql.sweep)

        await self._run("vector add", work)

    async def nearest(self, namespace: str, vector: Sequence[float], k: int = 1) -> list[VectorHit]:
        values = check_vector(vector, self.dim)
        if k < 1:
            return []
        if not await self._ensure(None):
            return []  # nothing was ever added: there is no table to search
        values = check_vector(values, self.dim)
        sql = self._sql.nearest

        async def work(conn: Any) -> list[Any]:
            async with conn.transaction():
                if self._iterative:
                    await conn.execute("SET LOCAL hnsw.iterative_scan = strict_order")
                else:
                    # Candidates are filtered after the scan: look at more than k of them.
                    await conn.execute("SELECT set_config('hnsw.ef_search', $1, true)", str(max(self.ef_search, k)))
                return list(await conn.fetch(sql, namespace, values, k))

        rows = await self._run("vector search", work)
        return [
            VectorHit(key=row["key"], similarity=min(1.0, max(-1.0, float(row["similarity"]))), payload=row["payload"])
            for row in rows
        ]

    async def delete(self, namespace: str, key: str) -> None:
        if not await self._ensure(None):
            return

        async def work(conn: Any) -> None:
            await conn.execute(self._sql.delete, namespace, key)

        await self._run("vector delete", work)

    async def _ensure(self, dim: int | None) -> bool:
        """Make sure the table exists (creating it for ``dim`` if given); False if it does not."""
        if self._ready:
            return True
        async with self._lock:
            if self._ready:
                return True

            async def work(conn: Any) -> int | None:
                async with conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", _LOCK_CLASS, self.name)
                    recorded = await conn.fetchval(_RECORDED_DIM, self.name)
                    if recorded is not None or dim is None:
                        return int(recorded) if recorded is not None else None
                    want = self.dim or dim
                    await conn.execute(
                        "INSERT INTO lluminary_vector_indexes (name, dim) VALUES ($1, $2)", self.name, want
                    )
                    await conn.execute(self._sql.create_table(want))
                    if want <= _MAX_HNSW_DIM:  # beyond that pgvector has no HNSW: exact scans
                        await conn.execute(self._sql.create_index)
                    return want

            found = await self._run("vector index setup", work)
            if found is None:
                return False
            if self.dim is not None and self.dim != found:
                raise StoreError(f"vector index {self.name!r} holds {found} dimensions, not {self.dim}")
            self.dim = found
            version = await self._run("vector setup", _pgvector_version)
            self._iterative = version >= (0, 8)
            self._ready = True
            return True


async def _pgvector_version(conn: Any) -> tuple[int, ...]:
    text = await conn.fetchval("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    try:
        return tuple(int(part) for part in str(text).split("."))
    except ValueError:
        return (0,)
