"""Provider names to provider classes, imported only when first used.

``"openai:gpt-4o-mini"`` names the provider before the first colon and the
provider's own model id after it (model ids may contain colons themselves, as
Ollama's ``llama3.2:1b`` and Bedrock's ``…-v1:0`` do). Keys and hosts come from
each provider's usual environment variables unless given explicitly.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from typing import Final

from lluminary.errors import MissingKeyError, UnknownModelError, UnknownProviderError
from lluminary.providers._base import HttpProvider, Provider

__all__ = ["PROVIDERS", "create_provider", "parse_model"]

#: name → (module, class). Lazy, so ``import lluminary`` stays cheap.
PROVIDERS: Final[dict[str, tuple[str, str]]] = {
    "openai": ("lluminary.providers.openai", "OpenAIChat"),
    "anthropic": ("lluminary.providers.anthropic", "Anthropic"),
    "openai-responses": ("lluminary.providers.openai_responses", "OpenAIResponses"),
    "gemini": ("lluminary.providers.gemini", "Gemini"),
    "bedrock": ("lluminary.providers.bedrock", "Bedrock"),
    "cohere": ("lluminary.providers.cohere", "Cohere"),
    "mistral": ("lluminary.providers.mistral", "Mistral"),
    "ollama": ("lluminary.providers.ollama", "Ollama"),
    "local": ("lluminary.providers.local", "LocalProvider"),
}


def parse_model(model: str, default_provider: str | None = None) -> tuple[str, str]:
    """Split ``"provider:model"``; a name without a colon uses ``default_provider``.

    An unknown prefix is an error, never silently a model id of the default
    provider: a typo such as ``"opnai:gpt-4o"`` must not go somewhere else.
    Write ``"ollama:qwen3:8b"`` for model ids that contain colons.
    """
    if not isinstance(model, str) or not model.strip():
        raise UnknownModelError("no model given: use 'provider:model', e.g. 'openai:gpt-4o-mini'")
    provider, sep, name = model.partition(":")
    if sep:
        if provider not in PROVIDERS:
            raise UnknownProviderError(
                f"unknown provider {provider!r} in {model!r}; known providers: {', '.join(sorted(PROVIDERS))}"
            )
        if not name and provider != "local":
            raise UnknownModelError(f"{model!r} names no model after the provider")
        return provider, name
    if default_provider is None:
        raise UnknownModelError(f"model {model!r} names no provider: use 'provider:model'")
    return default_provider, model


def provider_class(name: str) -> type[Provider]:
    try:
        module_name, attr = PROVIDERS[name]
    except KeyError:
        raise UnknownProviderError(
            f"unknown provider {name!r}; known providers: {', '.join(sorted(PROVIDERS))}"
        ) from None
    cls: type[Provider] = getattr(importlib.import_module(module_name), attr)
    return cls


def create_provider(
    name: str,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Provider:
    """Build a provider from explicit settings, falling back to its environment variables."""
    cls = provider_class(name)
    env = os.environ if env is None else env
    factory = getattr(cls, "from_env", None)
    if factory is not None:
        provider: Provider = factory(api_key=api_key, base_url=base_url, env=env)
        return provider
    if issubclass(cls, HttpProvider):
        key = api_key or (env.get(cls.key_env) if cls.key_env else None) or None
        http = cls(api_key=key, base_url=base_url)
        if http.api_key is None and http.requires_key():
            raise MissingKeyError(
                f"{name} needs an API key: set {cls.key_env} or pass api_key (--api-key on the command line)"
            )
        return http
    return cls()
