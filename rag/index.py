"""The in-process index that sits beside Chroma: keyword postings (BM25), filter columns and a copy of the vectors.

Chroma is the source of truth. This index mirrors its live chunks so that keyword search, filtered dense
search (Chroma's own `where` costs ~70 ms at 100k chunks) and the "only the live version of an article"
rule all run in numpy.

Versions: a write builds the next version (`copy` + `apply`) while searches read the published one. The
columns only ever grow, so all versions share them and a version reads its first `n` rows; what a version
owns is its `alive` mask and its corpus statistics. A write therefore costs the article's chunks plus one
copy of the mask (1 byte a row), never a rebuild. Dead rows are dropped once they are a quarter of the index.

It is saved next to a local store (`rag/index_files.py`: a snapshot plus a journal of writes) and tagged with
the store's generation token; on start it is loaded when the tokens match and rebuilt from Chroma when not.
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rag.models import Article, Chunk
from rag.postings import Grow, Postings, bm25, term_counts
from rag.store import ChromaStore, ChunkRow, day_number

_TOKEN = re.compile(r"\w+", re.UNICODE)
# A compaction copies every array; do it only once dead rows are a real share of the index.
_COMPACT_SHARE = 0.25


def keyword_tokens(text: str) -> list[str]:
    """Lower-cased word tokens, nothing removed and nothing stemmed.

    Measured on real news (FIELD-NOTES, benchmarks/bench_retrieval_quality.py): stop-word removal and a suffix
    stripper ("Texas" -> "texa") cost recall against plain tokens; BM25's idf already discounts common words.
    """
    return _TOKEN.findall(text.lower())


def keyword_text(title: str, text: str) -> str:
    """What the keyword index reads of a chunk (every path that indexes a chunk goes through here)."""
    return f"{title} {text}"


@dataclass(frozen=True, slots=True)
class RowFilter:
    """A filter expressed on the index's columns."""

    since_day: int | None = None
    until_day: int | None = None
    source: str | None = None
    article_id: str | None = None


@dataclass(frozen=True, slots=True)
class Delta:
    """One applied write, as the journal records it: the rows it appended and the articles it retired."""

    removed: tuple[str, ...]
    row_lo: int  # rows [row_lo, alive_from) are leftovers of a write that failed before publishing: dead
    alive_from: int
    row_hi: int
    hashes: dict[str, str]
    vocab_lo: int
    vocab_hi: int
    sources_lo: int
    sources_hi: int
    generation: str


@dataclass
class Shared:
    """The columns every version of one index shares; they only grow (one writer at a time)."""

    dimension: int
    ids: list[str] = field(default_factory=list)
    article_of: list[str] = field(default_factory=list)
    day: Grow = field(default_factory=lambda: Grow(np.int32))
    source_code: Grow = field(default_factory=lambda: Grow(np.int32))
    doclen: Grow = field(default_factory=lambda: Grow(np.int32))
    start: Grow = field(default_factory=lambda: Grow(np.int32))  # the chunk's offsets in its article's text
    end: Grow = field(default_factory=lambda: Grow(np.int32))
    row_hash: list[str] = field(default_factory=list)  # content hash of each row's article version
    base_vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    tail_vectors: Grow | None = None
    postings: Postings = field(default_factory=Postings)
    # Per-row postings of rows past the base, for the journal: row r's terms are terms[off[r-b]:off[r-b+1]].
    row_terms: Grow = field(default_factory=lambda: Grow(np.int32))
    row_tfs: Grow = field(default_factory=lambda: Grow(np.uint16))
    row_term_off: Grow = field(default_factory=lambda: Grow(np.int64, initial=np.zeros(1, np.int64)))
    vocab: dict[str, int] = field(default_factory=dict)
    terms: list[str] = field(default_factory=list)
    sources: dict[str, int] = field(default_factory=dict)
    source_names: list[str] = field(default_factory=list)
    # The latest row of each chunk id, and every row each article ever had: a version checks `alive` itself.
    chunk_row: dict[str, int] = field(default_factory=dict)
    article_rows: dict[str, list[int]] = field(default_factory=dict)
    live_hash: dict[str, str] = field(default_factory=dict)  # as of the latest version
    deltas: list[Delta] = field(default_factory=list)
    disk: Path | None = None  # where the journal continues, and how far it has got
    disk_deltas: int = 0
    disk_rows: int = 0
    journal_rows: int = 0

    def __post_init__(self) -> None:
        if self.base_vectors.shape[1:] != (self.dimension,):
            self.base_vectors = np.zeros((0, self.dimension), np.float32)
        if self.tail_vectors is None:
            self.tail_vectors = Grow(np.float32, width=self.dimension)

    @property
    def base_rows(self) -> int:
        """Rows held by the frozen base (vectors and postings)."""
        return int(self.base_vectors.shape[0])


