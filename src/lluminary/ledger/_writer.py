"""LedgerWriter: the cost ledger's bounded hand-off, which never slows a stream.

``submit()`` puts an entry in a bounded buffer and returns at once; a background
writer records entries in batches with ``Ledger.record_many``. When the ledger
is slow or down, entries are dropped from the *ledger* (never from a stream),
counted in ``dropped`` and reported: the Cost operator fails open. ``submit()``
works from a ``finally`` block, which is where a cancelled stream's cost is
recorded. The machinery is :class:`lluminary._background.BackgroundWriter`,
shared with the event log.
"""

from __future__ import annotations

import logging

from lluminary._background import BackgroundWriter
from lluminary.ledger._entry import Ledger, LedgerEntry

__all__ = ["LedgerWriter"]

log = logging.getLogger("lluminary.ledger")


class LedgerWriter(BackgroundWriter[LedgerEntry]):
    def __init__(
        self,
        ledger: Ledger,
        *,
        buffer: int = 1024,
        batch: int = 128,
        write_timeout: float = 10.0,
        flush_timeout: float = 5.0,
        report_interval: float = 10.0,
    ) -> None:
        super().__init__(
            ledger.record_many,
            sink="the ledger",
            unit="ledger entries",
            verb="recorded",
            logger=log,
            buffer=buffer,
            batch=batch,
            write_timeout=write_timeout,
            flush_timeout=flush_timeout,
            report_interval=report_interval,
        )
        self.ledger = ledger

    def __repr__(self) -> str:
        return f"LedgerWriter(ledger={self.ledger!r}, written={self.written}, dropped={self.dropped})"

    def submit(self, entry: LedgerEntry) -> bool:
        """Hand ``entry`` to the writer without waiting; False if it had to be dropped."""
        return self.offer(entry)
