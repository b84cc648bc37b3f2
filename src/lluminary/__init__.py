"""LLuMinary: one typed, async event stream for every LLM provider.

    import lluminary as ll

    async with ll.Engine([ll.Retry(), ll.Timeout(idle=30)]) as engine:
        async for event in engine.stream("Hello", model="openai:gpt-4o-mini"):
            if isinstance(event, ll.TextDelta):
                print(event.text, end="")

The public surface is re-exported here on purpose; everything in a ``_module``
is private. Importing this package imports no provider, no HTTP library and no
optional extra: those load on first use.
"""

from lluminary.engine import Engine, EventMap, EventStream, Handler, Operator, Retry, Timeout
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
    CacheHit,
    ChatRequest,
    Cost,
    Error,
    Event,
    Fallback,
    Finish,
    ImagePart,
    Message,
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
from lluminary.events import Retry as RetryEvent

__version__ = "0.1.0"

__all__ = [
    "CacheHit",
    "ChatRequest",
    "ConfigError",
    "Cost",
    "DecodeError",
    "Engine",
    "Error",
    "Event",
    "EventMap",
    "EventStream",
    "Fallback",
    "Finish",
    "Handler",
    "ImagePart",
    "LLuminaryError",
    "Message",
    "MissingKeyError",
    "Operator",
    "ReasoningDelta",
    "ReasoningPart",
    "RefusalDelta",
    "Response",
    "ResponseBuilder",
    "ResponseFormat",
    "Retry",
    "RetryEvent",
    "Start",
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
    "UnknownModelError",
    "UnknownProviderError",
    "Usage",
    "__version__",
    "decode_event",
    "encode_event",
]