class VectorRows:
    """The vectors of a version's rows: a frozen base (maybe memory-mapped) followed by appended rows."""

    def __init__(self, base: np.ndarray, tail: np.ndarray, n: int) -> None:
        self.base, self.tail, self.n = base, tail[: max(0, n - len(base))], n

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n, int(self.base.shape[1]))

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        if not len(self.tail):
            return np.asarray(self.base[rows])
        out = np.empty((len(rows), self.base.shape[1]), dtype=np.float32)
        low = rows < len(self.base)
        out[low] = self.base[rows[low]]
        out[~low] = self.tail[rows[~low] - len(self.base)]
        return out

    def scores(self, query: np.ndarray) -> np.ndarray:
        """Cosine of every row with a unit query."""
        # einsum, not `@`: OpenBLAS's threads keep spinning after a product and fight onnxruntime's for the two
        # cores (measured at 100k chunks: filtered search p50 20.9 ms with `@`, 8.1 ms with einsum).
        parts = [np.einsum("ij,j->i", part, query) for part in (self.base, self.tail) if len(part)]
        return np.concatenate(parts) if len(parts) > 1 else parts[0] if parts else np.zeros(0, np.float32)


class LiveRows(Mapping[str, int]):
    """Chunk id -> row, for the live rows of one version."""

    def __init__(self, index: LocalIndex) -> None:
        self._index = index

    def __getitem__(self, chunk_id: str) -> int:
        row = self._index.shared.chunk_row.get(chunk_id)
        if row is None or row >= self._index.n or not self._index.alive[row]:
            raise KeyError(chunk_id)
        return row

    def __iter__(self) -> Iterator[str]:
        for row in np.flatnonzero(self._index.alive):
            yield self._index.shared.ids[row]

    def __len__(self) -> int:
        return len(self._index)


