"""A canary key never shows up, whole or in part, anywhere a user or an operator could read it.

Every provider gets a fresh fake key and runs through success, a 401 whose body
echoes the key (whole, masked, and as a bearer token), an in-band error that
echoes it, a 429 echoing it that ``Retry`` retries, a stall that ``Timeout``
ends, a reset mid-stream and a refused connection, over aiohttp and httpx; the
``lluminary chat`` command runs too. Everything is collected: logging at DEBUG
(root, aiohttp, httpx, httpcore, asyncio; structlog routed into it), every
event's JSON and repr, every exception's text, repr and traceback, and the
reprs of providers, requests, encoded requests, engines and transports. No
8-character piece of the key may appear in any of it.

Two keys: one shaped like OpenAI's (``sk-…``, also caught by the shape-based
redaction) and a bare token, which only the provider's knowledge of its own
secret can catch.
"""

from __future__ import annotations

import io
import json
import logging
import secrets
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass

import anyio
import pytest
import structlog

from lluminary import Engine, Retry, Timeout
from lluminary.errors import StreamError
from lluminary.events import Error, Event, Finish, encode_event
from lluminary.providers import AiohttpTransport, HttpxTransport, Transport, create_provider
from lluminary.providers._base import HttpProvider
from tests.faults.proxy import FaultProxy, Plan
from tests.faults.streams import RECORDINGS, Recording, eventstream_frame, string_header
from tests.support import FIXTURES, fixture_bytes, jsonl_to_sse

KEYS = {"sk": "sk-canary-" + secrets.token_hex(12), "bare": "cnry" + secrets.token_hex(14)}
JSON = {"content-type": "application/json"}


def echo(key: str) -> str:
    """The ways servers echo a key: whole, masked as OpenAI does, and as a header value."""
    return f"Incorrect API key provided: {key}. Masked: {key[:8]}{'*' * 20}{key[-4:]}. Got 'Bearer {key}'."


@dataclass(frozen=True)
class Case:
    provider: str
    model: str
    success: bytes
    content_type: str
    unauthorized: str  # a body template, {echo} is filled in
    in_band: str
    suffix: str = ""

    def provider_for(self, base_url: str, key: str) -> HttpProvider:
        env = {"AWS_REGION": "us-east-1"} if self.provider == "bedrock" else {}
        provider = create_provider(self.provider, api_key=key, base_url=base_url + self.suffix, env=env)
        assert isinstance(provider, HttpProvider)
        return provider


def _rec(provider: str) -> Recording:
    return next(r for rs in RECORDINGS.values() for r in rs if r.provider == provider and r.marker_end is not None)


def _bedrock_exception(message: str) -> bytes:
    headers = string_header(":message-type", "exception") + string_header(":exception-type", "validationException")
    return eventstream_frame(headers, json.dumps({"message": message}).encode())


OPENAI_ERROR = '{"error": {"message": "{echo}", "type": "invalid_request_error", "code": "invalid_api_key"}}'
RATE_LIMITED = (
    '{"error": {"message": "Rate limit reached for {echo}", "type": "requests", "code": "rate_limit_exceeded"}}'
)
CASES = [
    Case("openai", "gpt-4o-mini", _rec("openai").body, "text/event-stream", OPENAI_ERROR,
         'data: {"error": {"message": "{echo}", "type": "server_error"}}\n\n', "/v1"),
    Case("openai-responses", "gpt-4.1", fixture_bytes("openai_responses", "text_stream.sse"), "text/event-stream",
         OPENAI_ERROR, 'event: error\ndata: {"type": "error", "code": "server_error", "message": "{echo}"}\n\n',
         "/v1"),
    Case("anthropic", "claude-sonnet-4-5", _rec("anthropic").body, "text/event-stream",
         '{"type": "error", "error": {"type": "authentication_error", "message": "{echo}"}}',
         'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", "message": "{echo}"}}\n\n'),
    Case("gemini", "gemini-2.0-flash", _rec("gemini").body, "text/event-stream",
         '{"error": {"code": 400, "message": "API key not valid. {echo}", "status": "INVALID_ARGUMENT"}}',
         'data: {"error": {"code": 500, "message": "{echo}", "status": "INTERNAL"}}\r\n\r\n'),
    Case("bedrock", "anthropic.claude-3-haiku-20240307-v1:0", _rec("bedrock").body,
         "application/vnd.amazon.eventstream", '{"message": "{echo}"}', "BEDROCK"),
    Case("cohere", "command-r", jsonl_to_sse(FIXTURES / "cohere" / "text_stream.chunks.jsonl", event_names=True),
         "text/event-stream", '{"message": "invalid api token: {echo}"}',
         'event: error\ndata: {"type": "error", "message": "{echo}"}\n\n'),
    Case("mistral", "mistral-small-latest",
         jsonl_to_sse(FIXTURES / "mistral" / "text_stream.chunks.jsonl", event_names=False) + b"data: [DONE]\n\n",
         "text/event-stream", '{"object": "error", "message": "{echo}", "type": "unauthorized"}',
         'data: {"object": "error", "message": "{echo}", "type": "internal_error"}\n\n', "/v1"),
    Case("ollama", "llama3.2", _rec("ollama").body, "application/x-ndjson", '{"error": "unauthorized: {echo}"}',
         '{"error": "{echo}"}\n'),
]  # fmt: skip


