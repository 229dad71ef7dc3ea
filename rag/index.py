"""The in-process index that sits beside Chroma: BM25 (bm25s), filter columns and a copy of the vectors.

Chroma is the source of truth. This index mirrors its live chunks so that keyword search, filtered dense
search (Chroma's own `where` costs ~70 ms at 100k chunks) and the "only the live version of an article"
rule all run in numpy. It is saved next to a local store and tagged with the store's generation token;
on start it is loaded when the tokens match and rebuilt from Chroma when they do not (a crash between
the Chroma write and the index save, or a write by another replica against a Chroma server).
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import bm25s
import numpy as np

from rag.models import Article, Chunk
from rag.store import ChromaStore, day_number

_TOKEN = re.compile(r"\w+", re.UNICODE)
_BM25_LOCK = threading.Lock()
# A compaction copies every array; do it only once dead rows are a real share of the index.
_COMPACT_SHARE = 0.25


def keyword_tokens(text: str) -> list[str]:
    """Lower-cased word tokens, nothing removed and nothing stemmed.

    Measured on real news (FIELD-NOTES, benchmarks/bench_retrieval_quality.py): stop-word removal and a suffix
    stripper ("Texas" -> "texa") cost recall against plain tokens; BM25's idf already discounts common words.
    """
    return _TOKEN.findall(text.lower())


@dataclass(frozen=True, slots=True)
class RowFilter:
    """A filter expressed on the index's columns."""

    since_day: int | None = None
    until_day: int | None = None
    source: str | None = None
    article_id: str | None = None


