"""Every parser under hypothesis: arbitrary bytes, and mutations of the recordings, in arbitrary chunks.

The parsers and the properties live in ``fuzz/_harness.py``, shared with the
atheris targets: framers raise only ``FramingError``; decoders never raise and
end with exactly one terminal event; the stream invariants hold; and the result
does not depend on how the bytes were chunked. Inputs are arbitrary bytes,
byte-level mutations of a recording (flips, insertions, deletions, repeats,
truncation, splices, protocol tokens), or structure-aware ones that keep the
framing valid and change the JSON inside it (a value swapped for any JSON, a
key dropped or added, lines or frames repeated, dropped or reordered; event
stream frames are re-encoded with correct CRCs, so the decoder is reached).

``LLUMINARY_FUZZ_EXAMPLES`` sets the examples per parser: 10,000 when ``CI``
is set, 300 otherwise; ``LLUMINARY_FUZZ_SHARD=k/n`` runs every n-th parser
only. Each example must finish within one second (hypothesis' deadline); the
crafted inputs at the end check that no input of a few MiB takes longer,
whatever its chunking.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
import zlib
from datetime import timedelta
from typing import Any

import pytest
from fuzz import _harness
from fuzz._harness import Parser, parsers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lluminary.providers._framing import FramingError
from tests.faults.streams import env_int, eventstream_frame, string_header

EXAMPLES = env_int("LLUMINARY_FUZZ_EXAMPLES", 10_000 if os.environ.get("CI") else 300)
PARSERS = parsers()


def _shard(names: list[str]) -> list[str]:
    """``LLUMINARY_FUZZ_SHARD=k/n``: every n-th parser from the k-th, so CI can run the shards in parallel."""
    raw = os.environ.get("LLUMINARY_FUZZ_SHARD", "").strip()
    if not raw:
        return names
    k, n = (int(part) for part in raw.split("/"))
    return names[k - 1 :: n]


#: How each parser's seeds are structured, for the structure-aware mutations.
SHAPE = {"eventstream": "frames", "bedrock": "frames", "gemini_json": "whole", "bedrock_converse": "whole"}
TOKENS = [
    b"\n", b"\r", b"\r\n", b"\n\n", b"\r\n\r\n", b"data: ", b"data:", b"event: ", b"event: error\n", b":", b"[DONE]",
    b"data: [DONE]\n\n", b"{", b"}", b"[", b"]", b'"', b"\\", b"\x00", b"\xff", b"\xef\xbb\xbf", b'{"error":"x"}\n',
    b'"done":true', b"null", b"1e999", b"-0", b"\xe2\x82",
]  # fmt: skip
KEYS = [
    "type", "index", "id", "name", "text", "delta", "content", "role", "choices", "finish_reason", "usage",
    "error", "message", "tool_calls", "function", "arguments", "done", "done_reason", "partial_json", "input",
    "content_block", "stop_reason", "candidates", "finishReason", "parts", "functionCall", "usageMetadata",
    "contentBlockIndex", "start", "toolUse", "stopReason", "metadata", "response", "output", "item", "code",
]  # fmt: skip
EVENT_TYPES = [
    "messageStart", "contentBlockStart", "contentBlockDelta", "contentBlockStop", "messageStop", "metadata",
    "event", "exception", "error", "throttlingException", "modelStreamErrorException", "",
]  # fmt: skip

SCALARS = st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.floats() | st.text(max_size=12)
JSON = st.recursive(
    SCALARS | st.sampled_from(KEYS),
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), kids, max_size=4)
    ),
    max_leaves=8,
)


# -- structure: lines of JSON (SSE, NDJSON), event stream frames, or one JSON document ----------


def _slots(tree: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) in a JSON tree, depth first."""
    out: list[tuple[Any, Any]] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, child in items:
            out.append((node, key))
            stack.append(child)
    return out


@st.composite
def mutate_json(draw: st.DrawFn, raw: bytes) -> bytes:
    try:
        tree = json.loads(raw)
    except ValueError:
        return raw
    root = [tree]
    for _ in range(draw(st.integers(1, 3))):
        slots = _slots(root)
        node, key = slots[draw(st.integers(0, len(slots) - 1))]
        op = draw(st.sampled_from(["replace", "delete", "add"]))
        if op == "delete" and node is not root:
            del node[key]
        elif op == "add" and isinstance(node[key], dict):
            node[key][draw(st.sampled_from(KEYS))] = draw(JSON)
        else:
            node[key] = draw(JSON)
    return json.dumps(root[0]).encode()


