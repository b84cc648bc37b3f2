"""Token counting: tiktoken only from its on-disk cache, the documented estimate otherwise,
and the providers' count endpoints against a loopback server.

tiktoken's real BPE files cannot be fetched here (no internet), so the exact path
is exercised with tiktoken itself running a small byte-level vocabulary through
OpenAI's chat accounting, and the guard that keeps tiktoken off the network is
tested with a missing and a corrupt cache file. The response bodies below are
the documented shapes of each count endpoint.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from lluminary.events import ChatRequest, Message, ToolSpec
from lluminary.providers import AiohttpTransport, create_provider
from lluminary.providers._tokens import estimate_request_tokens
from lluminary.tokens import (
    ENCODINGS,
    ESTIMATE,
    TokenCount,
    TokenCountError,
    cache_path,
    count_tokens,
    count_tokens_remote,
    count_with_encoding,
    encoding_for_model,
    load_encoding,
)
from tests.support import ReplayServer, Reply

KEY = "sk-test-0123456789abcdef"
REQUEST = ChatRequest(
    model="openai:gpt-4o-mini",
    system="You are terse.",
    messages=[Message.user("What is the capital of France?"), Message.assistant("Paris."), Message.user("And Peru?")],
)
JSON = {"content-type": "application/json"}


@pytest.fixture
async def transport() -> AsyncIterator[AiohttpTransport]:
    transport = AiohttpTransport()
    try:
        yield transport
    finally:
        await transport.aclose()


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty tiktoken cache, and tiktoken's downloader made to fail loudly if it is ever reached."""
    import tiktoken.load

    def refuse(blobpath: str) -> bytes:
        raise AssertionError(f"tiktoken tried to download {blobpath}")

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(tiktoken.load, "read_file", refuse)
    return tmp_path


# -- offline ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o-mini-2024-07-18", "o200k_base"),
        ("gpt-4.1", "o200k_base"),
        ("gpt-5-nano", "o200k_base"),
        ("o3", "o200k_base"),
        ("o4-mini", "o200k_base"),
        ("gpt-4-turbo", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("ft:gpt-4o-mini:acme::x", "o200k_base"),
        ("claude-sonnet-4-5", None),
        ("mistral-small-latest", None),
    ],
)
def test_openai_models_map_to_their_encoding(model: str, encoding: str | None) -> None:
    assert encoding_for_model(model) == encoding


def test_cache_path_is_where_tiktoken_looks(no_network: Path) -> None:
    import hashlib

    url, _ = ENCODINGS["o200k_base"]
    assert cache_path("o200k_base") == no_network / hashlib.sha1(url.encode(), usedforsecurity=False).hexdigest()


def test_without_tiktoken_data_counting_is_a_fast_marked_estimate(no_network: Path) -> None:
    started = time.perf_counter()
    counted = count_tokens(REQUEST)
    elapsed = time.perf_counter() - started
    assert counted == TokenCount(estimate_request_tokens(REQUEST), exact=False, method=ESTIMATE)
    assert elapsed < 1.0  # no network timeout was waited out
    assert load_encoding("o200k_base") is None


def test_a_corrupt_cache_file_is_neither_used_nor_replaced_by_a_download(no_network: Path) -> None:
    bad = cache_path("o200k_base")
    bad.write_bytes(b"not a bpe file\n")
    counted = count_tokens(REQUEST)
    assert counted.method == ESTIMATE
    assert not counted.exact
    assert bad.read_bytes() == b"not a bpe file\n"  # tiktoken would have deleted it and gone online


def test_other_providers_are_estimated_even_for_openai_named_models(no_network: Path) -> None:
    counted = count_tokens(REQUEST, "mistral", "gpt-4o")
    assert counted == TokenCount(estimate_request_tokens(REQUEST), exact=False, method=ESTIMATE)


