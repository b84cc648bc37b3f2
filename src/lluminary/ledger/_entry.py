"""The ledger's vocabulary: one row per request, the ``Ledger`` protocol, and reports.

A :class:`LedgerEntry` is what one request cost: who asked (``tenant``), which
model answered, the tokens, the price and how the stream ended. ``cost_usd`` is
None when the model has no known price, which is kept apart from a real zero
(a free local model, or a request refused before any upstream call): reports
count such requests as ``unpriced`` instead of adding a silent 0 to the total.

Reports group rows by model (``provider:model``), tenant, or UTC day and carry
a total that is the sum of their rows. :func:`summarize` is the reference
implementation over entries in memory; the Postgres ledger computes the same in SQL.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from typing import Final, Literal, Protocol, runtime_checkable

import msgspec

__all__ = ["GROUP_BY", "GroupBy", "Ledger", "LedgerEntry", "Report", "ReportRow", "day_of", "summarize"]

GroupBy = Literal["model", "tenant", "day"]
GROUP_BY: Final[tuple[GroupBy, ...]] = ("model", "tenant", "day")


class LedgerEntry(msgspec.Struct, frozen=True):
    """One request. ``status`` is ``finish``, an error code, or ``cancelled``; ``ts`` is when it ended."""

    request_id: str
    ts: float  # seconds since the epoch
    tenant: str
    provider: str
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float | None = None  # None: no price known for the model
    estimated: bool = False
    status: str = "finish"
    latency_ms: float = 0.0


class ReportRow(msgspec.Struct, frozen=True):
    """One group: requests, tokens and cost. ``estimated`` and ``unpriced`` count requests."""

    key: str
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    estimated: int = 0
    unpriced: int = 0


class Report(msgspec.Struct, frozen=True):
    """Rows ordered by key, for entries with ``since <= ts < until``."""

    by: GroupBy
    since: float
    until: float | None
    rows: list[ReportRow]

    @property
    def total(self) -> ReportRow:
        """The sum of every row."""
        rows = self.rows
        return ReportRow(
            key="total",
            requests=sum(r.requests for r in rows),
            input_tokens=sum(r.input_tokens for r in rows),
            output_tokens=sum(r.output_tokens for r in rows),
            cache_read_tokens=sum(r.cache_read_tokens for r in rows),
            cache_write_tokens=sum(r.cache_write_tokens for r in rows),
            cost_usd=math.fsum(r.cost_usd for r in rows),
            estimated=sum(r.estimated for r in rows),
            unpriced=sum(r.unpriced for r in rows),
        )


@runtime_checkable
class Ledger(Protocol):
    """Where the Cost operator records requests and the Budget operator reads spend.

    Implementations raise :class:`~lluminary.stores.StoreError` when their backend fails.
    """

    async def record(self, entry: LedgerEntry) -> None:
        """Add one entry; recording the same ``request_id`` again keeps the first."""
        ...

    async def record_many(self, entries: Sequence[LedgerEntry]) -> None: ...

    async def spend(self, tenant: str, since: float) -> float:
        """USD of ``tenant``'s priced requests that ended at or after ``since``."""
        ...

    async def report(self, *, since: float, until: float | None = None, by: GroupBy = "model") -> Report: ...

    async def aclose(self) -> None: ...


def day_of(ts: float) -> str:
    """The UTC day of ``ts`` as ``YYYY-MM-DD``."""
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


def _key(entry: LedgerEntry, by: GroupBy) -> str:
    if by == "model":
        return f"{entry.provider}:{entry.model}"
    if by == "tenant":
        return entry.tenant
    return day_of(entry.ts)


def summarize(entries: Iterable[LedgerEntry], *, by: GroupBy, since: float, until: float | None = None) -> Report:
    """The report over ``entries`` (those outside ``[since, until)`` are skipped)."""
    if by not in GROUP_BY:
        raise ValueError(f"cannot group by {by!r}; choose one of {', '.join(GROUP_BY)}")
    groups: dict[str, list[LedgerEntry]] = {}
    for entry in entries:
        if entry.ts >= since and (until is None or entry.ts < until):
            groups.setdefault(_key(entry, by), []).append(entry)
    rows = [
        ReportRow(
            key=key,
            requests=len(group),
            input_tokens=sum(e.input_tokens for e in group),
            output_tokens=sum(e.output_tokens for e in group),
            cache_read_tokens=sum(e.cache_read_tokens for e in group),
            cache_write_tokens=sum(e.cache_write_tokens for e in group),
            cost_usd=math.fsum(e.cost_usd for e in group if e.cost_usd is not None),
            estimated=sum(1 for e in group if e.estimated),
            unpriced=sum(1 for e in group if e.cost_usd is None),
        )
        for key, group in sorted(groups.items())
    ]
    return Report(by=by, since=since, until=until, rows=rows)