class Haystack:
    """Every text a user or operator could read, with where it came from."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []

    def add(self, where: str, *objects: object) -> None:
        for obj in objects:
            self.texts.append((where, obj if isinstance(obj, str) else repr(obj)))

    def events(self, where: str, events: list[Event]) -> None:
        for event in events:
            self.add(where, encode_event(event).decode(), event)

    def exception(self, where: str, exc: BaseException) -> None:
        self.add(where, str(exc), exc, "".join(traceback.format_exception(exc)))

    def leaks(self, key: str) -> list[tuple[str, str]]:
        pieces = {key[i : i + 8] for i in range(len(key) - 7)}
        return [(where, piece) for where, text in self.texts for piece in pieces if piece in text]


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """DEBUG logging from everything, structlog included, into one buffer."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    names = ["aiohttp", "httpx", "httpcore", "asyncio", "lluminary"]
    saved = [(logging.getLogger(n), logging.getLogger(n).level) for n in ["", *names]]
    root.addHandler(handler)
    for logger, _ in saved:
        logger.setLevel(logging.DEBUG)
    structlog.configure(
        processors=[structlog.processors.KeyValueRenderer()],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
    )
    try:
        yield buffer
    finally:
        structlog.reset_defaults()
        root.removeHandler(handler)
        for logger, level in saved:
            logger.setLevel(level)


def body(template: str, key: str) -> bytes:
    return template.replace("{echo}", echo(key)).encode()


async def run_provider(proxy: FaultProxy, case: Case, key: str, transport: Transport, hay: Haystack) -> None:
    tag = f"{case.provider}/{type(transport).__name__}/{key[:2]}"
    in_band = _bedrock_exception(echo(key)) if case.in_band == "BEDROCK" else body(case.in_band, key)
    ok = Plan(case.success, headers={"content-type": case.content_type})
    plans = {
        "success": [ok],
        "401": [Plan(body(case.unauthorized, key), status=401, headers=JSON)],
        "in-band": [Plan(in_band, headers={"content-type": case.content_type})],
        "retry": [Plan(body(RATE_LIMITED, key), status=429, headers={**JSON, "retry-after": "0"}), ok],
        "stall": [Plan(case.success, headers={"content-type": case.content_type}, stall_after=0)],
        "reset": [Plan(case.success, framing="chunked", chunk_size=50, cut_after=120, ending="rst")],
        "refused": [],
    }

    async def run(scenario: str) -> None:
        scenario_plans = plans[scenario]
        key_name = f"{tag.replace('/', '-')}-{scenario}"
        proxy.push(key_name, *scenario_plans)
        url = "http://127.0.0.1:9" if scenario == "refused" else proxy.url(key_name)
        provider = case.provider_for(url, key)
        operators = [Retry(max_attempts=2, base_delay=0.0), Timeout(first_event=0.5, idle=0.5)]
        engine = Engine(operators, providers={provider.name: provider}, transport=transport)
        request = engine.request("Hello", model=f"{case.provider}:{case.model}")
        where = f"{tag}/{scenario}"
        hay.add(
            where, provider, str(provider), vars(provider), engine, request, provider.build_request(request, case.model)
        )
        with anyio.fail_after(10):
            async with engine.stream(request) as stream:
                events = [event async for event in stream]
            hay.events(where, events)
            if scenario in ("success", "retry"):
                assert isinstance(events[-1], Finish), (where, events[-1])
            else:
                assert isinstance(events[-1], Error), (where, events[-1])
                with pytest.raises(StreamError) as info:
                    await engine.complete(request)
                hay.exception(where, info.value)

    async with anyio.create_task_group() as tg:  # the scenarios overlap: the stalls' timeouts run together
        for scenario in plans:
            tg.start_soon(run, scenario)


