"""The operators that ship with LLuMinary.

Each one maps a handler to a handler (see ``lluminary.engine.Operator``). A
typical pipeline, outermost first::

    Engine([Tracing(), Metrics(), Cost(ledger=ledger), Budget(ledger, limits),
            Cache(store), Retry(budget=RetryBudget()), Fallback([...]),
            RateLimit(...), Concurrency(8), Timeout(first_event=20, idle=30)])

Each operator's module is imported the first time its name is used, so
``import lluminary`` pays only for the operators a program actually uses.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from lluminary.engine.operators._budget import Budget
    from lluminary.engine.operators._budget_retry import RetryBudget
    from lluminary.engine.operators._cache import Cache
    from lluminary.engine.operators._concurrency import Concurrency
    from lluminary.engine.operators._cost import Cost
    from lluminary.engine.operators._eventlog import EventLogger
    from lluminary.engine.operators._fallback import Fallback
    from lluminary.engine.operators._metrics import Metrics
    from lluminary.engine.operators._ratelimit import MemoryRateLimitStore, RateLimit, RateLimitStore
    from lluminary.engine.operators._ratelimit_redis import RedisRateLimitStore
    from lluminary.engine.operators._retry import Retry
    from lluminary.engine.operators._semantic import SemanticCache
    from lluminary.engine.operators._timeout import Timeout
    from lluminary.engine.operators._tracing import Tracing

__all__ = [
    "Budget",
    "Cache",
    "Concurrency",
    "Cost",
    "EventLogger",
    "Fallback",
    "MemoryRateLimitStore",
    "Metrics",
    "RateLimit",
    "RateLimitStore",
    "RedisRateLimitStore",
    "Retry",
    "RetryBudget",
    "SemanticCache",
    "Timeout",
    "Tracing",
]

_LAZY: Final = {
    "Budget": "lluminary.engine.operators._budget",
    "Cache": "lluminary.engine.operators._cache",
    "Concurrency": "lluminary.engine.operators._concurrency",
    "Cost": "lluminary.engine.operators._cost",
    "EventLogger": "lluminary.engine.operators._eventlog",
    "Fallback": "lluminary.engine.operators._fallback",
    "MemoryRateLimitStore": "lluminary.engine.operators._ratelimit",
    "Metrics": "lluminary.engine.operators._metrics",
    "RateLimit": "lluminary.engine.operators._ratelimit",
    "RateLimitStore": "lluminary.engine.operators._ratelimit",
    "RedisRateLimitStore": "lluminary.engine.operators._ratelimit_redis",
    "Retry": "lluminary.engine.operators._retry",
    "RetryBudget": "lluminary.engine.operators._budget_retry",
    "SemanticCache": "lluminary.engine.operators._semantic",
    "Timeout": "lluminary.engine.operators._timeout",
    "Tracing": "lluminary.engine.operators._tracing",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
