"""The Prometheus endpoint, scraped over real HTTP: the library helper, a mounted handler, the command."""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import web
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families

from lluminary import Engine, Retry
from lluminary.commands import metrics as command
from lluminary.events import Finish
from lluminary.observability import Metrics, PrometheusMetrics
from lluminary.providers import create_provider
from tests.observability.helpers import request
from tests.support import ReplayServer, Reply, fixture_bytes

OPENAI_TEXT = fixture_bytes("openai_chat", "text_stream_include_usage.sse")
RATE_LIMITED = Reply(b'{"error": {"message": "slow down"}}', status=429, headers={"retry-after": "0"})


def samples(text: str) -> dict[str, list[Any]]:
    """Sample name → its samples, from an exposition body."""
    found: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append(sample)
    return found


def total(found: dict[str, list[Any]], name: str) -> float:
    return float(sum(s.value for s in found.get(name, [])))


async def scrape(url: str, accept: str = "text/plain") -> tuple[str, str]:
    async with aiohttp.ClientSession() as session, session.get(url, headers={"Accept": accept}) as resp:
        assert resp.status == 200
        return await resp.text(), resp.headers["Content-Type"]


async def test_scrape_after_a_few_requests() -> None:
    prom = PrometheusMetrics(service_name="obs-test")
    try:
        async with ReplayServer([RATE_LIMITED, Reply(OPENAI_TEXT, chunk_size=64)]) as server:
            openai = create_provider("openai", api_key="sk-test", base_url=server.url + "/v1")
            operators = [Metrics(prom.meter_provider), Retry(base_delay=0)]
            async with Engine(operators, providers={"openai": openai}) as engine:  # type: ignore[arg-type]
                for _ in range(3):
                    events = [e async for e in engine.stream(request("openai:gpt-4o-mini"))]
                    assert isinstance(events[-1], Finish)
        server_ = prom.serve(port=0)  # a free port
        try:
            body, content_type = await scrape(server_.url)
        finally:
            await anyio.to_thread.run_sync(server_.close)
    finally:
        prom.shutdown()
    assert content_type.startswith("text/plain")
    found = samples(body)
    assert total(found, "gen_ai_client_operation_duration_seconds_count") == 3
    assert total(found, "gen_ai_client_operation_time_to_first_chunk_seconds_count") == 3
    assert total(found, "lluminary_client_time_per_output_token_seconds_count") == 3
    input_tokens = [s for s in found["gen_ai_client_token_usage_sum"] if s.labels["gen_ai_token_type"] == "input"]
    assert sum(s.value for s in input_tokens) == 3 * 78
    (retries,) = found["lluminary_client_retries_total"]
    assert (retries.value, retries.labels["error_type"]) == (1, "rate_limited")
    assert total(found, "lluminary_client_active_streams") == 0
    assert found["gen_ai_client_operation_duration_seconds_count"][0].labels["gen_ai_provider_name"] == "openai"
    assert found["target_info"][0].labels["service_name"] == "obs-test"


async def test_the_documented_aiohttp_mount_serves_openmetrics() -> None:
    prom = PrometheusMetrics()
    meter = prom.meter_provider.get_meter("test")
    meter.create_counter("lluminary.test.events").add(2)

    async def metrics(req: web.Request) -> web.Response:  # the module docstring's example
        body, content_type = prom.render(req.headers.get("Accept", ""))
        return web.Response(body=body, headers={"Content-Type": content_type})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        body, content_type = await scrape(f"http://127.0.0.1:{port}/metrics", "application/openmetrics-text")
    finally:
        await runner.cleanup()
        prom.shutdown()
    assert content_type.startswith("application/openmetrics-text")
    assert body.endswith("# EOF\n")
    (family,) = [f for f in openmetrics_families(body) if f.name == "lluminary_test_events"]  # type: ignore[no-untyped-call]
    assert [s.value for s in family.samples if s.name == "lluminary_test_events_total"] == [2.0]


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    return parser.parse_args(argv)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def poll(url: str, ready: Callable[[dict[str, list[Any]]], bool]) -> dict[str, list[Any]]:
    """Scrape ``url`` until ``ready`` says so; bounded, since the command runs on its own schedule."""
    with anyio.fail_after(20):
        while True:
            try:
                found = samples((await scrape(url))[0])
            except aiohttp.ClientConnectionError:
                found = {}  # not listening yet
            if ready(found):
                return found
            await anyio.sleep(0.02)


