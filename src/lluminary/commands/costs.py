"""``lluminary costs``: what the ledger says was spent, grouped by model, tenant or day.

    lluminary costs --since 7d [--until WHEN] --by model [--csv FILE] [--database-url DSN]

Reads the ledger the Cost operator writes (``--database-url``, else
``LLUMINARY_DATABASE_URL``, else the embedded Postgres) and prints one line per
group (requests, tokens, USD) and a total line that is the sum of the rows.
Requests whose model has no known price are counted in an ``unpriced`` column
rather than added as 0; ``estimated`` counts requests priced from estimated
usage (cancelled streams, providers that report none). ``--csv`` also writes the
same rows, total last, to a file (``-`` for standard output instead of the table).

``--since`` (and ``--until``, default: no end) take a duration back from now
(``30m``, ``24h``, ``7d``, ``2w``) or a UTC date or time (``2026-11-01``,
``2026-11-01T12:00``).

Exit status: 0 after a report, 1 when the ledger cannot be read, 2 for a usage mistake.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, TextIO

__all__ = ["HELP", "add_arguments", "costs", "format_table", "parse_since", "run", "write_csv"]

HELP: Final = "show spend from the cost ledger, grouped by model, tenant or day"

EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2

_DURATION: Final = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_CSV_HEADER: Final = (
    "requests",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_usd",
    "estimated",
    "unpriced",
)
_HEADER: Final = ("requests", "input", "output", "cache read", "cache write", "cost USD", "estimated", "unpriced")

if TYPE_CHECKING:  # imported in run() only, so --help stays cheap
    from lluminary.ledger import Report, ReportRow


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since", default="7d", metavar="WHEN", help="a duration back from now (7d, 24h) or a UTC date (default 7d)"
    )
    parser.add_argument("--until", metavar="WHEN", help="the end of the window, like --since (default: none)")
    parser.add_argument("--by", choices=("model", "tenant", "day"), default="model", help="how to group (model)")
    parser.add_argument("--csv", metavar="FILE", help="also write the rows as CSV to FILE ('-': stdout only)")
    parser.add_argument(
        "--database-url",
        metavar="DSN",
        help="the ledger's database (default: $LLUMINARY_DATABASE_URL, else the embedded Postgres)",
    )


def parse_since(text: str, now: float) -> float:
    """``--since`` / ``--until`` as seconds since the epoch; ValueError for anything else."""
    value = text.strip()
    match = _DURATION.match(value.lower())
    if match:
        return now - float(match[1]) * _SECONDS[match[2]]
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{text!r} is no time: use a duration (7d, 24h) or a date (2026-11-01)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


async def run(args: argparse.Namespace) -> int:
    return await costs(since=args.since, until=args.until, by=args.by, csv_path=args.csv, dsn=args.database_url)


async def costs(
    *,
    since: str = "7d",
    until: str | None = None,
    by: str = "model",
    csv_path: str | None = None,
    dsn: str | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    now: float | None = None,
) -> int:
    """Print the report; returns the exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    now = time.time() if now is None else now
    try:
        start = parse_since(since, now)
        end = parse_since(until, now) if until else None
    except ValueError as exc:
        print(f"lluminary costs: {exc}", file=err)
        return EXIT_USAGE
    if end is not None and end <= start:
        print("lluminary costs: --until must be later than --since", file=err)
        return EXIT_USAGE
    from lluminary.errors import ConfigError
    from lluminary.ledger import GROUP_BY, PostgresLedger
    from lluminary.stores import StoreError

    if by not in GROUP_BY:
        print(f"lluminary costs: --by must be one of {', '.join(GROUP_BY)}", file=err)
        return EXIT_USAGE
    try:
        ledger = await PostgresLedger.open(dsn)
        try:
            report = await ledger.report(since=start, until=end, by=by)
        finally:
            await ledger.aclose()
    except (StoreError, ConfigError) as exc:
        print(f"lluminary costs: cannot read the ledger: {exc}", file=err)
        return EXIT_ERROR
    if csv_path == "-":
        write_csv(report, out)
        return EXIT_OK
    out.write(format_table(report))
    if csv_path:
        text = io.StringIO()
        write_csv(report, text)
        try:
            import anyio

            await anyio.Path(csv_path).write_text(text.getvalue(), encoding="utf-8", newline="")
        except OSError as exc:
            print(f"lluminary costs: cannot write {csv_path}: {exc.strerror or exc}", file=err)
            return EXIT_ERROR
    return EXIT_OK


def _cells(row: ReportRow, *, precise: bool = False) -> list[str]:
    return [
        row.key,
        str(row.requests),
        str(row.input_tokens),
        str(row.output_tokens),
        str(row.cache_read_tokens),
        str(row.cache_write_tokens),
        repr(row.cost_usd) if precise else f"{row.cost_usd:.6f}",
        str(row.estimated),
        str(row.unpriced),
    ]


def format_table(report: Report) -> str:
    """The report as an aligned text table with a total line."""
    since = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(report.since))
    if report.until is not None:
        since += time.strftime(" until %Y-%m-%d %H:%M UTC", time.gmtime(report.until))
    header = [report.by, *_HEADER]
    body = [_cells(row) for row in report.rows]
    total = _cells(report.total)
    widths = [max(len(line[i]) for line in [header, *body, total]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        return "  ".join([first, *(c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))]).rstrip()

    buf = io.StringIO()
    buf.write(f"costs since {since}, by {report.by}\n")
    buf.write(line(header) + "\n")
    for cells in body:
        buf.write(line(cells) + "\n")
    buf.write("-" * (sum(widths) + 2 * (len(widths) - 1)) + "\n")
    buf.write(line(total) + "\n")
    return buf.getvalue()


def write_csv(report: Report, handle: TextIO) -> None:
    """The rows, then the total, as CSV with a header line."""
    writer = csv.writer(handle)
    writer.writerow([report.by, *_CSV_HEADER])
    for row in [*report.rows, report.total]:
        writer.writerow(_cells(row, precise=True))


if __name__ == "__main__":
    import asyncio

    _parser = argparse.ArgumentParser(prog="lluminary costs", description=HELP)
    add_arguments(_parser)
    sys.exit(asyncio.run(run(_parser.parse_args())))
