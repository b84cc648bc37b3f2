"""The event vocabulary: one tagged union of small frozen structs.

Every provider stream, every operator and every consumer speaks this union. Its
JSON form (``{"type": "text-delta", "text": "Hi", "index": 0}``) is the public wire
format used by the CLI, caches and UIs, so field names and tags are a contract
(see DESIGN.md). Structs are frozen so an event can be shared between consumers,
cached and replayed without copies, and ``gc=False`` because they never hold
reference cycles, which keeps the collector away from the hot path.
"""

from __future__ import annotations

from typing import Any, Final, Literal

import msgspec

__all__ = [
    "ERROR_CODES",
    "FINISH_REASONS",
    "TERMINAL_TYPES",
    "BudgetAlert",
    "CacheHit",
    "Cost",
    "Error",
    "ErrorCode",
    "Event",
    "Fallback",
    "Finish",
    "FinishReason",
    "RateLimitWait",
    "ReasoningDelta",
    "RefusalDelta",
    "Retry",
    "Start",
    "TextDelta",
    "ToolArgsDelta",
    "ToolCallEnd",
    "ToolCallStart",
    "Usage",
    "is_content",
    "is_terminal",
]

FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "other"]
ErrorCode = Literal[
    "auth",
    "permission",
    "not_found",
    "invalid_request",
    "context_length",
    "rate_limited",
    "overloaded",
    "server",
    "timeout",
    "connection",
    "protocol",
    "content_filter",
    "budget_exceeded",
    "cancelled",
]
FINISH_REASONS: Final = frozenset(FinishReason.__args__)  # type: ignore[attr-defined]
ERROR_CODES: Final = frozenset(ErrorCode.__args__)  # type: ignore[attr-defined]


class _Base(msgspec.Struct, frozen=True, gc=False, tag_field="type"):
    """Common base; each subclass sets its own ``tag``."""


class Start(_Base, frozen=True, gc=False, tag="start"):
    """The provider accepted the request."""

    id: str
    provider: str
    model: str


class TextDelta(_Base, frozen=True, gc=False, tag="text-delta"):
    """A piece of assistant text; ``index`` is the content block."""

    text: str
    index: int = 0


class ReasoningDelta(_Base, frozen=True, gc=False, tag="reasoning-delta"):
    """A piece of reasoning text.

    ``signature`` carries the provider's opaque proof of the reasoning (Anthropic's
    ``signature_delta``, Gemini's ``thoughtSignature``) when it arrives; it must be
    sent back with the reasoning in later turns, so it travels in the stream too.

    ``redacted`` carries a whole reasoning block that the provider encrypted
    (Anthropic's ``redacted_thinking`` ``data``, Bedrock's ``redactedContent``, as
    base64 text). It has no readable text, but a later turn must send it back
    verbatim, so it is one event of its own, never merged with other reasoning.
    It is ``UNSET`` otherwise, and then left out of the JSON and msgpack forms,
    which stay exactly what they were before the field existed.
    """

    text: str
    signature: str | None = None
    redacted: str | msgspec.UnsetType = msgspec.UNSET


class RefusalDelta(_Base, frozen=True, gc=False, tag="refusal-delta"):
    """A piece of a refusal message (OpenAI's ``delta.refusal``)."""

    text: str


class ToolCallStart(_Base, frozen=True, gc=False, tag="tool-call-start"):
    """A tool call begins.

    ``kind`` is ``UNSET`` (left out of the JSON) for a function call, the only kind
    most providers have; ``"custom"`` for an OpenAI Responses custom tool, whose
    free-text input comes as ``arguments == {"input": text}`` and must go back to
    the API as a custom call, not a function call.
    """

    index: int
    id: str
    name: str
    kind: str | msgspec.UnsetType = msgspec.UNSET


class ToolArgsDelta(_Base, frozen=True, gc=False, tag="tool-args-delta"):
    """A fragment of the call's JSON arguments, exactly as received."""

    index: int
    delta: str


class ToolCallEnd(_Base, frozen=True, gc=False, tag="tool-call-end"):
    """The call is complete; ``arguments`` is the parsed JSON object. ``kind``: see :class:`ToolCallStart`."""

    index: int
    id: str
    name: str
    arguments: dict[str, Any]
    kind: str | msgspec.UnsetType = msgspec.UNSET


class Usage(_Base, frozen=True, gc=False, tag="usage"):
    """Token counts. ``input_tokens`` includes neither cache reads nor cache writes."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False


class Finish(_Base, frozen=True, gc=False, tag="finish"):
    """Normal end of a stream."""

    reason: FinishReason
    raw_reason: str | None = None


class Error(_Base, frozen=True, gc=False, tag="error"):
    """Abnormal end of a stream."""

    code: ErrorCode
    message: str
    retryable: bool = False
    provider: str | None = None
    status: int | None = None
    retry_after: float | None = None


# Operator events. They are informational: consumers that only want content can ignore them.


class Retry(_Base, frozen=True, gc=False, tag="retry"):
    """The Retry operator is about to try again after ``delay`` seconds."""

    attempt: int
    delay: float
    code: str
    message: str = ""


class Fallback(_Base, frozen=True, gc=False, tag="fallback"):
    """The Fallback operator moved on to another model."""

    attempt: int
    model: str
    code: str


class CacheHit(_Base, frozen=True, gc=False, tag="cache-hit"):
    key: str
    similarity: float | None = None


class RateLimitWait(_Base, frozen=True, gc=False, tag="rate-limit-wait"):
    """The RateLimit operator is holding the request for ``delay`` seconds."""

    delay: float
    key: str


class BudgetAlert(_Base, frozen=True, gc=False, tag="budget-alert"):
    """Spend crossed ``threshold`` (a fraction: 0.5, 0.8, 1.0) of a budget."""

    tenant: str
    period: str
    threshold: float
    spent_usd: float
    limit_usd: float


class Cost(_Base, frozen=True, gc=False, tag="cost"):
    """Price of the stream in USD, from its usage."""

    usd: float
    input_usd: float = 0.0
    output_usd: float = 0.0
    cache_read_usd: float = 0.0
    cache_write_usd: float = 0.0
    estimated: bool = False


Event = (
    Start
    | TextDelta
    | ReasoningDelta
    | RefusalDelta
    | ToolCallStart
    | ToolArgsDelta
    | ToolCallEnd
    | Usage
    | Finish
    | Error
    | Retry
    | Fallback
    | CacheHit
    | RateLimitWait
    | BudgetAlert
    | Cost
)

TERMINAL_TYPES: Final = (Finish, Error)
_CONTENT_TYPES: Final = (
    TextDelta,
    ReasoningDelta,
    RefusalDelta,
    ToolCallStart,
    ToolArgsDelta,
    ToolCallEnd,
)


def is_terminal(event: Event) -> bool:
    """True for ``finish`` and ``error``: nothing may follow them."""
    return isinstance(event, TERMINAL_TYPES)


def is_content(event: Event) -> bool:
    """True for events that carry model output; after one, a retry would duplicate it."""
    return isinstance(event, _CONTENT_TYPES)
