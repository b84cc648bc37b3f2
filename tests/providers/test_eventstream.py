"""The AWS event stream framer: recorded bodies, every header type, every split, every corruption.

The small encoder at the top is test-only: it builds frames byte by byte from
the format description (prelude, typed headers, payload, two CRC-32s), so the
framer is checked against an independent writer, not against itself.
test_bedrock.py uses it too, to build streams no recording covers.
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lluminary.providers._framing._common import FramingError
from lluminary.providers._framing._eventstream import (
    MAX_HEADERS_BYTES,
    EventStreamFramer,
    EventStreamMessage,
)
from tests.support import FIXTURES, split

# -- a test-only encoder ------------------------------------------------------------------

BOOL_TRUE, BOOL_FALSE, BYTE, INT16, INT32, INT64, BYTES, STRING, TIMESTAMP, UUID_TYPE = range(10)


def encode_header(name: str, kind: int, value: Any = None) -> bytes:
    raw = name.encode()
    out = struct.pack(">B", len(raw)) + raw + struct.pack(">B", kind)
    if kind in (BOOL_TRUE, BOOL_FALSE):
        return out
    if kind == BYTE:
        return out + struct.pack(">b", value)
    if kind == INT16:
        return out + struct.pack(">h", value)
    if kind == INT32:
        return out + struct.pack(">i", value)
    if kind == INT64:
        return out + struct.pack(">q", value)
    if kind in (BYTES, STRING):
        data: bytes = value if kind == BYTES else value.encode()
        return out + struct.pack(">H", len(data)) + data
    if kind == TIMESTAMP:
        return out + struct.pack(">q", value)
    if kind == UUID_TYPE:
        raw_uuid: bytes = value.bytes
        return out + raw_uuid
    raise ValueError(kind)


def encode_frame(headers: bytes, payload: bytes) -> bytes:
    """One message from raw header bytes and a payload, with correct lengths and CRCs."""
    total = 12 + len(headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + headers + payload
    return body + struct.pack(">I", zlib.crc32(body))


def event_frame(event_type: str, payload: dict[str, Any] | bytes) -> bytes:
    """A ``:message-type: event`` frame as Bedrock sends it."""
    headers = (
        encode_header(":event-type", STRING, event_type)
        + encode_header(":content-type", STRING, "application/json")
        + encode_header(":message-type", STRING, "event")
    )
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return encode_frame(headers, data)


def exception_frame(exception_type: str, payload: dict[str, Any] | bytes) -> bytes:
    headers = (
        encode_header(":exception-type", STRING, exception_type)
        + encode_header(":content-type", STRING, "application/json")
        + encode_header(":message-type", STRING, "exception")
    )
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return encode_frame(headers, data)


def frame_with_prelude(total: int, headers_len: int, rest: bytes = b"") -> bytes:
    """A prelude with a valid CRC over arbitrary (possibly impossible) lengths."""
    prelude = struct.pack(">II", total, headers_len)
    return prelude + struct.pack(">I", zlib.crc32(prelude)) + rest


def frame_all(body: bytes, pieces: list[bytes] | None = None) -> list[EventStreamMessage]:
    framer = EventStreamFramer()
    out: list[EventStreamMessage] = []
    for piece in pieces if pieces is not None else [body]:
        out.extend(framer.feed(piece))
    out.extend(framer.close())
    return out


RECORDINGS = sorted(p.name.removesuffix(".eventstream.b64") for p in (FIXTURES / "bedrock").glob("*.eventstream.b64"))


def recording(name: str) -> bytes:
    return base64.b64decode((FIXTURES / "bedrock" / f"{name}.eventstream.b64").read_text())


# -- recorded bodies ------------------------------------------------------------------------


@pytest.mark.parametrize("name", RECORDINGS)
def test_recordings_frame_exactly_as_their_decoded_views(name: str) -> None:
    expected = [json.loads(line) for line in (FIXTURES / "bedrock" / f"{name}.decoded.jsonl").read_text().splitlines()]
    messages = frame_all(recording(name))
    assert len(messages) == len(expected)
    assert sum(e["total_length"] for e in expected) == len(recording(name))
    for message, view in zip(messages, expected, strict=True):
        assert message.headers == view["headers"]
        assert json.loads(message.payload) == view["payload"]
        assert message.header(":message-type") in ("event", "exception")


@pytest.mark.parametrize("name", RECORDINGS)
def test_recordings_split_at_every_byte_boundary(name: str) -> None:
    body = recording(name)
    whole = frame_all(body)
    # Dense but bounded for the long recordings: every 7th offset.
    cuts = range(1, len(body), 7) if len(body) > 2500 else range(1, len(body))
    for cut in cuts:
        assert frame_all(body, [body[:cut], body[cut:]]) == whole, cut


def test_one_byte_at_a_time() -> None:
    body = recording("converse_stream_tool_use")
    pieces = [body[i : i + 1] for i in range(len(body))]
    assert frame_all(body, pieces) == frame_all(body)


# -- header value types ---------------------------------------------------------------------

ALL_TYPES = [
    ("t", BOOL_TRUE, None, True),
    ("f", BOOL_FALSE, None, False),
    ("byte", BYTE, -128, -128),
    ("byte+", BYTE, 127, 127),
    ("i16", INT16, -32768, -32768),
    ("i32", INT32, 2**31 - 1, 2**31 - 1),
    ("i64", INT64, -(2**63), -(2**63)),
    ("raw", BYTES, b"\x00\xff\x10", b"\x00\xff\x10"),
    ("empty", BYTES, b"", b""),
    ("str", STRING, "héllo ✓", "héllo ✓"),
    ("ts", TIMESTAMP, 1_700_000_000_123, datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)),
    ("before-epoch", TIMESTAMP, -1, datetime(1970, 1, 1, tzinfo=UTC) - timedelta(milliseconds=1)),
    ("id", UUID_TYPE, UUID("12345678-1234-5678-1234-567812345678"), UUID("12345678-1234-5678-1234-567812345678")),
]


def test_every_header_value_type_round_trips() -> None:
    headers = b"".join(encode_header(name, kind, value) for name, kind, value, _ in ALL_TYPES)
    (message,) = frame_all(encode_frame(headers, b"payload"))
    assert message.headers == {name: expected for name, _, _, expected in ALL_TYPES}
    assert message.payload == b"payload"
    assert message.header("str") == "héllo ✓"
    assert message.header("i32") is None  # not a string header
    assert message.header("absent") is None


def test_smallest_message_has_no_headers_and_no_payload() -> None:
    body = encode_frame(b"", b"")
    assert len(body) == 16
    assert frame_all(body) == [EventStreamMessage({}, b"")]


header_values = st.one_of(
    st.tuples(st.just(BOOL_TRUE), st.none()),
    st.tuples(st.just(BOOL_FALSE), st.none()),
    st.tuples(st.just(BYTE), st.integers(-128, 127)),
    st.tuples(st.just(INT16), st.integers(-(2**15), 2**15 - 1)),
    st.tuples(st.just(INT32), st.integers(-(2**31), 2**31 - 1)),
    st.tuples(st.just(INT64), st.integers(-(2**63), 2**63 - 1)),
    st.tuples(st.just(BYTES), st.binary(max_size=40)),
    st.tuples(st.just(STRING), st.text(max_size=40)),
    st.tuples(st.just(TIMESTAMP), st.integers(-(10**12), 10**13)),
    st.tuples(st.just(UUID_TYPE), st.uuids()),
)
frames = st.lists(
    st.tuples(st.dictionaries(st.text(min_size=1, max_size=20), header_values, max_size=5), st.binary(max_size=80)),
    min_size=1,
    max_size=5,
)


@settings(max_examples=60)
@given(frames=frames, cuts=st.lists(st.integers(min_value=1, max_value=2000), max_size=12))
def test_any_frames_split_anywhere_decode_the_same(
    frames: list[tuple[dict[str, tuple[int, Any]], bytes]], cuts: list[int]
) -> None:
    body = b""
    for headers, payload in frames:
        raw = b"".join(encode_header(name, kind, value) for name, (kind, value) in headers.items())
        body += encode_frame(raw, payload)
    messages = frame_all(body, split(body, cuts))
    assert len(messages) == len(frames)
    for message, (headers, payload) in zip(messages, frames, strict=True):
        assert message.payload == payload
        assert set(message.headers) == set(headers)
        for name, (kind, value) in headers.items():
            got = message.headers[name]
            if kind == TIMESTAMP:
                assert got == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=value)
            elif kind in (BOOL_TRUE, BOOL_FALSE):
                assert got is (kind == BOOL_TRUE)
            else:
                assert got == value


# -- corruption ------------------------------------------------------------------------------

GOOD = event_frame("messageStart", {"role": "assistant"})


def flip(body: bytes, index: int) -> bytes:
    return body[:index] + bytes([body[index] ^ 0x01]) + body[index + 1 :]


def test_bad_prelude_crc_fails_as_soon_as_the_prelude_is_in() -> None:
    framer = EventStreamFramer()
    with pytest.raises(FramingError, match="prelude CRC"):
        framer.feed(flip(GOOD, 9)[:12])  # no need to wait for the rest of the frame


@pytest.mark.parametrize("index", [0, 3, 4, 7])
def test_corrupt_lengths_are_caught_by_the_prelude_crc(index: int) -> None:
    with pytest.raises(FramingError, match="prelude CRC"):
        frame_all(flip(GOOD, index))


@pytest.mark.parametrize("index", [12, 20, len(GOOD) - 10, len(GOOD) - 1])
def test_bad_message_crc(index: int) -> None:
    with pytest.raises(FramingError, match="message CRC"):
        frame_all(flip(GOOD, index))


@pytest.mark.parametrize(
    ("total", "headers_len", "why"),
    [
        (0, 0, "below the minimum"),
        (15, 0, "below the minimum"),
        (16 * 1024 * 1024 + 1, 0, "exceeds the limit"),
        (2**32 - 1, 0, "exceeds the limit"),
        (100, 85, "does not fit"),
        (300_000, MAX_HEADERS_BYTES + 1, "does not fit"),
    ],
)
def test_impossible_lengths(total: int, headers_len: int, why: str) -> None:
    framer = EventStreamFramer()
    with pytest.raises(FramingError, match=why):
        framer.feed(frame_with_prelude(total, headers_len))


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        (b"\x01a\x0a", "unknown value type 10"),
        (b"\x01a\xff", "unknown value type 255"),
        (b"\x00", "header name"),
        (b"\x05ab", "header name"),
        (b"\x01a\x07\x00\x09abc", "runs past"),  # string claims 9 bytes, 3 are left
        (b"\x01a\x06\x00", "runs past"),  # length prefix cut short
        (b"\x01a\x04\x00\x00", "runs past"),  # int32 cut short
        (b"\x01a\x09" + b"\x00" * 15, "runs past"),  # UUID cut short
        (b"\x02\xff\xfe\x00", "not UTF-8"),
        (b"\x01a\x07\x00\x02\xc3\x28", "not UTF-8"),
    ],
)
def test_malformed_headers(headers: bytes, why: str) -> None:
    with pytest.raises(FramingError, match=why):
        frame_all(encode_frame(headers, b"{}"))


def test_header_parsing_never_reads_into_the_payload() -> None:
    # The string claims 6 bytes; only 2 are in the headers section, but the payload
    # behind it has plenty. Reading on would "succeed"; the framer must refuse.
    with pytest.raises(FramingError, match="runs past"):
        frame_all(encode_frame(b"\x01a\x07\x00\x06ab", b"cdefgh"))


def test_truncated_frame_at_close() -> None:
    framer = EventStreamFramer()
    assert framer.feed(GOOD[:-1]) == []
    assert framer.pending
    with pytest.raises(FramingError, match="ended inside a message"):
        framer.close()


def test_clean_end_and_empty_input() -> None:
    framer = EventStreamFramer()
    assert framer.feed(b"") == []
    assert not framer.pending
    assert len(framer.feed(GOOD + GOOD)) == 2
    assert framer.close() == []


def test_garbage_gives_an_error_not_a_wait() -> None:
    with pytest.raises(FramingError):
        frame_all(b"this is not an event stream, just text")


def test_good_frames_before_a_bad_one_come_out_whatever_the_split() -> None:
    body = GOOD + GOOD + b"garbage garbage garbage"
    framer = EventStreamFramer()
    assert len(framer.feed(body)) == 2  # the good ones are handed out first …
    with pytest.raises(FramingError):
        framer.feed(b"more")  # … and the error comes on the next call
    with pytest.raises(FramingError):
        framer.close()
    framer = EventStreamFramer()
    assert len(framer.feed(body[: len(GOOD) * 2])) == 2
    with pytest.raises(FramingError):
        framer.feed(body[len(GOOD) * 2 :])
