"""One generation, on its own thread: llama-cpp chunks in, lluminary events out.

:func:`generate` runs on a worker thread and hands every event to ``emit``, which
blocks while the consumer is behind (that is the backpressure) and raises
:class:`ConsumerGoneError` once the consumer has left. It never raises
itself, and it ends with exactly one terminal event unless it was cancelled.

What llama-cpp-python 0.3's streaming ``create_chat_completion`` gives us: a
first chunk whose delta holds only the role, one chunk per piece of text (about
one token each, except where it holds back bytes of an unfinished UTF-8
character or a possible stop string), then a chunk with an empty delta and
``finish_reason`` ``"stop"`` (end-of-turn token or stop string) or ``"length"``
(``max_tokens`` or the context window). It reports no usage when streaming, so we
count tokens ourselves with the model's own tokenizer state: llama-cpp calls
each logits processor once per sampled token with the token ids so far, and at
the first call those ids are exactly the prompt (chat template included).
``output_tokens`` is every token the model sampled, the end-of-turn token
included; it costs a forward pass like any other.

Cancellation: the consumer sets ``job.cancel``; it is checked between chunks and
while waiting for a busy model, and the llama-cpp generator is then closed,
which stops generation at the current token. The prompt's prefill is one call
into llama.cpp and cannot be cut short.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from lluminary.events import Error, Event, Finish, FinishReason, Start, TextDelta, Usage
from lluminary.providers._errors import error_event
from lluminary.providers.local._model import INSTALL_HINT, ModelNotFoundError, acquire, model_slot, resolve

__all__ = ["PROVIDER", "ConsumerGoneError", "Job", "generate"]

PROVIDER: Final = "local"
_FINISH_REASONS: Final[dict[str, FinishReason]] = {"stop": "stop", "length": "length"}


class ConsumerGoneError(Exception):
    """The consumer is no longer listening; the worker stops."""


@dataclass
class Job:
    """Everything one generation needs, built on the event loop and handed to the thread."""

    model: str  # what followed "local:"
    default_path: Path | None
    n_ctx: int
    n_threads: int
    messages: list[dict[str, str]]
    kwargs: dict[str, Any]
    input_estimate: int
    cancel: threading.Event = field(default_factory=threading.Event)


class _TokenCounter:
    """A logits processor that changes nothing and counts (see the module docstring)."""

    __slots__ = ("prompt_tokens", "sampled")

    def __init__(self) -> None:
        self.prompt_tokens: int | None = None
        self.sampled = 0

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        # Called from llama.cpp's sampler through ctypes: it must never raise.
        if self.prompt_tokens is None:
            self.prompt_tokens = len(input_ids)
        self.sampled += 1
        return scores


def generate(job: Job, emit: Callable[[Event], None]) -> None:
    """Run ``job`` on the calling thread, handing its events to ``emit``."""
    try:
        terminal = _run(job, emit)
        if terminal is not None:
            emit(terminal)
    except ConsumerGoneError:
        pass
    except Exception as exc:  # noqa: BLE001 - the one translation point for llama.cpp failures
        # If even this hand-off fails, the consumer or its loop is gone: nobody is left to tell.
        with contextlib.suppress(Exception):
            emit(_error_for(exc))


def _run(job: Job, emit: Callable[[Event], None]) -> Event | None:
    """Generate; return the terminal event (emitted after the model is released), or None if cancelled."""
    try:
        path = resolve(job.model, job.default_path)
    except ModelNotFoundError as exc:
        return error_event("not_found", str(exc), provider=PROVIDER, retryable=False)
    slot = model_slot(path, job.n_ctx, job.n_threads)
    if not acquire(slot.lock, job.cancel):
        return None
    try:
        try:
            llm = slot.load()
        except ImportError:
            return error_event(
                "invalid_request", f"the local provider needs llama-cpp-python: {INSTALL_HINT}", provider=PROVIDER
            )
        except ValueError as exc:
            return error_event(
                "invalid_request", f"llama.cpp cannot load {path.name} as a GGUF model: {exc}", provider=PROVIDER
            )
        from llama_cpp import LogitsProcessorList

        emit(Start(id=f"local-{uuid.uuid4().hex}", provider=PROVIDER, model=path.stem))
        counter = _TokenCounter()
        chunks = llm.create_chat_completion(
            messages=job.messages, stream=True, logits_processor=LogitsProcessorList([counter]), **job.kwargs
        )
        raw_reason: str | None = None
        try:
            for chunk in chunks:
                if job.cancel.is_set():
                    return None
                choice = chunk["choices"][0]
                text = (choice.get("delta") or {}).get("content")
                if text:
                    emit(TextDelta(text=text))
                if choice.get("finish_reason") is not None:
                    raw_reason = choice["finish_reason"]
        finally:
            # Closing the generator runs llama-cpp's own cleanup now, on this thread
            # and under the lock, rather than whenever it is garbage collected.
            chunks.close()
    finally:
        slot.lock.release()
    if raw_reason is None:
        return error_event(
            "server", "llama.cpp ended the stream without a finish reason", provider=PROVIDER, retryable=False
        )
    if counter.prompt_tokens is None:  # pragma: no cover - llama-cpp always samples at least one token
        emit(Usage(input_tokens=job.input_estimate, output_tokens=0, estimated=True))
    else:
        emit(Usage(input_tokens=counter.prompt_tokens, output_tokens=counter.sampled))
    return Finish(reason=_FINISH_REASONS.get(raw_reason, "other"), raw_reason=raw_reason)


def _error_for(exc: Exception) -> Error:
    message = str(exc) or type(exc).__name__
    if isinstance(exc, ValueError) and "context window" in message:
        # "Requested tokens (2101) exceed context window of 2048"
        return error_event("context_length", message, provider=PROVIDER, retryable=False)
    # A local failure does not heal on its own: retrying it only repeats it.
    return error_event("server", f"llama.cpp failed: {message}", provider=PROVIDER, retryable=False)