def _byte_encoding() -> object:
    """A real tiktoken Encoding whose vocabulary is the 256 single bytes: one token per byte."""
    import tiktoken

    return tiktoken.Encoding(
        name="bytes", pat_str=r"\S+|\s+", mergeable_ranks={bytes([i]): i for i in range(256)}, special_tokens={}
    )


def test_chat_accounting_with_a_real_encoding_follows_openais_recipe() -> None:
    enc = _byte_encoding()
    counted = count_with_encoding(REQUEST, enc)  # type: ignore[arg-type]
    # 3 to prime the reply; each message 3 + its role + its content (bytes, in this vocabulary).
    expected = 3 + (3 + len("system") + len("You are terse."))
    expected += (3 + len("user") + len("What is the capital of France?")) + (3 + len("assistant") + len("Paris."))
    expected += 3 + len("user") + len("And Peru?")
    assert counted == TokenCount(expected, exact=True, method="tiktoken:bytes")


def test_special_token_text_in_a_prompt_is_counted_as_text() -> None:
    import tiktoken

    enc = tiktoken.Encoding(
        name="bytes+eot",
        pat_str=r"\S+|\s+",
        mergeable_ranks={bytes([i]): i for i in range(256)},
        special_tokens={"<|endoftext|>": 256},
    )
    counted = count_with_encoding(ChatRequest(model="openai:x", messages=[Message.user("<|endoftext|>")]), enc)
    assert counted.tokens == 3 + 3 + len("user") + len("<|endoftext|>")


def test_tools_make_a_tiktoken_count_inexact() -> None:
    with_tools = msgspec.structs.replace(REQUEST, tools=[ToolSpec("lookup", "find a city")])
    counted = count_with_encoding(with_tools, _byte_encoding())  # type: ignore[arg-type]
    assert not counted.exact
    assert counted.tokens > count_with_encoding(REQUEST, _byte_encoding()).tokens  # type: ignore[arg-type]


# -- the providers' endpoints ------------------------------------------------------------------


async def test_anthropic_count_tokens_endpoint(transport: AiohttpTransport) -> None:
    async with ReplayServer([Reply(b'{"input_tokens": 2095}', headers=JSON)]) as server:
        provider = create_provider("anthropic", api_key=KEY, base_url=server.url)
        counted = await count_tokens_remote(REQUEST, provider, "claude-sonnet-4-5", transport)
    assert counted == TokenCount(2095, exact=True, method="anthropic:count_tokens")
    seen = server.requests[0]
    assert (seen.method, seen.path) == ("POST", "/v1/messages/count_tokens")
    assert seen.headers["x-api-key"] == KEY
    assert seen.headers["anthropic-version"] == "2023-06-01"
    body = seen.json()
    assert body["model"] == "claude-sonnet-4-5"
    assert body["system"] == "You are terse."
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert "stream" not in body
    assert "max_tokens" not in body


async def test_gemini_count_tokens_endpoint(transport: AiohttpTransport) -> None:
    answer = b'{"totalTokens": 31, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 31}]}'
    async with ReplayServer([Reply(answer, headers=JSON)]) as server:
        provider = create_provider("gemini", api_key=KEY, base_url=server.url)
        counted = await count_tokens_remote(REQUEST, provider, "gemini-2.0-flash", transport)
    assert counted == TokenCount(31, exact=True, method="gemini:countTokens")
    seen = server.requests[0]
    assert seen.path == "/v1beta/models/gemini-2.0-flash:countTokens"
    assert seen.query == ""  # the key never goes in the URL
    assert seen.headers["x-goog-api-key"] == KEY
    inner = seen.json()["generateContentRequest"]
    assert inner["model"] == "models/gemini-2.0-flash"
    assert inner["systemInstruction"] == {"parts": [{"text": "You are terse."}]}
    assert len(inner["contents"]) == 3


