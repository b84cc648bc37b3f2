"""The event log in Postgres: ``lluminary_events(request_id, seq, ts, event)``.

Events are kept as the exact JSON bytes the events codec wrote, so a replay
re-emits byte-for-byte what the consumer saw. ``(request_id, seq)`` is the
primary key and a repeated append keeps the first row (``ON CONFLICT DO
NOTHING``): an append retried after a lost connection can never duplicate or
reorder a stream. Timestamps are ``timestamptz`` (microsecond precision), so
the log can be queried by time with plain SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from lluminary.stores._protocols import LoggedEvent
from lluminary.stores.postgres._base import PgStore
from lluminary.stores.postgres._pool import open_pool

__all__ = ["PostgresEventLog"]

_APPEND: Final = (
    "INSERT INTO lluminary_events (request_id, seq, ts, event) VALUES ($1, $2, to_timestamp($3), $4)"
    " ON CONFLICT (request_id, seq) DO NOTHING"
)
# One round trip for a whole batch: the columns travel as four arrays.
_APPEND_MANY: Final = (
    "INSERT INTO lluminary_events (request_id, seq, ts, event)"
    " SELECT r, s, to_timestamp(t), e FROM unnest($1::text[], $2::int[], $3::float8[], $4::bytea[]) AS u(r, s, t, e)"
    " ON CONFLICT (request_id, seq) DO NOTHING"
)
_READ: Final = (
    "SELECT request_id, seq, extract(epoch FROM ts)::float8 AS ts, event FROM lluminary_events"
    " WHERE request_id = $1 ORDER BY seq"
)


class PostgresEventLog(PgStore):
    """An :class:`~lluminary.stores.EventLog` in the ``lluminary_events`` table."""

    @classmethod
    async def open(cls, dsn: str | None = None) -> PostgresEventLog:
        """A log on its own pool (closed by :meth:`aclose`); ``dsn`` as in :func:`open_pool`."""
        return cls(await open_pool(dsn), owns_pool=True, dsn=dsn)

    async def append(self, request_id: str, seq: int, ts: float, event: bytes) -> None:
        async def work(conn: Any) -> None:
            await conn.execute(_APPEND, request_id, seq, ts, bytes(event))

        await self._run("event log append", work)

    async def append_many(self, events: Sequence[LoggedEvent]) -> None:
        """Append a batch in one statement (what :class:`EventLogger` uses)."""
        if not events:
            return
        columns = (
            [e.request_id for e in events],
            [e.seq for e in events],
            [e.ts for e in events],
            [bytes(e.event) for e in events],
        )

        async def work(conn: Any) -> None:
            await conn.execute(_APPEND_MANY, *columns)

        await self._run("event log append", work)

    async def read(self, request_id: str) -> list[LoggedEvent]:
        async def work(conn: Any) -> list[Any]:
            return list(await conn.fetch(_READ, request_id))

        rows = await self._run("event log read", work)
        return [
            LoggedEvent(request_id=row["request_id"], seq=row["seq"], ts=row["ts"], event=bytes(row["event"]))
            for row in rows
        ]