class LocalIndex:
    """Live chunks of the store: ids, article ids, dates, sources, vectors and the BM25 index."""

    def __init__(self, dimension: int) -> None:
        self.dimension = dimension
        self.generation = ""
        self.ids: list[str] = []
        self.article_of: list[str] = []
        self.row_of: dict[str, int] = {}
        self.rows_of_article: dict[str, list[int]] = {}
        self.live_hash: dict[str, str] = {}
        self.day = np.zeros(0, dtype=np.int32)
        self.source_code = np.zeros(0, dtype=np.int32)
        self.sources: dict[str, int] = {}
        self.alive = np.zeros(0, dtype=bool)
        self.vectors = np.zeros((0, dimension), dtype=np.float32)
        self.tokens: list[np.ndarray] = []
        self.vocab: dict[str, int] = {}
        self._bm25: bm25s.BM25 | None = None
        self._bm25_dirty = False

    def __len__(self) -> int:
        return int(self.alive.sum())

    # --- writing ---

    def copy(self) -> LocalIndex:
        """A copy for `apply` to change while searches go on reading this one (an index is never changed in place
        once published: a search reads many of its fields, and must see them all from one version)."""
        other = copy.copy(self)
        other.ids, other.article_of, other.tokens = list(self.ids), list(self.article_of), list(self.tokens)
        other.row_of, other.rows_of_article = dict(self.row_of), dict(self.rows_of_article)
        other.live_hash, other.sources, other.vocab = dict(self.live_hash), dict(self.sources), dict(self.vocab)
        other.alive = self.alive.copy()
        return other

    def apply(
        self,
        written: Sequence[tuple[Article, Sequence[Chunk], np.ndarray]],
        removed: Iterable[str],
        generation: str,
    ) -> None:
        """Mirror a store write: retire the old rows of written or removed articles, append the new ones."""
        for article_id in [a.id for a, _, _ in written] + list(removed):
            for row in self.rows_of_article.pop(article_id, []):
                self.alive[row] = False
                del self.row_of[self.ids[row]]
            self.live_hash.pop(article_id, None)
        new_ids: list[str] = []
        new_articles: list[str] = []
        days: list[int] = []
        codes: list[int] = []
        vectors: list[np.ndarray] = []
        for article, chunks, embeddings in written:
            self.live_hash[article.id] = article.content_hash
            code = self.sources.setdefault(article.source or "", len(self.sources))
            header = f"{article.title} "
            for chunk, vector in zip(chunks, embeddings, strict=True):
                new_ids.append(chunk.id)
                new_articles.append(article.id)
                days.append(day_number(article.published_at))
                codes.append(code)
                vectors.append(vector)
                self.tokens.append(self._token_ids(header + chunk.text))
        self._append(new_ids, new_articles, days, codes, vectors)
        self.generation = generation
        self._bm25_dirty = True
        if len(self.ids) and (~self.alive).sum() > _COMPACT_SHARE * len(self.ids):
            self._compact()

    def _append(
        self, ids: list[str], articles: list[str], days: list[int], codes: list[int], vectors: list[np.ndarray]
    ) -> None:
        base = len(self.ids)
        for offset, (cid, aid) in enumerate(zip(ids, articles, strict=True)):
            self.row_of[cid] = base + offset
            self.rows_of_article.setdefault(aid, []).append(base + offset)
        self.ids.extend(ids)
        self.article_of.extend(articles)
        self.day = np.concatenate([self.day, np.asarray(days, dtype=np.int32)])
        self.source_code = np.concatenate([self.source_code, np.asarray(codes, dtype=np.int32)])
        self.alive = np.concatenate([self.alive, np.ones(len(ids), dtype=bool)])
        if vectors:
            self.vectors = np.concatenate([self.vectors, np.asarray(vectors, dtype=np.float32)])

    def _token_ids(self, text: str) -> np.ndarray:
        vocab = self.vocab
        return np.asarray([vocab.setdefault(t, len(vocab)) for t in keyword_tokens(text)], dtype=np.int32)

    def _compact(self) -> None:
        keep = np.flatnonzero(self.alive)
        self.ids = [self.ids[i] for i in keep]
        self.article_of = [self.article_of[i] for i in keep]
        self.tokens = [self.tokens[i] for i in keep]
        self.day, self.source_code = self.day[keep], self.source_code[keep]
        self.vectors = np.ascontiguousarray(self.vectors[keep])
        self.alive = np.ones(len(keep), dtype=bool)
        self._reindex_rows()
        self._bm25_dirty = True

    def _reindex_rows(self) -> None:
        self.row_of = {cid: i for i, cid in enumerate(self.ids) if self.alive[i]}
        self.rows_of_article = {}
        for i, aid in enumerate(self.article_of):
            if self.alive[i]:
                self.rows_of_article.setdefault(aid, []).append(i)

    # --- searching ---

    def mask(self, where: RowFilter) -> np.ndarray:
        """Rows that are live and pass the filter."""
        mask = self.alive.copy()
        if where.since_day is not None:
            mask &= self.day >= where.since_day
        if where.until_day is not None:
            mask &= (self.day <= where.until_day) & (self.day >= 0)
        if where.source is not None:
            code = self.sources.get(where.source)
            mask &= self.source_code == (code if code is not None else -2)
        if where.article_id is not None:
            only = np.zeros_like(mask)
            only[self.rows_of_article.get(where.article_id, [])] = True
            mask &= only
        return mask

    def dense(self, query: np.ndarray, n: int, mask: np.ndarray | None) -> list[tuple[int, float]]:
        """Exact cosine search over the rows in `mask` (all live rows when None)."""
        rows = np.flatnonzero(self.alive if mask is None else mask)
        if not len(rows) or n <= 0:
            return []
        # Score only the selected rows when they are few; one pass over everything is cheaper otherwise.
        # einsum, not `@`: OpenBLAS's threads keep spinning after a product and fight onnxruntime's for the two
        # cores (measured at 100k chunks: filtered search p50 20.9 ms with `@`, 8.1 ms with einsum).
        selected = self.vectors[rows] if len(rows) < 0.3 * len(self.ids) else self.vectors
        scores = np.einsum("ij,j->i", selected, query)
        if selected is self.vectors:
            scores = scores[rows]
        return _top(rows, scores, n)

    def keyword(self, query: str, n: int, mask: np.ndarray | None) -> list[tuple[int, float]]:
        """BM25 over the rows in `mask`; rows with no query term are left out."""
        terms = [t for t in keyword_tokens(query) if t in self.vocab]
        if not terms or not len(self.ids) or n <= 0:
            return []
        bm25 = self._bm25_index()
        if bm25 is None:
            return []
        scores = bm25.get_scores(terms)
        allowed = self.alive if mask is None else mask
        rows = np.flatnonzero(allowed & (scores > 0))
        return _top(rows, scores[rows], n)

    def _bm25_index(self) -> bm25s.BM25 | None:
        # One rebuild at a time: searches that arrive while one runs wait for it instead of starting their own.
        with _BM25_LOCK:
            return self._bm25_index_locked()

    def _bm25_index_locked(self) -> bm25s.BM25 | None:
        if not self.vocab or not self.tokens:  # bm25s cannot index an empty corpus (the last article deleted)
            self._bm25, self._bm25_dirty = None, False
        elif self._bm25 is None or self._bm25_dirty:
            bm25 = bm25s.BM25()
            # Pass a copy: bm25s adds its empty-token entry to the vocabulary it is given.
            bm25.index(([t.tolist() for t in self.tokens], dict(self.vocab)), show_progress=False)
            self._bm25, self._bm25_dirty = bm25, False
        return self._bm25

    # --- persistence ---

    def save(self, directory: Path) -> None:
        """Write the index to `directory`, replacing what was there (the generation token says which write)."""
        self._bm25_index()
        tmp = directory.with_name(f"{directory.name}.tmp-{uuid.uuid4().hex[:8]}")
        tmp.mkdir(parents=True)
        offsets = np.cumsum([0] + [len(t) for t in self.tokens], dtype=np.int64)
        flat = np.concatenate(self.tokens) if self.tokens else np.zeros(0, dtype=np.int32)
        for name, array in {
            "day": self.day,
            "source_code": self.source_code,
            "alive": self.alive,
            "vectors": self.vectors,
            "tok_flat": flat,
            "tok_offsets": offsets,
        }.items():
            np.save(tmp / f"{name}.npy", array)
        if self._bm25 is not None:
            self._bm25.save(str(tmp / "bm25"), show_progress=False)
        state = {
            "generation": self.generation,
            "dimension": self.dimension,
            "ids": self.ids,
            "article_of": self.article_of,
            "live_hash": self.live_hash,
            "sources": self.sources,
            "vocab": self.vocab,
        }
        (tmp / "state.json").write_text(json.dumps(state))
        old = directory.with_name(f"{directory.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if directory.exists():
            directory.rename(old)
        tmp.rename(directory)
        shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, directory: Path) -> LocalIndex:
        """Read an index written by `save` (vectors memory-mapped)."""
        state = json.loads((directory / "state.json").read_text())
        index = cls(int(state["dimension"]))
        index.generation = state["generation"]
        index.ids, index.article_of = state["ids"], state["article_of"]
        index.live_hash, index.sources, index.vocab = state["live_hash"], state["sources"], state["vocab"]
        index.day = np.load(directory / "day.npy")
        index.source_code = np.load(directory / "source_code.npy")
        index.alive = np.load(directory / "alive.npy")
        index.vectors = np.load(directory / "vectors.npy", mmap_mode="r")
        flat = np.load(directory / "tok_flat.npy")
        offsets = np.load(directory / "tok_offsets.npy")
        index.tokens = [flat[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]
        if (directory / "bm25").is_dir():
            index._bm25 = bm25s.BM25.load(str(directory / "bm25"), mmap=True, load_vocab=True, show_progress=False)
        index._reindex_rows()
        if len(index.ids) != len(index.alive) or index.vectors.shape[0] != len(index.ids):
            raise ValueError("index files disagree in length")
        return index

    @classmethod
    def rebuild(cls, store: ChromaStore, dimension: int) -> tuple[LocalIndex, list[str]]:
        """Build from the store's live chunks; also returns the ids of orphaned chunks to sweep."""
        generation = store.generation()
        live = store.live_hashes()
        index = cls(dimension)
        orphans: list[str] = []
        ids: list[str] = []
        articles: list[str] = []
        days: list[int] = []
        codes: list[int] = []
        vectors: list[np.ndarray] = []
        for row in store.iter_chunks():
            if live.get(row.article_id) != row.content_hash:
                orphans.append(row.id)
                continue
            ids.append(row.id)
            articles.append(row.article_id)
            days.append(row.published_day)
            codes.append(index.sources.setdefault(row.source, len(index.sources)))
            vectors.append(row.embedding)
            index.tokens.append(index._token_ids(f"{row.title} {row.text}"))
        index._append(ids, articles, days, codes, vectors)
        index.live_hash = live
        index.generation = generation
        index._bm25_dirty = True
        return index, orphans


def _top(rows: np.ndarray, scores: np.ndarray, n: int) -> list[tuple[int, float]]:
    if len(rows) > n:
        part = np.argpartition(-scores, n - 1)[:n]
        rows, scores = rows[part], scores[part]
    order = np.argsort(-scores, kind="stable")
    return [(int(rows[i]), float(scores[i])) for i in order]
