"""Prices: the price table (``prices.json``: sources, date checked, USD per million tokens) and ``price()``.

    from lluminary.pricing import price
    cost = price(usage, "openai", "gpt-4o-mini-2024-07-18")   # events.Cost

A model the table does not know raises :class:`UnknownPriceError`; nothing is
ever priced at a silent zero. Ollama and the local model are free, explicitly.
"""

from lluminary.pricing._table import (
    PRICES_FILE,
    ModelPrice,
    PriceTable,
    Rates,
    UnknownPriceError,
    default_table,
    price,
)

__all__ = ["PRICES_FILE", "ModelPrice", "PriceTable", "Rates", "UnknownPriceError", "default_table", "price"]