class LocalIndex:
    """One version of the live chunks: ids, article ids, dates, sources, vectors and keyword postings."""

    def __init__(self, dimension: int, shared: Shared | None = None) -> None:
        self.shared = shared or Shared(dimension)
        self.n = 0  # rows of the shared columns this version sees
        self.alive = np.zeros(0, dtype=bool)
        self.live = 0
        self.live_tokens = 0
        self.generation = ""
        self.n_deltas = 0
        # With a Chroma server: the last change-feed sequence number applied, and the entries seen near it.
        self.feed_seq = 0
        self.feed_seen: frozenset[str] = frozenset()

    def __len__(self) -> int:
        return self.live

    # --- the shared columns, as this version sees them ---

    @property
    def dimension(self) -> int:
        return self.shared.dimension

    @property
    def ids(self) -> list[str]:
        """Chunk id of each row (rows below `n`)."""
        return self.shared.ids

    @property
    def article_of(self) -> list[str]:
        """Article id of each row (rows below `n`)."""
        return self.shared.article_of

    @property
    def row_of(self) -> Mapping[str, int]:
        """Chunk id -> row of the live chunks."""
        return LiveRows(self)

    @property
    def live_hash(self) -> dict[str, str]:
        """Article id -> content hash of its live version (as of the latest version)."""
        return self.shared.live_hash

    @property
    def sources(self) -> dict[str, int]:
        return self.shared.sources

    @property
    def day(self) -> np.ndarray:
        return self.shared.day.view(self.n)

    @property
    def source_code(self) -> np.ndarray:
        return self.shared.source_code.view(self.n)

    @property
    def vectors(self) -> VectorRows:
        tail = self.shared.tail_vectors
        assert tail is not None
        return VectorRows(self.shared.base_vectors, tail.buf, self.n)

    def span(self, row: int) -> tuple[str, str, str, int, int]:
        """(chunk id, article id, content hash, start, end) of a row: what fetching its text needs."""
        s = self.shared
        return s.ids[row], s.article_of[row], s.row_hash[row], int(s.start.buf[row]), int(s.end.buf[row])

    def article_rows(self, article_id: str) -> list[int]:
        """Live rows of one article."""
        return [r for r in self.shared.article_rows.get(article_id, []) if r < self.n and self.alive[r]]

    # --- writing ---

    def copy(self) -> LocalIndex:
        """The next version, for `apply` to change while searches go on reading this one."""
        other = copy.copy(self)
        other.alive = self.alive.copy()
        return other

    def apply(
        self,
        written: Sequence[tuple[Article, Sequence[Chunk], np.ndarray]],
        removed: Iterable[str],
        generation: str,
    ) -> None:
        """Mirror a store write: retire the old rows of written or removed articles, append the new ones."""
        rows: list[ChunkRow] = []
        for article, chunks, embeddings in written:
            day, source = day_number(article.published_at), article.source or ""
            for chunk, vector in zip(chunks, embeddings, strict=True):
                rows.append(
                    ChunkRow(chunk.id, article.id, article.content_hash, day, source, article.title, chunk.text,
                             vector, chunk.start, chunk.end)
                )  # fmt: skip
        hashes = {a.id: a.content_hash for a, _, _ in written}
        self.apply_rows(rows, hashes, removed, generation)

    def apply_rows(
        self, rows: Sequence[ChunkRow], hashes: Mapping[str, str], removed: Iterable[str], generation: str
    ) -> None:
        """`apply` for chunks read back from the store: `hashes` names every article whose rows are given."""
        s, removed = self.shared, tuple(removed)
        vocab_lo, sources_lo = len(s.terms), len(s.source_names)
        triples = []
        for row in rows:
            token_ids = [self._term_id(t) for t in keyword_tokens(keyword_text(row.title, row.text))]
            triples.append((term_counts(token_ids), len(token_ids)))
        codes = [self._source_code(r.source) for r in rows]
        n_before = self.n
        alive_from = self._append(
            ids=[r.id for r in rows],
            articles=[r.article_id for r in rows],
            hashes_of_rows=[r.content_hash for r in rows],
            spans=np.asarray([(r.start, r.end) for r in rows], dtype=np.int32).reshape(len(rows), 2),
            days=np.asarray([r.published_day for r in rows], dtype=np.int32),
            codes=np.asarray(codes, dtype=np.int32),
            vectors=np.asarray([r.embedding for r in rows], dtype=np.float32).reshape(len(rows), self.dimension),
            postings=triples,
            retire=[*hashes, *removed],
            hashes=hashes,
        )
        self._record(Delta(removed, n_before, alive_from, len(s.ids), dict(hashes),
                           vocab_lo, len(s.terms), sources_lo, len(s.source_names), generation))  # fmt: skip

    def _record(self, delta: Delta, compact: bool = True) -> None:
        self.shared.deltas.append(delta)
        self.n_deltas = len(self.shared.deltas)
        self.generation = delta.generation
        if compact and self.n and self.n - self.live > _COMPACT_SHARE * self.n:
            self._compact()

    def _term_id(self, term: str) -> int:
        s = self.shared
        found = s.vocab.get(term)
        if found is None:
            found = s.vocab[term] = len(s.terms)
            s.terms.append(term)
        return found

    def _source_code(self, source: str) -> int:
        s = self.shared
        found = s.sources.get(source)
        if found is None:
            found = s.sources[source] = len(s.source_names)
            s.source_names.append(source)
        return found

    def _append(
        self,
        ids: list[str],
        articles: list[str],
        hashes_of_rows: list[str],
        spans: np.ndarray,
        days: np.ndarray,
        codes: np.ndarray,
        vectors: np.ndarray,
        postings: list[tuple[tuple[np.ndarray, np.ndarray], int]],
        retire: Iterable[str],
        hashes: Mapping[str, str],
    ) -> int:
        """Retire articles' rows, append new rows; returns the first new row."""
        s = self.shared
        for article_id in retire:
            for row in s.article_rows.get(article_id, ()):
                if row < self.n and self.alive[row]:
                    self.alive[row] = False
                    self.live -= 1
                    self.live_tokens -= int(s.doclen.buf[row])
            s.live_hash.pop(article_id, None)
        s.live_hash.update(hashes)
        # Rows past `n` are leftovers of a write that failed before it was published: they stay dead.
        base = len(s.ids)
        m = len(ids)
        doclens = np.asarray([length for _, length in postings], dtype=np.int32)
        s.ids.extend(ids)
        s.article_of.extend(articles)
        s.row_hash.extend(hashes_of_rows)
        s.start.extend(spans[:, 0])
        s.end.extend(spans[:, 1])
        s.day.extend(days)
        s.source_code.extend(codes)
        s.doclen.extend(doclens)
        assert s.tail_vectors is not None
        s.tail_vectors.extend(vectors)
        if m:
            terms = [t for (t, _), _ in postings]
            tfs = [f for (_, f), _ in postings]
            counts = np.asarray([len(t) for t in terms], dtype=np.int64)
            flat_terms = np.concatenate(terms) if terms else np.zeros(0, np.int32)
            flat_tfs = np.concatenate(tfs) if tfs else np.zeros(0, np.uint16)
            s.postings.add(flat_terms, np.repeat(np.arange(base, base + m, dtype=np.int32), counts), flat_tfs)
            s.row_terms.extend(flat_terms)
            s.row_tfs.extend(flat_tfs)
            s.row_term_off.extend(s.row_term_off.buf[s.row_term_off.size - 1] + np.cumsum(counts))
        for offset, (cid, aid) in enumerate(zip(ids, articles, strict=True)):
            s.chunk_row[cid] = base + offset
            s.article_rows.setdefault(aid, []).append(base + offset)
        self.alive = np.concatenate([self.alive, np.zeros(base - self.n, bool), np.ones(m, bool)])
        self.n = base + m
        self.live += m
        self.live_tokens += int(doclens.sum())
        return base

    def _compact(self) -> None:
        """Rebuild the shared columns from the live rows only (a new Shared: older versions keep theirs)."""
        old, keep = self.shared, np.flatnonzero(self.alive)
        remap = np.full(self.n, -1, dtype=np.int64)
        remap[keep] = np.arange(len(keep))
        terms, rows, tfs = old.postings.flat(self.n)
        live_posting = self.alive[rows]
        new = Shared(
            self.dimension,
            ids=[old.ids[i] for i in keep],
            article_of=[old.article_of[i] for i in keep],
            day=Grow(np.int32, initial=old.day.view(self.n)[keep]),
            source_code=Grow(np.int32, initial=old.source_code.view(self.n)[keep]),
            doclen=Grow(np.int32, initial=old.doclen.view(self.n)[keep]),
            start=Grow(np.int32, initial=old.start.view(self.n)[keep]),
            end=Grow(np.int32, initial=old.end.view(self.n)[keep]),
            row_hash=[old.row_hash[i] for i in keep],
            base_vectors=np.ascontiguousarray(self.vectors[keep]),
            postings=Postings.from_flat(
                len(old.terms), terms[live_posting], remap[rows[live_posting]].astype(np.int32), tfs[live_posting]
            ),
            vocab=dict(old.vocab),
            terms=list(old.terms),
            sources=dict(old.sources),
            source_names=list(old.source_names),
            live_hash=dict(old.live_hash),
        )
        new.chunk_row = {cid: i for i, cid in enumerate(new.ids)}
        for i, aid in enumerate(new.article_of):
            new.article_rows.setdefault(aid, []).append(i)
        self.shared, self.n, self.n_deltas = new, len(keep), 0
        self.alive = np.ones(len(keep), dtype=bool)

    # --- searching ---

    def mask(self, where: RowFilter) -> np.ndarray:
        """Rows that are live and pass the filter."""
        mask = self.alive.copy()
        if where.since_day is not None:
            mask &= self.day >= where.since_day
        if where.until_day is not None:
            day = self.day
            mask &= (day <= where.until_day) & (day >= 0)
        if where.source is not None:
            code = self.sources.get(where.source)
            mask &= self.source_code == (code if code is not None else -2)
        if where.article_id is not None:
            only = np.zeros_like(mask)
            only[self.article_rows(where.article_id)] = True
            mask &= only
        return mask

    def dense(self, query: np.ndarray, n: int, mask: np.ndarray | None) -> list[tuple[int, float]]:
        """Exact cosine search over the rows in `mask` (all live rows when None)."""
        rows = np.flatnonzero(self.alive if mask is None else mask)
        if not len(rows) or n <= 0:
            return []
        vectors = self.vectors
        # Score only the selected rows when they are few; one pass over everything is cheaper otherwise.
        few = len(rows) < 0.3 * self.n
        scores = np.einsum("ij,j->i", vectors[rows], query) if few else vectors.scores(query)[rows]
        return _top(rows, scores, n)

    def keyword(self, query: str, n: int, mask: np.ndarray | None) -> list[tuple[int, float]]:
        """BM25 over the rows in `mask`; rows with no query term are left out."""
        vocab = self.shared.vocab
        counts = Counter(vocab[t] for t in keyword_tokens(query) if t in vocab)
        if not counts or not self.live or n <= 0:
            return []
        rows, scores = bm25(
            self.shared.postings,
            counts,
            self.n,
            self.alive,
            self.alive if mask is None else mask,
            self.shared.doclen.view(self.n),
            self.live,
            self.live_tokens,
        )
        return _top(rows, scores, n)

    # --- persistence (rag/index_files.py) ---

    def save(self, directory: Path) -> None:
        """Persist this version: the journal's next records when it continues there, else a snapshot."""
        from rag import index_files

        index_files.save(self, directory)

    @classmethod
    def load(cls, directory: Path) -> LocalIndex:
        """Read an index written by `save` (snapshot vectors and postings memory-mapped)."""
        from rag import index_files

        return index_files.load(directory)

    @classmethod
    def rebuild(cls, store: ChromaStore, dimension: int) -> tuple[LocalIndex, list[str]]:
        """Build from the store's live chunks; also returns the ids of orphaned chunks to sweep."""
        # Before reading: a write that lands meanwhile is applied from the feed afterwards, and the entries up to
        # here are in what we read (an entry follows its data), so catching up must not fetch them again.
        feed_seq = store.feed_head()
        seen = frozenset(c.id for c in store.changes_since(feed_seq)[0] if c.seq <= feed_seq)
        generation = store.generation()
        live = store.live_hashes()
        index = cls(dimension)
        orphans: list[str] = []
        page: list[ChunkRow] = []
        for row in store.iter_chunks():
            if live.get(row.article_id) != row.content_hash:
                orphans.append(row.id)
                continue
            page.append(row)
            if len(page) >= 2000:
                index.apply_rows(page, {}, (), generation)
                page = []
        index.apply_rows(page, {}, (), generation)
        index.shared.live_hash.update(live)
        index.shared.deltas.clear()  # a rebuilt index is saved whole, never journaled from nothing
        index.n_deltas = 0
        index.feed_seq, index.feed_seen = feed_seq, seen
        return index, orphans


def _top(rows: np.ndarray, scores: np.ndarray, n: int) -> list[tuple[int, float]]:
    if len(rows) > n:
        part = np.argpartition(-scores, n - 1)[:n]
        rows, scores = rows[part], scores[part]
    order = np.argsort(-scores, kind="stable")
    return [(int(rows[i]), float(scores[i])) for i in order]