def _frames(body: bytes) -> list[tuple[bytes, bytes]]:
    """(headers, payload) of each AWS event stream frame, read by its prelude lengths."""
    out, pos = [], 0
    while pos + 16 <= len(body):
        total, headers_len = struct.unpack_from(">II", body, pos)
        out.append((body[pos + 12 : pos + 12 + headers_len], body[pos + 12 + headers_len : pos + total - 4]))
        pos += total
    return out


@st.composite
def structured(draw: st.DrawFn, parser: Parser) -> bytes:
    seed = draw(st.sampled_from(parser.seeds))
    shape = SHAPE.get(parser.name, "lines")
    if shape == "whole":
        return draw(mutate_json(seed))
    units = [eventstream_frame(*f) for f in _frames(seed)] if shape == "frames" else seed.splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 4))):
        if not units:
            break
        i = draw(st.integers(0, len(units) - 1))
        op = draw(st.sampled_from(["json", "json", "repeat", "drop", "swap", "header"]))
        if op == "repeat":
            units.insert(i, units[i])
        elif op == "drop":
            del units[i]
        elif op == "swap":
            j = draw(st.integers(0, len(units) - 1))
            units[i], units[j] = units[j], units[i]
        elif shape == "frames":
            headers, payload = _frames(units[i])[0]
            if op == "header":
                kind = draw(st.sampled_from([":event-type", ":message-type", ":exception-type"]))
                headers = string_header(kind, draw(st.sampled_from(EVENT_TYPES) | st.text(max_size=8))) + headers
            units[i] = eventstream_frame(headers, draw(mutate_json(payload)))
        else:
            line = units[i]
            prefix = b"data: " if line.startswith(b"data: ") else b""
            body, end = line[len(prefix) :].rstrip(b"\r\n"), line[len(line.rstrip(b"\r\n")) :]
            units[i] = prefix + draw(mutate_json(body)) + end
    return b"".join(units)


@st.composite
def byte_mutations(draw: st.DrawFn, parser: Parser) -> bytes:
    data = bytearray(draw(st.sampled_from(parser.seeds)))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["flip", "insert", "token", "delete", "repeat", "truncate", "splice"]))
        if op == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "token":
            data[at:at] = draw(st.sampled_from(TOKENS))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif op == "repeat":
            data[at:at] = data[at : at + draw(st.integers(1, 256))]
        elif op == "truncate":
            del data[at:]
        elif op == "splice":
            other = draw(st.sampled_from(parser.seeds))
            start = draw(st.integers(0, len(other)))
            data[at:at] = other[start : start + draw(st.integers(1, 512))]
    return bytes(data)


def inputs(parser: Parser) -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=2048), byte_mutations(parser), structured(parser))


@pytest.mark.parametrize("name", _shard(sorted(PARSERS)))
def test_parser_properties_under_fuzzing(name: str) -> None:
    parser = PARSERS[name]

    @settings(
        max_examples=EXAMPLES,
        deadline=timedelta(seconds=1),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
        database=None,
    )
    @given(data=inputs(parser), cuts=st.lists(st.integers(0, 8192), max_size=12))
    def prop(data: bytes, cuts: list[int]) -> None:
        _harness.check(parser, data, cuts)

    prop()


# Found by the fuzzer: a complete Gemini JSON body with a stray byte after it finished when the
# byte came in a later chunk, and failed, losing the response, when it came in the same one.
GEMINI_JSON_TRAILING = [
    b'[{"candidates":[{"content":{"parts":[{"text":"Hi"}]},"finishReason":"STOP"}]}]x',
    b'{"candidates":[{"content":{"parts":[{"text":"Hi"}]},"finishReason":"STOP"}]}\x00',
    b'[{"a":1}x',
    b" {" + b"\x00" * 179 + b"}\x00",
    # A comma after the closing bracket: read with the body it failed as bad framing,
    # in a chunk of its own it was never read (hypothesis, CI 2026-12-04).
    b'[{ "a":[{ "b":{ "c":1}}], "d":"e"}],',
    b'[{"candidates":[{"content":{"parts":[{"text":"Hi"}]},"finishReason":"STOP"}]}],{',
]


