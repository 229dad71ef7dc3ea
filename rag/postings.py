"""Keyword postings that grow in place, and BM25 scored at query time from the current corpus statistics.

Per term: the rows that hold it and how often, sorted by row. A frozen base (CSR arrays, possibly
memory-mapped from a snapshot) plus per-term tails that writes append to. Rows are only ever appended, so
every version of the index shares these structures: a version that holds `n` rows cuts each list at `n`,
and a row it has retired is skipped by its own `alive` mask. One writer at a time (the service's write lock);
readers never lock.

The scores are bm25s's defaults ("lucene": k1 = 1.5, b = 0.75, idf = ln(1 + (N - df + 0.5) / (df + 0.5)),
a query term counted as often as it occurs), with N, df and the average length taken over live rows only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

K1 = 1.5
B = 0.75


class Grow:
    """A column that only grows: `view(n)` is its first n entries, valid for every n it has reached."""

    def __init__(self, dtype: type | np.dtype, width: int = 0, initial: np.ndarray | None = None) -> None:
        shape = (0, width) if width else (0,)
        start = np.zeros(shape, dtype=dtype) if initial is None else np.asarray(initial, dtype=dtype)
        self.buf = np.array(start, copy=True)
        self.size = len(start)

    def extend(self, values: np.ndarray) -> None:
        """Append rows (a reallocation copies, amortised by doubling; old views keep the old buffer)."""
        m = len(values)
        if self.size + m > len(self.buf):
            bigger = np.empty((max(2 * len(self.buf), self.size + m, 16), *self.buf.shape[1:]), self.buf.dtype)
            bigger[: self.size] = self.buf[: self.size]
            self.buf = bigger
        self.buf[self.size : self.size + m] = values
        self.size += m

    def view(self, n: int) -> np.ndarray:
        """The first n entries."""
        return self.buf[:n]


_EMPTY_ROWS = np.zeros(0, dtype=np.int32)
_EMPTY_TFS = np.zeros(0, dtype=np.uint16)


class Postings:
    """Term id -> (rows, term frequencies): a frozen CSR base plus per-term tails."""

    def __init__(
        self, offsets: np.ndarray | None = None, rows: np.ndarray | None = None, tfs: np.ndarray | None = None
    ) -> None:
        self.offsets = np.zeros(1, dtype=np.int64) if offsets is None else offsets
        self.base_rows = _EMPTY_ROWS if rows is None else rows
        self.base_tfs = _EMPTY_TFS if tfs is None else tfs
        # One tuple per term, replaced by one assignment: a reader sees the old or the new one, both valid.
        self.tail: dict[int, tuple[np.ndarray, np.ndarray, int]] = {}

    @property
    def base_terms(self) -> int:
        """Terms covered by the base."""
        return len(self.offsets) - 1

    def add(self, terms: np.ndarray, rows: np.ndarray, tfs: np.ndarray) -> None:
        """Append (term, row, tf) triples whose rows are all above every row already held."""
        if not len(terms):
            return
        order = np.argsort(terms, kind="stable")  # stable: rows stay ascending within a term
        terms, rows, tfs = terms[order], rows[order], tfs[order]
        cuts = np.flatnonzero(np.diff(terms)) + 1
        for lo, hi in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [len(terms)]]), strict=True):
            self._append(int(terms[lo]), rows[lo:hi], tfs[lo:hi])

    def _append(self, term: int, rows: np.ndarray, tfs: np.ndarray) -> None:
        m = len(rows)
        held = self.tail.get(term)
        if held is None:
            buf_rows, buf_tfs, size = np.empty(max(4, m), np.int32), np.empty(max(4, m), np.uint16), 0
        else:
            buf_rows, buf_tfs, size = held
            if size + m > len(buf_rows):
                cap = max(2 * len(buf_rows), size + m)
                grown_rows, grown_tfs = np.empty(cap, np.int32), np.empty(cap, np.uint16)
                grown_rows[:size], grown_tfs[:size] = buf_rows[:size], buf_tfs[:size]
                buf_rows, buf_tfs = grown_rows, grown_tfs
        # Written past `size` first, published after: a reader holding the old tuple never reads these slots.
        buf_rows[size : size + m] = rows
        buf_tfs[size : size + m] = tfs
        self.tail[term] = (buf_rows, buf_tfs, size + m)

    def get(self, term: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows below n that hold the term, with the term's frequency in each."""
        rows, tfs = _EMPTY_ROWS, _EMPTY_TFS
        if term < self.base_terms:
            lo, hi = int(self.offsets[term]), int(self.offsets[term + 1])
            rows, tfs = self.base_rows[lo:hi], self.base_tfs[lo:hi]
        held = self.tail.get(term)
        if held is not None:
            tail_rows, tail_tfs, size = held
            cut = int(np.searchsorted(tail_rows[:size], n))
            if cut:
                rows = np.concatenate([rows, tail_rows[:cut]]) if len(rows) else tail_rows[:cut]
                tfs = np.concatenate([tfs, tail_tfs[:cut]]) if len(tfs) else tail_tfs[:cut]
        return rows, tfs

    def flat(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Everything below row n as (term of each posting, rows, tfs), sorted by term then row."""
        counts = np.diff(self.offsets)
        base_terms = np.repeat(np.arange(self.base_terms, dtype=np.int32), counts)
        parts_terms, parts_rows, parts_tfs = [base_terms], [np.asarray(self.base_rows)], [np.asarray(self.base_tfs)]
        for term in sorted(self.tail):
            rows, tfs, size = self.tail[term]
            cut = int(np.searchsorted(rows[:size], n))
            parts_terms.append(np.full(cut, term, dtype=np.int32))
            parts_rows.append(rows[:cut])
            parts_tfs.append(tfs[:cut])
        terms = np.concatenate(parts_terms)
        rows, tfs = np.concatenate(parts_rows).astype(np.int32), np.concatenate(parts_tfs).astype(np.uint16)
        # Base postings precede the tail's of the same term: a stable sort by term keeps rows ascending.
        if self.tail and len(base_terms):
            order = np.argsort(terms, kind="stable")
            terms, rows, tfs = terms[order], rows[order], tfs[order]
        return terms, rows, tfs

    @classmethod
    def from_flat(cls, vocab_size: int, terms: np.ndarray, rows: np.ndarray, tfs: np.ndarray) -> Postings:
        """A base from postings sorted by term then row."""
        offsets = np.zeros(vocab_size + 1, dtype=np.int64)
        np.cumsum(np.bincount(terms, minlength=vocab_size), out=offsets[1:])
        return cls(offsets, rows, tfs)


def term_counts(token_ids: Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
    """Distinct term ids of one text and how often each occurs."""
    ids = np.fromiter(token_ids, dtype=np.int32)
    if not len(ids):
        return _EMPTY_ROWS, _EMPTY_TFS
    terms, tfs = np.unique(ids, return_counts=True)
    return terms.astype(np.int32), np.minimum(tfs, np.iinfo(np.uint16).max).astype(np.uint16)


def bm25(
    postings: Postings,
    query_terms: Mapping[int, int],
    n: int,
    alive: np.ndarray,
    allowed: np.ndarray,
    doclen: np.ndarray,
    live_rows: int,
    live_tokens: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, scores) of the `allowed` rows that hold a query term; `allowed` is a subset of `alive`."""
    if not live_rows or not live_tokens:
        return _EMPTY_ROWS, np.zeros(0)
    avgdl = live_tokens / live_rows
    parts_rows, parts_scores = [], []
    for term, times in query_terms.items():
        rows, tfs = postings.get(term, n)
        if not len(rows):
            continue
        live = alive[rows]
        df = int(np.count_nonzero(live))  # document frequency among live rows, not among all ever written
        if not df:
            continue
        idf = math.log(1.0 + (live_rows - df + 0.5) / (df + 0.5))
        keep = live if allowed is alive else allowed[rows]
        rows = rows[keep]
        tf = tfs[keep].astype(np.float64)
        norm = K1 * (1.0 - B + B * doclen[rows] / avgdl)
        parts_rows.append(rows)
        parts_scores.append(times * idf * tf / (tf + norm))
    if not parts_rows:
        return _EMPTY_ROWS, np.zeros(0)
    if len(parts_rows) == 1:
        return parts_rows[0].astype(np.int64), parts_scores[0]
    summed = np.bincount(np.concatenate(parts_rows), weights=np.concatenate(parts_scores))
    hit = np.flatnonzero(summed)
    return hit, summed[hit]
