"""The cache's recorder: what a recording holds, and that it gives back exactly what went by."""

from __future__ import annotations

from lluminary.cache import decode_entry
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
    held = recorder._events
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
