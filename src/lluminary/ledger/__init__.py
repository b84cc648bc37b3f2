"""The cost ledger: one row per request, what it cost and how it ended.

The Cost operator writes it (through :class:`LedgerWriter`, a bounded hand-off
that never slows a stream), the Budget operator reads spend from it, and
``lluminary costs`` reports on it. :class:`MemoryLedger` keeps it in the
process; :class:`PostgresLedger` in the ``lluminary_ledger`` table.
"""

from lluminary.ledger._entry import GROUP_BY, GroupBy, Ledger, LedgerEntry, Report, ReportRow, day_of, summarize
from lluminary.ledger._memory import MemoryLedger
from lluminary.ledger._postgres import PostgresLedger
from lluminary.ledger._writer import LedgerWriter

__all__ = [
    "GROUP_BY",
    "GroupBy",
    "Ledger",
    "LedgerEntry",
    "LedgerWriter",
    "MemoryLedger",
    "PostgresLedger",
    "Report",
    "ReportRow",
    "day_of",
    "summarize",
]
