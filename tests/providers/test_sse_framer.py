"""The SSE framer: the WHATWG parsing rules, our additions, and chunking independence.

Every provider but Ollama and Bedrock reads its stream through
:class:`~lluminary.providers._framing.SSEFramer`, so what it gets wrong every
decoder gets wrong. The property tests build arbitrary streams, serialise them
with any mix of line endings and split the bytes anywhere: the messages must be
the same as from one unsplit feed.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lluminary.providers._framing import FramingError, NDJSONFramer, SSEFramer, SSEMessage
from lluminary.providers._framing import _ndjson as ndjson_module
from lluminary.providers._framing import _sse as sse_module
from tests.support import split

BOM = b"\xef\xbb\xbf"


def frame(*pieces: bytes) -> list[SSEMessage]:
    framer = SSEFramer()
    out: list[SSEMessage] = []
    for piece in pieces:
        out.extend(framer.feed(piece))
    out.extend(framer.close())
    return out


def frame_until_error(*pieces: bytes) -> tuple[list[SSEMessage], bool]:
    """The messages a decoder would see, and whether framing failed."""
    framer = SSEFramer()
    out: list[SSEMessage] = []
    try:
        for piece in pieces:
            out.extend(framer.feed(piece))
        out.extend(framer.close())
    except FramingError:
        return out, True
    return out, False


# -- the basics -------------------------------------------------------------------------


def test_data_without_event_name_is_a_message_event() -> None:
    assert frame(b'data: {"a":1}\n\n') == [("message", b'{"a":1}')]


def test_event_name_applies_to_its_message_only() -> None:
    body = b"event: ping\ndata: 1\n\ndata: 2\n\n"
    assert frame(body) == [("ping", b"1"), ("message", b"2")]


def test_multi_line_data_joins_with_newlines() -> None:
    assert frame(b"data: one\ndata: two\ndata:three\n\n") == [("message", b"one\ntwo\nthree")]


def test_only_one_space_after_the_colon_is_stripped() -> None:
    assert frame(b"data:  x\n\n") == [("message", b" x")]
    assert frame(b"data:x\n\n") == [("message", b"x")]


def test_a_bare_data_line_is_an_empty_data_field() -> None:
    # The spec: a line without a colon is a field name with an empty value.
    assert frame(b"data\ndata: x\n\n") == [("message", b"\nx")]
    assert frame(b"data\n\n") == [("message", b"")]


def test_comments_ids_retry_and_unknown_fields_are_ignored() -> None:
    body = b": keep-alive\nid: 7\nretry: 1000\nfoo: bar\nevent: x\ndata: y\n\n: OPENROUTER PROCESSING\n\n"
    assert frame(body) == [("x", b"y")]


def test_blank_line_without_data_dispatches_nothing_and_resets_the_event_name() -> None:
    assert frame(b"event: lost\n\ndata: z\n\n") == [("message", b"z")]


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_every_line_ending(eol: bytes) -> None:
    body = eol.join([b"event: a", b"data: 1", b"", b"data: 2", b"data: 3", b"", b""])
    assert frame(body) == [("a", b"1"), ("message", b"2\n3")]


def test_crlf_split_between_chunks_is_one_line_ending() -> None:
    # A CR at the end of a chunk ends the line; the LF that opens the next chunk
    # belongs to it and must not end an empty line (which would dispatch early).
    pieces = [b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]
    assert frame(*pieces) == [("message", b"a\nb")]


def test_cr_then_cr_is_two_line_endings() -> None:
    assert frame(b"data: a\r", b"\rdata: b\r\r") == [("message", b"a"), ("message", b"b")]


# -- end of input ----------------------------------------------------------------------


def test_close_dispatches_a_message_missing_only_its_blank_line() -> None:
    assert frame(b"data: last") == [("message", b"last")]
    assert frame(b"event: e\ndata: last\n") == [("e", b"last")]


def test_close_without_data_gives_nothing() -> None:
    assert frame() == []
    assert frame(b"event: only-a-name") == []
    assert frame(b": a comment") == []


def test_pending_tracks_half_received_messages() -> None:
    framer = SSEFramer()
    assert not framer.pending
    framer.feed(b"data: {")
    assert framer.pending
    framer.feed(b"}\n")
    assert framer.pending  # a data line waiting for its blank line
    assert framer.feed(b"\n") == [("message", b"{}")]
    assert not framer.pending


# -- byte order mark -------------------------------------------------------------------


def test_leading_bom_is_skipped() -> None:
    assert frame(BOM + b"data: x\n\n") == [("message", b"x")]


@pytest.mark.parametrize("cut", [1, 2, 3, 4])
def test_leading_bom_split_over_chunks_is_skipped(cut: int) -> None:
    body = BOM + b"data: x\n\n"
    assert frame(body[:cut], body[cut:]) == [("message", b"x")]
    assert frame(*[body[i : i + 1] for i in range(len(body))]) == [("message", b"x")]


def test_bom_is_only_special_at_the_start() -> None:
    # Later, it is part of a field name, so the line is an unknown field.
    assert frame(b"data: a\n\n" + BOM + b"data: b\n\n") == [("message", b"a")]


def test_only_part_of_a_bom_is_not_swallowed() -> None:
    framer = SSEFramer()
    assert framer.feed(b"\xef") == []
    assert framer.pending
    assert framer.close() == []  # a line with an odd field name, no data
    # Two of the three bytes stay part of the line, which is then no ``data`` field.
    assert frame(b"\xef\xbb", b"data: x\n\n") == []
    assert frame(b"\xef\xbb", b"\xbfdata: x\n\n") == [("message", b"x")]


# -- errors ------------------------------------------------------------------------------


def test_event_name_that_is_not_utf8_is_a_framing_error() -> None:
    with pytest.raises(FramingError):
        frame(b"event: \xff\xfe\ndata: x\n\n")


def test_an_endless_line_is_a_framing_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sse_module, "MAX_MESSAGE_BYTES", 64)
    framer = SSEFramer()
    framer.feed(b"data: " + b"x" * 50)
    with pytest.raises(FramingError):
        framer.feed(b"x" * 50)


def test_an_endless_message_is_a_framing_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sse_module, "MAX_MESSAGE_BYTES", 64)
    framer = SSEFramer()
    for _ in range(4):
        framer.feed(b"data: 0123456789\n")
    with pytest.raises(FramingError):
        framer.feed(b"data: 0123456789\n" * 4)


def test_messages_before_bad_input_are_delivered_and_the_error_follows() -> None:
    # Framing must not depend on chunking: whether the bad line arrives with the good
    # messages or after them, the good ones come out first and the error after.
    body = b"data: 1\n\ndata: 2\n\nevent: \xff\ndata: 3\n\n"
    framer = SSEFramer()
    assert framer.feed(body) == [("message", b"1"), ("message", b"2")]
    with pytest.raises(FramingError):
        framer.feed(b"data: 4\n\n")
    with pytest.raises(FramingError):
        framer.close()
    for cut in range(1, len(body)):
        assert frame_until_error(body[:cut], body[cut:]) == (
            [("message", b"1"), ("message", b"2")],
            True,
        ), cut


def test_an_endless_line_after_good_messages_is_deferred(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sse_module, "MAX_MESSAGE_BYTES", 64)
    framer = SSEFramer()
    assert framer.feed(b"data: ok\n\ndata: " + b"x" * 100) == [("message", b"ok")]
    with pytest.raises(FramingError):
        framer.close()


def test_ndjson_framer_follows_the_same_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ndjson_module, "MAX_MESSAGE_BYTES", 64)
    framer = NDJSONFramer()
    assert framer.feed(b'{"a":1}\r\n\n{"b":2}\n' + b"x" * 100) == [b'{"a":1}\r', b'{"b":2}']
    with pytest.raises(FramingError):
        framer.feed(b"\n")
    with pytest.raises(FramingError):
        NDJSONFramer().feed(b"y" * 100)
    framer = NDJSONFramer()
    assert framer.feed(b'{"a":1}\n{"b"') == [b'{"a":1}']
    assert framer.close() == [b'{"b"']


# -- chunking independence ---------------------------------------------------------------

_names = st.sampled_from(["", "message_start", "content_block_delta", "error", "ping"])
# Data values never contain line breaks (those are what separate lines).
_values = st.binary(max_size=30).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
_messages = st.lists(st.tuples(_names, st.lists(_values, min_size=1, max_size=3)), max_size=8)


def _serialise(messages: list[tuple[str, list[bytes]]], eol: bytes) -> bytes:
    # One line ending per stream: a CR line ending followed by an LF one would read
    # as a single CRLF, as the spec intends.
    out = bytearray()
    for name, values in messages:
        if name:
            out += b"event: " + name.encode() + eol
        for value in values:
            out += b"data: " + value + eol
        out += b": comment" + eol + eol
    return bytes(out)


@given(
    messages=_messages,
    eol=st.sampled_from([b"\n", b"\r\n", b"\r"]),
    cuts=st.lists(st.integers(min_value=1, max_value=2000), max_size=30),
    bom=st.booleans(),
)
def test_any_stream_split_anywhere_frames_the_same(
    messages: list[tuple[str, list[bytes]]], eol: bytes, cuts: list[int], bom: bool
) -> None:
    body = (BOM if bom else b"") + _serialise(messages, eol)
    expected = [(name or "message", b"\n".join(values)) for name, values in messages]
    assert frame(body) == expected
    assert frame(*split(body, cuts)) == expected


# -- against a reference: the spec's rules, one line at a time ------------------------------


def _reference(body: bytes) -> tuple[list[SSEMessage], bool]:
    """The WHATWG rules applied line by line to a whole body, plus our close rule.

    The framer takes whole messages at a time where it can; this is the slow, plain
    reading it must agree with for any input and any chunking.
    """
    if body.startswith(BOM):
        body = body[len(BOM) :]
    lines = body.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    last = lines.pop()
    if last:
        lines.append(last)  # close() reads a last line that lacks its line ending
    lines.append(b"")  # and then dispatches as a blank line would
    out: list[SSEMessage] = []
    event, data = "", []
    for line in lines:
        if not line:
            if data:
                out.append((event or "message", b"\n".join(data)))
            event, data = "", []
            continue
        if line.startswith(b":"):
            continue
        name, sep, value = line.partition(b":")
        if sep and value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            data.append(value)
        elif name == b"event":
            try:
                event = value.decode()
            except UnicodeDecodeError:
                return out, True
    return out, False


_field_values = st.binary(max_size=12).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
_lines = st.one_of(
    _field_values.map(lambda v: b"data: " + v),
    _field_values.map(lambda v: b"data:" + v),
    st.just(b"data"),
    st.sampled_from([b"", b"message_start", b"content_block_delta", b"\xff\xfe"]).map(lambda n: b"event: " + n),
    st.sampled_from([b"event:ping", b": keep-alive", b"id: 7", b"retry: 100", b"foo: bar", b""]),
)
# Mostly the shapes providers send (one data line, or an event line and one data line,
# then a blank line), mixed with everything else the spec allows.
_blocks = st.one_of(
    _field_values.map(lambda v: [b"data: " + v, b""]),
    st.tuples(_field_values, _field_values).map(lambda p: [b"event: x" + p[0], b"data: " + p[1], b""]),
    st.lists(_lines, max_size=5),
)


@given(
    blocks=st.lists(_blocks, max_size=12),
    eols=st.lists(st.sampled_from([b"\n", b"\r\n", b"\r"]), min_size=1, max_size=3),
    cuts=st.lists(st.integers(min_value=1, max_value=400), max_size=20),
    bom=st.booleans(),
    ending=st.sampled_from([b"", b"\n", b"data: tail"]),
)
def test_framing_agrees_with_the_line_by_line_reading(
    blocks: list[list[bytes]], eols: list[bytes], cuts: list[int], bom: bool, ending: bytes
) -> None:
    lines = [line for block in blocks for line in block]
    body = bytearray(BOM if bom else b"")
    for i, line in enumerate(lines):
        body += line + eols[i % len(eols)]
    body = bytes(body + ending)
    expected = _reference(body)
    assert frame_until_error(body) == expected
    assert frame_until_error(*split(body, cuts)) == expected


@given(
    blocks=st.lists(_blocks, max_size=12),
    eols=st.lists(st.sampled_from([b"\n", b"\n", b"\r\n", b"\r"]), min_size=1, max_size=3),
    bom=st.booleans(),
)
def test_one_message_per_chunk_agrees_with_the_line_by_line_reading(
    blocks: list[list[bytes]], eols: list[bytes], bom: bool
) -> None:
    """A live stream's reads are usually one message each: the framer's shortcut for them
    must agree with the reference whatever came before (a CR ending, a pending event, a BOM)."""
    chunks: list[bytes] = []
    i = 0
    for block in blocks:
        chunk = bytearray()
        for line in block:
            chunk += line + eols[i % len(eols)]
            i += 1
        chunks.append(bytes(chunk))
    if bom and chunks:
        chunks[0] = BOM + chunks[0]
    assert frame_until_error(*chunks) == _reference(b"".join(chunks))


def test_a_single_message_chunk_after_a_held_state_is_not_taken_whole() -> None:
    framer = SSEFramer()
    assert framer.feed(b'data: {"a":1}\n\n') == [("message", b'{"a":1}')]
    assert framer.feed(b"event: named\n") == []
    # The event name is pending: this chunk, one message in itself, must carry it.
    assert framer.feed(b"data: 2\n\n") == [("named", b"2")]
    assert framer.feed(b"data: 3\r") == []
    # The CR ended the line; the LF that opens this chunk is the rest of that CRLF,
    # not a blank line, so the message goes on.
    assert framer.feed(b"\ndata: 4\n\n") == [("message", b"3\n4")]
    assert framer.feed(b"data: 5\n\n") == [("message", b"5")]
    assert framer.feed(b"data: 6\n") == []
    assert framer.feed(b"data: 7\n\n") == [("message", b"6\n7")]
