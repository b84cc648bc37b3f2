"""The tool-call assembler: ordinals, the ``{}`` rule, validation once at the end.

Every provider builds its tool-call events through
:class:`~lluminary.providers.ToolCallAssembler`, so the invariants of DESIGN.md
(start, deltas, end with the same index; deltas concatenating to the arguments;
no half-parsed call) are pinned here once, independently of any wire format.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lluminary.events import ToolArgsDelta, ToolCallEnd, ToolCallStart
from lluminary.providers import ToolArgumentsError, ToolCallAssembler


def test_fragments_assemble_into_start_deltas_end() -> None:
    tools = ToolCallAssembler()
    events: list[object] = [tools.start(0, "call_1", "get_weather")]
    for fragment in ['{"loc', 'ation": "Pa', 'ris"}']:
        events.append(tools.delta(0, fragment))
    events.extend(tools.end(0))
    assert events == [
        ToolCallStart(0, "call_1", "get_weather"),
        ToolArgsDelta(0, '{"loc'),
        ToolArgsDelta(0, 'ation": "Pa'),
        ToolArgsDelta(0, 'ris"}'),
        ToolCallEnd(0, "call_1", "get_weather", {"location": "Paris"}),
    ]
    assert not tools.open


def test_our_index_is_the_ordinal_not_the_vendor_key() -> None:
    tools = ToolCallAssembler()
    # Anthropic keys by content block (text first, so the first tool is block 1),
    # OpenAI by (choice, index); whatever the key, we number calls 0, 1, 2 …
    assert tools.start(1, "a", "first") == ToolCallStart(0, "a", "first")
    assert tools.start((0, 7), "b", "second") == ToolCallStart(1, "b", "second")
    assert tools.start("toolu_x", "c", "third") == ToolCallStart(2, "c", "third")
    assert tools.count == 3
    assert tools.delta((0, 7), "{}") == ToolArgsDelta(1, "{}")


def test_interleaved_calls_stay_apart() -> None:
    tools = ToolCallAssembler()
    tools.start("a", "id_a", "one")
    tools.start("b", "id_b", "two")
    tools.delta("b", '{"y":')
    tools.delta("a", '{"x":')
    tools.delta("a", "1}")
    tools.delta("b", "2}")
    assert tools.end_all() == [
        ToolCallEnd(0, "id_a", "one", {"x": 1}),
        ToolCallEnd(1, "id_b", "two", {"y": 2}),
    ]


def test_empty_fragments_produce_no_event() -> None:
    tools = ToolCallAssembler()
    tools.start(0, "id", "f")
    assert tools.delta(0, "") is None
    assert tools.end(0) == [ToolArgsDelta(0, "{}"), ToolCallEnd(0, "id", "f", {})]


def test_a_call_without_arguments_gets_one_empty_object_delta() -> None:
    # Anthropic's tools without parameters stream no input_json_delta at all.
    tools = ToolCallAssembler()
    tools.start(3, "toolu_1", "get_time")
    assert tools.end(3) == [ToolArgsDelta(0, "{}"), ToolCallEnd(0, "toolu_1", "get_time", {})]


@pytest.mark.parametrize(
    "fragments",
    [
        ['{"command": "rm -rf /tmp/x', ""],  # cut mid-string: never "repaired"
        ['{"a": 1', ""],
        ["{'a': 1}"],
        ['{"a": 1}}'],
        ["not json"],
    ],
)
def test_arguments_that_are_not_json_raise(fragments: list[str]) -> None:
    tools = ToolCallAssembler()
    tools.start(0, "id", "run")
    for fragment in fragments:
        tools.delta(0, fragment)
    with pytest.raises(ToolArgumentsError, match="not valid JSON"):
        tools.end(0)


@pytest.mark.parametrize("text", ["[1, 2]", "null", "3", '"a string"', "true"])
def test_arguments_must_be_an_object(text: str) -> None:
    tools = ToolCallAssembler()
    tools.start(0, "id", "run")
    tools.delta(0, text)
    with pytest.raises(ToolArgumentsError, match="not a JSON object"):
        tools.end(0)


def test_protocol_mistakes_raise() -> None:
    tools = ToolCallAssembler()
    with pytest.raises(ToolArgumentsError, match="never started"):
        tools.delta(0, "{}")
    with pytest.raises(ToolArgumentsError, match="never started"):
        tools.end(0)
    tools.start(0, "id", "f")
    with pytest.raises(ToolArgumentsError, match="started twice"):
        tools.start(0, "id", "f")


def test_open_contains_and_reuse_of_a_finished_key() -> None:
    tools = ToolCallAssembler()
    assert not tools.open
    assert 0 not in tools
    tools.start(0, "a", "f")
    assert tools.open
    assert 0 in tools
    tools.end(0)
    assert 0 not in tools
    # A key may be reused once its call ended; the new call gets the next ordinal.
    assert tools.start(0, "b", "g") == ToolCallStart(1, "b", "g")


def test_end_all_with_nothing_open_is_empty() -> None:
    assert ToolCallAssembler().end_all() == []


@pytest.mark.parametrize(
    ("arguments", "delta", "parsed"),
    [
        ('{"q": "x"}', '{"q": "x"}', {"q": "x"}),
        ({"q": "x", "n": [1, 2]}, '{"q":"x","n":[1,2]}', {"q": "x", "n": [1, 2]}),
        ("", "{}", {}),
        (None, "{}", {}),
        ({}, "{}", {}),
    ],
)
def test_whole_calls_still_emit_one_delta(arguments: Any, delta: str, parsed: dict[str, Any]) -> None:
    tools = ToolCallAssembler()
    assert tools.whole("k", "id", "f", arguments) == [
        ToolCallStart(0, "id", "f"),
        ToolArgsDelta(0, delta),
        ToolCallEnd(0, "id", "f", parsed),
    ]
    assert not tools.open


def test_a_whole_call_with_bad_arguments_raises() -> None:
    with pytest.raises(ToolArgumentsError):
        ToolCallAssembler().whole("k", "id", "f", '{"a": ')


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


@given(
    arguments=st.dictionaries(st.text(max_size=8), _json, max_size=4),
    data=st.data(),
)
def test_any_fragmentation_gives_the_same_call(arguments: dict[str, Any], data: st.DataObject) -> None:
    text = msgspec.json.encode(arguments).decode()
    cuts = sorted(set(data.draw(st.lists(st.integers(min_value=1, max_value=max(1, len(text) - 1)), max_size=10))))
    pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True) if a < b]
    tools = ToolCallAssembler()
    tools.start("k", "id", "f")
    deltas = [d for d in (tools.delta("k", p) for p in pieces) if d is not None]
    end = tools.end("k")
    assert "".join(d.delta for d in deltas) == text
    assert all(d.index == 0 for d in deltas)
    assert end == [ToolCallEnd(0, "id", "f", arguments)]
