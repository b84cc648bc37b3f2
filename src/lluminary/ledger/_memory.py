"""MemoryLedger: the ledger in this process, for tests, scripts and single-process services.

Entries are kept up to ``max_entries`` (oldest dropped first), so memory stays
bounded however long the process runs. Budgets must not loosen when old entries
go, so spend is also kept per tenant and UTC day, which is tiny: a budget period
(a day or a month) starts at a UTC midnight and is answered from those sums
exactly. A ``since`` that is not a UTC midnight is answered from the entries
still held.
"""

from __future__ import annotations

import calendar
import math
import time
from collections import deque
from collections.abc import Sequence

from lluminary.ledger._entry import GroupBy, LedgerEntry, Report, day_of, summarize

__all__ = ["MemoryLedger"]


class MemoryLedger:
    def __init__(self, *, max_entries: int = 100_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be positive")
        self._entries: deque[LedgerEntry] = deque(maxlen=max_entries)
        self._ids: set[str] = set()
        self._daily: dict[tuple[str, str], float] = {}

    def __repr__(self) -> str:
        return f"MemoryLedger(entries={len(self._entries)})"

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def entries(self) -> list[LedgerEntry]:
        """The entries held, oldest first."""
        return list(self._entries)

    async def record(self, entry: LedgerEntry) -> None:
        if entry.request_id in self._ids:
            return
        if len(self._entries) == self._entries.maxlen:
            self._ids.discard(self._entries[0].request_id)
        self._entries.append(entry)
        self._ids.add(entry.request_id)
        if entry.cost_usd is not None:
            key = (entry.tenant, day_of(entry.ts))
            self._daily[key] = self._daily.get(key, 0.0) + entry.cost_usd

    async def record_many(self, entries: Sequence[LedgerEntry]) -> None:
        for entry in entries:
            await self.record(entry)

    async def spend(self, tenant: str, since: float) -> float:
        if since == _midnight(since):
            first = day_of(since)
            return math.fsum(usd for (t, day), usd in self._daily.items() if t == tenant and day >= first)
        return math.fsum(
            e.cost_usd for e in self._entries if e.tenant == tenant and e.ts >= since and e.cost_usd is not None
        )

    async def report(self, *, since: float, until: float | None = None, by: GroupBy = "model") -> Report:
        return summarize(self._entries, by=by, since=since, until=until)

    async def aclose(self) -> None:
        """Nothing to release."""


def _midnight(ts: float) -> float:
    day = time.gmtime(ts)
    return float(calendar.timegm((day.tm_year, day.tm_mon, day.tm_mday, 0, 0, 0)))
