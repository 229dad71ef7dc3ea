"""The ingest pipeline: parsed articles -> unchanged check -> chunks -> vectors -> store + index, in batches."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from rag.chunking import chunk_article
from rag.embeddings import Embedder
from rag.errors import IngestError, RagError
from rag.index import LocalIndex
from rag.models import Article, Chunk, IngestReport, IngestResult, IngestStatus
from rag.store import ChromaStore

# Articles are embedded and written together: large enough batches keep the embedder busy, small enough
# ones bound the memory and the work lost to a crash.
_BATCH_CHUNKS = 512
_BATCH_ARTICLES = 128

Progress = Callable[[IngestResult], None]


@dataclass
class Ingestor:
    """Writes articles to the store and mirrors every write into the index."""

    store: ChromaStore
    index: LocalIndex
    embedder: Embedder
    chunk_tokens: int
    overlap_tokens: int
    publish: Callable[[LocalIndex], None] = lambda _index: None  # hands each new index version to the searches

    def run(self, items: Iterable[Article | IngestError], progress: Progress | None = None) -> IngestReport:
        """Ingest every article; each failure is reported with its reason and never stops the rest."""
        report = IngestReport()

        def emit(result: IngestResult) -> None:
            report.results.append(result)
            if progress:
                progress(result)

        pending: list[Article] = []
        for item in items:
            if isinstance(item, IngestError):
                origin, _, reason = str(item).partition(": ")
                emit(IngestResult(origin=origin, status="failed", reason=reason or str(item)))
                continue
            if any(a.id == item.id for a in pending):  # the same id twice: the later version wins
                self._flush(pending, emit)
                pending = []
            pending.append(item)
            if len(pending) >= _BATCH_ARTICLES or sum(len(a.text) for a in pending) > _BATCH_CHUNKS * 800:
                self._flush(pending, emit)
                pending = []
        self._flush(pending, emit)
        return report

    def _flush(self, articles: list[Article], emit: Progress) -> None:
        if not articles:
            return
        live = self.store.live_hashes([a.id for a in articles])
        todo: list[tuple[Article, list[Chunk]]] = []
        for article in articles:
            if live.get(article.id) == article.content_hash:
                emit(IngestResult(article.origin, "unchanged", article.id, article.title))
                continue
            chunks = chunk_article(article, self.embedder.count_tokens, self.chunk_tokens, self.overlap_tokens)
            todo.append((article, chunks))
        if not todo:
            return
        try:
            vectors = self.embedder.embed([c.embed_text for _, cs in todo for c in cs])
            batch: list[tuple[Article, list[Chunk], np.ndarray]] = []
            offset = 0
            for article, chunks in todo:
                batch.append((article, chunks, vectors[offset : offset + len(chunks)]))
                offset += len(chunks)
            replaced = {a.id for a, _ in todo if a.id in live}
            generation = self.store.write(batch, replaced)
        except RagError as exc:
            for article, _ in todo:
                emit(IngestResult(article.origin, "failed", article.id, article.title, reason=str(exc)))
            return
        index = self.index.copy()
        index.apply(batch, removed=(), generation=generation)
        self.index = index
        self.publish(index)
        for article, chunks in todo:
            status: IngestStatus = "updated" if article.id in live else "added"
            emit(IngestResult(article.origin, status, article.id, article.title, chunks=len(chunks)))
