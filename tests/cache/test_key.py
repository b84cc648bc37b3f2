"""Cache keys: every output-affecting field changes the key, nothing else does, and keys are stable."""

from __future__ import annotations

import random
import time
from typing import Any

import msgspec
import pytest

import lluminary.cache
from lluminary.cache import cache_key, context_key, engine_base_url, entry_key, key_material
from lluminary.engine import Engine
from lluminary.events import ChatRequest, ImagePart, Message, ResponseFormat, TextPart, ToolChoice, ToolSpec
from lluminary.providers import create_provider

BASE = ChatRequest(
    model="openai:gpt-4o-mini",
    messages=[Message.user("What is the capital of France?")],
    system="Be brief.",
    tools=[ToolSpec("lookup", "Look a city up", {"type": "object", "properties": {"q": {"type": "string"}}})],
    tool_choice="auto",
    temperature=0.2,
    top_p=0.9,
    max_tokens=100,
    stop=["\n\n"],
    seed=7,
    response_format=ResponseFormat(type="json_object"),
    metadata={"tenant": "acme", "trace": "t-1"},
    extra={"reasoning_effort": "low", "options": {"num_ctx": 4096}},
)

#: One change to each field that reaches the provider, and so can change the answer.
OUTPUT_CHANGES: dict[str, dict[str, Any]] = {
    "model": {"model": "openai:gpt-4o"},
    "provider": {"model": "mistral:gpt-4o-mini"},
    "message text": {"messages": [Message.user("What is the capital of Spain?")]},
    "message role": {"messages": [Message.assistant("What is the capital of France?")]},
    "message parts": {"messages": [Message.user([TextPart("What is the capital of France?")])]},
    "extra message": {"messages": [Message.user("What is the capital of France?"), Message.user("Thanks")]},
    "image": {"messages": [Message.user([TextPart("What is this?"), ImagePart(url="https://x/y.png")])]},
    "system": {"system": "Be verbose."},
    "no system": {"system": None},
    "tool name": {"tools": [ToolSpec("search", "Look a city up", BASE.tools[0].parameters)]},
    "tool description": {"tools": [ToolSpec("lookup", "Find a city", BASE.tools[0].parameters)]},
    "tool schema": {"tools": [ToolSpec("lookup", "Look a city up", {"type": "object", "properties": {}})]},
    "no tools": {"tools": []},
    "tool_choice": {"tool_choice": "required"},
    "tool_choice named": {"tool_choice": ToolChoice("lookup")},
    "temperature": {"temperature": 0.3},
    "temperature unset": {"temperature": None},
    "top_p": {"top_p": 0.95},
    "max_tokens": {"max_tokens": 101},
    "stop": {"stop": ["\n"]},
    "seed": {"seed": 8},
    "response_format": {"response_format": ResponseFormat(type="json_schema", schema={"type": "object"})},
    "extra value": {"extra": {"reasoning_effort": "high", "options": {"num_ctx": 4096}}},
    "extra nested": {"extra": {"reasoning_effort": "low", "options": {"num_ctx": 8192}}},
    "extra key": {"extra": {"reasoning_effort": "low", "options": {"num_ctx": 4096}, "n": 1}},
}


def with_(request: ChatRequest, **fields: Any) -> ChatRequest:
    return msgspec.structs.replace(request, **fields)


def test_the_public_surface_is_pinned() -> None:
    assert sorted(lluminary.cache.__all__) == sorted(
        [
            "DEFAULT_NAMESPACE",
            "ENTRY_VERSION",
            "GUARDS",
            "KEY_VERSION",
            "CacheEntry",
            "CacheStats",
            "cache_key",
            "context_key",
            "decode_entry",
            "engine_base_url",
            "entry_key",
            "key_material",
            "near_miss",
        ]
    )


def test_keys_are_stable_across_processes_and_versions() -> None:
    # A golden value: if this changes, every deployed cache misses once. Bump KEY_VERSION on purpose.
    assert cache_key(BASE) == "c1:8cac483626a4e790582aa92da6415e1604e63e9634438935063243b3e7f25329"


@pytest.mark.parametrize("change", sorted(OUTPUT_CHANGES))
def test_every_output_affecting_field_changes_the_key(change: str) -> None:
    changed = with_(BASE, **OUTPUT_CHANGES[change])
    assert cache_key(changed) != cache_key(BASE)


def test_metadata_other_than_the_tenant_is_ignored() -> None:
    relabelled = with_(BASE, metadata={"tenant": "acme", "trace": "t-2", "user": "u-9"})
    assert cache_key(relabelled) == cache_key(BASE)
    assert b"t-1" not in key_material(BASE)


def test_tenants_never_share_entries_even_under_one_namespace() -> None:
    other = with_(BASE, metadata={"tenant": "globex"})
    none = with_(BASE, metadata={})
    keys = {cache_key(r, namespace=ns) for r in (BASE, other, none) for ns in (None, "shared")}
    assert len(keys) == 6