@pytest.mark.parametrize("body", GEMINI_JSON_TRAILING)
def test_gemini_json_trailing_bytes_do_not_depend_on_chunking(body: bytes) -> None:
    for cut in range(1, len(body)):  # the stray bytes alone, with the closing bracket, or with the body
        _harness.check(PARSERS["gemini_json"], body, [cut])


# -- crafted inputs: a few MiB, fed the slow way ------------------------------------------------

MIB = 1024 * 1024


def _crafted(parser: Parser) -> dict[str, tuple[bytes, int]]:
    """name -> (body, chunk size): long lines in small chunks, many lines, deep nesting."""
    shape = SHAPE.get(parser.name, "lines")
    if shape == "frames":
        claim = struct.pack(">II", 8 * MIB, 0)  # a prelude (valid CRC) promising 8 MiB
        claim += struct.pack(">I", zlib.crc32(claim))
        many = eventstream_frame(string_header(":event-type", "ping"), b"{}") * 20_000
        return {"big-frame-in-1KiB-chunks": (claim + b"\0" * (3 * MIB), 1024), "many-frames": (many, len(many))}
    if shape == "whole":
        return {
            "long-string-in-1KiB-chunks": (b'[{"a":"' + b"x" * (3 * MIB) + b'"}]', 1024),
            "deep-nesting": (b'[{"a":' + b"[" * 100_000, 100_000),
        }
    if parser.name in ("ndjson", "ollama"):
        lines = b'{"done":false}\n' * 100_000
        return {
            "long-line-in-1KiB-chunks": (b'{"x":"' + b"a" * (3 * MIB), 1024),
            "many-lines": (lines, len(lines)),
            "deep-nesting": (b"[" * 100_000 + b"\n", 100_000),
        }
    data_lines = b"data:x\n" * 15_000 + b"\n"
    return {
        "long-line-in-1KiB-chunks": (b"data: " + b"a" * (3 * MIB), 1024),
        "many-data-lines-in-one-event": (data_lines, len(data_lines)),
        "deep-nesting": (b"data: " + b"[" * 100_000 + b"\n\n", 100_000),
    }


CRAFTED = [(name, case) for name in sorted(PARSERS) for case in _crafted(PARSERS[name])]


@pytest.mark.parametrize(("name", "case"), CRAFTED, ids=[f"{n}-{c}" for n, c in CRAFTED])
def test_no_input_takes_longer_than_a_second(name: str, case: str) -> None:
    parser = PARSERS[name]
    body, size = _crafted(parser)[case]
    chunks = [body[i : i + size] for i in range(0, len(body), size)]
    instance = parser.factory()
    failed = False
    started = time.perf_counter()
    try:
        for chunk in chunks:
            instance.feed(chunk)
            assert time.perf_counter() - started < 1.0, f"{name}: still feeding {case} after 1s"
        instance.close()
    except FramingError:
        failed = True  # a framer may refuse the input; a decoder never raises
    elapsed = time.perf_counter() - started
    assert not failed or parser.kind == "framer"
    assert elapsed < 1.0, f"{name}: {case} took {elapsed:.2f}s"


# -- the atheris targets ------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_each_parser_has_an_atheris_target_that_replays_its_seeds(name: str) -> None:
    target = _harness.REPO / "fuzz" / f"fuzz_{name}.py"
    assert f'main("{name}")' in target.read_text()
    assert _harness.main(name, ["prog"]) == 0


def test_a_target_runs_as_a_script_and_writes_its_corpus(tmp_path: Any) -> None:
    script = str(_harness.REPO / "fuzz" / "fuzz_openai.py")
    seeds = subprocess.run([sys.executable, script, "--seeds", str(tmp_path)], capture_output=True, check=True)
    assert b"wrote" in seeds.stdout
    assert len(list(tmp_path.iterdir())) == len(PARSERS["openai"].seeds)
    if "atheris" in sys.modules or _atheris_installed():
        return  # with atheris the script would fuzz forever: writing the corpus is what we can check
    replay = subprocess.run([sys.executable, script, str(tmp_path)], capture_output=True, check=True)
    assert b"all properties hold" in replay.stdout


def _atheris_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("atheris") is not None