async def test_openai_input_tokens_endpoint(transport: AiohttpTransport) -> None:
    answer = b'{"object": "response.input_tokens", "input_tokens": 27}'
    async with ReplayServer([Reply(answer, headers=JSON)]) as server:
        provider = create_provider("openai", api_key=KEY, base_url=server.url + "/v1")
        counted = await count_tokens_remote(REQUEST, provider, "gpt-4o-mini", transport)
    assert counted == TokenCount(27, exact=True, method="openai:responses/input_tokens")
    seen = server.requests[0]
    assert seen.path == "/v1/responses/input_tokens"
    assert {k.lower(): v for k, v in seen.headers.items()}["authorization"] == f"Bearer {KEY}"
    body = seen.json()
    assert body["model"] == "gpt-4o-mini"
    assert body["instructions"] == "You are terse."
    assert "stream" not in body
    assert "store" not in body


async def test_cohere_tokenize_counts_text_only_so_it_is_not_exact(transport: AiohttpTransport) -> None:
    answer = b'{"tokens": [10002, 2261, 2012, 8], "token_strings": ["token", "ize", " me", "!"], "meta": {}}'
    async with ReplayServer([Reply(answer, headers=JSON)]) as server:
        provider = create_provider("cohere", api_key=KEY, base_url=server.url)
        counted = await count_tokens_remote(REQUEST, provider, "command-r-08-2024", transport)
    assert counted == TokenCount(4, exact=False, method="cohere:tokenize")
    seen = server.requests[0]
    assert seen.path == "/v1/tokenize"
    assert seen.json() == {
        "text": "You are terse.\nWhat is the capital of France?\nParis.\nAnd Peru?",
        "model": "command-r-08-2024",
    }


async def test_an_endpoint_error_is_typed_and_carries_no_key(transport: AiohttpTransport) -> None:
    body = b'{"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key ' + KEY.encode()
    body += b'"}}'
    async with ReplayServer([Reply(body, status=401, headers=JSON)]) as server:
        provider = create_provider("anthropic", api_key=KEY, base_url=server.url)
        with pytest.raises(TokenCountError) as caught:
            await count_tokens_remote(REQUEST, provider, "claude-sonnet-4-5", transport)
        fallback = await count_tokens_remote(REQUEST, provider, "claude-sonnet-4-5", transport, fallback=True)
    assert caught.value.event is not None
    assert caught.value.event.code == "auth"
    assert caught.value.event.status == 401
    assert KEY not in str(caught.value)
    assert KEY not in caught.value.event.message
    assert fallback == TokenCount(estimate_request_tokens(REQUEST), exact=False, method=ESTIMATE)


async def test_a_garbled_answer_is_an_error_not_a_number(transport: AiohttpTransport) -> None:
    async with ReplayServer([Reply(b'{"tokens_counted": "many"}', headers=JSON)]) as server:
        provider = create_provider("anthropic", api_key=KEY, base_url=server.url)
        with pytest.raises(TokenCountError, match="unexpected token count response"):
            await count_tokens_remote(REQUEST, provider, "claude-sonnet-4-5", transport)


async def test_an_unreachable_endpoint_is_a_connection_error(transport: AiohttpTransport) -> None:
    async with ReplayServer([Reply(b"{}")]) as server:
        url = server.url
    provider = create_provider("gemini", api_key=KEY, base_url=url)  # the server is gone now
    with pytest.raises(TokenCountError) as caught:
        await count_tokens_remote(REQUEST, provider, "gemini-2.0-flash", transport)
    assert caught.value.event is not None
    assert caught.value.event.code == "connection"


async def test_providers_without_an_endpoint_count_offline_when_allowed(transport: AiohttpTransport) -> None:
    provider = create_provider("mistral", api_key=KEY, base_url="http://127.0.0.1:9/v1")
    with pytest.raises(TokenCountError, match="mistral has no token-count endpoint"):
        await count_tokens_remote(REQUEST, provider, "mistral-small-latest", transport)
    counted = await count_tokens_remote(REQUEST, provider, "mistral-small-latest", transport, fallback=True)
    assert counted == TokenCount(estimate_request_tokens(REQUEST), exact=False, method=ESTIMATE)
