"""Hybrid retrieval: dense (Chroma) and keyword (BM25) candidates fused by reciprocal rank, with filters."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from rag.embeddings import Embedder
from rag.errors import InvalidRequestError
from rag.index import LocalIndex, RowFilter
from rag.models import Filters, Passage
from rag.store import ChromaStore, day_number
from rag.temporal import Intent, prior

# Up to this many chunks, dense search is exact (numpy, ~3 ms at 12,500 chunks) rather than Chroma's approximate
# HNSW: exact recall, and the same results on every run, which keeps the eval check stable.
EXACT_DENSE_ROWS = 20_000
# With a temporal intent, a candidate keeps this share of its fused score however old it is: an old report that
# matches the question much better than any recent one still surfaces.
PRIOR_FLOOR = 0.3
# How far before the as-of day a "latest"/"recent" question's own candidate search reaches, in days.
RECENT_WINDOW = {"latest": 60, "recent": 120}


def _intent_window(intent: Intent | None, as_of: dt.date | None) -> tuple[int, int] | None:
    """Day numbers of the period a question is about, searched on its own (None: no such period)."""
    if intent is None or as_of is None:
        return None
    if intent.kind in ("window", "timeline") and intent.start and intent.end:
        return day_number(intent.start - dt.timedelta(days=3)), day_number(min(intent.end, as_of))
    if intent.kind in RECENT_WINDOW:
        return day_number(as_of - dt.timedelta(days=RECENT_WINDOW[intent.kind])), day_number(as_of)
    return None


def row_filter(filters: Filters | None) -> RowFilter | None:
    """Translate request filters to index columns (None when nothing is filtered)."""
    if filters is None or filters.is_empty():
        return None
    if filters.since and filters.until and filters.since > filters.until:
        raise InvalidRequestError(f"'since' ({filters.since}) is after 'until' ({filters.until})")
    return RowFilter(
        since_day=day_number(filters.since) if filters.since else None,
        until_day=day_number(filters.until) if filters.until else None,
        source=filters.source,
        article_id=filters.article_id,
    )


class HybridSearcher:
    """Dense + BM25 search over the live chunks, fused with reciprocal-rank fusion."""

    def __init__(self, store: ChromaStore, embedder: Embedder, candidates: int = 40, rrf_k: int = 60) -> None:
        self.store = store
        self.embedder = embedder
        self.candidates = candidates
        self.rrf_k = rrf_k

    def search(
        self,
        index: LocalIndex,
        query: str,
        k: int,
        filters: Filters | None = None,
        as_of: dt.date | None = None,
        intent: Intent | None = None,
    ) -> list[Passage]:
        """The `k` best passages for `query`, best first, from the archive as it stood on `as_of`.

        With a temporal `intent` ("latest", "in March 2020"), candidates are also drawn from the period the
        question is about, and every candidate's fused score is weighed by its article's recency prior.
        """
        query = query.strip()
        if not query:
            raise InvalidRequestError("the query is empty")
        if not len(index):
            return []
        vector = self.embedder.embed([query])[0]
        where = row_filter(filters)
        if as_of is not None and len(index.day) and day_number(as_of) < int(index.day.max()):
            # Articles published after the as-of day do not exist yet, as far as this question is concerned.
            where = where or RowFilter()
            until = day_number(as_of) if where.until_day is None else min(where.until_day, day_number(as_of))
            where = replace(where, until_day=until)
        mask = index.mask(where) if where else None
        n = max(self.candidates, k)
        lists = [self._dense(index, vector, n, mask), index.keyword(query, n, mask)]
        window = _intent_window(intent, as_of)
        if window is not None:
            # The period the question is about, searched on its own: the newest reports on a story are often
            # outranked in the whole archive by older ones that share more of its words.
            focus = index.mask(replace(where or RowFilter(), since_day=window[0], until_day=window[1]))
            if mask is not None:
                focus &= mask
            lists += [index.dense(vector, n, focus), index.keyword(query, n, focus)]

        fused: dict[int, float] = {}
        dense_rank: dict[int, int] = {}
        keyword_rank: dict[int, int] = {}
        for position, hits in enumerate(lists):
            ranks = dense_rank if position % 2 == 0 else keyword_rank
            for rank, (row, _) in enumerate(hits, start=1):
                if position < 2:
                    ranks[row] = rank
                fused[row] = fused.get(row, 0.0) + 1.0 / (self.rrf_k + rank)
        if intent is not None and intent.kind != "none" and as_of is not None:
            for row in fused:
                day = int(index.day[row])
                published = dt.date.fromordinal(day) if day > 0 else None
                fused[row] *= PRIOR_FLOOR + (1 - PRIOR_FLOOR) * prior(intent, published, as_of)
        best = sorted(fused, key=lambda r: (-fused[r], r))[:k]
        if not best:
            return []
        similarities = np.asarray(index.vectors[best]) @ vector
        fetched = self.store.get_spans([index.span(r) for r in best])  # one read: the index knows the offsets
        passages = []
        for row, similarity in zip(best, similarities, strict=True):
            chunk_id = index.ids[row]
            if chunk_id not in fetched:  # deleted by another replica since our index was refreshed
                continue
            text, meta = fetched[chunk_id]
            published = meta.get("published_at")
            passages.append(
                Passage(
                    chunk_id=chunk_id,
                    article_id=str(meta["article_id"]),
                    title=str(meta.get("title", "")),
                    url=meta.get("url"),
                    published_at=dt.date.fromisoformat(published) if published else None,
                    source=meta.get("source") or None,
                    start=int(meta["start"]),
                    end=int(meta["end"]),
                    text=text,
                    rank_score=round(fused[row], 6),
                    dense_score=round(float(similarity), 4),
                    dense_rank=dense_rank.get(row),
                    keyword_rank=keyword_rank.get(row),
                )
            )
        return passages

    def _dense(self, index: LocalIndex, vector: np.ndarray, n: int, mask: np.ndarray | None) -> list[tuple[int, float]]:
        if mask is not None or len(index.ids) <= EXACT_DENSE_ROWS:
            return index.dense(vector, n, mask)
        # Unfiltered: Chroma's HNSW index. Chunks our index does not hold as live (an older version still
        # being swept, or a write by another replica not yet mirrored) are skipped.
        hits = self.store.dense_query(vector, n + 8)
        rows = [(index.row_of[cid], score) for cid, score in hits if cid in index.row_of]
        return rows[:n]


class PassageRetriever(BaseRetriever):
    """The searcher behind LangChain's retriever interface, for LCEL chains."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    search_fn: Any
    k: int = 5
    filters: Filters | None = None
    as_of: dt.date | None = None

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        passages: list[Passage] = self.search_fn(query, self.k, self.filters, self.as_of)
        return [Document(page_content=p.text, metadata=p.model_dump(exclude={"text"})) for p in passages]
