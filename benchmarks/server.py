"""A fast loopback SSE server for the streaming benchmark, meant to run in its own process.

It serves what the real APIs send, so the clients under test do their real work:

- ``POST /v1/chat/completions``: OpenAI Chat Completions SSE, one
  ``chat.completion.chunk`` per text delta (with the fields the real API sends,
  most of which a client skips), a finish chunk, a usage chunk and ``[DONE]``;
- ``POST /v1/messages``: Anthropic Messages SSE (``event:`` names, a ``ping``,
  one ``content_block_delta`` per text delta, ``message_delta`` with usage,
  ``message_stop``).

Each stream is configured by query parameters (``?chunks=2000&tool=1``) or, for
clients that can only be given a base URL, by the same query string as a path
prefix: ``/cfg/chunks=2000&tool=1/v1/chat/completions``. Options: ``chunks`` (text
deltas or tool-argument fragments per stream), ``tool`` (1 streams one tool call
whose arguments are ``{"text": <the same text>}`` instead of text), ``per_write``
(SSE events per socket write; 1, the default, is how the real APIs write),
``interval_ms`` (a pause between writes, to imitate a model's pacing),
``interleave`` (1: let the other streams write between two writes of this one, so
that concurrent streams advance together and each read brings about one event,
without the cost of a timer per write) and ``hold``
(a tag: the stream stops before its last three events, the finish and usage and
end marker, until ``POST /release?tag=<tag>`` lets the streams waiting under the
tag go on; ``GET /held?tag=<tag>`` counts them). ``hold`` lets a harness measure a client's memory with
every stream of a batch in flight at once, each having received the same number
of chunks, instead of at whatever overlap the scheduling happened to produce.

Bodies are rendered once per configuration and cached, so serving costs one
``write`` per piece. The server pins itself to ``--cpu`` when given, prints
``PORT <n>`` on stdout once it listens, and stops on SIGTERM/SIGINT or, with
``--parent-pipe``, when its stdin closes (so it never outlives the harness).
``GET /stats`` reports the server's own CPU time, so the harness can tell when
the server rather than the client was the bottleneck.

The text and the wire shapes are defined here, once: the harness imports
:func:`expected_text`, :func:`tool_arguments` and :func:`wire_events` to check
what its clients assembled.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from dataclasses import dataclass, replace
from urllib.parse import parse_qsl

import msgspec
from aiohttp import web

__all__ = [
    "StreamConfig",
    "anthropic_pieces",
    "expected_text",
    "openai_pieces",
    "tool_arguments",
    "wire_events",
]

#: The tokens the text is made of: mostly short English words, as a model streams
#: them, plus a few that exercise UTF-8 and JSON escapes on every path.
TOKENS: tuple[str, ...] = (
    "The",
    " quick",
    " brown",
    " fox",
    " jumps",
    " over",
    " the",
    " lazy",
    " dog",
    ".",
    " Ünïcödé",
    " 東京",
    ' "quoted"',
    "\n",
    " 🚀",
    " back\\slash",
)

MODEL = "bench-model"
TOOL_IDS = {"openai": "call_bench_0", "anthropic": "toolu_bench_0"}
TOOL_NAME = "echo"
PROMPT_TOKENS = 12
#: What a held stream keeps back: its last three events (the finish and usage chunks and
#: ``[DONE]``; Anthropic's block stop, ``message_delta`` and ``message_stop``).
HELD_TAIL = 3


@dataclass(frozen=True)
class StreamConfig:
    chunks: int = 200
    tool: bool = False
    per_write: int = 1
    interval_ms: float = 0.0
    interleave: bool = False
    hold: str = ""

    @classmethod
    def parse(cls, pairs: list[tuple[str, str]]) -> StreamConfig:
        opts = dict(pairs)
        return cls(
            chunks=max(1, int(opts.get("chunks", 200))),
            tool=opts.get("tool", "0") not in ("", "0", "false"),
            per_write=max(1, int(opts.get("per_write", 1))),
            interval_ms=max(0.0, float(opts.get("interval_ms", 0.0))),
            interleave=opts.get("interleave", "0") not in ("", "0", "false"),
            hold=opts.get("hold", ""),
        )

    def query(self) -> str:
        """The query-string form, usable as ``?…`` or as the ``/cfg/…`` path prefix."""
        query = (
            f"chunks={self.chunks}&tool={int(self.tool)}&per_write={self.per_write}&interval_ms={self.interval_ms:g}"
        )
        if self.interleave:
            query += "&interleave=1"
        return f"{query}&hold={self.hold}" if self.hold else query


def expected_text(chunks: int) -> str:
    """The text a text stream of ``chunks`` deltas carries."""
    return "".join(_tokens(chunks))


def tool_arguments(chunks: int) -> str:
    """The tool call's JSON arguments for a tool stream of ``chunks`` fragments."""
    return msgspec.json.encode({"text": expected_text(chunks)}).decode()


