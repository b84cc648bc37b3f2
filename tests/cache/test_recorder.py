"""The cache's recorder: what a recording holds, and that it gives back exactly what went by."""

from __future__ import annotations

import msgspec

from lluminary.cache import ENTRY_VERSION, CacheEntry, decode_entry
from lluminary.cache._entry import Recorder
from lluminary.events import (
    CacheHit,
    Cost,
    Finish,
    ReasoningDelta,
    Start,
    TextDelta,
    ToolArgsDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    encode_events_msgpack,
)
from lluminary.events import Retry as RetryEvent

STREAM = [
    Start("r1", "openai", "m"),
    TextDelta("Hel"),
    TextDelta("lo", 0),
    TextDelta("second block", 1),
    ReasoningDelta("hmm", signature="sig"),
    ToolCallStart(0, "call_1", "f"),
    ToolArgsDelta(0, "{}"),
    ToolCallEnd(0, "call_1", "f", {}),
    Usage(3, 4),
    Finish("stop", "stop"),
]


def test_a_recording_gives_back_every_event_as_it_was() -> None:
    recorder = Recorder(100)
    for event in STREAM:
        recorder.add(event)
    assert recorder.events == STREAM
    decoded = decode_entry(recorder.entry())
    assert decoded is not None
    events, gaps = decoded
    assert events == STREAM
    assert len(gaps) == len(STREAM)
    assert all(gap >= 0 for gap in gaps)


def test_text_at_index_zero_is_held_as_its_text_alone() -> None:
    # The bulk of a stream costs a list slot and a float, not a second object per event.
    recorder = Recorder(100)
    text = "".join(["x", "y"])  # a string object of its own
    recorder.add(TextDelta(text))
    recorder.add(TextDelta("z", 1))
    held = recorder.held
    assert held[0] is text
    assert held[1] == TextDelta("z", 1)


def test_live_only_events_are_not_recorded() -> None:
    recorder = Recorder(100)
    recorder.add(Start("r1", "openai", "m"))
    recorder.add(RetryEvent(attempt=1, delay=0.5, code="overloaded"))
    recorder.add(CacheHit(key="k"))
    recorder.add(Cost(usd=0.01))
    recorder.add(TextDelta("a"))
    assert recorder.events == [Start("r1", "openai", "m"), TextDelta("a")]
    assert len(recorder.gaps_ms()) == 2


def test_past_the_bound_a_recording_frees_what_it_held_and_stays_empty() -> None:
    recorder = Recorder(3)
    for event in STREAM:
        recorder.add(event)
    assert recorder.overflowed
    assert recorder.events == []
    assert recorder.gaps_ms() == []


def test_an_entry_stores_text_at_index_zero_as_bare_strings() -> None:
    # Version 2: the bulk of a stream is a few bytes per piece, not a map of three fields.
    recorder = Recorder(100)
    for event in STREAM:
        recorder.add(event)
    entry = _entry_decoder.decode(recorder.entry())
    assert entry.version == ENTRY_VERSION == 2
    items = msgspec.msgpack.decode(entry.events)
    assert items[1:3] == ["Hel", "lo"]
    assert items[3] == {"type": "text-delta", "text": "second block", "index": 1}
    many = Recorder(1000)
    for i in range(200):
        many.add(TextDelta(f"w{i} "))
    many.add(Finish("stop", "stop"))
    assert len(many.entry()) < 2000  # about 5 bytes per piece and 1 per gap; version 1 took 40 per piece


def test_an_entry_of_version_1_is_still_read() -> None:
    legacy = CacheEntry(1, encode_events_msgpack(STREAM), [0] * len(STREAM), 0.0).encode()
    assert decode_entry(legacy) == (STREAM, [0] * len(STREAM))


def test_an_entry_of_an_unknown_version_or_with_junk_items_is_a_miss() -> None:
    assert decode_entry(CacheEntry(3, b"\x90", [], 0.0).encode()) is None
    junk = msgspec.msgpack.encode(["text", 7])
    assert decode_entry(CacheEntry(2, junk, [0, 0], 0.0).encode()) is None
    not_finished = msgspec.msgpack.encode(["text"])
    assert decode_entry(CacheEntry(2, not_finished, [0], 0.0).encode()) is None


_entry_decoder = msgspec.msgpack.Decoder(CacheEntry)
