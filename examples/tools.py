"""A tool loop: the model calls a tool, we run it, and send the result back.

OPENAI_API_KEY=... uv run python examples/tools.py openai:gpt-4o-mini
ANTHROPIC_API_KEY=... uv run python examples/tools.py anthropic:claude-sonnet-4-5
"""

from __future__ import annotations

import asyncio
import sys

import lluminary as ll

WEATHER = ll.ToolSpec(
    name="get_weather",
    description="The current weather in a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def get_weather(city: str) -> str:
    return f"It is 18°C and sunny in {city}."


async def main(model: str) -> None:
    messages = [ll.Message.user("What's the weather in Paris?")]
    async with ll.Engine([ll.Retry()]) as engine:
        while True:
            request = ll.ChatRequest(model=model, messages=messages, tools=[WEATHER])
            response = await engine.complete(request)
            messages.append(response.message())
            if not response.tool_calls:
                print(response.text)
                return
            for call in response.tool_calls:
                print(f"-> {call.name}({call.arguments})")
                messages.append(ll.Message.tool(call.id, get_weather(**call.arguments), name=call.name))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "openai:gpt-4o-mini"))
