"""The public surface of ``lluminary.observability``, pinned, and loaded lazily."""

from __future__ import annotations

import subprocess
import sys

import pytest

import lluminary.observability as obs

EXPECTED = [
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


def test_all_is_pinned_and_every_name_resolves() -> None:
    assert obs.__all__ == EXPECTED
    for name in EXPECTED:
        assert getattr(obs, name) is not None
    assert set(EXPECTED) <= set(dir(obs))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        obs.nope  # noqa: B018 - the attribute access is the test


def test_importing_the_operators_loads_no_telemetry_library() -> None:
    code = (
        "import sys, lluminary, lluminary.observability, lluminary.engine.operators._tracing, "
        "lluminary.engine.operators._metrics; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'opentelemetry', 'structlog', 'prometheus_client'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_import_lluminary_loads_no_extra_no_http_library_and_no_event_loop() -> None:
    # What S4 of the benchmark measures: the bare import pays for msgspec and our own
    # modules; transports, stores, telemetry and asyncio itself load when first used.
    heavy = {
        "aiohttp", "httpx", "asyncio", "anyio", "email", "llama_cpp", "botocore", "onnxruntime",
        "redis", "asyncpg", "opentelemetry", "structlog", "tiktoken",
    }  # fmt: skip
    code = f"import sys, lluminary; print(sorted({{m.split('.')[0] for m in sys.modules}} & {heavy!r}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
