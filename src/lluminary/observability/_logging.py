"""Structured logging: structlog over the standard library, with secrets scrubbed.

:func:`configure_logging` sends every log line, structlog's and the standard
library's (aiohttp, asyncpg, your own ``logging.getLogger``), through one chain
of processors and one handler on stderr:

- context first: variables bound with ``structlog.contextvars`` (the
  :class:`~lluminary.observability.Logging` operator binds ``request_id`` there
  for everything a request runs), the logger name, level and an ISO timestamp,
  and ``trace_id``/``span_id`` when an OpenTelemetry span is current;
- then :func:`redact_secrets`: a field whose *name* says it holds a credential
  (``authorization``, ``x-api-key``, ``x-goog-api-key``, ``api_key``,
  ``password``, ``secret``, ``token``, ``*_token``…) is replaced by
  ``[redacted]`` at any depth (header dicts, lists of header pairs), and every
  string is scrubbed of values *shaped* like keys (``sk-…``, ``AIza…``, AWS key
  ids, bearer tokens) by the same :func:`lluminary.providers.redact` the
  providers use for error messages;
- then the renderer: JSON lines in production, a readable console format in a
  terminal. The rendered line is scrubbed once more by value, which also covers
  reprs of arbitrary objects and formatted tracebacks.

JSON is chosen when ``json=True``, or when ``json`` is None and either
``LLUMINARY_LOG_FORMAT=json`` or stderr is not a terminal
(``LLUMINARY_LOG_FORMAT=console`` forces the console format).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import Any, Final, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from lluminary.providers._errors import redact

__all__ = ["REDACTED", "add_trace_context", "configure_logging", "is_secret_name", "redact_secrets"]

REDACTED: Final = "[redacted]"
_HANDLER_NAME: Final = "lluminary"
# Exact names (lower case, "-" read as "_") and suffixes of fields that hold credentials.
# "token" is matched whole or as a "_token" suffix only, so counts such as
# ``input_tokens`` and ``max_tokens`` stay readable.
_SECRET_NAMES: Final = frozenset(
    {
        "authorization",
        "proxy_authorization",
        "x_api_key",
        "x_goog_api_key",
        "api_key",
        "apikey",
        "password",
        "passwd",
        "secret",
        "token",
        "client_secret",
        "secret_key",
        "aws_secret_access_key",
        "x_amz_security_token",
        "cookie",
        "set_cookie",
        "private_key",
        "credentials",
    }
)
_SECRET_SUFFIXES: Final = ("_api_key", "_apikey", "_secret", "_password", "_token", "_secret_key", "_private_key")
_MAX_DEPTH: Final = 8


def is_secret_name(name: str) -> bool:
    """Whether a field or header called ``name`` holds a credential."""
    key = name.lower().replace("-", "_")
    return key in _SECRET_NAMES or key.endswith(_SECRET_SUFFIXES)


def _scrub(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return redact(value)
    if depth >= _MAX_DEPTH:
        return value  # the final pass over the rendered line still applies
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(k, str) and is_secret_name(k) and v else _scrub(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        if len(value) == 2 and isinstance(value[0], str) and is_secret_name(value[0]):
            return (value[0], REDACTED)  # one ("Authorization", "Bearer …") header pair
        return [_scrub(v, depth + 1) for v in value]
    return value


def redact_secrets(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """A structlog processor: credentials out, by field name and by value shape."""
    for key, value in event_dict.items():
        if key.startswith("_"):
            continue  # structlog's own bookkeeping (``_record``, ``_from_structlog``)
        if is_secret_name(key) and value:
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _scrub(value)
    return event_dict


def add_trace_context(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Add ``trace_id``/``span_id`` of the current OpenTelemetry span, if there is one."""
    # A process that never imported OpenTelemetry has no span: do not import it to find out.
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return event_dict
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict.setdefault("trace_id", format(context.trace_id, "032x"))
        event_dict.setdefault("span_id", format(context.span_id, "016x"))
    return event_dict


class _Scrubbed:
    """Wraps the renderer: one last pass, by value, over the finished line."""

    def __init__(self, renderer: Processor) -> None:
        self._renderer = renderer

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> str:
        rendered = self._renderer(logger, method_name, event_dict)
        return redact(rendered if isinstance(rendered, str) else str(rendered))


def _want_json(json: bool | None, stream: TextIO) -> bool:
    if json is not None:
        return json
    fmt = os.environ.get("LLUMINARY_LOG_FORMAT", "").strip().lower()
    if fmt == "json":
        return True
    if fmt in ("console", "text"):
        return False
    isatty = getattr(stream, "isatty", None)
    return not (isatty is not None and isatty())


def configure_logging(json: bool | None = None, level: int | str = "INFO", *, stream: TextIO | None = None) -> None:
    """Configure structlog and the standard library's root logger to log through one chain.

    Calling it again replaces the previous configuration (our handler, not
    anyone else's). ``stream`` defaults to stderr.
    """
    out = stream if stream is not None else sys.stderr
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_trace_context,
        structlog.processors.StackInfoRenderer(),
        # Tracebacks become text here, before redaction, in both formats: a
        # traceback's message is where a key echoed by a server would surface.
        structlog.processors.format_exc_info,
        structlog.processors.UnicodeDecoder(),
        redact_secrets,
    ]
    renderer: Processor
    if _want_json(json, out):
        renderer = structlog.processors.JSONRenderer()
    else:
        isatty = getattr(out, "isatty", None)
        renderer = structlog.dev.ConsoleRenderer(colors=bool(isatty and isatty()))
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: a later configure_logging() call must reach loggers made before it.
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, _Scrubbed(renderer)],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