@pytest.mark.parametrize("key_kind", sorted(KEYS))
async def test_the_key_never_leaks_through_providers(proxy: FaultProxy, logs: io.StringIO, key_kind: str) -> None:
    key = KEYS[key_kind]
    hay = Haystack()
    for transport in (AiohttpTransport(), HttpxTransport()):
        hay.add("transport", transport)
        try:
            async with anyio.create_task_group() as tg:
                for case in CASES:
                    tg.start_soon(run_provider, proxy, case, key, transport, hay)
        finally:
            await transport.aclose()
    # SigV4: the canary as the AWS secret access key.
    sigv4 = create_provider(
        "bedrock", api_key=f"AKIAIOSFODNN7EXAMPLE:{key}", base_url=proxy.url("x"), env={"AWS_REGION": "us-east-1"}
    )
    hay.add("bedrock-sigv4", sigv4, vars(sigv4), getattr(sigv4, "_frozen", None))
    hay.add("logs", logs.getvalue())
    assert "aiohttp" in logs.getvalue() or "httpx" in logs.getvalue() or "httpcore" in logs.getvalue()
    assert not hay.leaks(key), sorted(set(hay.leaks(key)))[:10]


CLI = (
    "import logging, sys; logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format='%(name)s %(message)s'); "
    "from lluminary.cli import main; sys.exit(main(sys.argv[1:]))"
)


async def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    import os

    full_env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "LLUMINARY_MODEL"}
    full_env.update(env or {})
    result = await anyio.run_process([sys.executable, "-c", CLI, *args], env=full_env, check=False)
    return result.returncode, result.stdout.decode() + result.stderr.decode()


@pytest.mark.parametrize("key_kind", sorted(KEYS))
async def test_the_key_never_leaks_through_the_command_line(proxy: FaultProxy, key_kind: str) -> None:
    key = KEYS[key_kind]
    openai, gemini, bedrock = CASES[0], CASES[3], CASES[4]
    proxy.push(f"cli-ok-{key_kind}", Plan(openai.success))
    proxy.push(f"cli-401-{key_kind}", Plan(body(openai.unauthorized, key), status=401, headers=JSON))
    proxy.push(f"cli-in-band-{key_kind}", Plan(body(openai.in_band, key)))
    proxy.push(f"cli-gemini-{key_kind}", Plan(body(gemini.unauthorized, key), status=400, headers=JSON))
    proxy.push(f"cli-bedrock-{key_kind}", Plan(body(bedrock.unauthorized, key), status=403, headers=JSON))
    runs = {
        "success": (["--model", "openai:gpt-4o-mini", "--base-url", proxy.url(f"cli-ok-{key_kind}") + "/v1",
                     "--api-key", key, "--events"], None, 0),
        "401-text": (["--model", "openai:gpt-4o-mini", "--base-url", proxy.url(f"cli-401-{key_kind}") + "/v1",
                      "--api-key", key], None, 1),
        "in-band-events": (["--model", "openai:gpt-4o-mini", "--base-url",
                            proxy.url(f"cli-in-band-{key_kind}") + "/v1", "--events"], {"OPENAI_API_KEY": key}, 1),
        "gemini-400": (["--model", "gemini:gemini-2.0-flash", "--base-url", proxy.url(f"cli-gemini-{key_kind}")],
                       {"GEMINI_API_KEY": key}, 1),
        "bedrock-403": (["--model", f"bedrock:{bedrock.model}", "--base-url", proxy.url(f"cli-bedrock-{key_kind}"),
                         "--api-key", key, "--events"], {"AWS_REGION": "us-east-1"}, 1),
        "refused": (["--model", "anthropic:claude-sonnet-4-5", "--base-url", "http://127.0.0.1:9", "--api-key", key],
                    None, 1),
        "usage-error": (["--model", "opnai:gpt-4o", "--api-key", key], None, 2),
    }  # fmt: skip
    hay = Haystack()

    async def one(name: str) -> None:
        args, env, expected = runs[name]
        code, output = await run_cli("chat", "hello", *args, env=env)
        assert code == expected, (name, output[-2000:])
        hay.add(f"cli/{name}", output)

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for name in runs:
                tg.start_soon(one, name)
    assert len(hay.texts) == len(runs)
    assert not hay.leaks(key), sorted(set(hay.leaks(key)))[:10]
