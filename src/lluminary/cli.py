"""The ``lluminary`` command line.

``lluminary chat`` streams one request and prints the text as it arrives, or,
with ``--events``, every event as one JSON line exactly as the events codec
writes it. Exit status: 0 after ``finish``, 1 after ``error``, 2 for a usage
mistake (bad arguments, unknown provider, missing key, unreadable tools file).
With no ``--model`` and no ``LLUMINARY_MODEL`` it runs the local in-process
model: no key, no network.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any, Final, NoReturn, TextIO

from lluminary.errors import ConfigError

__all__ = ["main"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2

#: Subcommands besides ``chat``, one module each with ``HELP``, ``add_arguments(parser)``
#: and ``async run(args) -> int``. Their modules import nothing heavy at the top, so
#: building the parser stays cheap; the work is imported inside ``run``.
COMMANDS: Final = {
    "replay": "lluminary.commands.replay",
    "costs": "lluminary.commands.costs",
    "metrics": "lluminary.commands.metrics",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lluminary", description="One typed event stream for every LLM provider.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    chat = sub.add_parser("chat", help="stream one chat request")
    chat.add_argument("prompt", nargs="?", help="the prompt; '-' reads standard input")
    chat.add_argument("--model", help="PROVIDER:MODEL (default: $LLUMINARY_MODEL, else the local model)")
    chat.add_argument("--base-url", help="the provider's base URL, as its official SDK spells it")
    chat.add_argument("--api-key", help="the provider's key (default: its usual environment variable)")
    chat.add_argument("--system", help="system prompt")
    chat.add_argument("--tools", metavar="FILE.json", help='JSON array of {"name", "description", "parameters"}')
    chat.add_argument("--max-tokens", type=int, help="maximum tokens to generate")
    chat.add_argument("--temperature", type=float, help="sampling temperature")
    chat.add_argument("--events", action="store_true", help="print each event as a JSON line")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
    return parser


class UsageError(Exception):
    """A mistake on the command line: reported in one line, exit status 2."""


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "chat":
            return asyncio.run(_chat(args, sys.stdin, sys.stdout.buffer, sys.stderr))
        module = importlib.import_module(COMMANDS[args.command])
        status: int = asyncio.run(module.run(args))
        return status
    except UsageError as exc:
        print(f"lluminary: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as exc:
        print(f"lluminary: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def _prompt(args: argparse.Namespace, stdin: TextIO) -> str:
    prompt: str | None = args.prompt
    if prompt == "-" or (prompt is None and not stdin.isatty()):
        prompt = stdin.read()
    if not prompt or not prompt.strip():
        raise UsageError("no prompt given (pass PROMPT, or '-' to read standard input)")
    return prompt


def _tools(path: str | None) -> list[Any]:
    if path is None:
        return []
    import msgspec

    from lluminary.events import ToolSpec

    try:
        with open(path, "rb") as fh:
            return msgspec.json.decode(fh.read(), type=list[ToolSpec])
    except OSError as exc:
        raise UsageError(f"cannot read tools file {path!r}: {exc.strerror}") from None
    except msgspec.DecodeError as exc:  # includes validation errors
        raise UsageError(f"tools file {path!r} is not a JSON array of tool specs: {exc}") from None


async def _chat(args: argparse.Namespace, stdin: TextIO, out: Any, err: TextIO) -> int:
    import msgspec

    from lluminary.engine import Engine
    from lluminary.engine._engine import DEFAULT_MODEL
    from lluminary.events import (
        ChatRequest,
        Error,
        Finish,
        Message,
        TextDelta,
        ToolCallEnd,
        encode_event,
    )
    from lluminary.providers import create_provider, parse_model

    encode_json = msgspec.json.encode

    if args.max_tokens is not None and args.max_tokens < 1:
        raise UsageError("--max-tokens must be a positive integer")
    prompt = _prompt(args, stdin)
    tools = _tools(args.tools)
    model = args.model or os.environ.get("LLUMINARY_MODEL") or DEFAULT_MODEL
    try:
        name, _ = parse_model(model)
        provider = create_provider(name, api_key=args.api_key, base_url=args.base_url)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    request = ChatRequest(
        model=model,
        messages=[Message.user(prompt)],
        system=args.system,
        tools=tools,
        max_tokens=args.max_tokens,
        temperature=args.temperature,
    )
    status = EXIT_ERROR
    wrote_text = False
    async with Engine(providers={name: provider}) as engine, engine.stream(request) as stream:
        async for event in stream:
            if args.events:
                out.write(encode_event(event) + b"\n")
                out.flush()
            elif isinstance(event, TextDelta):
                out.write(event.text.encode())
                out.flush()
                wrote_text = True
            elif isinstance(event, ToolCallEnd):
                arguments = encode_json(event.arguments).decode()
                lead = "\n" if wrote_text else ""
                out.write(f"{lead}[tool call] {event.name}({arguments})\n".encode())
                out.flush()
                wrote_text = False
            if isinstance(event, Finish):
                status = EXIT_OK
            elif isinstance(event, Error):
                status = EXIT_ERROR
                if not args.events:
                    http = f" (HTTP {event.status})" if event.status is not None else ""
                    if wrote_text:
                        out.write(b"\n")
                        out.flush()
                    print(f"lluminary: error: {event.code}{http}: {event.message}", file=err)
    if not args.events and wrote_text:
        out.write(b"\n")
        out.flush()
    return status


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
