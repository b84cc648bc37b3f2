"""The embedder protocol, and the one exception every embedder raises.

An embedder turns texts into vectors of a fixed ``dimension``. ``embed`` takes a
batch, because every API (and the local model) is far cheaper per text in
batches, and returns one vector per text, in order. Embedders never block the
event loop: the local model runs in a worker thread, the APIs over the
transports in :mod:`lluminary.providers`.

Failures raise :class:`EmbedderError` and nothing else. It carries the same
typed ``error`` event a chat stream would end with (code, status, retry_after,
retryable), built by the provider's own error mapper and scrubbed of keys, so a
caller decides on retries exactly as for chat.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from lluminary.errors import LLuminaryError
from lluminary.events import Error, ErrorCode

__all__ = ["Embedder", "EmbedderError"]


@runtime_checkable
class Embedder(Protocol):
    #: The length of every vector ``embed`` returns.
    dimension: int

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order; an empty batch gives an empty list."""
        ...


class EmbedderError(LLuminaryError):
    """Embedding failed; ``event`` is the typed error (never containing a key)."""

    def __init__(self, event: Error) -> None:
        self.event = event
        status = f" (HTTP {event.status})" if event.status is not None else ""
        super().__init__(f"{event.provider or 'embedder'} {event.code}{status}: {event.message}")

    @classmethod
    def of(cls, code: ErrorCode, message: str, *, provider: str | None, retryable: bool = False) -> EmbedderError:
        return cls(Error(code=code, message=message, provider=provider, retryable=retryable))

    @property
    def code(self) -> ErrorCode:
        return self.event.code

    @property
    def retryable(self) -> bool:
        return self.event.retryable
