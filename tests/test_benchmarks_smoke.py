"""The streaming benchmark, run end to end in a tiny configuration so the harness cannot rot.

The harness runs as users run it (a subprocess, with its own server process); the
test then checks the JSON it wrote: every key the README documents, the versions,
and that both clients assembled exactly the expected text in every scenario. A
second test decodes the server's streams with LLuMinary's own decoders, so the
mock server keeps speaking the real wire formats.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import lluminary
from lluminary.events import Finish, TextDelta, ToolArgsDelta, ToolCallEnd, Usage
from lluminary.providers.anthropic import AnthropicDecoder
from lluminary.providers.openai import OpenAIChatDecoder
from tests.support import check_invariants, decode

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
CHUNKS = 50

CLIENT_KEYS = {
    "events_per_s",
    "cpu_us_per_event",
    "cpu_s_per_1000_events",
    "wall_s",
    "cpu_s",
    "ratio_to_floor",
    "paired_ratio_median",
    "wire_events_per_read",
    "server_busy",
    "client_events_per_stream",
    "streams_checked",
    "text_sha256",
    "text_chars",
    "samples",
}
# SSE events on the wire per stream, and the events each client handles per stream.
WIRE_EVENTS = {"openai": CHUNKS + 4, "anthropic": CHUNKS + 6}
LLUMINARY_EVENTS = {"text": CHUNKS + 3, "tool": CHUNKS + 5}  # start, deltas, [tool start/end], usage, finish


@functools.cache
def load_server() -> ModuleType:
    """``benchmarks/server.py`` by path: ``benchmarks`` is a directory of scripts, not a package."""
    spec = importlib.util.spec_from_file_location("_bench_server", BENCH / "server.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_the_harness_runs_and_both_clients_assemble_the_expected_text(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    results = tmp_path / "results"
    args = ["--chunks", str(CHUNKS), "--streams", "2", "--concurrency", "2", "--repeat", "1", "--min-sample", "0"]
    args += ["--shapes", "text,tool", "--out", str(out), "--results-dir", str(results)]
    proc = subprocess.run(
        [sys.executable, str(BENCH / "bench_stream.py"), *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "floor" in proc.stdout  # the table was printed
    assert "lluminary" in proc.stdout

    report = json.loads(out.read_text())
    (dated,) = results.glob("*-stream.json")
    assert json.loads(dated.read_text()) == report
    assert report["benchmark"] == "stream"
    assert set(report["versions"]) >= {"python", "aiohttp", "msgspec", "lluminary"}
    assert report["versions"]["lluminary"] == lluminary.__version__
    assert report["settings"]["repeat"] == 1

    server = load_server()
    expected = {"text": sha(server.expected_text(CHUNKS)), "tool": sha(server.tool_arguments(CHUNKS))}
    seen = set()
    for scenario in report["scenarios"]:
        provider, shape = scenario["provider"], scenario["shape"]
        seen.add((provider, shape))
        assert scenario["expected_sha256"] == expected[shape]
        assert scenario["rounds_per_sample"] == 1
        assert scenario["wire_events"] == 2 * WIRE_EVENTS[provider]
        clients = scenario["clients"]
        assert set(clients) == {"floor", "lluminary"}
        for name, client in clients.items():
            assert set(client) >= CLIENT_KEYS, f"{name} lacks {CLIENT_KEYS - set(client)}"
            assert client["text_sha256"] == expected[shape], f"{name} assembled the wrong text"
            assert client["streams_checked"] == 2
            assert client["cpu_us_per_event"] > 0
            assert client["events_per_s"] > 0
            assert client["wire_events_per_read"] >= 1
        assert clients["floor"]["ratio_to_floor"] == 1.0
        assert clients["lluminary"]["ratio_to_floor"] > 0
        assert clients["floor"]["client_events_per_stream"] == WIRE_EVENTS[provider]
        assert clients["lluminary"]["client_events_per_stream"] == LLUMINARY_EVENTS[shape]
    assert seen == {(p, s) for p in ("openai", "anthropic") for s in ("text", "tool")}


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("tool", [False, True])
def test_the_server_speaks_the_wire_format_lluminary_decodes(provider: str, tool: bool) -> None:
    server = load_server()
    config = server.StreamConfig(chunks=CHUNKS, tool=tool, per_write=3)
    render = server.openai_pieces if provider == "openai" else server.anthropic_pieces
    pieces = render(config)
    assert len(pieces) == server.wire_events(provider, config)
    factory = OpenAIChatDecoder if provider == "openai" else AnthropicDecoder
    events = decode(lambda: factory(model="bench"), pieces)
    check_invariants(events)

    assert isinstance(events[-1], Finish)
    assert events[-1].reason == ("tool_calls" if tool else "stop")
    usage = [e for e in events if isinstance(e, Usage)]
    assert [(u.input_tokens, u.output_tokens, u.estimated) for u in usage] == [(12, CHUNKS, False)]
    if tool:
        assert "".join(e.delta for e in events if isinstance(e, ToolArgsDelta)) == server.tool_arguments(CHUNKS)
        (end,) = [e for e in events if isinstance(e, ToolCallEnd)]
        assert end.name == "echo"
        assert end.arguments == {"text": server.expected_text(CHUNKS)}
    else:
        assert "".join(e.text for e in events if isinstance(e, TextDelta)) == server.expected_text(CHUNKS)
