"""The benchmarks, run end to end in tiny configurations so the harnesses cannot rot.

Both harnesses run as users run them (a subprocess, with its own server process);
the tests then check the JSON they wrote: the keys the README documents, the
versions, and that every client assembled exactly the expected text. The fast
clients of ``bench_all.py`` also run in this process against the real server,
on both wire formats and both shapes, and the check every stream goes through is
shown to refuse a client that skipped work. The slow peers (the SDKs, LiteLLM,
pydantic-ai: seconds of import each) are exercised by the full run only. A last
test decodes the server's streams with LLuMinary's own decoders, so the mock
server keeps speaking the real wire formats.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import lluminary
from lluminary.events import Finish, TextDelta, ToolArgsDelta, ToolCallEnd, Usage
from lluminary.providers.anthropic import AnthropicDecoder
from lluminary.providers.openai import OpenAIChatDecoder
from tests.support import check_invariants, decode

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
if str(BENCH) not in sys.path:  # the benchmark modules import their siblings by name
    sys.path.insert(0, str(BENCH))
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


# -- bench_all.py ---------------------------------------------------------------------------

FAST_CLIENTS = ("floor", "lluminary", "lluminary-pipeline", "httpx")


def test_bench_all_runs_every_scenario_and_writes_json_and_table(
    tmp_path: Path, origin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole orchestration, with the workers run in this process (a process each costs ~0.5 s)."""
    import bench_all
    import scenarios

    commands: list[list[str]] = []

    def in_process(cmd: list[str]) -> dict[str, Any]:
        commands.append(cmd)
        return scenarios.measure(scenarios.parse_args(cmd[2:]))

    monkeypatch.setattr(bench_all, "run_worker", in_process)
    out, results = tmp_path / "all.json", tmp_path / "results"
    args = ["--quick", "--no-pin", "--clients", "lluminary,lluminary-pipeline,httpx"]
    args += ["--out", str(out), "--results-dir", str(results)]
    report = bench_all.main(args)
    assert json.loads(out.read_text()) == json.loads(json.dumps(report, default=str))
    (table_file,) = results.glob("*-table.md")
    table = table_file.read_text()
    assert report["machine"]["cpu_model"]
    assert report["versions"]["lluminary"] == lluminary.__version__
    assert {"openai", "anthropic", "litellm", "pydantic-ai-slim", "httpx-sse"} <= set(report["versions"])
    assert {cmd[2] for cmd in commands} == {"s1", "s2", "s3", "s4"}

    s1, s2, s3, s4 = (report["results"][k] for k in ("s1", "s2", "s3", "s4"))
    assert list(s1["openai"]) == ["floor", "lluminary", "lluminary-pipeline", "httpx"]
    assert list(s1["anthropic"]) == ["floor", "lluminary"]  # the peers read Anthropic through the same code
    for provider, clients in s2.items():
        for name, r in clients.items():
            assert "error" not in r, (provider, name, r)
            assert s1[provider][name]["cpu_us_per_event"] > 0
            assert s1[provider][name]["ratio_to_floor"] > 0
            assert r["streams"] == 20
            assert r["peak_rss"] >= r["samples"][0]["rss_before"] > 0
            assert "bytes_per_extra_chunk" in r  # the longer held run happened
            assert [h["chunks"] for h in r["in_flight"]] == [20, 40]
            assert all(h["streams"] == 20 and h["rss_in_flight"] > 0 for h in r["in_flight"])
            assert r["rss_in_flight"] == r["in_flight"][0]["rss_in_flight"]
            assert f"| {name} | {provider} |" in table
        assert clients["floor"]["cpu_us_per_event_ratio"] == 1.0
    assert set(s3["openai"]) == {"lluminary", "lluminary-pipeline", "httpx"}
    assert all(r["requests"] == 4 and r["ttfe_us"] > 0 for r in s3["openai"].values())
    assert s4["floor"]["module"] == "aiohttp,msgspec"
    assert s4["lluminary"]["extras_ok"] is True
    assert s4["lluminary"]["import_s"] > 0


async def test_held_streams_wait_before_their_end_until_released(origin: str) -> None:
    """S2's memory figure depends on the server holding every stream in flight at once."""
    import asyncio

    from clients import Target, floor_client
    from scenarios import _all_held, _expected, _server, check
    from server import StreamConfig

    tag = f"smoke-{id(origin)}"
    target = Target(origin, "openai", StreamConfig(CHUNKS, interleave=True, hold=tag).query())
    async with floor_client(target) as one:
        tasks = [asyncio.create_task(one()) for _ in range(3)]
        await _all_held(origin, tag, 3)
        assert not any(task.done() for task in tasks)  # none has its end yet
        assert (await _server(origin, "POST", f"/release?tag={tag}"))["released"] == 3
        for task in tasks:
            check("floor", await task, _expected(CHUNKS, False), CHUNKS)
        # Later streams under the same tag are held again, not let through.
        late = asyncio.create_task(one())
        await _all_held(origin, tag, 1)
        assert not late.done()
        await _server(origin, "POST", f"/release?tag={tag}")
        check("floor", await late, _expected(CHUNKS, False), CHUNKS)


def test_a_worker_runs_in_its_own_process_and_reports_json(origin: str) -> None:
    import bench_all

    cmd = [sys.executable, str(BENCH / "scenarios.py"), "s3", "--client", "lluminary", "--origin", origin]
    result = bench_all.run_worker([*cmd, "--requests", "2"])
    assert result["requests"] == 2
    assert result["floor_ttfe_us"] > 0
    failed = bench_all.run_worker([sys.executable, "-c", "import sys; print('half a line', file=sys.stderr); exit(3)"])
    assert failed == {"error": "half a line"}


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    from bench_stream import ServerProcess

    with ServerProcess(None) as server:
        yield server.url


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("tool", [False, True])
async def test_the_fast_clients_assemble_every_stream(origin: str, provider: str, tool: bool) -> None:
    from clients import Target
    from peers import REGISTRY
    from scenarios import _expected, _streams
    from server import StreamConfig

    target = Target(origin, provider, StreamConfig(CHUNKS, tool).query(), tool)
    for name in FAST_CLIENTS:
        spec = REGISTRY[name]
        async with spec.factory(target) as one:
            # _streams checks every outcome; it raises on the first wrong one.
            await _streams(one, name, 3, 3, _expected(CHUNKS, tool), CHUNKS)
            outcome = await one()
        assert outcome.first_at > 0, name
        assert outcome.events >= CHUNKS, name


def test_the_check_refuses_a_client_that_skipped_work() -> None:
    from clients import BenchError, Outcome
    from scenarios import _expected, check

    expected = _expected(CHUNKS, False)
    good = Outcome(text=expected[0], output_tokens=CHUNKS, finished=True)
    check("good", good, expected, CHUNKS)
    skipped_a_chunk = Outcome(text=expected[0][:-1], output_tokens=CHUNKS, finished=True)
    no_end_marker = Outcome(text=expected[0], output_tokens=CHUNKS, finished=False)
    no_usage = Outcome(text=expected[0], finished=True)
    no_arguments = Outcome(text=_expected(CHUNKS, True)[0], output_tokens=CHUNKS, finished=True)
    for bad, want in ((skipped_a_chunk, expected), (no_end_marker, expected), (no_usage, expected)):
        with pytest.raises(BenchError):
            check("bad", bad, want, CHUNKS)
    with pytest.raises(BenchError):
        check("bad", no_arguments, _expected(CHUNKS, True), CHUNKS)
