"""Typed usage of the public API; ``mypy --strict`` checks this file (see pyproject.toml)."""

from __future__ import annotations

import lluminary as ll
from lluminary.providers import create_provider


async def stream_text(engine: ll.Engine) -> str:
    parts: list[str] = []
    async with engine.stream("Hello", model="openai:gpt-4o-mini", max_tokens=10) as stream:
        async for event in stream:
            if isinstance(event, ll.TextDelta):
                parts.append(event.text)
            elif isinstance(event, ll.ToolCallEnd):
                arguments: dict[str, object] = event.arguments
                parts.append(str(arguments))
            elif isinstance(event, ll.Error):
                raise ll.StreamError(event)
    return "".join(parts)


async def complete(engine: ll.Engine) -> ll.Response:
    request = ll.ChatRequest(
        model="anthropic:claude-sonnet-4-5",
        messages=[ll.Message.user("What's the weather in Paris?")],
        tools=[ll.ToolSpec("get_weather", "Weather by city", {"type": "object"})],
    )
    response = await engine.complete(request)
    followup = ll.ChatRequest(
        model=request.model,
        messages=[*request.messages, response.message(), ll.Message.tool(response.tool_calls[0].id, "sunny")],
    )
    return await engine.complete(followup)


def build() -> ll.Engine:
    return ll.Engine(
        [ll.Retry(max_attempts=3), ll.Timeout(first_event=10, idle=30)],
        providers={"openai": create_provider("openai", api_key="sk-x")},
    )


async def pipeline() -> ll.Engine:
    """The README's typical pipeline, type-checked."""
    from lluminary.ledger import PostgresLedger
    from lluminary.stores import RedisCache, open_pool

    pool = await open_pool()
    ledger = PostgresLedger(pool)
    return ll.Engine(
        [
            ll.Tracing(),
            ll.Metrics(),
            ll.Cost(ledger=ledger),
            ll.Budget(ledger, limits={"acme": {"day": 20.0}}),
            ll.Cache(RedisCache("redis://127.0.0.1:6379")),
            ll.Retry(budget=ll.RetryBudget()),
            ll.Fallback(["anthropic:claude-sonnet-4-5"]),
            ll.RateLimit(requests_per_minute=500, tokens_per_minute=200_000),
            ll.Concurrency(32),
            ll.Timeout(first_event=20, idle=30),
        ]
    )


def encrypted_reasoning(response: ll.Response) -> list[str]:
    """Redacted reasoning blocks: ``redacted`` is a ``str`` when set, ``msgspec.UNSET`` otherwise."""
    blocks = [part.redacted for part in response.reasoning_parts if isinstance(part.redacted, str)]
    event = ll.ReasoningDelta("", redacted="ZW5j")
    if isinstance(event.redacted, str):
        blocks.append(event.redacted)
    return blocks
