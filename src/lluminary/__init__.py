"""LLuMinary: one typed, async event stream for every LLM provider.

    import lluminary as ll

    async with ll.Engine([ll.Retry(), ll.Timeout(idle=30)]) as engine:
        async for event in engine.stream("Hello", model="openai:gpt-4o-mini"):
            if isinstance(event, ll.TextDelta):
                print(event.text, end="")

The public surface is re-exported here on purpose; everything in a ``_module``
is private. Importing this package imports no provider, no HTTP library and no
optional extra: those load on first use, and so do the operators.
"""

from typing import TYPE_CHECKING, Any

from lluminary import engine as _engine
from lluminary.engine import Engine, EventMap, EventStream, Handler, Operator
from lluminary.errors import (
    ConfigError,
    DecodeError,
    LLuminaryError,
    MissingKeyError,
    StreamError,
    UnknownModelError,
    UnknownProviderError,
)
from lluminary.events import (
    BudgetAlert,
    CacheHit,
    ChatRequest,
    Error,
    Event,
    Finish,
    ImagePart,
    Message,
    RateLimitWait,
    ReasoningDelta,
    ReasoningPart,
    RefusalDelta,
    Response,
    ResponseBuilder,
    ResponseFormat,
    Start,
    TextDelta,
    TextPart,
    ToolArgsDelta,
    ToolCall,
    ToolCallEnd,
    ToolCallPart,
    ToolCallStart,
    ToolChoice,
    ToolResultPart,
    ToolSpec,
    Usage,
    decode_event,
    encode_event,
)
from lluminary.events import Cost as CostEvent
from lluminary.events import Fallback as FallbackEvent
from lluminary.events import Retry as RetryEvent
from lluminary.stores import StoreError

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

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # The operators load on first use (most programs need two or three of them);
    # lluminary.engine knows which names they are.
    if name in _engine.OPERATORS:
        value = getattr(_engine, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "Budget",
    "BudgetAlert",
    "Cache",
    "CacheHit",
    "ChatRequest",
    "Concurrency",
    "ConfigError",
    "Cost",
    "CostEvent",
    "DecodeError",
    "Engine",
    "Error",
    "Event",
    "EventLogger",
    "EventMap",
    "EventStream",
    "Fallback",
    "FallbackEvent",
    "Finish",
    "Handler",
    "ImagePart",
    "LLuminaryError",
    "Message",
    "Metrics",
    "MissingKeyError",
    "Operator",
    "RateLimit",
    "RateLimitWait",
    "ReasoningDelta",
    "ReasoningPart",
    "RedisRateLimitStore",
    "RefusalDelta",
    "Response",
    "ResponseBuilder",
    "ResponseFormat",
    "Retry",
    "RetryBudget",
    "RetryEvent",
    "SemanticCache",
    "Start",
    "StoreError",
    "StreamError",
    "TextDelta",
    "TextPart",
    "Timeout",
    "ToolArgsDelta",
    "ToolCall",
    "ToolCallEnd",
    "ToolCallPart",
    "ToolCallStart",
    "ToolChoice",
    "ToolResultPart",
    "ToolSpec",
    "Tracing",
    "UnknownModelError",
    "UnknownProviderError",
    "Usage",
    "decode_event",
    "encode_event",
    "__version__",
]
