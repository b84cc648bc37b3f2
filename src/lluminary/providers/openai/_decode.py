"""OpenAI Chat Completions stream decoder (also every OpenAI-compatible server).

The stream is SSE ``data:`` lines of ``chat.completion.chunk`` objects ending in
``data: [DONE]``. What we handle:

- text (``delta.content``), refusals (``delta.refusal``), and the reasoning text
  compatible servers send as ``delta.reasoning_content`` (vLLM, DeepSeek) or
  ``delta.reasoning`` (OpenRouter, Ollama);
- parallel tool calls, keyed by ``(choice, tool index)``: the first fragment
  brings id and name, later ones argument text; some servers send a call whole,
  or leave ``index`` out and tell calls apart only by a new ``id``. A fragment
  with neither name nor arguments starts nothing (its id is kept for the call);
- usage, which with ``stream_options.include_usage`` arrives on a chunk after the
  finish reason, usually with ``choices: []`` but sometimes on the last chunk
  that still has choices; cached and reasoning token details are kept (and
  DeepSeek's ``prompt_cache_hit_tokens``);
- the deprecated ``delta.function_call`` (``functions`` API, finish reason
  ``function_call``), streamed as one tool call per choice;
- an in-band ``{"error": …}`` payload after HTTP 200, vLLM's
  ``{"object": "error", "message": …}`` and a flat ``{"message", "type",
  "code"}`` without ``choices``; a code or type OpenAI documents picks the error
  code, else an HTTP status in ``code`` (proxies), else ``server``;
- Azure's opening chunk (``choices: []``, empty id, prompt filter results),
  which is not the start of the answer.

``finish_reason`` does not end the stream: ``[DONE]`` does. A stream cut after the
finish reason but before ``[DONE]`` is a protocol error, as any cut is.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from lluminary.events import ErrorCode, FinishReason, RefusalDelta, TextDelta, Usage
from lluminary.providers._decoder import BaseDecoder
from lluminary.providers._errors import code_for_status, error_event
from lluminary.providers._framing import SSEFramer, SSEMessage
from lluminary.providers.openai._errors import TYPE_CODES

__all__ = ["OpenAIChatDecoder", "finish_reason"]


class _Function(msgspec.Struct, gc=False):
    name: str | None = None
    # A JSON text per the API; a few compatible servers send the object itself.
    arguments: str | dict[str, Any] | None = None


class _ToolCallDelta(msgspec.Struct, gc=False):
    index: int | None = None
    id: str | None = None
    function: _Function | None = None


class _Delta(msgspec.Struct, gc=False):
    content: str | None = None
    refusal: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    tool_calls: list[_ToolCallDelta] | None = None
    # Deprecated ``functions`` API: one call per choice, no id, no index.
    function_call: _Function | None = None


class _Choice(msgspec.Struct, gc=False):
    index: int = 0
    delta: _Delta | None = None
    finish_reason: str | None = None


class _PromptDetails(msgspec.Struct, gc=False):
    cached_tokens: int | None = None
    cache_write_tokens: int | None = None


class _CompletionDetails(msgspec.Struct, gc=False):
    reasoning_tokens: int | None = None


class _Usage(msgspec.Struct, gc=False):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    prompt_cache_hit_tokens: int | None = None  # DeepSeek
    prompt_tokens_details: _PromptDetails | None = None
    completion_tokens_details: _CompletionDetails | None = None


class _ErrorBody(msgspec.Struct, gc=False):
    message: str | None = None
    type: str | None = None
    code: str | int | None = None


class _Chunk(msgspec.Struct, gc=False):
    id: str | None = None
    object: str | None = None
    model: str | None = None
    choices: list[_Choice] | None = None
    usage: _Usage | None = None
    error: _ErrorBody | str | None = None
    # vLLM and some other compatible servers send errors flat: {"object": "error", "message": …}
    message: str | None = None
    type: str | None = None
    code: str | int | None = None


_decode_chunk: Final = msgspec.json.Decoder(_Chunk).decode
_DONE: Final = b"[DONE]"
_LEGACY_SLOT: Final = -1  # the vendor "index" of a legacy ``function_call``
_FINISH: Final[dict[str, FinishReason]] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
    "end_turn": "stop",  # some compatible servers pass Anthropic's reason through
    "eos": "stop",
    "model_length": "length",  # Mistral
    "error": "other",
}


def finish_reason(raw: str | None) -> FinishReason:
    return _FINISH.get(raw, "other") if raw else "other"


def usage_from(u: _Usage) -> Usage:
    prompt = u.prompt_tokens or 0
    details = u.prompt_tokens_details
    cached = (details.cached_tokens or 0) if details else 0
    if not cached and u.prompt_cache_hit_tokens:
        cached = u.prompt_cache_hit_tokens
    written = (details.cache_write_tokens or 0) if details else 0
    out_details = u.completion_tokens_details
    reasoning = (out_details.reasoning_tokens or 0) if out_details else 0
    return Usage(
        input_tokens=max(prompt - cached - written, 0),
        output_tokens=u.completion_tokens or 0,
        cache_read_tokens=cached,
        cache_write_tokens=written,
        reasoning_tokens=reasoning,
    )


class OpenAIChatDecoder(BaseDecoder):
    provider = "openai"

    def __init__(self, *, provider: str = "openai", **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.provider = provider  # type: ignore[misc]
        self._framer = SSEFramer()
        self._raw_finish: str | None = None
        # (choice, vendor index) -> (assembler key, call id) of the call open there.
        self._open: dict[tuple[int, int], tuple[object, str]] = {}
        # Ids that arrived on a fragment with neither name nor arguments.
        self._pending_ids: dict[tuple[int, int], str] = {}

    def _feed(self, data: bytes) -> None:
        self._messages(self._framer.feed(data))

    def _messages(self, messages: list[SSEMessage]) -> None:
        out = self._out
        for _, payload in messages:
            try:
                chunk = _decode_chunk(payload)
            except msgspec.DecodeError:  # ValidationError included: msgspec reads ``[DONE]`` as an array
                # Not a chunk: the end marker, an empty ``data:`` (proxies' keep-alives), or
                # garbage. Asking msgspec first keeps a check per chunk off the hot path.
                stripped = payload.strip()
                if stripped == _DONE:
                    self._end()
                    return
                if stripped:
                    raise
                continue
            choices = chunk.choices
            if self._started and choices and len(choices) == 1 and chunk.usage is None and chunk.error is None:
                # The fast path, nearly every chunk of a stream: one choice with plain text.
                choice = choices[0]
                delta = choice.delta
                if (
                    delta is not None
                    and choice.finish_reason is None
                    and delta.tool_calls is None
                    and delta.refusal is None
                    and delta.reasoning_content is None
                    and delta.reasoning is None
                    and delta.function_call is None
                ):
                    text = delta.content
                    if text:
                        self._chars += len(text)
                        out.append(TextDelta(text, choice.index))
                        continue
            self._chunk(chunk)
            if self._done:
                return

    def _close(self) -> None:
        self._messages(self._framer.close())

    def _end(self) -> None:
        self.finish(finish_reason(self._raw_finish), self._raw_finish)

    def _chunk(self, chunk: _Chunk) -> None:
        """Everything but the fast path of :meth:`_messages`."""
        if chunk.error is not None:
            self._in_band_error(chunk.error)
            return
        if chunk.object == "error" or (chunk.choices is None and chunk.message is not None):
            # A flat error object: vLLM's ``{"object": "error", …}``, or a proxy's
            # ``{"message", "type", "code"}`` (often under ``event: error``).
            self._in_band_error(_ErrorBody(chunk.message, chunk.type, chunk.code))
            return
        # Azure opens with a chunk of prompt filter results: no id, no choices.
        if not self._started and (chunk.id or chunk.choices or chunk.usage is not None):
            self.start(chunk.id or "", chunk.model)
        if chunk.choices:
            for choice in chunk.choices:
                self._choice(choice)
        if chunk.usage is not None:
            self.set_usage(usage_from(chunk.usage))

    def _choice(self, choice: _Choice) -> None:
        delta = choice.delta
        if delta is not None:
            if delta.content:
                self.text(delta.content, choice.index)
            reasoning = delta.reasoning_content or delta.reasoning
            if reasoning:
                self.reasoning(reasoning)
            if delta.refusal:
                self.emit(RefusalDelta(delta.refusal))
            if delta.tool_calls:
                for call in delta.tool_calls:
                    self._tool_delta(choice.index, call)
            if delta.function_call is not None:
                # The legacy call streams like one tool call: name first, then
                # argument text. Its own slot keeps it apart from ``tool_calls``.
                self._tool_delta(choice.index, _ToolCallDelta(_LEGACY_SLOT, None, delta.function_call))
        if choice.finish_reason is not None:
            if self._raw_finish is None:
                self._raw_finish = choice.finish_reason
            # The choice's calls are complete once it finishes; close them now so
            # ``tool-call-end`` is not held back until ``[DONE]``.
            self._end_calls(choice.index)

    def _tool_delta(self, choice: int, call: _ToolCallDelta) -> None:
        index = call.index or 0
        slot = (choice, index)
        fn = call.function
        name = (fn.name if fn else None) or ""
        raw = fn.arguments if fn else None
        arguments = msgspec.json.encode(raw).decode() if isinstance(raw, dict) else raw or ""
        open_call = self._open.get(slot)
        if open_call is not None and call.id and name and call.id != open_call[1]:
            # Servers that leave out ``index`` send every call at index 0; a new
            # id with a name is a new call, so the previous one is complete.
            self.emit_all(self.tools.end(open_call[0]))
            del self._open[slot]
            open_call = None
        if open_call is None:
            if not name and not arguments:
                # An empty opening fragment must not start a call (LangChain #38682);
                # remember its id for the fragment that brings the name.
                if call.id:
                    self._pending_ids[slot] = call.id
                return
            call_id = call.id or self._pending_ids.pop(slot, None) or f"call_{self.tools.count}"
            key = (choice, index, self.tools.count)
            self.emit(self.tools.start(key, call_id, name))
            open_call = self._open[slot] = (key, call_id)
        if arguments:
            event = self.tools.delta(open_call[0], arguments)
            if event is not None:
                self.emit_all([event])

    def _end_calls(self, choice: int) -> None:
        for slot in [s for s in self._open if s[0] == choice]:
            key, _ = self._open.pop(slot)
            self.emit_all(self.tools.end(key))

    def _in_band_error(self, err: _ErrorBody | str) -> None:
        if isinstance(err, str):
            message, kinds = err, []
        else:
            message = err.message or "error"
            # The ``code`` (``context_length_exceeded``) is more precise than the ``type``.
            kinds = [str(k) for k in (err.code, err.type) if k is not None]
        code: ErrorCode | None = next((TYPE_CODES[k] for k in kinds if k in TYPE_CODES), None)
        if code is None:
            # Proxies (OpenRouter, LiteLLM) put the upstream HTTP status in ``code``.
            status = err.code if not isinstance(err, str) and isinstance(err.code, int) else None
            code = code_for_status(status) if status is not None and 400 <= status < 600 else "server"
        # Waiting does not add credit: as for the HTTP 429 of the same kind.
        retryable = False if "insufficient_quota" in kinds else None
        self.fail(error_event(code, message, provider=self.provider, retryable=retryable, secrets=self.secrets))
