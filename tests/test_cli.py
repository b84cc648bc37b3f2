"""The ``lluminary`` command, run as a real subprocess against loopback replays."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import msgspec
import pytest

from lluminary.events import Error, Event, Finish, TextDelta, decode_event
from lluminary.providers.anthropic import AnthropicDecoder
from lluminary.providers.openai import OpenAIChatDecoder
from tests.support import ReplayServer, Reply, check_invariants, decode, fixture_bytes


async def run_cli(*args: str, stdin: bytes | None = None, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    full_env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    full_env.pop("LLUMINARY_MODEL", None)
    full_env.update(env or {})
    result = await anyio.run_process([sys.executable, "-m", "lluminary", *args], input=stdin, env=full_env, check=False)
    return result.returncode, result.stdout.decode(), result.stderr.decode()


def parse_lines(out: str) -> list[Event]:
    return [decode_event(line) for line in out.splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("provider", "fixture", "base_suffix", "decoder"),
    [
        ("anthropic", ("anthropic", "tool_use_stream.sse"), "", AnthropicDecoder),
        ("anthropic", ("anthropic", "thinking_stream.sse"), "", AnthropicDecoder),
        ("openai", ("openai_chat", "tool_call_stream_include_usage.sse"), "/v1", OpenAIChatDecoder),
        ("openai", ("openai_chat", "text_stream_include_usage.sse"), "/v1", OpenAIChatDecoder),
    ],
)
async def test_events_against_a_loopback_replay(
    provider: str, fixture: tuple[str, str], base_suffix: str, decoder: type
) -> None:
    body = fixture_bytes(*fixture)
    async with ReplayServer([Reply(body, chunk_size=64)]) as server:
        code, out, err = await run_cli(
            "chat",
            "hello",
            "--model",
            f"{provider}:some-model",
            "--base-url",
            server.url + base_suffix,
            "--api-key",
            "sk-canary-cli-123456",
            "--events",
        )
    assert code == 0, err
    events = parse_lines(out)
    check_invariants(events)
    expected = decode(lambda: decoder(model="some-model"), [body])
    assert events == expected
    assert isinstance(events[-1], Finish)
    assert "sk-canary-cli-123456" not in out + err
    sent = server.requests[0]
    assert sent.json()["messages"][-1]["content"] in ("hello", [{"type": "text", "text": "hello"}])


async def test_text_output_and_stdin_prompt() -> None:
    body = fixture_bytes("openai_chat", "text_stream_include_usage.sse")
    async with ReplayServer([Reply(body)]) as server:
        code, out, err = await run_cli(
            "chat",
            "-",
            "--model",
            "openai:gpt-4o-mini",
            "--base-url",
            server.url + "/v1",
            "--system",
            "be brief",
            "--max-tokens",
            "20",
            "--temperature",
            "0.5",
            stdin=b"from stdin",
        )
        sent = server.requests[0].json()
    assert code == 0, err
    assert out == "The capital of the UK is London.\n"
    assert sent["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "from stdin"},
    ]
    assert sent["max_tokens"] == 20  # a compatible base URL gets max_tokens
    assert sent["temperature"] == 0.5


async def test_tools_file_is_sent(tmp_path: Path) -> None:
    tools = [{"name": "get_weather", "description": "Weather", "parameters": {"type": "object"}}]
    path = tmp_path / "tools.json"
    path.write_bytes(msgspec.json.encode(tools))
    body = fixture_bytes("anthropic", "tool_use_stream.sse")
    async with ReplayServer([Reply(body)]) as server:
        code, out, err = await run_cli(
            "chat",
            "weather?",
            "--model",
            "anthropic:claude-sonnet-4-5",
            "--base-url",
            server.url,
            "--api-key",
            "k",
            "--tools",
            str(path),
        )
        sent = server.requests[0].json()
    assert code == 0, err
    assert sent["tools"] == [{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object"}}]
    assert '[tool call] get_weather({"location":"Paris"})' in out


async def test_http_error_exits_1_with_one_line() -> None:
    reply = Reply(
        b'{"error":{"message":"Overloaded","type":"overloaded_error"}}',
        status=529,
        headers={"content-type": "application/json", "retry-after": "3"},
    )
    async with ReplayServer([reply]) as server:
        code, out, err = await run_cli(
            "chat", "hi", "--model", "anthropic:claude-sonnet-4-5", "--base-url", server.url, "--api-key", "k"
        )
        code_ev, out_ev, _ = await run_cli(
            "chat",
            "hi",
            "--model",
            "anthropic:claude-sonnet-4-5",
            "--base-url",
            server.url,
            "--api-key",
            "k",
            "--events",
        )
    assert code == 1
    assert out == ""
    assert err.strip().splitlines() == ["lluminary: error: overloaded (HTTP 529): Overloaded"]
    assert code_ev == 1
    events = parse_lines(out_ev)
    assert len(events) == 1
    assert isinstance(events[0], Error)
    assert (events[0].code, events[0].status, events[0].retry_after) == ("overloaded", 529, 3.0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["chat", "hi", "--model", "nosuch:model"], "unknown provider 'nosuch'"),
        (["chat", "hi", "--model", "openai:gpt-4o"], "OPENAI_API_KEY"),
        (["chat", "hi", "--model", "anthropic:claude"], "ANTHROPIC_API_KEY"),
        (["chat", "--model", "openai:gpt-4o", "--api-key", "k", ""], "no prompt"),
        (["chat", "hi", "--max-tokens", "0"], "--max-tokens"),
        (["chat", "hi", "--max-tokens", "many"], "invalid int value"),
        (["chat", "hi", "--tools", "/nonexistent/tools.json"], "cannot read tools file"),
        (["frobnicate"], "invalid choice"),
    ],
)
async def test_usage_mistakes_exit_2(args: list[str], message: str) -> None:
    code, out, err = await run_cli(*args, stdin=b"")
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert out == ""


async def test_bad_tools_file_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "tools.json"
    path.write_text('{"name": "not a list"}')
    code, _, err = await run_cli("chat", "hi", "--tools", str(path))
    assert code == 2
    assert "not a JSON array of tool specs" in err


async def test_cut_stream_exits_1() -> None:
    body = fixture_bytes("openai_chat", "text_stream_include_usage.sse")
    async with ReplayServer([Reply(body, cut_after=len(body) // 2)]) as server:
        code, out, _err = await run_cli(
            "chat", "hi", "--model", "openai:m", "--base-url", server.url + "/v1", "--events"
        )
    assert code == 1
    events = parse_lines(out)
    check_invariants(events)
    assert isinstance(events[-1], Error)
    assert any(isinstance(e, TextDelta) for e in events)


async def test_local_model_answers_with_no_key_and_no_network() -> None:
    """The README's first command: no --model, no key, the in-process model answers."""
    code, out, err = await run_cli("chat", "What is the capital of France?", "--max-tokens", "24")
    assert code == 0, err
    assert out.strip()
    code, out, err = await run_cli("chat", "What is the capital of France?", "--max-tokens", "24", "--events")
    assert code == 0, err
    events = parse_lines(out)
    check_invariants(events)
    assert isinstance(events[-1], Finish)
    assert events[0].provider == "local"  # type: ignore[union-attr]
    assert any(isinstance(e, TextDelta) and e.text for e in events)


