"""The one tool-call assembler every provider uses.

Providers stream tool calls in three shapes: fragments keyed by an index
(OpenAI, Mistral, Cohere), fragments keyed by a content block (Anthropic,
Bedrock), or whole calls (Gemini, Ollama). This accumulator turns all three into
``tool-call-start``, ``tool-args-delta``…, ``tool-call-end`` with our own index
(the call's ordinal in the response), and validates the JSON exactly once, at
the end. Half-received JSON is never "repaired": it raises
:class:`ToolArgumentsError`, which the decoder turns into a ``protocol`` error.
"""

from __future__ import annotations

from typing import Any

import msgspec

from lluminary.events import ToolArgsDelta, ToolCallEnd, ToolCallStart

__all__ = ["ToolArgumentsError", "ToolCallAssembler"]

_decode_json = msgspec.json.Decoder().decode
_encode_json = msgspec.json.encode


class ToolArgumentsError(ValueError):
    """A finished tool call whose arguments are not one JSON object."""


class _Call:
    __slots__ = ("args", "id", "index", "kind", "name")

    def __init__(self, index: int, id: str, name: str, kind: str | msgspec.UnsetType) -> None:
        self.index = index
        self.id = id
        self.name = name
        self.kind = kind
        self.args: list[str] = []


class ToolCallAssembler:
    """Accumulates calls keyed by the vendor's index or id, in order of appearance."""

    __slots__ = ("_calls", "_count")

    def __init__(self) -> None:
        self._calls: dict[object, _Call] = {}
        self._count = 0

    def __contains__(self, key: object) -> bool:
        return key in self._calls

    @property
    def open(self) -> bool:
        """True while some call has started and not ended."""
        return bool(self._calls)

    @property
    def count(self) -> int:
        """How many calls have started in this response."""
        return self._count

    def start(self, key: object, id: str, name: str, kind: str | msgspec.UnsetType = msgspec.UNSET) -> ToolCallStart:
        """Open a call; ``kind`` is for calls other than function calls (see ``ToolCallStart``)."""
        if key in self._calls:
            raise ToolArgumentsError(f"tool call {key!r} started twice")
        call = _Call(self._count, id, name, kind)
        self._count += 1
        self._calls[key] = call
        return ToolCallStart(call.index, id, name, kind)

    def delta(self, key: object, fragment: str) -> ToolArgsDelta | None:
        """Record a fragment; empty fragments produce no event."""
        call = self._calls.get(key)
        if call is None:
            raise ToolArgumentsError(f"arguments for tool call {key!r}, which never started")
        if not fragment:
            return None
        call.args.append(fragment)
        return ToolArgsDelta(call.index, fragment)

    def end(self, key: object) -> list[ToolArgsDelta | ToolCallEnd]:
        """Finish one call: validate its JSON and emit its end.

        A call that streamed no arguments (Anthropic's tools without parameters)
        gets one ``{}`` delta first, so the deltas of every call concatenate to the
        JSON its ``arguments`` came from.
        """
        call = self._calls.pop(key, None)
        if call is None:
            raise ToolArgumentsError(f"tool call {key!r} ended but never started")
        out: list[ToolArgsDelta | ToolCallEnd] = []
        if call.args:
            text = call.args[0] if len(call.args) == 1 else "".join(call.args)
        else:
            text = "{}"
            out.append(ToolArgsDelta(call.index, text))
        out.append(ToolCallEnd(call.index, call.id, call.name, _parse_arguments(text, call.name), call.kind))
        return out

    def end_all(self) -> list[ToolArgsDelta | ToolCallEnd]:
        """Finish every open call, in the order they started."""
        out: list[ToolArgsDelta | ToolCallEnd] = []
        for key in list(self._calls):
            out.extend(self.end(key))
        return out

    def whole(
        self, key: object, id: str, name: str, arguments: Any
    ) -> list[ToolCallStart | ToolArgsDelta | ToolCallEnd]:
        """A call that arrived complete: ``arguments`` is a JSON string or an object."""
        start = self.start(key, id, name)
        if isinstance(arguments, str):
            text = arguments
        elif arguments is None:
            text = ""
        else:
            text = _encode_json(arguments).decode()
        delta = self.delta(key, text)
        return [start, *([delta] if delta else []), *self.end(key)]


def _parse_arguments(text: str, name: str) -> dict[str, Any]:
    try:
        value = _decode_json(text)
    except msgspec.DecodeError:
        raise ToolArgumentsError(f"tool call {name!r} has arguments that are not valid JSON") from None
    if not isinstance(value, dict):
        raise ToolArgumentsError(f"tool call {name!r} has arguments that are not a JSON object")
    return value
