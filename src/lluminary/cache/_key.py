"""Cache keys: a stable hash of everything that changes a response, and nothing else.

A key is BLAKE2b-256 over canonical JSON (msgspec, keys sorted, as
:func:`~lluminary.events.encode_request` writes it) of:

- the whole :class:`ChatRequest` (model, messages, system, tools, tool_choice,
  temperature, top_p, max_tokens, stop, seed, response_format, extra), with its
  ``metadata`` emptied: metadata labels a request (a trace id, a user id) and
  never reaches the model, so leaving it in would turn every hit into a miss;
- the provider name, and the base URL the provider is configured with: the same
  model id served by two endpoints (OpenAI and a vLLM or Azure deployment) gives
  different answers, and LiteLLM #42400-style keys that forget a field serve one
  for the other;
- the namespace (``"default"`` unless the operator is given one) and the tenant,
  ``metadata["tenant"]``. The tenant is always part of the key, also under an
  explicit namespace, so tenants never share entries (LiteLLM #29955).

Sorting makes the key independent of dict order (``extra``, tool schemas). The
hash is personalised per key kind, so an exact-cache key can never equal a
semantic-cache key by construction. Everything here is pure and deterministic
across processes and machines: a key computed today finds the entry written
yesterday by another worker. Bump :data:`KEY_VERSION` whenever the material
changes shape; old entries then simply miss.

Non-finite floats (NaN, inf) encode as JSON ``null``, exactly as the providers'
request encoders (msgspec too) send them, so the key still follows what the
provider receives.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

import msgspec

from lluminary.events import ChatRequest, Message
from lluminary.providers import parse_model

if TYPE_CHECKING:
    from lluminary.engine import Engine

__all__ = [
    "DEFAULT_NAMESPACE",
    "KEY_VERSION",
    "cache_key",
    "context_key",
    "engine_base_url",
    "entry_key",
    "key_material",
]

KEY_VERSION: Final = 1
DEFAULT_NAMESPACE: Final = "default"

# Domain separation: one personalisation string per kind of key (at most 16 bytes).
_EXACT: Final = b"lluminary.exact1"
_CONTEXT: Final = b"lluminary.ctx1"
_ENTRY: Final = b"lluminary.sem1"


class _Material(msgspec.Struct, frozen=True):
    """What a key hashes. Field order is irrelevant: the encoding sorts keys."""

    version: int
    namespace: str
    tenant: str | None
    provider: str
    base_url: str | None
    request: ChatRequest


def key_material(request: ChatRequest, *, namespace: str | None = None, base_url: str | None = None) -> bytes:
    """The canonical bytes a key hashes; useful to see why two requests differ."""
    tenant = request.metadata.get("tenant")
    stripped = msgspec.structs.replace(request, metadata={}) if request.metadata else request
    provider, sep, _ = request.model.partition(":")
    material = _Material(
        version=KEY_VERSION,
        namespace=namespace or DEFAULT_NAMESPACE,
        tenant=tenant,
        provider=provider if sep else "",
        base_url=base_url.rstrip("/") if base_url else None,
        request=stripped,
    )
    return msgspec.json.encode(material, order="sorted")


def _digest(data: bytes, person: bytes) -> str:
    return hashlib.blake2b(data, digest_size=32, person=person).hexdigest()


def cache_key(request: ChatRequest, *, namespace: str | None = None, base_url: str | None = None) -> str:
    """The exact-match key of ``request``: ``"c1:"`` and 64 hex digits."""
    return "c1:" + _digest(key_material(request, namespace=namespace, base_url=base_url), _EXACT)


def context_key(request: ChatRequest, *, namespace: str | None = None, base_url: str | None = None) -> str:
    """The key of everything in ``request`` but the text of its last message.

    The semantic cache uses it as the vector-index namespace: only requests equal
    in model, parameters, tools, system prompt and earlier turns can match each
    other, so similarity is only ever measured between final user questions.
    """
    if request.messages:
        last = request.messages[-1]
        placeholder = Message(last.role, "")
        request = msgspec.structs.replace(request, messages=[*request.messages[:-1], placeholder])
    return "x1:" + _digest(key_material(request, namespace=namespace, base_url=base_url), _CONTEXT)


def entry_key(context: str, text: str) -> str:
    """The semantic-cache entry of ``text`` under ``context``; the same question overwrites its entry."""
    data = msgspec.json.encode([context, text])
    return "s1:" + _digest(data, _ENTRY)


def engine_base_url(engine: Engine) -> Callable[[ChatRequest], str | None]:
    """A ``base_url`` resolver for the cache operators: the base URL of the engine's provider.

    Providers are built on first use, so this may build one; when that fails
    (:class:`~lluminary.errors.ConfigError`), the operators bypass the cache and
    the engine reports the problem as it would without them.
    """

    def resolve(request: ChatRequest) -> str | None:
        name, _ = parse_model(request.model)
        base_url = getattr(engine.provider(name), "base_url", None)
        return base_url if isinstance(base_url, str) else None

    return resolve
