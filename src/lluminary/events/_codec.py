"""The codecs of the public wire format: JSON lines for people and UIs, msgpack for stores.

Encoders and decoders are built once at import, as msgspec recommends; both are
strict, so anything that is not a valid event is a :class:`~lluminary.errors.DecodeError`.
"""

from __future__ import annotations

import msgspec

from lluminary.errors import DecodeError
from lluminary.events._events import Event
from lluminary.events._request import ChatRequest

__all__ = [
    "decode_event",
    "decode_events_msgpack",
    "encode_event",
    "encode_events_msgpack",
    "encode_request",
]

_json_encoder = msgspec.json.Encoder()
_json_event_decoder = msgspec.json.Decoder(Event)
_msgpack_encoder = msgspec.msgpack.Encoder()
_msgpack_events_decoder = msgspec.msgpack.Decoder(list[Event])


def encode_event(event: Event) -> bytes:
    """One event as compact JSON, the form ``--events`` prints."""
    return _json_encoder.encode(event)


def decode_event(data: bytes | str) -> Event:
    try:
        event: Event = _json_event_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise DecodeError(f"not an event: {exc}") from None
    return event


def encode_events_msgpack(events: list[Event]) -> bytes:
    return _msgpack_encoder.encode(events)


def decode_events_msgpack(data: bytes) -> list[Event]:
    try:
        return _msgpack_events_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise DecodeError(f"not an event list: {exc}") from None


def encode_request(request: ChatRequest) -> bytes:
    """A request as canonical JSON (sorted keys), the input to cache keys."""
    return msgspec.json.encode(request, order="sorted")
