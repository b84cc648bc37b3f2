"""What the atheris targets and the hypothesis suite share: the parsers, their seeds and the one check.

Every parser takes bytes in chunks. The properties, for any input:

- a framer raises nothing but ``FramingError``, and frames the same messages (and
  fails or not) however the bytes are chunked;
- a decoder's ``feed`` and ``close`` never raise; the events end with exactly one
  terminal event and keep the other stream invariants of DESIGN.md
  (``tests.support.check_invariants``); every event encodes to the JSON wire
  format; and the events are the same however the bytes are chunked.

lluminary is imported only inside functions, so a target can import this module
inside ``atheris.instrument_imports()`` and have the parsers instrumented.

Each ``fuzz_<name>.py`` target calls :func:`main`. With atheris installed it
fuzzes (libFuzzer arguments pass through; ``--seeds DIR`` writes the seed corpus
first). Without atheris it replays the seeds and any files or directories given,
which is also how the test suite checks that the targets work.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as ``python fuzz/fuzz_x.py``: make ``tests.support`` importable
    sys.path.insert(0, str(REPO))

FIXTURES = REPO / "tests" / "fixtures"
#: An atheris input starts with one byte giving the number of chunk boundaries, two bytes each.
MAX_CUTS = 16


@dataclass(frozen=True)
class Parser:
    name: str
    kind: Literal["framer", "decoder"]
    factory: Callable[[], Any]
    seeds: tuple[bytes, ...]


def _files(folder: str, pattern: str) -> list[bytes]:
    return [p.read_bytes() for p in sorted((FIXTURES / folder).glob(pattern))]


def _jsonl(folder: str, *, event_names: bool) -> list[bytes]:
    from tests.support import jsonl_to_sse

    return [jsonl_to_sse(p, event_names=event_names) for p in sorted((FIXTURES / folder).glob("*.chunks.jsonl"))]


def _eventstreams() -> list[bytes]:
    return [base64.b64decode(p.read_text()) for p in sorted((FIXTURES / "bedrock").glob("*.eventstream.b64"))]


def _gemini_arrays() -> list[bytes]:
    out = []
    for body in _files("gemini", "*.sse"):
        payloads = [m[6:] for m in body.split(b"\r\n\r\n") if m.strip()]
        out.append(b"[" + b",\r\n".join(payloads) + b"]")
    return out


def _converse() -> list[bytes]:
    content = [
        {"reasoningContent": {"reasoningText": {"text": "Think.", "signature": "sig=="}}},
        {"text": "Let me check."},
        {"toolUse": {"toolUseId": "tu_1", "name": "weather", "input": {"city": "Paris"}}},
    ]
    body = {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": 30, "outputTokens": 12, "totalTokens": 42},
    }
    return [json.dumps(body).encode(), json.dumps({"output": {"message": {"content": []}}}).encode()]


@cache
def parsers() -> dict[str, Parser]:
    """Every parser, by target name (lluminary is imported here, not at module level)."""
    from lluminary.providers._framing import EventStreamFramer, NDJSONFramer, SSEFramer
    from lluminary.providers.anthropic import AnthropicDecoder
    from lluminary.providers.bedrock import BedrockConverseDecoder, BedrockDecoder
    from lluminary.providers.cohere import CohereDecoder
    from lluminary.providers.gemini import GeminiDecoder, GeminiJSONDecoder
    from lluminary.providers.mistral import MistralDecoder
    from lluminary.providers.ollama import OllamaDecoder
    from lluminary.providers.openai import OpenAIChatDecoder
    from lluminary.providers.openai_responses import OpenAIResponsesDecoder

    def decoder(cls: Callable[..., Any]) -> Callable[[], Any]:
        return lambda: cls(model="fuzz-model", input_estimate=7, secrets=("sk-fuzz-secret-1234",))

    sse_folders = ("openai_chat", "openai_responses", "anthropic", "gemini", "mistral")
    sse_all = [b for folder in sse_folders for b in _files(folder, "*.sse")]
    sse_all += _jsonl("anthropic", event_names=True) + _jsonl("cohere", event_names=True)
    ndjson = _files("ollama", "*.ndjson")
    table = [
        Parser("sse", "framer", SSEFramer, tuple(sse_all)),
        Parser("ndjson", "framer", NDJSONFramer, tuple(ndjson)),
        Parser("eventstream", "framer", EventStreamFramer, tuple(_eventstreams())),
        Parser("openai", "decoder", decoder(OpenAIChatDecoder), tuple(_files("openai_chat", "*.sse"))),
        Parser(
            "openai_responses",
            "decoder",
            decoder(OpenAIResponsesDecoder),
            tuple(_files("openai_responses", "*.sse") + _jsonl("openai_responses", event_names=True)),
        ),
        Parser(
            "anthropic",
            "decoder",
            decoder(AnthropicDecoder),
            tuple(_files("anthropic", "*.sse") + _jsonl("anthropic", event_names=True)),
        ),
        Parser("gemini", "decoder", decoder(GeminiDecoder), tuple(_files("gemini", "*.sse"))),
        Parser("gemini_json", "decoder", decoder(GeminiJSONDecoder), tuple(_gemini_arrays())),
        Parser("bedrock", "decoder", decoder(BedrockDecoder), tuple(_eventstreams())),
        Parser("bedrock_converse", "decoder", decoder(BedrockConverseDecoder), tuple(_converse())),
        Parser("cohere", "decoder", decoder(CohereDecoder), tuple(_jsonl("cohere", event_names=True))),
        Parser(
            "mistral",
            "decoder",
            decoder(MistralDecoder),
            tuple([b + b"data: [DONE]\n\n" for b in _jsonl("mistral", event_names=False)] + _files("mistral", "*.sse")),
        ),
        Parser("ollama", "decoder", decoder(OllamaDecoder), tuple(ndjson)),
    ]
    return {p.name: p for p in table}


def split(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    points = sorted({c for c in cuts if 0 < c < len(data)})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def run(parser: Parser, chunks: Sequence[bytes]) -> tuple[list[Any], bool]:
    """What the parser makes of the chunks: (messages or events, whether a framer failed)."""
    if parser.kind == "decoder":
        decoder = parser.factory()
        events: list[Any] = []
        for chunk in chunks:
            events += decoder.feed(chunk)
        events += decoder.close()
        return events, False
    from lluminary.providers._framing import FramingError

    framer = parser.factory()
    messages: list[Any] = []
    try:
        for chunk in chunks:
            messages += framer.feed(chunk)
        messages += framer.close()
    except FramingError:
        return messages, True
    return messages, False


def check(parser: Parser, data: bytes, cuts: Iterable[int] = ()) -> tuple[list[Any], bool]:
    """Assert every property for ``data``, chunked at ``cuts``; returns the single-chunk result."""
    whole = run(parser, [data])
    chunked = run(parser, split(data, cuts))
    assert chunked == whole, f"{parser.name}: the result depends on how the bytes were chunked"
    if parser.kind == "decoder":
        from tests.support import check_invariants

        from lluminary.events import encode_event

        check_invariants(whole[0])
        for event in whole[0]:
            encode_event(event)
    return whole


def encode_input(data: bytes, cuts: Sequence[int] = ()) -> bytes:
    """An atheris input: the chunk boundaries, then the body (see :func:`decode_input`)."""
    cuts = list(cuts)[:MAX_CUTS]
    return bytes([len(cuts)]) + b"".join(c.to_bytes(2, "big") for c in cuts) + data


def decode_input(raw: bytes) -> tuple[bytes, list[int]]:
    count = min(raw[0], MAX_CUTS) if raw else 0
    cuts = [int.from_bytes(raw[1 + 2 * i : 3 + 2 * i], "big") for i in range(count)]
    return raw[1 + 2 * count :], cuts


def main(name: str, argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    try:
        import atheris  # type: ignore[import-not-found]
    except ImportError:
        atheris = None
    if atheris is not None:
        with atheris.instrument_imports(include=["lluminary"]):
            parser = parsers()[name]
    else:
        parser = parsers()[name]
    if "--seeds" in argv:
        folder = Path(argv[argv.index("--seeds") + 1])
        folder.mkdir(parents=True, exist_ok=True)
        for i, seed in enumerate(parser.seeds):
            (folder / f"seed-{i}").write_bytes(encode_input(seed))
        print(f"{name}: wrote {len(parser.seeds)} seeds to {folder}")
        return 0

    def test_one_input(raw: bytes) -> None:
        data, cuts = decode_input(raw)
        check(parser, data, cuts)

    if atheris is not None:
        atheris.Setup(argv, test_one_input)
        atheris.Fuzz()
        return 0
    inputs = [encode_input(seed, [len(seed) // 3, len(seed) // 2]) for seed in parser.seeds]
    for arg in argv[1:]:
        path = Path(arg)
        inputs += [p.read_bytes() for p in (sorted(path.iterdir()) if path.is_dir() else [path]) if p.is_file()]
    for raw in inputs:
        test_one_input(raw)
    print(f"{name}: atheris is not installed; replayed {len(inputs)} inputs, all properties hold")
    return 0
