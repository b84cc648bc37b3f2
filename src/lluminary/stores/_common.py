"""Small rules every store shares: TTL normalisation, vector checks, secret-free URLs.

Each backend must answer the same contract test suite, so the edge cases are
decided once, here: a TTL of zero or less means "already expired" (the value is
removed, never stored), an infinite TTL means none; a vector must be finite, not
all zeros (cosine similarity is undefined for it) and of the index's dimension.
URLs are shown only with their password replaced, because DSNs end up in reprs,
errors and logs (PITFALLS.md, "Keys in logs").
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Final
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from lluminary.stores._protocols import StoreError

__all__ = ["check_vector", "norm_ttl", "redact_url", "scrub"]

_REDACTED: Final = "***"
# Query parameters that carry secrets in libpq and redis-py URLs (``?password=…``).
_SECRET_PARAMS: Final = frozenset({"password", "pass", "passwd", "sslpassword", "token"})
# Anything shaped like ``scheme://user:secret@`` in free text (driver messages, tracebacks).
_USERINFO: Final = re.compile(r"(?P<head>[a-z][a-z0-9+.\-]*://[^:/@\s]*:)[^@\s]+@", re.IGNORECASE)


def norm_ttl(ttl: float | None) -> float | None:
    """``ttl`` in seconds, checked: None or +inf is no expiry; NaN is a mistake.

    A result of 0.0 tells the store the value is already expired.
    """
    if ttl is None:
        return None
    ttl = float(ttl)
    if math.isnan(ttl):
        raise ValueError("ttl must be a number of seconds or None")
    if math.isinf(ttl):
        return None if ttl > 0 else 0.0
    return max(ttl, 0.0)


def check_vector(vector: Sequence[float], dim: int | None) -> list[float]:
    """``vector`` as a list of floats, or :class:`StoreError` if no index could hold it."""
    try:
        values = [float(x) for x in vector]
    except (TypeError, ValueError):
        raise StoreError("a vector must be a sequence of numbers") from None
    if not values:
        raise StoreError("a vector must have at least one dimension")
    if dim is not None and len(values) != dim:
        raise StoreError(f"vector has {len(values)} dimensions, the index holds {dim}")
    if not all(math.isfinite(x) for x in values):
        raise StoreError("a vector must hold finite numbers only")
    if not any(values):
        raise StoreError("a zero vector has no direction: cosine similarity is undefined")
    return values


def redact_url(url: str) -> str:
    """``url`` with its password (in the userinfo or the query) replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _USERINFO.sub(rf"\g<head>{_REDACTED}@", url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, colon, password = userinfo.partition(":")
        if colon and password:
            netloc = f"{user}:{_REDACTED}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() in _SECRET_PARAMS for k, _ in pairs):
            query = urlencode([(k, _REDACTED if k.lower() in _SECRET_PARAMS else v) for k, v in pairs], safe="/*")
    # Built by hand: urlunsplit drops the "//" of an empty authority ("unix:///x", "memory://").
    out = f"{parts.scheme}://{netloc}{parts.path}" if "//" in url else urlunsplit(parts._replace(query=""))
    if query:
        out += f"?{query}"
    if parts.fragment:
        out += f"#{parts.fragment}"
    return out


def scrub(text: str, url: str | None = None) -> str:
    """``text`` without the password of ``url`` nor any ``scheme://user:secret@`` it holds."""
    if url:
        secrets: list[str] = []
        try:
            parts = urlsplit(url)
            if parts.password:
                # Both spellings: drivers quote the URL as given or the decoded value.
                secrets += [parts.password, unquote(parts.password)]
            secrets.extend(v for k, v in parse_qsl(parts.query) if k.lower() in _SECRET_PARAMS)
        except ValueError:
            pass
        for secret in secrets:
            if secret:
                text = text.replace(secret, _REDACTED)
    return _USERINFO.sub(rf"\g<head>{_REDACTED}@", text)
