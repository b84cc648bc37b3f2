"""The exceptions LLuMinary raises, and the one place foreign exceptions are named.

Streams never raise for provider trouble: a failed request ends as an in-band
``error`` event (see ``lluminary.events.Error``). Exceptions are for mistakes the
caller can fix before a request is sent, and for ``Engine.complete()``, which
turns a terminal ``error`` event into :class:`StreamError`.

    LLuminaryError
     ├── ConfigError             bad configuration or arguments
     │    ├── UnknownProviderError   "provider:model" names no provider we know
     │    ├── UnknownModelError      the model string is empty or malformed
     │    └── MissingKeyError        the provider needs a key and none was given
     ├── DecodeError             bytes that no decoder can make sense of (raised by
     │                           codecs; decoders turn it into an ``error`` event)
     └── StreamError             a stream ended in ``error``; ``.event`` holds it

Nothing here ever carries an API key: messages are built from names, never from
secret values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lluminary.events import Error

__all__ = [
    "ConfigError",
    "DecodeError",
    "LLuminaryError",
    "MissingKeyError",
    "StreamError",
    "UnknownModelError",
    "UnknownProviderError",
]


class LLuminaryError(Exception):
    """Base class of every exception raised by LLuMinary."""


class ConfigError(LLuminaryError, ValueError):
    """Configuration or arguments that cannot work."""


class UnknownProviderError(ConfigError):
    """The provider part of a ``provider:model`` string is not registered."""


class UnknownModelError(ConfigError):
    """A model string that names no model."""


class MissingKeyError(ConfigError):
    """A provider that needs credentials was given none."""


class DecodeError(LLuminaryError, ValueError):
    """Input that does not decode."""


class StreamError(LLuminaryError):
    """A stream ended with an ``error`` event."""

    def __init__(self, event: Error) -> None:
        self.event = event
        status = f" (HTTP {event.status})" if event.status is not None else ""
        super().__init__(f"{event.provider or 'lluminary'} {event.code}{status}: {event.message}")

    @property
    def code(self) -> str:
        return self.event.code

    @property
    def retryable(self) -> bool:
        return self.event.retryable
