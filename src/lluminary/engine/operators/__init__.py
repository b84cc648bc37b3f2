"""The operators that ship with LLuMinary.

Each one maps a handler to a handler (see ``lluminary.engine.Operator``). A
typical pipeline, outermost first::

    Engine([Tracing(), Metrics(), Cost(ledger=ledger), Budget(ledger, limits),
            Cache(store), Retry(budget=RetryBudget()), Fallback([...]),
            RateLimit(...), Concurrency(8), Timeout(first_event=20, idle=30)])
"""

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
