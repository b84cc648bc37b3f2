"""The price table: its data file, model-id aliasing, tiers, unknown and free models.

And the issue's rule: a streamed request costs exactly what the same request
costs unstreamed. Where a provider has both decoders (Bedrock Converse and
ConverseStream, Gemini generateContent and its SSE stream) the recorded stream
and the equivalent non-streamed body are decoded by the real decoders and
priced; for Anthropic and OpenAI the recorded stream's usage is compared with
the usage a non-streamed body reports for the same response.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import msgspec
import pytest

from lluminary.events import Cost, Event, TextDelta, Usage
from lluminary.pricing import PRICES_FILE, PriceTable, UnknownPriceError, default_table, price
from lluminary.providers.anthropic import AnthropicDecoder
from lluminary.providers.bedrock import BedrockConverseDecoder, BedrockDecoder
from lluminary.providers.gemini import GeminiDecoder, GeminiJSONDecoder
from lluminary.providers.openai import OpenAIChatDecoder
from tests.support import FIXTURES, decode, fixture_bytes

TABLE = default_table()


def usage_of(events: list[Event]) -> Usage:
    usages = [e for e in events if isinstance(e, Usage)]
    assert len(usages) == 1
    return usages[0]


# -- the data file ----------------------------------------------------------------------------


def test_data_file_names_its_sources_date_and_currency() -> None:
    data = json.loads(PRICES_FILE.read_text())
    assert data["currency"] == "USD"
    assert data["checked"] == "2026-11-27"
    assert TABLE.checked == "2026-11-27"
    for name, provider in data["providers"].items():
        assert provider["source"], f"{name} has no source"
        if not provider.get("free"):
            assert provider["models"] or provider.get("fallback_providers"), name
    assert {"openai", "anthropic", "gemini", "bedrock", "cohere", "mistral", "ollama", "local"} <= set(
        TABLE.providers()
    )


def test_every_listed_rate_is_a_finite_non_negative_number() -> None:
    data = json.loads(PRICES_FILE.read_text())
    for provider in data["providers"].values():
        for model, rates in provider["models"].items():
            for key in ("input", "output", "cache_read", "cache_write"):
                if key in rates:
                    assert math.isfinite(rates[key]), model
                    assert rates[key] >= 0, model
            assert rates["output"] >= rates["input"], model


@pytest.mark.parametrize(
    "bad",
    [
        {"currency": "EUR"},
        {"providers": {"x": {"source": ["s"], "models": {"m": {"input": -1.0, "output": 1.0}}}}},
        {"providers": {"x": {"source": ["s"], "models": {"m": {"input": 1.0}}}}},
        {"providers": {"x": {"source": ["s"], "models": {"m": {"input": 1.0, "output": 2.0, "typo": 1}}}}},
    ],
)
def test_a_broken_table_is_refused_at_load(bad: dict[str, Any]) -> None:
    data = {"currency": "USD", "unit": "u", "checked": "2026-11-27", "providers": {}} | bad
    with pytest.raises(ValueError, match="invalid price table"):
        PriceTable(data)


# -- lookup and aliasing ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "model", "entry"),
    [
        ("openai", "gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("openai", "gpt-5-2025-08-07", "gpt-5"),
        ("openai", "gpt-4.1-2025-04-14", "gpt-4.1"),
        ("openai", "gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),  # its own (higher) price, not gpt-4o's
        ("openai-responses", "gpt-5-nano-2025-08-07", "gpt-5-nano"),
        ("anthropic", "claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("anthropic", "claude-haiku-4-5-20251001", "claude-haiku-4-5"),
        ("anthropic", "claude-3-5-haiku-latest", "claude-3-5-haiku"),
        ("bedrock", "anthropic.claude-3-haiku-20240307-v1:0", "claude-3-haiku"),
        ("bedrock", "us.anthropic.claude-sonnet-4-20250514-v1:0", "claude-sonnet-4"),
        ("bedrock", "global.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"),
        (
            "bedrock",
            "arn:aws:bedrock:us-east-1:1:inference-profile/eu.anthropic.claude-opus-4-1-20250805-v1:0",
            "claude-opus-4-1",
        ),
        ("bedrock", "us.amazon.nova-micro-v1:0", "nova-micro"),
        ("bedrock", "amazon.nova-pro-v1:0", "nova-pro"),
        ("gemini", "models/gemini-2.0-flash-001", "gemini-2.0-flash"),
        ("gemini", "gemini-2.5-pro", "gemini-2.5-pro"),
        ("cohere", "command-r-08-2024", "command-r"),
        ("mistral", "mistral-small-latest", "mistral-small-2506"),
        ("mistral", "magistral-medium-latest", "magistral-medium-2509"),
    ],
)
def test_model_ids_find_their_entry(provider: str, model: str, entry: str) -> None:
    found = TABLE.lookup(provider, model)
    assert found is not None, f"{provider}:{model}"
    assert found.model == entry


def test_bedrock_claude_costs_what_anthropic_charges() -> None:
    usage = Usage(1200, 300, 400, 50)
    assert price(usage, "bedrock", "us.anthropic.claude-sonnet-4-20250514-v1:0") == price(
        usage, "anthropic", "claude-sonnet-4-20250514"
    )


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "gpt-9"),
        ("openai", "ft:gpt-4o-mini:acme::abc"),  # fine-tunes have their own prices
        ("mistral", "mistral-medium-latest"),  # ambiguous alias: deliberately not guessed
        ("gemini", "gemini-2.0-flash-exp"),
        ("bedrock", "meta.llama3-3-70b-instruct-v1:0"),  # sources disagree: left out, not guessed
        ("nobody", "gpt-4o"),
        ("cohere", "command-r-03-2024"),  # a dated id priced differently is not stripped to command-r
    ],
)
def test_unknown_models_are_unknown_never_zero(provider: str, model: str) -> None:
    assert TABLE.lookup(provider, model) is None
    with pytest.raises(UnknownPriceError, match=f"no price for {provider}:"):
        price(Usage(10, 10), provider, model)


def test_local_models_are_free_and_say_so() -> None:
    for provider, model in [("ollama", "qwen3:8b"), ("local", "")]:
        found = TABLE.lookup(provider, model)
        assert found is not None
        assert found.free
        assert price(Usage(1_000_000, 1_000_000), provider, model) == Cost(usd=0.0)


# -- arithmetic -------------------------------------------------------------------------------


def test_each_kind_of_token_has_its_rate() -> None:
    # claude-sonnet-4-5: $3 in, $15 out, $0.30 cache read, $3.75 5-minute cache write.
    cost = price(Usage(100_000, 100_000, 20_000, 10_000), "anthropic", "claude-sonnet-4-5")
    assert cost.input_usd == pytest.approx(0.3)
    assert cost.output_usd == pytest.approx(1.5)
    assert cost.cache_read_usd == pytest.approx(0.006)
    assert cost.cache_write_usd == pytest.approx(0.0375)
    assert cost.usd == pytest.approx(0.3 + 1.5 + 0.006 + 0.0375)
    assert not cost.estimated
    # Past 200k prompt tokens (input + cache), Sonnet 4.5's long-context rates apply to all of it.
    long = price(Usage(190_000, 1000, 20_000), "anthropic", "claude-sonnet-4-5")
    assert long.input_usd == pytest.approx(190_000 * 6e-6)
    assert long.output_usd == pytest.approx(1000 * 22.5e-6)
    assert not cost.estimated


def test_reasoning_tokens_are_output_tokens_and_not_charged_twice() -> None:
    plain = price(Usage(100, 1000), "openai", "o4-mini")
    reasoning = price(Usage(100, 1000, reasoning_tokens=800), "openai", "o4-mini")
    assert plain == reasoning
    assert reasoning.output_usd == pytest.approx(1000 * 4.4e-6)


def test_openai_cache_writes_cost_input_and_cache_reads_their_discount() -> None:
    cost = price(Usage(1000, 0, cache_read_tokens=1000, cache_write_tokens=1000), "openai", "gpt-4o-mini")
    assert cost.cache_write_usd == pytest.approx(cost.input_usd)
    assert cost.cache_read_usd == pytest.approx(cost.input_usd / 2)
    assert not cost.estimated


def test_gemini_pro_bills_the_whole_request_at_the_long_prompt_rates() -> None:
    short = price(Usage(200_000, 1000), "gemini", "gemini-2.5-pro")
    assert short.input_usd == pytest.approx(0.25)
    assert short.output_usd == pytest.approx(0.01)
    # Over 200k prompt tokens (cached ones count toward it), every token is at the higher tier.
    long = price(Usage(150_000, 1000, cache_read_tokens=60_000), "gemini", "gemini-2.5-pro")
    assert long.input_usd == pytest.approx(150_000 * 2.5e-6)
    assert long.cache_read_usd == pytest.approx(60_000 * 0.25e-6)
    assert long.output_usd == pytest.approx(1000 * 15e-6)


def test_an_unknown_cache_rate_is_charged_as_input_and_marked_estimated() -> None:
    # Gemini 2.5 Flash's cache-read price is not in the table.
    without = price(Usage(1000, 10), "gemini", "gemini-2.5-flash")
    assert not without.estimated
    cached = price(Usage(1000, 10, cache_read_tokens=1000), "gemini", "gemini-2.5-flash")
    assert cached.estimated
    assert cached.cache_read_usd == pytest.approx(cached.input_usd)
    assert cached.cache_read_usd > 0


def test_estimated_usage_gives_an_estimated_cost() -> None:
    assert price(Usage(10, 10, estimated=True), "openai", "gpt-4o").estimated


def test_with_prices_adds_a_model_without_touching_the_shipped_table() -> None:
    custom = TABLE.with_prices("openai", {"my-finetune": {"input": 1.0, "output": 2.0}})
    assert price(Usage(1_000_000, 0), "openai", "my-finetune", table=custom).usd == pytest.approx(1.0)
    assert TABLE.lookup("openai", "my-finetune") is None
    assert custom.lookup("openai", "gpt-4o") == TABLE.lookup("openai", "gpt-4o")


# -- streamed costs what unstreamed costs ----------------------------------------------------


def _bedrock_stream() -> bytes:
    return base64.b64decode(fixture_bytes("bedrock", "converse_stream_text.eventstream.b64"))


def _bedrock_body_from_recording() -> bytes:
    """The Converse (non-streaming) answer for the same response: same text, stop reason and usage."""
    lines = (FIXTURES / "bedrock" / "converse_stream_text.decoded.jsonl").read_text().splitlines()
    frames = [json.loads(line) for line in lines if line.strip()]
    text = "".join(f["payload"].get("delta", {}).get("text", "") for f in frames)
    stop = next(f["payload"]["stopReason"] for f in frames if "stopReason" in f["payload"])
    meta = next(f["payload"] for f in frames if "usage" in f["payload"])
    body = {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": stop,
        "usage": meta["usage"],
        "metrics": meta["metrics"],
    }
    return json.dumps(body).encode()


def test_bedrock_streamed_and_unstreamed_cost_the_same() -> None:
    model = "us.amazon.nova-micro-v1:0"
    streamed = decode(lambda: BedrockDecoder(model=model, input_estimate=1), [_bedrock_stream()])
    whole = decode(lambda: BedrockConverseDecoder(model=model, input_estimate=1), [_bedrock_body_from_recording()])
    assert "".join(e.text for e in streamed if isinstance(e, TextDelta)) == "".join(
        e.text for e in whole if isinstance(e, TextDelta)
    )
    s_usage, w_usage = usage_of(streamed), usage_of(whole)
    assert (s_usage.input_tokens, s_usage.output_tokens) == (13, 82)
    assert s_usage == w_usage
    for m in (model, "anthropic.claude-3-haiku-20240307-v1:0"):
        assert price(s_usage, "bedrock", m) == price(w_usage, "bedrock", m)
        assert price(s_usage, "bedrock", m).usd > 0


def test_gemini_streamed_and_unstreamed_cost_the_same() -> None:
    sse = fixture_bytes("gemini", "text_stream.sse")
    chunks = [json.loads(line[len(b"data: ") :]) for line in sse.splitlines() if line.startswith(b"data: ")]
    # generateContent's one body: the whole text in one candidate, the final usage.
    text = "".join(p["text"] for c in chunks for p in c["candidates"][0]["content"]["parts"])
    last = chunks[-1]
    body = {
        "candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP"}],
        "usageMetadata": last["usageMetadata"],
        "modelVersion": last["modelVersion"],
        "responseId": last["responseId"],
    }
    streamed = decode(lambda: GeminiDecoder(model="gemini-2.0-flash", input_estimate=1), [sse])
    whole = decode(lambda: GeminiJSONDecoder(model="gemini-2.0-flash", input_estimate=1), [msgspec.json.encode(body)])
    s_usage, w_usage = usage_of(streamed), usage_of(whole)
    assert s_usage == w_usage
    assert not s_usage.estimated
    assert price(s_usage, "gemini", "gemini-2.0-flash") == price(w_usage, "gemini", "gemini-2.0-flash")


def test_anthropic_stream_usage_is_the_messages_body_usage() -> None:
    # The non-streamed body of this response reports usage {"input_tokens": 11, "output_tokens": 6}:
    # message_start carries the input, message_delta the cumulative output (counted once, not summed).
    streamed = decode(
        lambda: AnthropicDecoder(model="claude-sonnet-4-5"), [fixture_bytes("anthropic", "text_stream.sse")]
    )
    body_usage = Usage(input_tokens=11, output_tokens=6)
    assert usage_of(streamed) == body_usage
    assert price(usage_of(streamed), "anthropic", "claude-sonnet-4-5") == price(
        body_usage, "anthropic", "claude-sonnet-4-5"
    )


def test_openai_stream_usage_is_the_completion_body_usage() -> None:
    # The non-streamed body: {"prompt_tokens": 78, "completion_tokens": 9, "cached_tokens": 0}.
    sse = fixture_bytes("openai_chat", "text_stream_include_usage.sse")
    streamed = decode(lambda: OpenAIChatDecoder(model="gpt-4o-mini"), [sse])
    body_usage = Usage(input_tokens=78, output_tokens=9)
    assert usage_of(streamed) == body_usage
    cost = price(usage_of(streamed), "openai", "gpt-4o-mini-2024-07-18")
    assert cost == price(body_usage, "openai", "gpt-4o-mini")
    assert cost.usd == pytest.approx(78 * 0.15e-6 + 9 * 0.6e-6)