def _body(provider: str) -> tuple[bytes, str]:
    """A recording for ``provider`` as the wire body, and its content type."""
    import base64

    from tests.support import FIXTURES, jsonl_to_sse

    sse = "text/event-stream"
    if provider == "gemini":
        return fixture_bytes("gemini", "function_call_thought_signature_stream.sse"), sse
    if provider == "bedrock":
        raw = base64.b64decode(fixture_bytes("bedrock", "converse_stream_tool_use.eventstream.b64"))
        return raw, "application/vnd.amazon.eventstream"
    if provider == "cohere":
        return jsonl_to_sse(FIXTURES / "cohere" / "tool_call_stream.chunks.jsonl", event_names=True), sse
    if provider == "mistral":
        # The recorder kept only the data payloads; the live API ends with [DONE].
        body = jsonl_to_sse(FIXTURES / "mistral" / "text_stream.chunks.jsonl", event_names=False)
        return body + b"data: [DONE]\n\n", sse
    if provider == "ollama":
        return fixture_bytes("ollama", "chat_stream_tool_call.docs.ndjson"), "application/x-ndjson"
    return fixture_bytes("openai_responses", "function_call_stream.sse"), sse


AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "AWS_REGION": "us-east-1",
}


@pytest.mark.parametrize(
    ("provider", "model", "suffix", "path"),
    [
        ("gemini", "gemini-2.5-flash", "", "/v1beta/models/gemini-2.5-flash:streamGenerateContent"),
        (
            "bedrock",
            "anthropic.claude-3-haiku-20240307-v1:0",
            "",
            "/model/anthropic.claude-3-haiku-20240307-v1:0/converse-stream",
        ),
        ("cohere", "command-a-03-2025", "", "/v2/chat"),
        ("mistral", "mistral-small-latest", "/v1", "/v1/chat/completions"),
        ("ollama", "llama3.2", "", "/api/chat"),
        ("openai-responses", "gpt-4o", "/v1", "/v1/responses"),
    ],
)
async def test_every_provider_from_the_command_line(provider: str, model: str, suffix: str, path: str) -> None:
    from lluminary.events import ChatRequest, Message
    from lluminary.providers import create_provider

    body, content_type = _body(provider)
    env = dict(AWS_ENV) if provider == "bedrock" else {}
    key_args = [] if provider in ("bedrock", "ollama") else ["--api-key", "canary-key-7f3a9"]
    async with ReplayServer([Reply(body, chunk_size=50, headers={"content-type": content_type})]) as server:
        code, out, err = await run_cli(
            "chat",
            "hello",
            "--model",
            f"{provider}:{model}",
            "--base-url",
            server.url + suffix,
            "--events",
            *key_args,
            env=env,
        )
        seen = server.requests[0]
    assert code == 0, err
    events = parse_lines(out)
    check_invariants(events)
    assert isinstance(events[-1], Finish)
    # The CLI prints exactly what the provider's own decoder makes of the same bytes.
    configured = create_provider(
        provider, api_key=key_args[1] if key_args else None, base_url=server.url + suffix, env=env
    )
    request = ChatRequest(model=f"{provider}:{model}", messages=[Message.user("hello")])
    expected = decode(lambda: configured.decoder(request, model), [body])  # type: ignore[attr-defined]
    assert events == expected
    assert seen.path == path
    assert "canary-key-7f3a9" not in out + err
    if provider == "bedrock":
        auth = seen.headers["Authorization"]
        assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/")
        assert "/us-east-1/bedrock/aws4_request" in auth
        assert "Signature=" in auth
        assert "X-Amz-Date" in seen.headers
