"""``lluminary metrics``: a Prometheus endpoint, filled by a synthetic probe.

A Prometheus endpoint can only show the metrics of its own process, so this
command alone cannot see the requests an application makes: an application
exports its own traffic by mounting :class:`~lluminary.observability.PrometheusMetrics`
(a few lines, see :mod:`lluminary.observability._prometheus`). What the command
does on its own is blackbox monitoring: with ``--probe PROVIDER:MODEL`` it sends
a small request every ``--interval`` seconds through the engine, with the
Metrics and Logging operators and a Timeout, and serves the resulting latency,
time to first chunk, token, error and retry figures at
``http://HOST:PORT/metrics``, ready for the Grafana dashboard in
``dashboards/grafana/lluminary.json``. Each probe also logs one ``llm.request``
line (JSON when stderr is not a terminal). Without ``--probe`` it serves an
endpoint with no request metrics, and says so.

    lluminary metrics --probe openai:gpt-4o-mini --interval 30 --port 9464

Keys come from the provider's usual environment variable or ``--api-key``.
Exit status: 2 for a usage mistake (bad arguments, unknown provider, missing
key), 1 when the port cannot be bound; otherwise it serves until interrupted.
"""

from __future__ import annotations

import argparse
import sys
from typing import Final

__all__ = ["HELP", "add_arguments", "run"]

HELP: Final = "serve Prometheus metrics, filled by an optional synthetic probe of a model"

EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2
DEFAULT_PROMPT: Final = "Reply with the single word: ok"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=9464, help="port to listen on (default: 9464; 0 picks one)")
    parser.add_argument("--probe", metavar="PROVIDER:MODEL", help="send a small request to this model on a schedule")
    parser.add_argument("--prompt", default=DEFAULT_PROMPT, help="the probe's prompt")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between probes (default: 60)")
    parser.add_argument("--count", type=int, help="stop probing after N probes, but keep serving")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds a probe may take (default: 60)")
    parser.add_argument("--max-tokens", type=int, default=16, help="the probe's max_tokens (default: 16)")
    parser.add_argument("--base-url", help="the provider's base URL, as its official SDK spells it")
    parser.add_argument("--api-key", help="the provider's key (default: its usual environment variable)")


def _usage_problem(args: argparse.Namespace) -> str | None:
    if not 0 <= args.port <= 65535:
        return "--port must be between 0 and 65535"
    if not args.interval > 0:
        return "--interval must be a positive number of seconds"
    if not args.timeout > 0:
        return "--timeout must be a positive number of seconds"
    if args.count is not None and args.count < 1:
        return "--count must be at least 1"
    if args.max_tokens < 1:
        return "--max-tokens must be at least 1"
    if args.probe is None and (args.base_url or args.api_key):
        return "--base-url and --api-key need --probe"
    return None


async def run(args: argparse.Namespace) -> int:
    import anyio
    import structlog

    from lluminary.engine import Engine, Operator, Timeout
    from lluminary.errors import ConfigError
    from lluminary.observability import Logging, Metrics, PrometheusMetrics, configure_logging
    from lluminary.providers import Provider, create_provider, parse_model

    problem = _usage_problem(args)
    if problem is not None:
        print(f"lluminary metrics: {problem}", file=sys.stderr)
        return EXIT_USAGE
    providers: dict[str, Provider] = {}
    if args.probe is not None:
        try:
            name, _ = parse_model(args.probe)
            providers[name] = create_provider(name, api_key=args.api_key, base_url=args.base_url)
        except ConfigError as exc:
            print(f"lluminary metrics: {exc}", file=sys.stderr)
            return EXIT_USAGE

    configure_logging()
    log = structlog.get_logger("lluminary.metrics")
    prom = PrometheusMetrics()
    try:
        server = prom.serve(args.port, args.host)
    except OSError as exc:
        print(f"lluminary metrics: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        prom.shutdown()
        return EXIT_ERROR
    try:
        log.info("serving", url=server.url, probe=args.probe)
        if args.probe is None:
            log.warning(
                "no --probe given: this endpoint shows only this process's metrics; an application exports "
                "its own requests with lluminary.observability.PrometheusMetrics"
            )
            await anyio.sleep_forever()
        operators: list[Operator] = [
            Logging(),
            Metrics(prom.meter_provider, servers=providers),
            Timeout(total=args.timeout),
        ]
        engine = Engine(operators, providers=providers)
        try:
            done = 0
            while args.count is None or done < args.count:
                if done:
                    await anyio.sleep(args.interval)
                # The outcome is in the metrics and in Logging's summary line; nothing to do with it here.
                async with engine.stream(args.prompt, model=args.probe, max_tokens=args.max_tokens) as stream:
                    async for _ in stream:
                        pass
                done += 1
        finally:
            # Shielded: on Ctrl-C or cancellation the HTTP session must still be closed properly.
            with anyio.CancelScope(shield=True):
                await engine.aclose()
        await anyio.sleep_forever()
    finally:
        server.close()
        prom.shutdown()
    return 0  # pragma: no cover - it serves until interrupted


if __name__ == "__main__":  # pragma: no cover - ``python -m lluminary.commands.metrics``
    import asyncio

    _parser = argparse.ArgumentParser(prog="lluminary metrics", description=HELP)
    add_arguments(_parser)
    try:
        sys.exit(asyncio.run(run(_parser.parse_args())))
    except KeyboardInterrupt:
        sys.exit(130)
