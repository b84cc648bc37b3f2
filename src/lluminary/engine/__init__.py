"""The engine, the operator type, the stream it returns, and the operators that ship.

The operators load on first use (see ``lluminary.engine.operators``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from lluminary.engine._engine import DEFAULT_MODEL, Engine
from lluminary.engine._operator import EventMap, Handler, Operator, compose
from lluminary.engine._stream import EventStream

if TYPE_CHECKING:
    from lluminary.engine.operators import (
        Budget,
        Cache,
        Concurrency,
        Cost,
        EventLogger,
        Fallback,
        Metrics,
        RateLimit,
        RedisRateLimitStore,
        Retry,
        RetryBudget,
        SemanticCache,
        Timeout,
        Tracing,
    )

__all__ = [
    "DEFAULT_MODEL",
    "Budget",
    "Cache",
    "Concurrency",
    "Cost",
    "Engine",
    "EventLogger",
    "EventMap",
    "EventStream",
    "Fallback",
    "Handler",
    "Metrics",
    "Operator",
    "RateLimit",
    "RedisRateLimitStore",
    "Retry",
    "RetryBudget",
    "SemanticCache",
    "Timeout",
    "Tracing",
    "compose",
]

#: The operators' names, each loaded on first use (``lluminary`` re-exports them too).
OPERATORS: Final = frozenset(
    {
        "Budget",
        "Cache",
        "Concurrency",
        "Cost",
        "EventLogger",
        "Fallback",
        "Metrics",
        "RateLimit",
        "RedisRateLimitStore",
        "Retry",
        "RetryBudget",
        "SemanticCache",
        "Timeout",
        "Tracing",
    }
)


def __getattr__(name: str) -> Any:
    if name in OPERATORS:
        from lluminary.engine import operators

        value = getattr(operators, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
