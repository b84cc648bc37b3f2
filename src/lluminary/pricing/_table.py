"""The price table: list prices per model, model-id aliasing, and ``price(usage) -> Cost``.

Prices live in one data file, ``prices.json`` beside this module, with the
source URL of every provider and the date they were checked. Everything here is
pure: loading, lookup and arithmetic, no I/O beyond reading that file once.

Lookup forgives the spellings a model id comes in. Dated snapshots
(``gpt-4o-mini-2024-07-18``, ``claude-sonnet-4-20250514``), Gemini's ``models/``
prefix and ``-001`` versions, and Bedrock ids (``us.anthropic.claude-3-haiku-20240307-v1:0``)
all find their base entry, unless the table lists the exact id with a price of
its own (``gpt-4o-2024-05-13`` costs more than ``gpt-4o``). Mistral and Cohere
ids are matched only exactly or through the aliases the file lists, because
their dated ids do differ in price.

An unknown model is never priced at zero: :meth:`PriceTable.lookup` returns None
and :meth:`PriceTable.price` raises :class:`UnknownPriceError`. Only a provider
the file marks ``free`` (Ollama, the local model) costs 0, and exactly 0.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any, Final, Literal

import msgspec

from lluminary.errors import LLuminaryError
from lluminary.events import Cost, Usage

__all__ = ["PRICES_FILE", "ModelPrice", "PriceTable", "Rates", "UnknownPriceError", "default_table", "price"]

#: The data file shipped with the package.
PRICES_FILE: Final = Path(__file__).with_name("prices.json")
_PER_TOKEN: Final = 1e-6  # rates are per million tokens


class UnknownPriceError(LLuminaryError, LookupError):
    """The price table has no price for this provider and model."""


class Rates(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """USD per million tokens. None means unknown (priced at the input rate, marked estimated)."""

    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None


class _Tier(Rates, frozen=True, forbid_unknown_fields=True):
    above_prompt_tokens: int = 0


class _ModelEntry(Rates, frozen=True, forbid_unknown_fields=True):
    tiers: tuple[_Tier, ...] = ()


class _ProviderEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    source: list[str]
    notes: str = ""
    free: bool = False
    cache_write_rate: Literal["input"] | None = None
    fallback_providers: list[str] = msgspec.field(default_factory=list)
    models: dict[str, _ModelEntry] = msgspec.field(default_factory=dict)
    aliases: dict[str, str] = msgspec.field(default_factory=dict)


class _File(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    currency: Literal["USD"]
    unit: str
    checked: str
    providers: dict[str, _ProviderEntry]
    notes: list[str] = msgspec.field(default_factory=list)


class ModelPrice(msgspec.Struct, frozen=True):
    """The price of one model, as found for a ``provider:model`` pair.

    ``model`` is the table's entry the id matched (``gpt-4o-mini`` for
    ``gpt-4o-mini-2024-07-18``); ``tiers`` are ``(above_prompt_tokens, rates)``
    in ascending order; ``free`` marks providers that charge nothing.
    """

    provider: str
    model: str
    rates: Rates
    tiers: tuple[tuple[int, Rates], ...] = ()
    free: bool = False

    def rates_for(self, prompt_tokens: int) -> Rates:
        """The rates a request with ``prompt_tokens`` (input + cache reads + writes) is billed at."""
        rates = self.rates
        for threshold, tier in self.tiers:
            if prompt_tokens > threshold:
                rates = tier
        return rates

    def cost(self, usage: Usage) -> Cost:
        """The price of ``usage``. ``estimated`` if the usage was, or a needed rate is unknown."""
        if self.free:
            return Cost(usd=0.0, estimated=usage.estimated)
        prompt = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
        rates = self.rates_for(prompt)
        estimated = usage.estimated
        read_rate, write_rate = rates.cache_read, rates.cache_write
        if read_rate is None:
            # Unknown cache-read price: the input rate is an upper bound, never a silent zero.
            read_rate = rates.input
            estimated = estimated or usage.cache_read_tokens > 0
        if write_rate is None:
            write_rate = rates.input
            estimated = estimated or usage.cache_write_tokens > 0
        input_usd = usage.input_tokens * rates.input * _PER_TOKEN
        output_usd = usage.output_tokens * rates.output * _PER_TOKEN
        read_usd = usage.cache_read_tokens * read_rate * _PER_TOKEN
        write_usd = usage.cache_write_tokens * write_rate * _PER_TOKEN
        return Cost(
            usd=input_usd + output_usd + read_usd + write_usd,
            input_usd=input_usd,
            output_usd=output_usd,
            cache_read_usd=read_usd,
            cache_write_usd=write_usd,
            estimated=estimated,
        )


_FREE: Final = Rates(0.0, 0.0, 0.0, 0.0)
# Bedrock ids: an optional cross-region inference prefix, the vendor, a version suffix.
_BEDROCK_REGION: Final = re.compile(r"^(?:us-gov|us|eu|apac|ap|global|jp|au|ca|in|sa|me|mx)\.")
_BEDROCK_VENDOR: Final = re.compile(r"^(?:anthropic|amazon|meta|cohere|mistral|ai21|deepseek|openai|qwen|writer)\.")
_BEDROCK_VERSION: Final = re.compile(r"(?:-v\d+(?::\d+)?(?::[0-9]+k)?|:\d+)$")
# Dated snapshots in the two unambiguous shapes: 2024-07-18 and 20250514.
_DATE: Final = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|20\d{6})$")
_GEMINI_VERSION: Final = re.compile(r"-\d{3}$")


def _candidates(provider: str, model: str) -> Iterator[str]:
    """The spellings to try for ``model``, most specific first."""
    name = model.strip().lower()
    yield name
    if "/" in name:  # Gemini's "models/…", a Bedrock inference-profile ARN
        name = name.rsplit("/", 1)[1]
        yield name
    if provider == "bedrock":
        name = _BEDROCK_VERSION.sub("", _BEDROCK_VENDOR.sub("", _BEDROCK_REGION.sub("", name)))
        yield name
    undated = _DATE.sub("", name)
    if undated != name:
        yield undated
    if provider == "gemini":
        yield _GEMINI_VERSION.sub("", undated)


class PriceTable:
    """Prices by provider and model, loaded from the JSON data file (or a dict of the same shape)."""

    def __init__(self, data: Mapping[str, Any] | bytes) -> None:
        raw = data if isinstance(data, bytes) else msgspec.json.encode(data)
        try:
            parsed = msgspec.json.decode(raw, type=_File)
        except msgspec.ValidationError as exc:
            raise ValueError(f"invalid price table: {exc}") from None
        for name, entry in parsed.providers.items():
            for model, rates in entry.models.items():
                _check_rates(f"{name}:{model}", rates)
                for tier in rates.tiers:
                    if tier.above_prompt_tokens <= 0:
                        raise ValueError(f"invalid price table: {name}:{model} has a tier without above_prompt_tokens")
                    _check_rates(f"{name}:{model} above {tier.above_prompt_tokens}", tier)
        self._file = parsed

    @classmethod
    def load(cls, path: str | Path | None = None) -> PriceTable:
        """The table in ``path``; the shipped ``prices.json`` when None."""
        if path is None:
            return default_table()
        return cls(Path(path).read_bytes())

    @property
    def checked(self) -> str:
        """The date the prices were checked (ISO 8601)."""
        return self._file.checked

    @property
    def currency(self) -> str:
        return self._file.currency

    def providers(self) -> list[str]:
        return sorted(self._file.providers)

    def source(self, provider: str) -> list[str]:
        """Where ``provider``'s prices come from."""
        entry = self._file.providers.get(provider)
        return list(entry.source) if entry is not None else []

    def lookup(self, provider: str, model: str) -> ModelPrice | None:
        """The price of ``provider``'s ``model``, or None when the table has none."""
        return self._find(provider, model, list(dict.fromkeys(_candidates(provider, model))), set())

    def price(self, usage: Usage, provider: str, model: str) -> Cost:
        """``usage`` in USD. Raises :class:`UnknownPriceError` for a model without a price."""
        found = self.lookup(provider, model)
        if found is None:
            raise UnknownPriceError(
                f"no price for {provider}:{model} in the price table (checked {self.checked}); "
                "add one with PriceTable.with_prices()"
            )
        return found.cost(usage)

    def with_prices(self, provider: str, models: Mapping[str, Mapping[str, Any]]) -> PriceTable:
        """A copy with ``models`` (name → rates, as in the data file) added to or replacing ``provider``'s."""
        data = msgspec.to_builtins(self._file)
        entry = data["providers"].setdefault(provider, {"source": ["user supplied"], "models": {}})
        entry["models"].update({name: dict(rates) for name, rates in models.items()})
        return PriceTable(data)

    def _find(self, provider: str, model: str, names: list[str], seen: set[str]) -> ModelPrice | None:
        entry = self._file.providers.get(provider)
        if entry is None or provider in seen:
            return None
        seen.add(provider)
        if entry.free:
            return ModelPrice(provider, model, _FREE, free=True)
        for name in names:
            key = entry.aliases.get(name, name)
            found = entry.models.get(key)
            if found is not None:
                return _model_price(provider, key, found, entry.cache_write_rate)
        for other in entry.fallback_providers:
            # Bedrock's "anthropic.claude-…-v1:0" is looked up at Anthropic by the names it was reduced to.
            more = list(dict.fromkeys(n for name in names for n in _candidates(other, name)))
            price = self._find(other, model, more, seen)
            if price is not None:
                return price
        return None


def _model_price(provider: str, name: str, entry: _ModelEntry, cache_write_rate: str | None) -> ModelPrice:
    def rates(r: Rates) -> Rates:
        write = r.cache_write
        if write is None and cache_write_rate == "input":
            write = r.input  # the provider charges no write surcharge: a write is an input token
        return Rates(r.input, r.output, r.cache_read, write)

    tiers = tuple(sorted((t.above_prompt_tokens, rates(t)) for t in entry.tiers))
    return ModelPrice(provider, name, rates(entry), tiers)


def _check_rates(what: str, rates: Rates) -> None:
    for value in (rates.input, rates.output, rates.cache_read, rates.cache_write):
        if value is not None and not (value >= 0 and value < float("inf")):
            raise ValueError(f"invalid price table: {what} has a rate that is not a finite non-negative number")


@cache
def default_table() -> PriceTable:
    """The shipped table, loaded once."""
    return PriceTable(PRICES_FILE.read_bytes())


def price(usage: Usage, provider: str, model: str, *, table: PriceTable | None = None) -> Cost:
    """Price ``usage`` of ``provider``'s ``model``; raises :class:`UnknownPriceError` if it has no price."""
    return (table or default_table()).price(usage, provider, model)
