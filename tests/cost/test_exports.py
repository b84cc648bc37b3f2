"""The public surface of the cost packages, pinned: a name leaves or arrives only on purpose."""

from __future__ import annotations

import lluminary.ledger
import lluminary.pricing
import lluminary.tokens
from lluminary.commands import costs
from lluminary.engine.operators import _budget, _cost


def test_pricing_exports() -> None:
    assert lluminary.pricing.__all__ == [
        "PRICES_FILE",
        "ModelPrice",
        "PriceTable",
        "Rates",
        "UnknownPriceError",
        "default_table",
        "price",
    ]


def test_tokens_exports() -> None:
    assert lluminary.tokens.__all__ == [
        "ENCODINGS",
        "ESTIMATE",
        "REMOTE_COUNTERS",
        "TokenCount",
        "TokenCountError",
        "cache_path",
        "count_tokens",
        "count_tokens_remote",
        "count_with_encoding",
        "encoding_for_model",
        "load_encoding",
    ]


def test_ledger_exports() -> None:
    assert lluminary.ledger.__all__ == [
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


def test_operator_and_command_modules() -> None:
    assert _cost.__all__ == ["Cost", "request_tenant"]
    assert _budget.__all__ == ["PERIODS", "Budget", "period_start"]
    assert costs.__all__ == ["HELP", "add_arguments", "costs", "format_table", "parse_since", "run", "write_csv"]
    for module in (lluminary.pricing, lluminary.tokens, lluminary.ledger):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"
