"""Response caching: keys, the stored form of a stream, and the semantic near-miss guards.

The operators that use these live with the others in :mod:`lluminary.engine.operators`
(:class:`~lluminary.engine.operators.Cache`, :class:`~lluminary.engine.operators.SemanticCache`);
this package holds what they share and what users may want on its own: computing
the key a request is cached under, reading a stored entry, checking two questions
with the near-miss guards.
"""

from lluminary.cache._entry import ENTRY_VERSION, CacheEntry, CacheStats, decode_entry
from lluminary.cache._guards import GUARDS, near_miss
from lluminary.cache._key import (
    DEFAULT_NAMESPACE,
    KEY_VERSION,
    cache_key,
    context_key,
    engine_base_url,
    entry_key,
    key_material,
)

__all__ = [
    "DEFAULT_NAMESPACE",
    "ENTRY_VERSION",
    "GUARDS",
    "KEY_VERSION",
    "CacheEntry",
    "CacheStats",
    "cache_key",
    "context_key",
    "decode_entry",
    "engine_base_url",
    "entry_key",
    "key_material",
    "near_miss",
]
