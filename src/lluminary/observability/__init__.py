"""Observability: tracing, metrics, a Prometheus endpoint and structured logging.

- :class:`Tracing` (one OpenTelemetry span per request, in the GenAI semantic
  conventions) and :class:`Metrics` (the GenAI client metrics plus cost, cache,
  retries and streams in flight) are operators; they live in
  :mod:`lluminary.engine.operators` and are re-exported here.
- :class:`Logging` is an operator too: a request id on every log line of a
  request, and one summary line per request.
- :class:`PrometheusMetrics` / :func:`serve_metrics` expose the metrics to
  Prometheus; ``lluminary metrics`` serves them for synthetic probes.
- :func:`configure_logging` sets up structlog (JSON in production, console in a
  terminal) with secrets redacted by field name and by value.

A typical setup::

    from lluminary import Engine
    from lluminary.observability import Logging, Metrics, PrometheusMetrics, Tracing, configure_logging

    configure_logging()
    prom = PrometheusMetrics()
    prom.serve(port=9464)
    engine = Engine([Tracing(), Logging(), Metrics(prom.meter_provider), ...])

Names load on first use (PEP 562), so importing this package, or the operators
that use its helpers, costs nothing until OpenTelemetry, structlog or
prometheus_client are actually needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lluminary.engine.operators._metrics import Metrics
    from lluminary.engine.operators._tracing import Tracing
    from lluminary.observability._logging import (
        REDACTED,
        add_trace_context,
        configure_logging,
        is_secret_name,
        redact_secrets,
    )
    from lluminary.observability._prometheus import DEFAULT_PORT, MetricsServer, PrometheusMetrics, serve_metrics
    from lluminary.observability._request_log import Logging
    from lluminary.observability._semconv import PROVIDER_NAMES

__all__ = [
    "DEFAULT_PORT",
    "PROVIDER_NAMES",
    "REDACTED",
    "Logging",
    "Metrics",
    "MetricsServer",
    "PrometheusMetrics",
    "Tracing",
    "add_trace_context",
    "configure_logging",
    "is_secret_name",
    "redact_secrets",
    "serve_metrics",
]

_HOMES = {
    "Tracing": "lluminary.engine.operators._tracing",
    "Metrics": "lluminary.engine.operators._metrics",
    "Logging": "lluminary.observability._request_log",
    "PROVIDER_NAMES": "lluminary.observability._semconv",
    **dict.fromkeys(
        ("REDACTED", "add_trace_context", "configure_logging", "is_secret_name", "redact_secrets"),
        "lluminary.observability._logging",
    ),
    **dict.fromkeys(
        ("DEFAULT_PORT", "MetricsServer", "PrometheusMetrics", "serve_metrics"), "lluminary.observability._prometheus"
    ),
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
