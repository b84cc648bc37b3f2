"""Fallback: when a model fails before any output, ask the next one.

The request goes to ``request.model`` first, then to each model of the list in
order, any provider (``"anthropic:claude-sonnet-4-5"``); only ``model`` changes
(``msgspec.structs.replace``), so messages, tools and settings are sent as they
were. It follows Retry's rule for safety: it moves on only while nothing but
``start`` has gone downstream. After content, a failure is the stream's
``error``, because a second model would start its answer from scratch and the
consumer would see two answers spliced together. A later attempt's ``start`` is
dropped, so the consumer sees one (the first; the ``fallback`` events say which
models answered), and a failed attempt's ``usage`` is held back with its error.

Which errors move it on:

- an error whose code is in ``codes``; by default the transient ones
  (``rate_limited``, ``overloaded``, ``server``, ``timeout``, ``connection``).
  List others (``context_length``, ``content_filter``, ``auth``) to fall back on
  them too: a different model may well accept what this one refused;
- a configuration failure: an ``auth``, ``not_found`` or ``invalid_request``
  error with neither a provider nor an HTTP status is the engine saying that
  the model cannot be used in this process (typically a missing API key:
  ``Engine`` resolves providers per call and reports that as ``error`` ``auth``).
  No request was sent, and the next model may be configured, so Fallback moves
  on. Model names are checked when the operator is built, so a typo raises there
  instead of being skipped at run time. A provider's own 401 (it has a status)
  is not a configuration failure: it moves on only if ``auth`` is in ``codes``.

Each move emits a ``fallback`` event (the failed attempt's number and code, and
the model tried next). When every model has failed, the last error ends the
stream. A :class:`RetryBudget` may be shared with Retry: a move to the next
model is a retry, and when the budget refuses it the error is passed on as it
is. Moves past a configuration failure send nothing upstream and cost nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from typing import Final

import msgspec

from lluminary.engine._operator import Handler
from lluminary.engine.operators._budget_retry import RetryBudget
from lluminary.events import ChatRequest, Error, Event, Start, Usage, is_content
from lluminary.events import Fallback as FallbackEvent
from lluminary.providers._errors import RETRYABLE_CODES
from lluminary.providers._registry import parse_model

__all__ = ["Fallback"]

#: The codes the engine uses when it cannot resolve a model (see ``Engine._dispatch``).
_CONFIG_CODES: Final = frozenset({"auth", "not_found", "invalid_request"})


class Fallback:
    def __init__(
        self,
        models: Sequence[str],
        *,
        codes: Collection[str] = RETRYABLE_CODES,
        budget: RetryBudget | None = None,
    ) -> None:
        if isinstance(models, str):
            raise TypeError("models must be a sequence of 'provider:model' strings, not one string")
        if not models:
            raise ValueError("Fallback needs at least one fallback model")
        for model in models:
            parse_model(model)  # raises ConfigError for an unknown provider or a malformed name
        self.models: tuple[str, ...] = tuple(models)
        self.codes = frozenset(codes)
        self.budget = budget

    def __repr__(self) -> str:
        return f"Fallback(models={list(self.models)!r}, codes={sorted(self.codes)!r})"

    def __call__(self, inner: Handler) -> Handler:
        async def handler(request: ChatRequest) -> AsyncIterator[Event]:
            budget = self.budget
            if budget is not None:
                budget.record_request()
            chain = (request.model, *self.models)
            started = False
            attempt = 1
            while True:
                failure: Error | None = None
                held: Usage | None = None
                output = False
                last = attempt == len(chain)
                # Only the model changes; the first attempt sends the caller's request object itself.
                model = chain[attempt - 1]
                stream = inner(request if attempt == 1 else msgspec.structs.replace(request, model=model))
                try:
                    async for event in stream:
                        if held is not None:
                            if isinstance(event, Error) and not last and self._moves_on(event):
                                failure = event
                                break
                            yield held
                            held = None
                        if isinstance(event, Start):
                            if started:
                                continue
                            started = True
                        elif isinstance(event, Usage) and not output:
                            # Hold it: if an error follows, this attempt is discarded.
                            held = event
                            continue
                        elif isinstance(event, Error):
                            if not output and not last and self._moves_on(event):
                                failure = event
                                break
                        elif not output and is_content(event):
                            output = True
                        yield event
                    else:
                        if held is not None:
                            yield held
                finally:
                    await stream.aclose()  # type: ignore[attr-defined]
                if failure is None:
                    return
                if budget is not None and not _is_config_failure(failure) and not budget.try_retry():
                    yield failure
                    return
                yield FallbackEvent(attempt=attempt, model=chain[attempt], code=failure.code)
                attempt += 1

        return handler

    def _moves_on(self, event: Error) -> bool:
        return event.code in self.codes or _is_config_failure(event)


def _is_config_failure(event: Error) -> bool:
    """An error the engine made up because the model could not be resolved: nothing was sent."""
    return event.code in _CONFIG_CODES and event.provider is None and event.status is None
