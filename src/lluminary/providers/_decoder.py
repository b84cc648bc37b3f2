"""The sans-IO decoder base: bytes in, events out, exactly one terminal event.

A provider decoder subclasses :class:`BaseDecoder` and implements ``_feed`` (and
usually ``_close``), calling the emit helpers. The base enforces the stream
invariants of DESIGN.md so no provider can forget them:

- nothing is emitted after ``finish`` or ``error``;
- ``usage`` precedes ``finish``; when the provider reported none, an estimate
  marked ``estimated`` is emitted instead;
- input that cannot be decoded, of any kind, ends the stream with one
  ``protocol`` error; ``feed`` and ``close`` never raise;
- ``close`` without the provider's end marker is a ``protocol`` error, never a
  quiet ``finish``.

It imports no I/O library: tests drive it from bytes alone.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

from lluminary.events import (
    Error,
    ErrorCode,
    Event,
    Finish,
    FinishReason,
    ReasoningDelta,
    Start,
    TextDelta,
    Usage,
)
from lluminary.providers._errors import error_event
from lluminary.providers._toolcalls import ToolCallAssembler

__all__ = ["BaseDecoder", "Decoder", "ProtocolViolationError", "estimate_tokens"]

#: Characters per token for our own estimates. The common rule of thumb for
#: English with BPE tokenizers (OpenAI, Anthropic and Google all quote ~4).
CHARS_PER_TOKEN = 4


def estimate_tokens(chars: int) -> int:
    """A documented estimate: one token per four characters, rounded up."""
    return -(-chars // CHARS_PER_TOKEN)


class Decoder(Protocol):
    """What the HTTP layer drives: ``feed`` each chunk, ``close`` at end of body."""

    @property
    def done(self) -> bool: ...

    def feed(self, data: bytes) -> list[Event]: ...

    def close(self) -> list[Event]: ...

    def interrupt(self, event: Error) -> list[Event]: ...


class ProtocolViolationError(Exception):
    """Raised inside a decoder for well-framed input that breaks the provider's protocol."""


class BaseDecoder:
    provider: ClassVar[str] = "unknown"

    def __init__(self, *, model: str = "", input_estimate: int = 0, secrets: tuple[str, ...] = ()) -> None:
        self.model = model
        self.input_estimate = input_estimate
        self.secrets = secrets
        self.tools = ToolCallAssembler()
        self._out: list[Event] = []
        self._done = False
        self._started = False
        self._usage: Usage | None = None
        self._chars = 0

    # -- driving ---------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self._done

    def feed(self, data: bytes) -> list[Event]:
        if self._done or not data:
            return []
        out: list[Event] = []
        self._out = out
        try:
            self._feed(data)
        except Exception as exc:  # noqa: BLE001 - the sans-IO boundary: any bad input is a protocol error
            self._protocol_error(exc)
        return out

    def close(self) -> list[Event]:
        if self._done:
            return []
        out: list[Event] = []
        self._out = out
        try:
            self._close()
        except Exception as exc:  # noqa: BLE001 - as in feed
            self._protocol_error(exc)
        if not self._done:
            self.error("protocol", "the stream ended before the provider's end marker")
        return out

    def interrupt(self, event: Error) -> list[Event]:
        """The transport failed: end with ``event`` (after usage so far), unless already ended."""
        if self._done:
            return []
        out: list[Event] = []
        self._out = out
        self.fail(event)
        return out

    # -- for subclasses --------------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        """Flush what the framer holds. Emit nothing terminal unless the end marker came."""

    def start(self, id: str, model: str | None = None) -> None:
        if not self._started:
            self._started = True
            self._out.append(Start(id=id, provider=self.provider, model=model or self.model))

    def text(self, text: str, index: int = 0) -> None:
        if text:
            self._chars += len(text)
            self._out.append(TextDelta(text, index))

    def reasoning(self, text: str, signature: str | None = None) -> None:
        if text or signature:
            self._chars += len(text)
            self._out.append(ReasoningDelta(text, signature))

    def emit(self, event: Event) -> None:
        self._out.append(event)

    def emit_all(self, events: list[Any]) -> None:
        for event in events:
            delta = getattr(event, "delta", None)
            if delta is not None:
                self._chars += len(delta)
        self._out.extend(events)

    def set_usage(self, usage: Usage) -> None:
        """Remember usage; it is emitted just before the terminal event."""
        self._usage = usage

    def finish(self, reason: FinishReason, raw_reason: str | None = None) -> None:
        """Normal end: close open tool calls, then usage, then ``finish``.

        An end marker before the response even started (``data: [DONE]`` alone, a
        ``message_stop`` without ``message_start``) is not a response: it ends in a
        ``protocol`` error, so an empty body can never pass for a completed answer.
        """
        if self._done:
            return
        if not self._started:
            self.error("protocol", f"the {self.provider} stream ended before any response", retryable=False)
            return
        if self.tools.open:
            self.emit_all(self.tools.end_all())
        self._out.append(self._usage or self._estimated_usage())
        self._out.append(Finish(reason, raw_reason))
        self._done = True

    def error(
        self,
        code: ErrorCode,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        retryable: bool | None = None,
    ) -> None:
        self.fail(
            error_event(
                code,
                message,
                provider=self.provider,
                status=status,
                retry_after=retry_after,
                retryable=retryable,
                secrets=self.secrets,
            )
        )

    def fail(self, event: Error) -> None:
        """Abnormal end. Usage seen so far (or an estimate) goes first, so aborted streams can be priced."""
        if self._done:
            return
        if self._started:
            self._out.append(self._usage or self._estimated_usage())
        self._out.append(event)
        self._done = True

    # -- internals --------------------------------------------------------------------

    def _estimated_usage(self) -> Usage:
        return Usage(
            input_tokens=self.input_estimate,
            output_tokens=estimate_tokens(self._chars),
            estimated=True,
        )

    def _protocol_error(self, exc: Exception) -> None:
        detail = str(exc) or type(exc).__name__
        self.error("protocol", f"malformed {self.provider} stream: {detail}", retryable=False)
