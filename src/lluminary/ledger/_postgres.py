"""PostgresLedger: the ledger in ``lluminary_ledger`` (migration ``0005_ledger.sql``).

It runs on an asyncpg pool from :func:`lluminary.stores.postgres.open_pool`,
which applies the migration, and every query goes through
:func:`~lluminary.stores.postgres.with_connection`, so a database restart costs
at most the query in flight and driver errors arrive as
:class:`~lluminary.stores.StoreError` without secrets in their text.

Writes are idempotent (``ON CONFLICT (request_id) DO NOTHING``): the Cost
operator's writer may retry a batch after a lost connection without counting a
request twice. A batch is one statement (the columns travel as arrays). Reports
group in SQL by a fixed expression per grouping, never by caller text.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, TypeVar

from lluminary.ledger._entry import GROUP_BY, GroupBy, LedgerEntry, Report, ReportRow
from lluminary.stores._common import redact_url
from lluminary.stores._protocols import StoreError

__all__ = ["PostgresLedger"]

T = TypeVar("T")

_INSERT_MANY: Final = (
    "INSERT INTO lluminary_ledger (request_id, ts, tenant, provider, model, input_tokens, output_tokens,"
    " cache_read_tokens, cache_write_tokens, reasoning_tokens, cost_usd, estimated, status, latency_ms)"
    " SELECT r, to_timestamp(t), te, p, m, i, o, cr, cw, rs, c, e, s, l"
    " FROM unnest($1::text[], $2::float8[], $3::text[], $4::text[], $5::text[], $6::int8[], $7::int8[],"
    " $8::int8[], $9::int8[], $10::int8[], $11::float8[], $12::bool[], $13::text[], $14::float8[])"
    " AS u(r, t, te, p, m, i, o, cr, cw, rs, c, e, s, l)"
    " ON CONFLICT (request_id) DO NOTHING"
)
_SPEND: Final = (
    "SELECT coalesce(sum(cost_usd), 0)::float8 FROM lluminary_ledger WHERE tenant = $1 AND ts >= to_timestamp($2)"
)
_READ: Final = (
    "SELECT request_id, extract(epoch FROM ts)::float8 AS ts, tenant, provider, model, input_tokens,"
    " output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, cost_usd, estimated, status,"
    " latency_ms FROM lluminary_ledger WHERE request_id = ANY($1::text[]) ORDER BY request_id"
)
# The grouping expressions, chosen from this fixed map only (PITFALLS: no caller text in SQL).
_KEYS: Final[dict[GroupBy, str]] = {
    "model": "provider || ':' || model",
    "tenant": "tenant",
    "day": "to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
}
_REPORT: Final = (
    "SELECT {key} AS key, count(*) AS requests,"
    " coalesce(sum(input_tokens), 0)::int8 AS input_tokens, coalesce(sum(output_tokens), 0)::int8 AS output_tokens,"
    " coalesce(sum(cache_read_tokens), 0)::int8 AS cache_read_tokens,"
    " coalesce(sum(cache_write_tokens), 0)::int8 AS cache_write_tokens,"
    " coalesce(sum(cost_usd), 0)::float8 AS cost_usd,"
    " count(*) FILTER (WHERE estimated) AS estimated, count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced"
    " FROM lluminary_ledger WHERE ts >= to_timestamp($1) AND ($2::float8 IS NULL OR ts < to_timestamp($2))"
    " GROUP BY 1 ORDER BY 1"
)
_REPORTS: Final = {by: _REPORT.format(key=key) for by, key in _KEYS.items()}


class PostgresLedger:
    """A :class:`~lluminary.ledger.Ledger` on an asyncpg pool (closed by :meth:`aclose` only if owned)."""

    def __init__(self, pool: Any, *, owns_pool: bool = False, dsn: str | None = None) -> None:
        self.pool = pool
        self._owns_pool = owns_pool
        self._where = redact_url(dsn) if dsn else None
        self._closed = False

    @classmethod
    async def open(cls, dsn: str | None = None) -> PostgresLedger:
        """A ledger on its own migrated pool; ``dsn`` as in :func:`~lluminary.stores.postgres.open_pool`."""
        from lluminary.stores.postgres import open_pool

        return cls(await open_pool(dsn), owns_pool=True, dsn=dsn)

    def __repr__(self) -> str:
        return f"PostgresLedger({f'dsn={self._where!r}' if self._where else 'pool'})"

    async def record(self, entry: LedgerEntry) -> None:
        await self.record_many([entry])

    async def record_many(self, entries: Sequence[LedgerEntry]) -> None:
        if not entries:
            return
        columns = (
            [e.request_id for e in entries],
            [e.ts for e in entries],
            [e.tenant for e in entries],
            [e.provider for e in entries],
            [e.model for e in entries],
            [e.input_tokens for e in entries],
            [e.output_tokens for e in entries],
            [e.cache_read_tokens for e in entries],
            [e.cache_write_tokens for e in entries],
            [e.reasoning_tokens for e in entries],
            [e.cost_usd for e in entries],
            [e.estimated for e in entries],
            [e.status for e in entries],
            [e.latency_ms for e in entries],
        )

        async def work(conn: Any) -> None:
            await conn.execute(_INSERT_MANY, *columns)

        await self._run("ledger write", work)

    async def spend(self, tenant: str, since: float) -> float:
        async def work(conn: Any) -> float:
            return float(await conn.fetchval(_SPEND, tenant, since))

        return await self._run("ledger spend", work)

    async def report(self, *, since: float, until: float | None = None, by: GroupBy = "model") -> Report:
        if by not in GROUP_BY:
            raise ValueError(f"cannot group by {by!r}; choose one of {', '.join(GROUP_BY)}")
        sql = _REPORTS[by]

        async def work(conn: Any) -> list[Any]:
            return list(await conn.fetch(sql, since, until))

        rows = await self._run("ledger report", work)
        return Report(by=by, since=since, until=until, rows=[ReportRow(**dict(row)) for row in rows])

    async def entries(self, request_ids: Sequence[str]) -> list[LedgerEntry]:
        """The entries recorded under ``request_ids`` (for audits and tests), by request id."""

        async def work(conn: Any) -> list[Any]:
            return list(await conn.fetch(_READ, list(request_ids)))

        return [LedgerEntry(**dict(row)) for row in await self._run("ledger read", work)]

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._owns_pool:
            await self.pool.close()

    async def _run(self, what: str, work: Callable[[Any], Awaitable[T]]) -> T:
        if self._closed:
            raise StoreError("PostgresLedger is closed")
        from lluminary.stores.postgres import with_connection

        return await with_connection(self.pool, work, what=what)
