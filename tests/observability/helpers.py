"""Shared pieces of the observability tests: every provider's recording, scripted handlers, readers."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader, NumberDataPoint
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from lluminary.engine import EventStream, compose
from lluminary.events import ChatRequest, Event, Message
from lluminary.providers import Provider, create_provider
from tests.support import FIXTURES, ReplayServer, fixture_bytes, jsonl_to_sse

SSE = "text/event-stream"
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "AWS_REGION": "us-east-1",
}


@dataclass(frozen=True)
class Case:
    """One provider's recording, and how to reach it."""

    provider: str
    model: str
    system: str  # the expected gen_ai.provider.name
    suffix: str  # appended to the loopback URL to make the base URL
    content_type: str = SSE
    env: dict[str, str] = field(default_factory=dict)

    def body(self) -> bytes:
        if self.provider == "openai":
            return fixture_bytes("openai_chat", "text_stream_include_usage.sse")
        if self.provider == "openai-responses":
            return fixture_bytes("openai_responses", "function_call_stream.sse")
        if self.provider == "anthropic":
            return fixture_bytes("anthropic", "thinking_stream.sse")
        if self.provider == "gemini":
            return fixture_bytes("gemini", "function_call_thought_signature_stream.sse")
        if self.provider == "bedrock":
            return base64.b64decode(fixture_bytes("bedrock", "converse_stream_tool_use.eventstream.b64"))
        if self.provider == "cohere":
            return jsonl_to_sse(FIXTURES / "cohere" / "tool_call_stream.chunks.jsonl", event_names=True)
        if self.provider == "mistral":
            # The recorder kept only the data payloads; the live API ends with [DONE].
            body = jsonl_to_sse(FIXTURES / "mistral" / "text_stream.chunks.jsonl", event_names=False)
            return body + b"data: [DONE]\n\n"
        assert self.provider == "ollama"
        return fixture_bytes("ollama", "chat_stream_tool_call.docs.ndjson")

    def configured(self, server: ReplayServer) -> Provider:
        """The provider, configured to send its requests to ``server``."""
        key = None if self.provider in ("bedrock", "ollama") else "sk-canary-obs-123456"
        return create_provider(self.provider, api_key=key, base_url=server.url + self.suffix, env=self.env)


CASES = [
    Case("openai", "gpt-4o-mini", "openai", "/v1"),
    Case("openai-responses", "gpt-4o", "openai", "/v1"),
    Case("anthropic", "claude-sonnet-4-5", "anthropic", ""),
    Case("gemini", "gemini-2.5-flash", "gcp.gemini", ""),
    Case(
        "bedrock",
        "anthropic.claude-3-haiku-20240307-v1:0",
        "aws.bedrock",
        "",
        "application/vnd.amazon.eventstream",
        AWS_ENV,
    ),
    Case("cohere", "command-a-03-2025", "cohere", ""),
    Case("mistral", "mistral-small-latest", "mistral_ai", "/v1"),
    Case("ollama", "llama3.2", "ollama", "", "application/x-ndjson"),
]


def request(model: str = "openai:m", prompt: str = "hi", **fields: Any) -> ChatRequest:
    return ChatRequest(model=model, messages=[Message.user(prompt)], **fields)


def scripted(events: Sequence[Event]) -> Any:
    """An inner handler that plays ``events``: what the operators below would have sent."""

    async def handler(req: ChatRequest) -> AsyncIterator[Event]:
        for event in events:
            yield event

    return handler


async def run(handler: Any, operators: Sequence[object], req: ChatRequest | None = None) -> list[Event]:
    composed = compose(handler, list(operators))  # type: ignore[arg-type]
    async with EventStream(composed(req or request())) as stream:
        return [event async for event in stream]


def tracing() -> tuple[TracerProvider, InMemorySpanExporter]:
    """A tracer provider that keeps finished spans in memory (never the global one)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def only_span(exporter: InMemorySpanExporter) -> ReadableSpan:
    spans = exporter.get_finished_spans()
    assert len(spans) == 1, [s.name for s in spans]
    return spans[0]


def metering() -> tuple[MeterProvider, InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    return MeterProvider(metric_readers=[reader]), reader


def points(reader: InMemoryMetricReader, name: str) -> list[Any]:
    """Every data point of the metric called ``name`` (empty if it recorded nothing)."""
    data = reader.get_metrics_data()
    found: list[NumberDataPoint | HistogramDataPoint] = []
    if data is None:
        return found
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == name:
                    found.extend(metric.data.data_points)  # type: ignore[arg-type]
    return found


def one_point(reader: InMemoryMetricReader, name: str, **attrs: Any) -> Any:
    """The single data point of ``name`` whose attributes include ``attrs`` (dots written as __)."""
    wanted = {k.replace("__", "."): v for k, v in attrs.items()}
    matches = [p for p in points(reader, name) if all(p.attributes.get(k) == v for k, v in wanted.items())]
    assert len(matches) == 1, (name, wanted, [dict(p.attributes) for p in points(reader, name)])
    return matches[0]
