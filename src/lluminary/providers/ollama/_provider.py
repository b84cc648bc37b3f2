"""The Ollama provider: ``ollama:MODEL`` over the native ``/api/chat`` endpoint.

``base_url`` is the bare origin (``http://127.0.0.1:11434``); we append
``/api/chat``. Without one we read ``OLLAMA_HOST`` the way the Ollama CLI does:
it may be ``host``, ``host:port``, ``0.0.0.0`` or a full ``http(s)://`` URL. A
bare host gets Ollama's port 11434, an explicit scheme its usual port, and the
unspecified addresses servers bind to (``0.0.0.0``, ``::``) mean this machine.

No key is needed. When one is given (a hosted or proxied Ollama) it goes in an
``Authorization: Bearer`` header, and only to the configured base URL. No
environment variable is read for it: a key meant for one host must not follow
``OLLAMA_HOST`` to another.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Final
from urllib.parse import urlsplit

import msgspec

from lluminary.errors import ConfigError
from lluminary.events import ChatRequest, Error, Event
from lluminary.providers._base import HttpProvider, Secret
from lluminary.providers._decoder import Decoder
from lluminary.providers._errors import error_event
from lluminary.providers._http import HttpRequest, Transport
from lluminary.providers.ollama._decode import OllamaDecoder
from lluminary.providers.ollama._errors import map_error
from lluminary.providers.ollama._request import check_request, encode_body

__all__ = ["DEFAULT_BASE_URL", "Ollama", "normalize_host"]

DEFAULT_PORT: Final = 11434
DEFAULT_BASE_URL: Final = f"http://127.0.0.1:{DEFAULT_PORT}"
_UNSPECIFIED: Final = frozenset({"", "0.0.0.0", "::"})  # noqa: S104 - compared against, never bound


def normalize_host(value: str) -> str:
    """An ``OLLAMA_HOST``-style value as a base URL without a trailing slash."""
    value = value.strip()
    if not value:
        return DEFAULT_BASE_URL
    explicit = "://" in value
    if not explicit:
        hostport, slash, path = value.partition("/")
        if hostport.count(":") > 1 and not hostport.startswith("["):
            hostport = f"[{hostport}]"  # a bare IPv6 address such as ``::``
        value = f"http://{hostport}{slash}{path}"
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        raise ConfigError(f"Ollama host must be http or https, not {parts.scheme!r}")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError("Ollama host has an invalid port") from None
    host = parts.hostname or ""
    if host in _UNSPECIFIED:
        host = "127.0.0.1"
    if ":" in host:  # an IPv6 literal keeps its brackets in a URL
        host = f"[{host}]"
    if port is None and not explicit:
        port = DEFAULT_PORT
    netloc = f"{host}:{port}" if port is not None else host
    path = parts.path.rstrip("/")
    return f"{parts.scheme}://{netloc}{path}"


class Ollama(HttpProvider):
    name = "ollama"
    default_base_url = DEFAULT_BASE_URL
    key_env = None

    def __init__(
        self,
        *,
        api_key: str | Secret | None = None,
        base_url: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(api_key=api_key, base_url=normalize_host(base_url or DEFAULT_BASE_URL), headers=headers)

    @classmethod
    def from_env(cls, *, api_key: str | None, base_url: str | None, env: Mapping[str, str]) -> Ollama:
        return cls(api_key=api_key, base_url=base_url or env.get("OLLAMA_HOST") or None)

    def requires_key(self) -> bool:
        return False

    def build_request(self, request: ChatRequest, model: str) -> HttpRequest:
        headers = {"content-type": "application/json", "accept": "application/x-ndjson", **self.extra_headers}
        if self.api_key:
            headers["authorization"] = f"Bearer {self.api_key.get()}"
        body = encode_body(request, model)
        return HttpRequest("POST", f"{self.base_url}/api/chat", headers, msgspec.json.encode(body))

    def decoder(self, request: ChatRequest, model: str) -> Decoder:
        return OllamaDecoder(model=model, input_estimate=self.input_estimate(request), secrets=self.secrets)

    def map_error(self, status: int, headers: Mapping[str, str], body: bytes) -> Error:
        return map_error(self.name, status, headers, body, self.secrets)

    def stream(self, request: ChatRequest, model: str, transport: Transport) -> AsyncIterator[Event]:
        # A request Ollama cannot take (an image by URL) ends as one error event,
        # like every other failure, and never reaches the network.
        try:
            check_request(request)
        except ConfigError as exc:
            return _single(error_event("invalid_request", str(exc), provider=self.name, retryable=False))
        return super().stream(request, model, transport)


async def _single(event: Event) -> AsyncIterator[Event]:
    yield event
