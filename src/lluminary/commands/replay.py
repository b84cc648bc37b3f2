"""``lluminary replay REQUEST_ID``: re-emit a logged stream exactly as it was seen.

The events come from the event log that :class:`~lluminary.engine.operators.EventLogger`
wrote (``--database-url``, else ``LLUMINARY_DATABASE_URL``, else the embedded
Postgres; ``memory://`` makes no sense across processes). With ``--events`` each
event is printed as the exact JSON line that was logged, so the output is
byte-for-byte what ``lluminary chat --events`` printed; otherwise the text is
printed, as ``chat`` prints it. A gap in the sequence numbers (events the logger
had to drop) is reported on stderr.

Exit status: 0 when the logged stream ended with ``finish``, 1 when it ended with
``error``, was cut short, or nothing is logged for the id; 2 for a usage mistake
(a bad URL).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Final, TextIO

__all__ = ["HELP", "add_arguments", "main", "run"]

HELP: Final = "re-emit a logged stream (from the event log) exactly"

EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("request_id", metavar="REQUEST_ID", help="the request id the stream was logged under")
    parser.add_argument("--events", action="store_true", help="print each event as its logged JSON line")
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="the event log's database (default: $LLUMINARY_DATABASE_URL, else the embedded Postgres)",
    )


async def run(args: argparse.Namespace) -> int:
    return await replay(args.request_id, events=args.events, url=args.database_url)


async def replay(
    request_id: str,
    *,
    events: bool = False,
    url: str | None = None,
    out: Any = None,
    err: TextIO | None = None,
) -> int:
    """Print the logged stream of ``request_id`` to ``out`` (bytes); returns the exit status."""
    import msgspec

    from lluminary.errors import ConfigError, DecodeError
    from lluminary.events import Error, Finish, TextDelta, ToolCallEnd, decode_event
    from lluminary.stores import StoreError
    from lluminary.stores._factory import open_event_log

    out = out if out is not None else sys.stdout.buffer
    err = err if err is not None else sys.stderr
    try:
        log = await open_event_log(url)
    except ConfigError as exc:
        print(f"lluminary: {exc}", file=err)
        return EXIT_USAGE
    except StoreError as exc:
        print(f"lluminary: cannot open the event log: {exc}", file=err)
        return EXIT_ERROR
    try:
        logged = await log.read(request_id)
    except StoreError as exc:
        print(f"lluminary: cannot read the event log: {exc}", file=err)
        return EXIT_ERROR
    finally:
        await log.aclose()
    if not logged:
        print(f"lluminary: no events logged for request {request_id!r}", file=err)
        return EXIT_ERROR
    missing = [seq for seq, row in enumerate(logged) if row.seq != seq]
    if missing or logged[0].seq != 0:
        print(f"lluminary: the log of {request_id!r} has gaps (events were dropped while logging)", file=err)

    status = EXIT_ERROR  # a stream with no terminal event was cut short
    wrote_text = False
    for row in logged:
        try:
            event = decode_event(row.event)
        except DecodeError as exc:
            print(f"lluminary: logged event {row.seq} does not decode: {exc}", file=err)
            return EXIT_ERROR
        if events:
            # The logged bytes themselves: exactly what the codec wrote the first time.
            out.write(bytes(row.event) + b"\n")
        elif isinstance(event, TextDelta):
            out.write(event.text.encode())
            wrote_text = True
        elif isinstance(event, ToolCallEnd):
            lead = "\n" if wrote_text else ""
            arguments = msgspec.json.encode(event.arguments).decode()
            out.write(f"{lead}[tool call] {event.name}({arguments})\n".encode())
            wrote_text = False
        if isinstance(event, Finish):
            status = EXIT_OK
        elif isinstance(event, Error):
            status = EXIT_ERROR
            if not events:
                if wrote_text:
                    out.write(b"\n")
                    wrote_text = False
                http = f" (HTTP {event.status})" if event.status is not None else ""
                print(f"lluminary: error: {event.code}{http}: {event.message}", file=err)
    if not events and wrote_text:
        out.write(b"\n")
    out.flush()
    return status


def main(argv: list[str] | None = None) -> int:
    """``python -m lluminary.commands.replay``, for use before the ``lluminary`` CLI wires it in."""
    import asyncio

    parser = argparse.ArgumentParser(prog="lluminary replay", description=HELP)
    add_arguments(parser)
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
