"""Two providers answer the same prompt at once, streamed side by side.

    uv run python examples/side_by_side.py local: openai:gpt-4o-mini

Each model's events arrive on its own task; a bounded memory stream merges
them, tagged by model, so the slower provider never holds up the faster one.
"""

from __future__ import annotations

import asyncio
import sys

import anyio

import lluminary as ll

PROMPT = "In one sentence: why do leaves change colour in autumn?"


async def main(models: list[str]) -> None:
    send, receive = anyio.create_memory_object_stream[tuple[str, ll.Event]](16)
    texts = {model: "" for model in models}
    async with ll.Engine() as engine, anyio.create_task_group() as tg:

        async def run(model: str) -> None:
            async with send.clone() as out, engine.stream(PROMPT, model=model, max_tokens=80) as stream:
                async for event in stream:
                    await out.send((model, event))

        for model in models:
            tg.start_soon(run, model)
        send.close()
        async with receive:
            async for model, event in receive:
                if isinstance(event, ll.TextDelta):
                    texts[model] += event.text
                elif isinstance(event, (ll.Finish, ll.Error)):
                    status = event.reason if isinstance(event, ll.Finish) else f"error {event.code}"
                    print(f"[{model}] ({status}) {texts[model].strip()}\n")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:] or ["local:", "local:"]))