def wire_events(provider: str, config: StreamConfig) -> int:
    """How many SSE events one stream carries (the benchmark's per-event denominator)."""
    if provider == "openai":
        return config.chunks + 4  # opening chunk, deltas, finish chunk, usage chunk, [DONE]
    return config.chunks + 6  # message_start, block start, ping, deltas, block stop, message_delta, message_stop


def _tokens(chunks: int) -> list[str]:
    return [TOKENS[i % len(TOKENS)] for i in range(chunks)]


def _fragments(chunks: int) -> list[str]:
    """The tool arguments cut into ``chunks`` pieces, as a model streams them (mid-token, mid-escape)."""
    args = tool_arguments(chunks)
    n = len(args)
    return [args[i * n // chunks : (i + 1) * n // chunks] for i in range(chunks)]


def _sse(payload: object, event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + msgspec.json.encode(payload) + b"\n\n"


def openai_pieces(config: StreamConfig) -> list[bytes]:
    """The OpenAI stream, one SSE event per item (shaped like a recorded gpt-4o-mini stream)."""
    base = {
        "id": "chatcmpl-bench0000000000000000000000",
        "object": "chat.completion.chunk",
        "created": 1782955818,
        "model": MODEL,
        "service_tier": "default",
        "system_fingerprint": "fp_bench00000",
    }

    def chunk(delta: dict[str, object], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return _sse({**base, "choices": [choice], "usage": None, "obfuscation": "AbCdEfG"})

    if config.tool:
        fn = {"name": TOOL_NAME, "arguments": ""}
        call = {"index": 0, "id": TOOL_IDS["openai"], "type": "function", "function": fn}
        out = [chunk({"role": "assistant", "content": None, "tool_calls": [call], "refusal": None})]
        out += [chunk({"tool_calls": [{"index": 0, "function": {"arguments": f}}]}) for f in _fragments(config.chunks)]
        out.append(chunk({}, "tool_calls"))
    else:
        out = [chunk({"role": "assistant", "content": "", "refusal": None})]
        out += [chunk({"content": t}) for t in _tokens(config.chunks)]
        out.append(chunk({}, "stop"))
    usage = {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": config.chunks,
        "total_tokens": PROMPT_TOKENS + config.chunks,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }
    out.append(_sse({**base, "choices": [], "usage": usage, "obfuscation": "AbC"}))
    out.append(b"data: [DONE]\n\n")
    return out


def anthropic_pieces(config: StreamConfig) -> list[bytes]:
    """The Anthropic stream, one SSE event per item (shaped like a recorded Claude stream)."""
    start = {
        "type": "message_start",
        "message": {
            "id": "msg_bench000000000000000000",
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": PROMPT_TOKENS,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": 1,
                "service_tier": "standard",
            },
        },
    }
    out = [_sse(start, "message_start")]
    if config.tool:
        block = {"type": "tool_use", "id": TOOL_IDS["anthropic"], "name": TOOL_NAME, "input": {}}
        deltas = [{"type": "input_json_delta", "partial_json": f} for f in _fragments(config.chunks)]
        stop = "tool_use"
    else:
        block = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": t} for t in _tokens(config.chunks)]
        stop = "end_turn"
    out.append(_sse({"type": "content_block_start", "index": 0, "content_block": block}, "content_block_start"))
    out.append(_sse({"type": "ping"}, "ping"))
    out += [_sse({"type": "content_block_delta", "index": 0, "delta": d}, "content_block_delta") for d in deltas]
    out.append(_sse({"type": "content_block_stop", "index": 0}, "content_block_stop"))
    message_delta = {
        "type": "message_delta",
        "delta": {"stop_reason": stop, "stop_sequence": None},
        "usage": {"output_tokens": config.chunks},
    }
    out.append(_sse(message_delta, "message_delta"))
    out.append(_sse({"type": "message_stop"}, "message_stop"))
    return out


_RENDER = {"openai": openai_pieces, "anthropic": anthropic_pieces}


class BenchServer:
    def __init__(self) -> None:
        self._cache: dict[tuple[str, StreamConfig, bool], tuple[list[bytes], list[bytes]]] = {}
        self.streams = 0
        self._held: dict[str, int] = {}
        self._release: dict[str, asyncio.Event] = {}

    def app(self) -> web.Application:
        app = web.Application()
        for prefix in ("", "/cfg/{cfg}"):
            app.router.add_post(prefix + "/v1/chat/completions", self._openai)
            app.router.add_post(prefix + "/v1/messages", self._anthropic)
        app.router.add_get("/stats", self._stats)
        app.router.add_get("/held", self._held_count)
        app.router.add_post("/release", self._release_held)
        return app

    def pieces(self, provider: str, config: StreamConfig) -> tuple[list[bytes], list[bytes]]:
        """The stream's writes: all of them and nothing, or with ``hold``, the head and the held tail."""
        key = (provider, replace(config, interleave=False, hold=""), bool(config.hold))
        pieces = self._cache.get(key)
        if pieces is None:
            events = _RENDER[provider](config)
            split = len(events) - HELD_TAIL if config.hold else len(events)
            k = config.per_write
            head, tail = events[:split], events[split:]
            pieces = (
                [b"".join(head[i : i + k]) for i in range(0, len(head), k)],
                [b"".join(tail[i : i + k]) for i in range(0, len(tail), k)],
            )
            self._cache[key] = pieces
        return pieces

    async def _openai(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "openai")

    async def _anthropic(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "anthropic")

    async def _serve(self, request: web.Request, provider: str) -> web.StreamResponse:
        await request.read()  # a real server reads the request; it also keeps the connection reusable
        pairs = list(request.query.items())
        cfg = request.match_info.get("cfg")
        if cfg:
            pairs += parse_qsl(cfg)
        try:
            config = StreamConfig.parse(pairs)
        except ValueError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        head, tail = self.pieces(provider, config)
        self.streams += 1
        resp = web.StreamResponse(headers={"content-type": "text/event-stream", "cache-control": "no-cache"})
        await resp.prepare(request)
        pause = config.interval_ms / 1000
        try:
            for piece in head:
                await resp.write(piece)
                if pause:
                    await asyncio.sleep(pause)
                elif config.interleave:
                    await asyncio.sleep(0)
            if config.hold:
                self._held[config.hold] = self._held.get(config.hold, 0) + 1
                await self._release.setdefault(config.hold, asyncio.Event()).wait()
                for piece in tail:
                    await resp.write(piece)
            await resp.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the client went away; nothing to clean up
        return resp

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response({"cpu_s": time.process_time(), "streams": self.streams, "pid": os.getpid()})

    async def _held_count(self, request: web.Request) -> web.Response:
        return web.json_response({"held": self._held.get(request.query.get("tag", ""), 0)})

    async def _release_held(self, request: web.Request) -> web.Response:
        """Let the streams held under the tag finish; later ones with the tag are held again."""
        tag = request.query.get("tag", "")
        event = self._release.pop(tag, None)
        if event is not None:
            event.set()
        return web.json_response({"released": self._held.pop(tag, 0)})


class _ParentPipe(asyncio.Protocol):
    def __init__(self, stop: asyncio.Event) -> None:
        self._stop = stop

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop.set()


async def serve(host: str, port: int, *, parent_pipe: bool) -> None:
    bench = BenchServer()
    # Access logs would cost more CPU than serving the stream.
    runner = web.AppRunner(bench.app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    bound = runner.addresses[0][1]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if parent_pipe:
        # The harness holds our stdin open; EOF means it is gone, however it died.
        await loop.connect_read_pipe(lambda: _ParentPipe(stop), sys.stdin)
    print(f"PORT {bound}", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed as 'PORT <n>')")
    parser.add_argument("--cpu", type=int, default=None, help="pin the server to this CPU")
    parser.add_argument("--parent-pipe", action="store_true", help="exit when stdin closes")
    args = parser.parse_args(argv)
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    asyncio.run(serve(args.host, args.port, parent_pipe=args.parent_pipe))


if __name__ == "__main__":
    main()
