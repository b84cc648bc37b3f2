"""Stream a reply to the terminal as it arrives.

    uv run python examples/stream_to_terminal.py "Why is the sky blue?"

Uses $LLUMINARY_MODEL if set (e.g. ``openai:gpt-4o-mini`` with OPENAI_API_KEY),
else the local in-process model.
"""

from __future__ import annotations

import asyncio
import sys

import lluminary as ll


async def main(prompt: str) -> int:
    engine = ll.Engine([ll.Retry(), ll.Timeout(first_event=30, idle=30)])
    async with engine, engine.stream(prompt, max_tokens=200) as stream:
        async for event in stream:
            if isinstance(event, ll.TextDelta):
                print(event.text, end="", flush=True)
            elif isinstance(event, ll.Usage):
                note = " (estimated)" if event.estimated else ""
                print(f"\n[{event.input_tokens} in, {event.output_tokens} out{note}]")
            elif isinstance(event, ll.Error):
                print(f"\nerror: {event.code}: {event.message}", file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(" ".join(sys.argv[1:]) or "What is the capital of France?")))
