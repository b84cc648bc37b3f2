"""tiktoken, used only when its BPE data is already on disk: never a download, never a hang.

tiktoken fetches its ``*.tiktoken`` files from the internet on first use and
keeps them in a cache directory (``TIKTOKEN_CACHE_DIR``, else ``DATA_GYM_CACHE_DIR``,
else ``<tmp>/data-gym-cache``) under the SHA-1 of the download URL. On a machine
without internet that first use blocks on a network timeout, and a cached file
with the wrong hash makes tiktoken delete it and download again. So before tiktoken
is asked for an encoding we look for the cached file ourselves and check its
SHA-256 against the hash tiktoken itself expects; only a file that passes both
checks is handed to tiktoken, which then reads it from the cache without any
network access. Anything else (no tiktoken installed, no file, a bad file) means
"no encoding", and the caller falls back to the documented estimate.

To make exact counts available offline, put the two files where tiktoken looks:
``cache_path("o200k_base")`` and ``cache_path("cl100k_base")`` name the places.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol

if TYPE_CHECKING:
    from collections.abc import Collection

__all__ = ["ENCODINGS", "Encoder", "cache_path", "encoding_for_model", "load_encoding"]

log = logging.getLogger("lluminary.tokens")

#: name → (the URL tiktoken downloads from, the SHA-256 tiktoken expects). Both are
#: tiktoken's own constants (``tiktoken_ext/openai_public.py``); the URL is only the cache key here.
ENCODINGS: Final[dict[str, tuple[str, str]]] = {
    "o200k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
    "cl100k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
}

# Model-name prefixes to encodings, longest first wins (as tiktoken's own table).
_PREFIXES: Final = (
    ("gpt-4o", "o200k_base"),
    ("chatgpt-4o", "o200k_base"),
    ("gpt-4.1", "o200k_base"),
    ("gpt-4.5", "o200k_base"),
    ("gpt-5", "o200k_base"),
    ("o1", "o200k_base"),
    ("o3", "o200k_base"),
    ("o4", "o200k_base"),
    ("gpt-4", "cl100k_base"),
    ("gpt-3.5", "cl100k_base"),
    ("gpt-35", "cl100k_base"),
)


class Encoder(Protocol):
    """What counting needs from an encoding: ``tiktoken.Encoding`` has it."""

    @property
    def name(self) -> str: ...

    def encode(self, text: str, *, disallowed_special: Collection[str] = ...) -> list[int]: ...


def encoding_for_model(model: str) -> str | None:
    """The tiktoken encoding OpenAI uses for ``model``, or None for a model that is not OpenAI's."""
    name = model.strip().lower().removeprefix("ft:")
    best = max((p for p in _PREFIXES if name.startswith(p[0])), key=lambda p: len(p[0]), default=None)
    return best[1] if best else None


def cache_path(encoding: str) -> Path:
    """Where tiktoken keeps (and we look for) the data file of ``encoding``."""
    url, _ = ENCODINGS[encoding]
    cache_dir = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
    root = Path(cache_dir) if cache_dir else Path(tempfile.gettempdir()) / "data-gym-cache"
    return root / hashlib.sha1(url.encode(), usedforsecurity=False).hexdigest()


_lock = threading.Lock()
# Loaded encodings by (name, file): a file that appears later is picked up, a bad one is not retried.
_loaded: dict[tuple[str, Path], Encoder | None] = {}


def load_encoding(encoding: str) -> Encoder | None:
    """``encoding`` from tiktoken's cache, or None when it cannot be had without the network."""
    if encoding not in ENCODINGS:
        return None
    path = cache_path(encoding)
    key = (encoding, path)
    with _lock:
        if key in _loaded:
            return _loaded[key]
        if not path.is_file():
            return None  # not remembered: the file may be put there later
        _loaded[key] = found = _load(encoding, path)
        return found


def _load(encoding: str, path: Path) -> Encoder | None:
    _, expected = ENCODINGS[encoding]
    try:
        data = path.read_bytes()
    except OSError as exc:
        log.warning("cannot read the tiktoken file for %s (%s); token counts are estimates", encoding, exc)
        return None
    if hashlib.sha256(data).hexdigest() != expected:
        # tiktoken would delete the file and download it again; we must not go online.
        log.warning("the tiktoken file for %s at %s is corrupt; token counts are estimates", encoding, path)
        return None
    try:
        import tiktoken
    except ImportError:
        log.info("tiktoken is not installed (extra 'tokens'); token counts are estimates")
        return None
    try:
        # The file is in the cache with the expected hash, so this reads it without any network access.
        enc: Encoder = tiktoken.get_encoding(encoding)
    except Exception as exc:  # noqa: BLE001 - whatever tiktoken raises, the answer is "estimate instead"
        log.warning("tiktoken could not load %s (%s); token counts are estimates", encoding, type(exc).__name__)
        return None
    return enc