def test_namespaces_and_base_urls_separate_entries() -> None:
    assert cache_key(BASE, namespace="a") != cache_key(BASE, namespace="b")
    assert cache_key(BASE) == cache_key(BASE, namespace="default")
    official = cache_key(BASE, base_url="https://api.openai.com/v1")
    assert official != cache_key(BASE, base_url="http://vllm.internal:8000/v1")
    assert official != cache_key(BASE)
    assert official == cache_key(BASE, base_url="https://api.openai.com/v1/")


def test_dict_order_does_not_matter() -> None:
    reordered = with_(BASE, extra={"options": {"num_ctx": 4096}, "reasoning_effort": "low"})
    schema = {"properties": {"q": {"type": "string"}}, "type": "object"}
    retooled = with_(reordered, tools=[ToolSpec("lookup", "Look a city up", schema)])
    assert cache_key(retooled) == cache_key(BASE)


def test_context_key_ignores_only_the_last_message_text() -> None:
    paraphrased = with_(BASE, messages=[Message.user("Which city is the capital of France?")])
    assert context_key(paraphrased) == context_key(BASE)
    assert cache_key(paraphrased) != cache_key(BASE)
    for change in ("model", "system", "tool_choice", "temperature", "extra value", "extra message"):
        assert context_key(with_(BASE, **OUTPUT_CHANGES[change])) != context_key(BASE), change
    assert context_key(with_(BASE, metadata={"tenant": "globex"})) != context_key(BASE)
    assert entry_key(context_key(BASE), "a") != entry_key(context_key(BASE), "b")
    assert entry_key(context_key(BASE), "a") != entry_key(context_key(paraphrased, namespace="n"), "a")


async def test_engine_base_url_reads_the_configured_provider() -> None:
    provider = create_provider("openai", api_key="sk-test", base_url="http://127.0.0.1:9/v1")
    async with Engine(providers={"openai": provider}, env={}) as engine:
        resolve = engine_base_url(engine)
        assert resolve(BASE) == "http://127.0.0.1:9/v1"
        assert "sk-test" not in key_material(BASE, base_url=resolve(BASE)).decode()


# -- 100,000 random pairs ----------------------------------------------------------------

_WORDS = [
    "alpha",
    "beta",
    "gamma",
    "capital",
    "city",
    "river",
    "what",
    "how",
    "the",
    "a",
    "of",
    "London",
    "Paris",
    "1",
    "2",
]


def _text(rng: random.Random) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 8)))


def _request(rng: random.Random) -> ChatRequest:
    messages = [Message(rng.choice(("user", "assistant")), _text(rng)) for _ in range(rng.randint(1, 3))]
    return ChatRequest(
        model=rng.choice(("openai:gpt-4o-mini", "anthropic:claude-sonnet-4-5", "ollama:llama3.2:1b")),
        messages=messages,
        system=rng.choice((None, _text(rng))),
        temperature=rng.choice((None, round(rng.random(), 2))),
        max_tokens=rng.choice((None, rng.randint(1, 4096))),
        seed=rng.choice((None, rng.randint(0, 10**6))),
        stop=rng.choice(([], [_text(rng)])),
        extra=rng.choice(({}, {"num_ctx": rng.randint(1, 9) * 1024})),
    )


_MUTATIONS = (
    lambda r, g: {"model": r.model + "x"},
    lambda r, g: {"messages": [*r.messages[:-1], Message(r.messages[-1].role, r.messages[-1].text + " " + _text(g))]},
    lambda r, g: {"system": (r.system or "") + "!"},
    lambda r, g: {"temperature": (r.temperature or 0.0) + 0.01},
    lambda r, g: {"max_tokens": (r.max_tokens or 0) + 1},
    lambda r, g: {"seed": (r.seed or 0) + 1},
    lambda r, g: {"stop": [*r.stop, "END"]},
    lambda r, g: {"extra": {**r.extra, "top_k": g.randint(1, 50)}},
    lambda r, g: {"top_p": 0.5 if r.top_p is None else None},
)


def test_no_collisions_over_100k_random_request_pairs() -> None:
    rng = random.Random(20240611)
    started = time.perf_counter()
    seen: dict[str, bytes] = {}
    pairs = 0
    for _ in range(100_000):
        a = _request(rng)
        b = with_(a, **rng.choice(_MUTATIONS)(a, rng))
        key_a, key_b = cache_key(a), cache_key(b)
        assert key_a != key_b
        for key, request in ((key_a, a), (key_b, b)):
            material = key_material(request)
            # The same key must only ever come from the same material: no collision anywhere.
            assert seen.setdefault(key, material) == material
        pairs += 1
    assert pairs == 100_000
    assert len(seen) > 150_000  # random requests repeat now and then; the pairs never do
    assert time.perf_counter() - started < 10