@pytest.mark.usefixtures("restore_logging")
async def test_the_command_serves_its_probes(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    async with ReplayServer([RATE_LIMITED, Reply(OPENAI_TEXT, chunk_size=64)]) as server:
        args = parse(
            "--port",
            str(port),
            "--probe",
            "openai:gpt-4o-mini",
            "--base-url",
            server.url + "/v1",
            "--api-key",
            "sk-probe-canary-123456",
            "--count",
            "2",
            "--interval",
            "0.01",
        )
        async with anyio.create_task_group() as tg:
            tg.start_soon(command.run, args)
            found = await poll(
                f"http://127.0.0.1:{port}/metrics",
                lambda f: total(f, "gen_ai_client_operation_duration_seconds_count") >= 2,
            )
            tg.cancel_scope.cancel()
    (errors,) = [s for s in found["gen_ai_client_operation_duration_seconds_count"] if s.labels["error_type"]]
    assert (errors.labels["error_type"], errors.value) == ("rate_limited", 1)  # probes are not retried
    assert total(found, "gen_ai_client_operation_time_to_first_chunk_seconds_count") == 1
    assert found["target_info"][0].labels["service_name"] == "lluminary"
    err = capsys.readouterr().err
    assert err.count('"event": "llm.request"') == 2  # Logging's one line per probe, as JSON off a terminal
    assert "sk-probe-canary-123456" not in err
    with socket.socket() as sock:
        # Released on cancellation: with SO_REUSEADDR (the scrapes left TIME_WAIT
        # connections behind) binding fails only while someone still listens.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen()


@pytest.mark.usefixtures("restore_logging")
async def test_the_command_without_a_probe_says_what_it_serves(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    async with anyio.create_task_group() as tg:
        tg.start_soon(command.run, parse("--port", str(port)))
        found = await poll(f"http://127.0.0.1:{port}/metrics", lambda f: True)  # answering is enough
        tg.cancel_scope.cancel()
    assert not any(name.startswith(("gen_ai", "lluminary")) for name in found)  # nothing was requested
    assert "shows only this process's metrics" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--port", "70000"], "--port must be between"),
        (["--interval", "0"], "--interval must be"),
        (["--probe", "openai:m", "--count", "0"], "--count must be"),
        (["--api-key", "k"], "need --probe"),
        (["--probe", "nope:model"], "unknown provider"),
        (["--probe", "openai:gpt-4o-mini"], "needs an API key"),
    ],
)
async def test_usage_mistakes_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert await command.run(parse(*argv)) == 2
    assert message in capsys.readouterr().err


@pytest.mark.usefixtures("restore_logging")
async def test_a_port_in_use_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert await command.run(parse("--port", str(taken.getsockname()[1]))) == 1
    assert "cannot listen on 127.0.0.1" in capsys.readouterr().err


def test_the_command_module_shape() -> None:
    assert command.HELP
    assert parse().port == 9464
    assert parse().host == "127.0.0.1"


def test_serve_metrics_makes_the_global_provider_scrapable() -> None:
    # In a child process: it sets OpenTelemetry's global meter provider, which a process can do once.
    code = """
import urllib.request, anyio
from lluminary.observability import Metrics, serve_metrics
from lluminary.events import Start, TextDelta, Usage, Finish
from tests.observability.helpers import run, scripted
prom, server = serve_metrics(port=0)
anyio.run(run, scripted([Start("r", "openai", "m"), TextDelta("a"), Usage(2, 1), Finish("stop")]), [Metrics()])
print(server.url)
print(urllib.request.urlopen(server.url).read().decode())
server.close()
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    url, body = out.split("\n", 1)
    assert url.startswith("http://127.0.0.1:")
    found = samples(body)
    assert total(found, "gen_ai_client_operation_duration_seconds_count") == 1
    assert total(found, "gen_ai_client_token_usage_sum") == 3
