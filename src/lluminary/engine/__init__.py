"""The engine, the operator type, the stream it returns, and the operators that ship."""

from lluminary.engine._engine import DEFAULT_MODEL, Engine
from lluminary.engine._operator import EventMap, Handler, Operator, compose
from lluminary.engine._stream import EventStream
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
