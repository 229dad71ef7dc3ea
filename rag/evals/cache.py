"""An on-disk cache of embeddings for evals and benchmarks.

The eval haystack (every corpus under ../shared/corpora) is ~12k chunks and ~100k sentences: embedding them takes
minutes on two cores, and they are the same texts from run to run. Vectors are keyed by the model's name and a
hash of the text, so a change of chunking or of the model only costs the texts that changed.
"""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rag.embeddings import Embedder

CACHE_ENV = "RAG_EVAL_CACHE_DIR"


def cache_dir() -> Path:
    """$RAG_EVAL_CACHE_DIR, else ~/.cache/rag-eval."""
    override = os.environ.get(CACHE_ENV)
    return Path(override) if override else Path.home() / ".cache" / "rag-eval"


def _key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class CachedEmbedder:
    """Wraps an embedder; vectors already computed for the same text come from the cache file."""

    def __init__(self, inner: Embedder, directory: Path | None = None) -> None:
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self.path = (directory or cache_dir()) / f"embeddings-{inner.name}.npz"
        self._lock = threading.Lock()
        self._rows: dict[bytes, int] = {}
        self._vectors: list[np.ndarray] = []
        self._saved = 0
        if self.path.is_file():
            try:
                data = np.load(self.path)
                keys, vectors = data["keys"], data["vectors"]
                if vectors.shape[1:] == (self.dimension,):
                    self._rows = {k.tobytes(): i for i, k in enumerate(keys)}
                    self._vectors = list(vectors)
                    self._saved = len(self._vectors)
            except (OSError, ValueError, KeyError):
                pass  # an unreadable cache is rebuilt, never trusted

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """As the wrapped embedder."""
        return self.inner.count_tokens(texts)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Cached vectors, computing (and remembering) the missing ones."""
        keys = [_key(t) for t in texts]
        with self._lock:
            missing = list(dict.fromkeys(k for k in keys if k not in self._rows))
        if missing:
            first = {k: i for i, k in reversed(list(enumerate(keys)))}
            fresh = self.inner.embed([texts[first[k]] for k in missing])
            with self._lock:
                for k, vector in zip(missing, fresh, strict=True):
                    if k not in self._rows:
                        self._rows[k] = len(self._vectors)
                        self._vectors.append(vector)
        with self._lock:
            if not keys:
                return np.zeros((0, self.dimension), dtype=np.float32)
            return np.stack([self._vectors[self._rows[k]] for k in keys]).astype(np.float32)

    def save(self) -> None:
        """Write the cache when it grew (atomically: a crash leaves the old file)."""
        with self._lock:
            if len(self._vectors) == self._saved:
                return
            # Raw bytes, not numpy's "S16": fixed-width byte strings drop trailing NUL bytes.
            keys = np.frombuffer(b"".join(self._rows), dtype=np.uint8).reshape(-1, 16)
            order = np.array(list(self._rows.values()), dtype=np.int64)
            vectors = np.stack(self._vectors)[order]
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f"{self.path.stem}.tmp-{uuid.uuid4().hex[:8]}.npz")
            np.savez(tmp, keys=keys, vectors=vectors)
            tmp.replace(self.path)
            self._saved = len(self._vectors)
