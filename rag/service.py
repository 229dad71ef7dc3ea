"""RagService: the one object the CLI, the API and the evals share."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from langchain_core.language_models import BaseChatModel

from rag.answer import AnswerEngine, AnswerEvent, DoneEvent, Mode
from rag.config import Settings
from rag.documents import iter_files, read_file
from rag.embeddings import Embedder, make_embedder
from rag.errors import IngestError, InvalidRequestError, StoreError
from rag.feed import LOOKBACK
from rag.index import LocalIndex
from rag.ingest import Ingestor, Progress
from rag.llm import make_chat_model
from rag.models import Answer, Article, ChatTurn, Filters, IngestReport, Passage
from rag.retrieve import HybridSearcher
from rag.store import ArticleRecord, ChromaStore, DataDirLock, open_store
from rag.temporal import parse_intent

log = logging.getLogger(__name__)
# How long a replica waits for the feed entry of a write it sees under way before it rebuilds in full.
_UNEXPLAINED_SECONDS = 60.0
T = TypeVar("T")


class RagService:
    """Ingest, search, ask and manage articles over one store."""

    def __init__(self, settings: Settings, embedder: Embedder, store: ChromaStore) -> None:
        self.settings = settings
        self.embedder = embedder
        self.store = store
        self._index_dir: Path | None = settings.data_dir / "index" if store.is_local else None
        self._write_lock = threading.RLock()
        self._refresh_lock = threading.Lock()
        self._catch_up_lock = threading.Lock()
        self._checked_at = 0.0
        self._unexplained: dict[str, float] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.index = self._load_index()
        self.searcher = HybridSearcher(store, embedder, settings.candidates, settings.rrf_k)
        # One chat model per event loop: the SDK's async HTTP pool belongs to the loop that created it.
        self._models: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, BaseChatModel] = weakref.WeakKeyDictionary()
        self.chat_model_factory: Callable[[], BaseChatModel] = lambda: make_chat_model(settings)
        self.engine = AnswerEngine(
            embedder,
            self._search_for_answer,
            self.store.get_texts,
            settings.min_relevance,
            self._chat_model if settings.llm_configured() else None,
        )

    @classmethod
    def open(cls, settings: Settings, embedder: Embedder | None = None) -> RagService:
        """Open the configured store with the configured embedder (or the one given, to share a loaded model)."""
        # Take a local directory's lock before loading the model, so a second process is refused at once.
        lock = None if settings.chroma_url else DataDirLock(settings.data_dir)
        try:
            embedder = embedder or make_embedder(settings)
            store = open_store(settings, embedder.name, embedder.dimension, lock)
        except Exception:
            if lock is not None:
                lock.release()
            raise
        try:
            return cls(settings, embedder, store)
        except Exception:
            store.close()
            raise

    def close(self) -> None:
        """Release the store (and its lock) and stop the sync event loop."""
        if self._loop is not None:
            loop, self._loop = self._loop, None
            loop.call_soon_threadsafe(loop.stop)
        self.store.close()

    def __enter__(self) -> RagService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the index mirror ---

    def _load_index(self) -> LocalIndex:
        generation = self.store.generation()
        if self._index_dir is not None and (self._index_dir / "state.json").exists():
            try:
                index = LocalIndex.load(self._index_dir)
                if index.generation == generation:
                    return index
                log.info("keyword index is behind the store; rebuilding it")
            except (OSError, ValueError, KeyError) as exc:
                log.warning("keyword index unreadable (%s); rebuilding it", exc)
        index, orphans = LocalIndex.rebuild(self.store, self.embedder.dimension)
        # Only with the local lock held: on a shared server, "orphans" may be another replica's write in flight.
        if orphans and self.store.is_local:
            log.info("sweeping %d chunks left by an interrupted write", len(orphans))
            try:
                self.store.sweep_orphans(orphans)
            except Exception as exc:  # leftovers are invisible to searches; the next rebuild sweeps them
                log.warning("could not sweep leftover chunks (%s)", exc)
        if self._index_dir is not None:
            index.save(self._index_dir)
        return index

    def current_index(self) -> LocalIndex:
        """The index, caught up with writes that other replicas made to a shared Chroma server."""
        if self.store.is_local:
            return self.index  # we hold the directory's lock: nobody else writes
        generation = None
        with self._refresh_lock:  # one check at a time; never held while waiting for the write lock
            if time.monotonic() - self._checked_at >= self.settings.index_refresh_seconds:
                current = self.store.generation()
                generation = current if current != self.index.generation else None
                self._checked_at = time.monotonic()  # after the check: a store that failed it is asked again
        if generation is not None:
            # Searches that found the index stale together wait for one catch-up, then all see it. Not while this
            # process writes: that write publishes its own index, and the next tick catches up with the rest.
            with self._catch_up_lock:
                if self.index.generation != generation and self._write_lock.acquire(blocking=False):
                    try:
                        self._catch_up(generation)
                    finally:
                        self._write_lock.release()
        return self.index

    def _catch_up(self, generation: str) -> None:
        # Apply the change feed since our position: fetch only the articles it names. A full rebuild only when
        # the feed no longer reaches back that far, or when the store's token stays unexplained by any entry
        # (a writer that died between its data and its feed entry).
        index = self.index
        changes, head, floor = self.store.changes_since(index.feed_seq)
        if index.feed_seq + 1 < floor or head < index.feed_seq:
            # Trimmed past our position, or behind it: the server's data were restored from a backup or replaced.
            log.info("the change feed does not continue from this replica's position; rebuilding")
            self.index = self._load_index()
            return
        new = [c for c in changes if c.id not in index.feed_seen]
        if not new:
            if generation in {c.generation for c in changes}:
                explained = index.copy()
                explained.generation = generation
                self.index = explained
                return
            since = self._unexplained.get(generation, time.monotonic())
            self._unexplained = {generation: since}
            if time.monotonic() - since > _UNEXPLAINED_SECONDS:
                log.warning("the store changed with no change-feed entry for %.0f s; rebuilding", _UNEXPLAINED_SECONDS)
                self.index = self._load_index()
            return
        named = list(dict.fromkeys(a for c in new for a in c.article_ids))
        stored = self.store.live_hashes(named)
        changed = [a for a in named if stored.get(a) != index.live_hash.get(a)]  # our own writes are in already
        live, rows = self.store.live_chunks(changed) if changed else ({}, [])
        nxt = index.copy()
        nxt.apply_rows(rows, live, [a for a in changed if a not in live], new[-1].generation)
        nxt.feed_seq = max(index.feed_seq, new[-1].seq)
        nxt.feed_seen = frozenset(c.id for c in changes if c.seq > nxt.feed_seq - LOOKBACK)
        if generation in {c.generation for c in changes}:
            nxt.generation = generation
        self.index = nxt

    # --- articles ---

    def ingest_paths(self, paths: Sequence[Path], progress: Progress | None = None) -> IngestReport:
        """Ingest files and folders; every file or article that fails is reported with its reason."""

        def items() -> Iterable[Article | IngestError]:
            for path, root in iter_files(paths):
                if not path.exists():
                    yield IngestError(f"{path}: no such file or folder")
                    continue
                yield from read_file(path, root, max_bytes=self.settings.max_file_bytes)

        return self.ingest(items(), progress)

    def ingest(self, items: Iterable[Article | IngestError], progress: Progress | None = None) -> IngestReport:
        """Ingest parsed articles (and report the parse errors among them)."""
        with self._write_lock:
            ingestor = Ingestor(
                self.store,
                self.current_index(),
                self.embedder,
                self.settings.chunk_tokens,
                self.settings.chunk_overlap_tokens,
                publish=self._publish,
            )
            report = ingestor.run(items, progress)
            if report.failed:
                self._resync()
            self._save_index()
        return report

    def delete_article(self, article_id: str) -> None:
        """Remove an article and its chunks (NotFoundError when there is none)."""
        with self._write_lock:
            try:
                generation = self.store.delete_article(article_id)
            except StoreError:
                self._resync()
                raise
            index = self.index.copy()
            index.apply((), removed=[article_id], generation=generation)
            self._publish(index)
            self._save_index()

    def _publish(self, index: LocalIndex) -> None:
        # One assignment: a search holds on to the version it started with, writes build the next one.
        self.index = index

    def _resync(self) -> None:
        # A write that failed part-way has moved the store's generation past the index's: rebuild the index
        # from the article records, which say which version of each article is live.
        try:
            stale = self.store.generation() != self.index.generation
        except Exception as exc:  # an unreachable store: the next open (or refresh) rebuilds the index
            log.warning("cannot check the store's generation (%s)", exc)
            return
        if stale:
            self.index = self._load_index()

    def get_article(self, article_id: str) -> ArticleRecord:
        """One article with its text."""
        return self.store.get_article(article_id)

    def list_articles(self) -> list[ArticleRecord]:
        """All articles, newest first."""
        return self.store.list_articles()

    def _save_index(self) -> None:
        if self._index_dir is not None:
            self.index.save(self._index_dir)

    # --- search ---

    def search(
        self, query: str, k: int | None = None, filters: Filters | None = None, as_of: dt.date | None = None
    ) -> list[Passage]:
        """The best passages for a query, best first, from the archive as it stood on `as_of` (default: today)."""
        k = self.settings.top_k if k is None else k
        if not 1 <= k <= self.settings.max_k:
            raise InvalidRequestError(f"k must be between 1 and {self.settings.max_k}")
        return self._search_for_answer(query, k, filters, as_of)

    # --- answers ---

    def use_chat_model(self, factory: Callable[[], BaseChatModel]) -> None:
        """Answer LLM-mode questions with models from `factory` (another provider, or a scripted test model)."""
        self.chat_model_factory = factory
        self._models = weakref.WeakKeyDictionary()
        self.engine.chat_model = self._chat_model

    def resolve_mode(self, mode: str | None) -> Mode:
        """The answer mode for a request: explicit, else the setting; `auto` means LLM when one is configured."""
        chosen = mode or self.settings.answer_mode
        if chosen == "auto":
            return "llm" if self.engine.chat_model is not None else "extractive"
        if chosen == "llm" and self.engine.chat_model is None:
            raise InvalidRequestError(
                "LLM mode is not configured: set RAG_LLM_BASE_URL or an API key, or use mode 'extractive'"
            )
        if chosen not in ("llm", "extractive"):
            raise InvalidRequestError(f"unknown mode '{chosen}': use 'extractive' or 'llm'")
        return "llm" if chosen == "llm" else "extractive"

    async def astream(
        self,
        question: str,
        history: Sequence[ChatTurn] | None = None,
        filters: Filters | None = None,
        mode: str | None = None,
        k: int | None = None,
        as_of: dt.date | None = None,
    ) -> AsyncIterator[AnswerEvent]:
        """Answer a question as a stream of events (sources, deltas, citations, done)."""
        question = question.strip()
        if not question:
            raise InvalidRequestError("the question is empty")
        if len(question) > self.settings.max_question_chars:
            raise InvalidRequestError(f"the question is longer than {self.settings.max_question_chars} characters")
        k = self.settings.top_k if k is None else k
        if not 1 <= k <= self.settings.max_k:
            raise InvalidRequestError(f"k must be between 1 and {self.settings.max_k}")
        chosen = self.resolve_mode(mode)
        turns = list(history or [])[-self.settings.max_history_turns :]
        async for event in self.engine.stream(question, turns, filters, chosen, k, as_of):
            yield event

    async def aask(
        self,
        question: str,
        history: Sequence[ChatTurn] | None = None,
        filters: Filters | None = None,
        mode: str | None = None,
        k: int | None = None,
        as_of: dt.date | None = None,
    ) -> Answer:
        """Answer a question: the `done` event of `astream`."""
        answer = None
        # Run the stream to its end (`done` is its last event): leaving it early would strand its generators.
        async for event in self.astream(question, history, filters, mode, k, as_of):
            if isinstance(event, DoneEvent):
                answer = event.answer
        if answer is None:
            raise RuntimeError("answer stream ended without a result")
        return answer

    def ask(
        self,
        question: str,
        history: Sequence[ChatTurn] | None = None,
        filters: Filters | None = None,
        mode: str | None = None,
        k: int | None = None,
        as_of: dt.date | None = None,
    ) -> Answer:
        """Blocking `aask`, for the CLI and the evals."""
        return self.run_sync(self.aask(question, history, filters, mode, k, as_of))

    def run_sync(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on this service's own event loop, from synchronous code.

        One long-lived loop (in a daemon thread) rather than `asyncio.run` per call: the LLM client's connection
        pool belongs to the loop that opened it, and must not outlive it.
        """
        if self._loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="rag-sync-loop", daemon=True).start()
            self._loop = loop
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def _search_for_answer(
        self, query: str, k: int, filters: Filters | None, as_of: dt.date | None = None
    ) -> list[Passage]:
        as_of = as_of or dt.date.today()
        intent = parse_intent(query, as_of)
        return self.searcher.search(self.current_index(), query, k, filters, as_of, intent)

    def _chat_model(self) -> BaseChatModel:
        loop = asyncio.get_running_loop()
        model = self._models.get(loop)
        if model is None:
            model = self._models[loop] = self.chat_model_factory()
        return model

    def ready(self) -> dict[str, object]:
        """What a readiness probe reports."""
        return {
            "articles": self.store.count_articles(),
            "chunks": len(self.index),
            "embedder": self.embedder.name,
            "store": self.settings.chroma_url or str(self.settings.data_dir),
        }
