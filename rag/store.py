"""The article store: Chroma on local disk or a Chroma server. The only module that imports chromadb.

Four collections per store: `<name>-chunks` (one vector per chunk with its article id, content hash and
character offsets; no text: a chunk's text is its article's `text[start:end]`, so it is stored once),
`<name>-articles` (one record per article: its canonical text and metadata, including the content hash of
the version that is live), `<name>-meta` (the store's generation token, embedder name and feed position) and
`<name>-feed` (what each write changed, for replicas: rag/feed.py).

An article is replaced in an order that keeps every search consistent: the new chunks are written first
(ids carry the content hash, so they sit beside the old ones), then the article record flips to the new
hash, then the old chunks are deleted. Readers only trust chunks whose hash matches the article record, so
no search sees old and new chunks of one article together, and a crash at any step leaves either the old
or the new version live; leftovers are swept by the next write. Ids are deterministic and writes are
upserts, so a retry after a crash duplicates nothing. The generation token changes before a write's first
step and after its last, so a keyword index saved before an interrupted write is rebuilt, never trusted.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import functools
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar
from urllib.parse import urlparse

import numpy as np

from rag.config import Settings
from rag.errors import ConfigError, NotFoundError, RagError, StoreError, StoreLockedError
from rag.feed import Change, ChangeFeed, Operation
from rag.models import Article, Chunk

_PAGE = 2000
_NO_DAY = -1
P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S")


def _reads(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """A read whose Chroma failure (server gone, disk error) raises StoreError: the API answers 503 and the
    next request tries again, so the service heals by itself when the store is back."""

    @functools.wraps(method)
    def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except RagError:
            raise
        except Exception as exc:  # chromadb and httpx raise assorted types; report them as one store failure
            raise StoreError(f"reading from Chroma failed: {exc}") from exc

    return wrapper


@dataclass(frozen=True, slots=True)
class ArticleRecord:
    """An article as stored: metadata, live content hash and chunk count (text loaded on demand)."""

    id: str
    title: str
    content_hash: str
    chunks: int
    published_at: dt.date | None
    url: str | None
    source: str | None
    author: str | None
    ingested_at: str
    text: str | None = None


@dataclass(frozen=True, slots=True)
class ChunkRow:
    """A chunk as read back from the store, for rebuilding the local index."""

    id: str
    article_id: str
    content_hash: str
    published_day: int
    source: str
    title: str
    text: str
    embedding: np.ndarray
    start: int = 0
    end: int = 0


class DataDirLock:
    """An exclusive, non-blocking lock on a local data directory, held for the life of the process's store."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / ".rag.lock"
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(self._fd)
            raise StoreLockedError(
                f"the data directory {data_dir} is in use by {holder}. Chroma on local disk is safe for one "
                "process only: stop that process, send articles to the running service (POST /v1/articles), "
                "or use a Chroma server (RAG_CHROMA_URL)."
            ) from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"pid {os.getpid()}".encode(), 0)

    def release(self) -> None:
        """Let another process open the directory."""
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1


def day_number(value: dt.date | None) -> int:
    """Dates as integers for fast range filters (-1 when unknown)."""
    return value.toordinal() if value else _NO_DAY


class ChromaStore:
    """Chunks, articles and the generation token in Chroma."""

    def __init__(self, client: Any, name: str, embedder_name: str, dimension: int, lock: DataDirLock | None):
        self._client = client
        self._lock = lock
        self.is_local = lock is not None
        # embedding_function=None everywhere: vectors are always passed in, so Chroma never loads (or downloads)
        # its default model.
        self.chunks = client.get_or_create_collection(
            f"{name}-chunks", embedding_function=None, metadata={"hnsw:space": "cosine"}
        )
        self.articles = client.get_or_create_collection(f"{name}-articles", embedding_function=None)
        self.meta = client.get_or_create_collection(f"{name}-meta", embedding_function=None)
        self.feed = ChangeFeed(
            client.get_or_create_collection(f"{name}-feed", embedding_function=None), lambda: self.meta
        )
        self._max_batch = int(client.get_max_batch_size())
        self._check_embedder(embedder_name, dimension)

    def _check_embedder(self, embedder_name: str, dimension: int) -> None:
        got = self.meta.get(ids=["embedder"], include=["metadatas"])
        if not got["ids"]:
            self.meta.upsert(
                ids=["embedder"], embeddings=[[1.0]], metadatas=[{"name": embedder_name, "dimension": dimension}]
            )
            return
        recorded = (got["metadatas"] or [{}])[0] or {}
        if recorded.get("name") != embedder_name:
            raise ConfigError(
                f"this store was built with the embedder '{recorded.get('name')}', but the settings select "
                f"'{embedder_name}'; use another RAG_DATA_DIR / RAG_COLLECTION or re-ingest into a new one"
            )

    def close(self) -> None:
        """Release the local lock (the Chroma client itself needs no closing)."""
        if self._lock is not None:
            self._lock.release()

    # --- generation: changes on every write, so other processes know their index is stale ---

    @_reads
    def generation(self) -> str:
        """The token of the last write ('' for a store never written)."""
        try:
            got = self.meta.get(ids=["generation"], include=["metadatas"])
        except Exception as exc:  # connection errors come in many types
            raise StoreError(f"reading from Chroma failed: {exc}") from exc
        if not got["ids"]:
            return ""
        return str(((got["metadatas"] or [{}])[0] or {}).get("token", ""))

    def _bump_generation(self) -> str:
        token = uuid.uuid4().hex
        self.meta.upsert(ids=["generation"], embeddings=[[1.0]], metadatas=[{"token": token}])
        return token

    def _finish(self, op: Operation, article_ids: Sequence[str]) -> str:
        # The feed entry before the final token (written with the feed's head): a replica that reads this
        # token finds the entry.
        token = uuid.uuid4().hex
        self.feed.append(op, article_ids, token)
        return token

    # --- the change feed ---

    def feed_head(self) -> int:
        """The number of the last change recorded."""
        return self.feed.position()[0]

    def changes_since(self, seq: int) -> tuple[list[Change], int, int]:
        """Changes numbered a little below `seq` and above, the feed's head and the oldest number it holds."""
        head, floor = self.feed.position()  # before the entries: an entry past this head is simply early
        return self.feed.since(seq), head, floor

    # --- articles ---

    @_reads
    def live_hashes(self, ids: Sequence[str] | None = None) -> dict[str, str]:
        """Article id -> content hash of its live version (all articles when `ids` is None)."""
        out: dict[str, str] = {}
        if ids is not None:
            for lo in range(0, len(ids), _PAGE):
                got = self.articles.get(ids=list(ids[lo : lo + _PAGE]), include=["metadatas"])
                for aid, meta in zip(got["ids"], got["metadatas"] or [], strict=True):
                    out[aid] = str(meta["content_hash"])
            return out
        for page in self._pages(self.articles, include=["metadatas"]):
            for aid, meta in zip(page["ids"], page["metadatas"] or [], strict=True):
                out[aid] = str(meta["content_hash"])
        return out

    def write(self, batch: Sequence[tuple[Article, Sequence[Chunk], np.ndarray]], replaced: set[str]) -> str:
        """Make each article's new version live, atomically per article; returns the new generation.

        `replaced` names the articles that had an older version, whose chunks are swept afterwards.
        """
        if not batch:
            return self.generation()
        ids: list[str] = []
        vectors: list[np.ndarray] = []
        metas: list[dict[str, Any]] = []
        for article, chunks, embeddings in batch:
            base = {"article_id": article.id, "content_hash": article.content_hash}
            for chunk, vector in zip(chunks, embeddings, strict=True):
                ids.append(chunk.id)
                vectors.append(vector)
                metas.append({**base, "start": chunk.start, "end": chunk.end})
        try:
            # A new token before anything is written: an index saved before a crash in this write no longer
            # matches the store, so it is rebuilt from the article records instead of trusted.
            self._bump_generation()
            for lo in range(0, len(ids), self._max_batch):
                hi = lo + self._max_batch
                self.chunks.upsert(ids=ids[lo:hi], embeddings=np.asarray(vectors[lo:hi]), metadatas=metas[lo:hi])
            now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            records = [
                {**_article_meta(a), "chunks": len(c), "ingested_at": now, **({"author": a.author} if a.author else {})}
                for a, c, _ in batch
            ]
            for lo in range(0, len(batch), self._max_batch):
                part = batch[lo : lo + self._max_batch]
                self.articles.upsert(
                    ids=[a.id for a, _, _ in part],
                    embeddings=[[1.0]] * len(part),
                    documents=[a.text for a, _, _ in part],
                    metadatas=records[lo : lo + self._max_batch],
                )
            for article, _, _ in batch:
                if article.id in replaced:
                    self._sweep(article.id, article.content_hash)
            return self._finish("write", [a.id for a, _, _ in batch])
        except Exception as exc:  # chromadb raises assorted types; report them as one store failure
            raise StoreError(f"writing to Chroma failed: {exc}") from exc

    def sweep_orphans(self, orphans: Sequence[str]) -> None:
        """Delete chunks left behind by an interrupted write (ids found by the index rebuild)."""
        for lo in range(0, len(orphans), self._max_batch):
            self.chunks.delete(ids=list(orphans[lo : lo + self._max_batch]))

    def _sweep(self, article_id: str, live_hash: str | None) -> None:
        where: dict[str, Any] = {"article_id": article_id}
        if live_hash is not None:
            where = {"$and": [where, {"content_hash": {"$ne": live_hash}}]}
        self.chunks.delete(where=where)

    @_reads
    def delete_article(self, article_id: str) -> str:
        """Remove an article and all its chunks; returns the new generation."""
        if not self.articles.get(ids=[article_id], include=[])["ids"]:
            raise NotFoundError(f"no article with id '{article_id}'")
        try:
            self._bump_generation()  # as in `write`: a crash below must not leave a trusted, stale index
            self.articles.delete(ids=[article_id])  # the record goes first: its chunks are invisible from now on
            self._sweep(article_id, None)
            return self._finish("delete", [article_id])
        except Exception as exc:  # chromadb raises assorted types; report them as one store failure
            raise StoreError(f"deleting from Chroma failed: {exc}") from exc

    @_reads
    def get_article(self, article_id: str, *, with_text: bool = True) -> ArticleRecord:
        """One article record, with its text."""
        include = ["metadatas", "documents"] if with_text else ["metadatas"]
        got = self.articles.get(ids=[article_id], include=include)
        if not got["ids"]:
            raise NotFoundError(f"no article with id '{article_id}'")
        text = (got["documents"] or [None])[0] if with_text else None
        return _record(article_id, (got["metadatas"] or [{}])[0], text)

    @_reads
    def get_texts(self, article_ids: Sequence[str]) -> dict[str, str]:
        """Canonical texts of these articles (those that exist)."""
        got = self.articles.get(ids=list(dict.fromkeys(article_ids)), include=["documents"])
        return dict(zip(got["ids"], got["documents"] or [], strict=True))

    @_reads
    def list_articles(self) -> list[ArticleRecord]:
        """Every article record (metadata only), newest first."""
        records = [
            _record(aid, meta, None)
            for page in self._pages(self.articles, include=["metadatas"])
            for aid, meta in zip(page["ids"], page["metadatas"] or [], strict=True)
        ]
        records.sort(key=lambda r: (r.published_at or dt.date.min, r.id), reverse=True)
        return records

    @_reads
    def count_articles(self) -> int:
        """Number of articles."""
        return int(self.articles.count())

    # --- chunks ---

    @_reads
    def get_chunks(self, ids: Sequence[str]) -> dict[str, tuple[str, dict[str, Any]]]:
        """Chunk id -> (text, metadata with its article's) for the ids whose article version is live.

        A chunk of a deleted article, or of a version since replaced, is left out: its offsets point into a
        text that is no longer stored (and it must not be shown anyway).
        """
        got = self.chunks.get(ids=list(ids), include=["metadatas"])
        metas = dict(zip(got["ids"], got["metadatas"] or [], strict=True))
        article_ids = list(dict.fromkeys(str(m["article_id"]) for m in metas.values()))
        records = self.articles.get(ids=article_ids, include=["documents", "metadatas"]) if article_ids else None
        articles = (
            {aid: (doc, meta) for aid, doc, meta in zip(records["ids"], records["documents"] or [],
                                                         records["metadatas"] or [], strict=True)}
            if records else {}
        )  # fmt: skip
        out = {}
        for cid in ids:
            meta = metas.get(cid)
            article = articles.get(str(meta["article_id"])) if meta else None
            if meta is None or article is None or article[1].get("content_hash") != meta.get("content_hash"):
                continue
            text, record = article
            out[cid] = (text[int(meta["start"]) : int(meta["end"])], {**record, **meta})
        return out

    def get_spans(self, spans: Sequence[tuple[str, str, str, int, int]]) -> dict[str, tuple[str, dict[str, Any]]]:
        """`get_chunks` for chunks whose article, version and offsets the caller knows: one read of the articles.

        (chunk id, article id, content hash, start, end) each; a chunk whose article is gone or has another
        live version is left out.
        """
        wanted = list(dict.fromkeys(aid for _, aid, _, _, _ in spans))
        try:
            got = self.articles.get(ids=wanted, include=["documents", "metadatas"]) if wanted else None
        except Exception as exc:  # connection errors come in many types
            raise StoreError(f"reading from Chroma failed: {exc}") from exc
        articles = (
            {aid: (doc, meta) for aid, doc, meta in zip(got["ids"], got["documents"] or [],
                                                         got["metadatas"] or [], strict=True)}
            if got else {}
        )  # fmt: skip
        out = {}
        for cid, aid, content_hash, start, end in spans:
            text, record = articles.get(aid, ("", {}))
            if record.get("content_hash") == content_hash:
                out[cid] = (text[start:end], {**record, "start": start, "end": end})
        return out

    def live_chunks(self, article_ids: Sequence[str]) -> tuple[dict[str, str], list[ChunkRow]]:
        """For a replica catching up: these articles' live hashes (absent: deleted) and live chunks."""
        live: dict[str, str] = {}
        rows: list[ChunkRow] = []
        ids = list(dict.fromkeys(article_ids))
        for lo in range(0, len(ids), 100):
            part = ids[lo : lo + 100]
            records = self.articles.get(ids=part, include=["documents", "metadatas"])
            articles = dict(zip(records["ids"], zip(records["documents"] or [], records["metadatas"] or [],
                                                    strict=True), strict=True))  # fmt: skip
            live.update({aid: str(meta["content_hash"]) for aid, (_, meta) in articles.items()})
            if not articles:
                continue
            got = self.chunks.get(where={"article_id": {"$in": list(articles)}}, include=["metadatas", "embeddings"])
            rows += _rows(got, articles, live)
        rows.sort(key=lambda r: (r.article_id, r.start))
        return live, rows

    def chunk_texts(self, article_id: str) -> list[tuple[str, str | None]]:
        """(chunk id, text) of every chunk stored for an article, live or not (None: not the live version)."""
        got = self.chunks.get(where={"article_id": article_id}, include=["metadatas"])
        record = self.articles.get(ids=[article_id], include=["documents", "metadatas"])
        text, live = ((record["documents"] or [""])[0], (record["metadatas"] or [{}])[0]) if record["ids"] else ("", {})
        return sorted(
            (cid, text[int(m["start"]) : int(m["end"])] if m.get("content_hash") == live.get("content_hash") else None)
            for cid, m in zip(got["ids"], got["metadatas"] or [], strict=True)
        )

    @_reads
    def dense_query(self, vector: np.ndarray, n: int) -> list[tuple[str, float]]:
        """Nearest chunks by cosine: (chunk id, similarity), best first."""
        if n <= 0:
            return []
        try:
            got = self.chunks.query(query_embeddings=[vector], n_results=n, include=["distances"])
        except Exception as exc:  # connection errors come in many types
            raise StoreError(f"searching Chroma failed: {exc}") from exc
        return [(cid, 1.0 - float(d)) for cid, d in zip(got["ids"][0], (got["distances"] or [[]])[0], strict=True)]

    def count_chunks(self) -> int:
        """Chunks stored, live or not yet swept."""
        return int(self.chunks.count())

    def iter_chunks(self) -> Iterator[ChunkRow]:
        """Every chunk with its vector, for rebuilding the local index (text and metadata from its article).

        A chunk whose article is gone, or whose hash is not the article's live one, comes with empty text:
        the rebuild sweeps it as an orphan.
        """
        for page in self._pages(self.chunks, include=["metadatas", "embeddings"]):
            wanted = list(dict.fromkeys(str(m["article_id"]) for m in page["metadatas"] or []))
            records = self.articles.get(ids=wanted, include=["documents", "metadatas"])
            articles = dict(zip(records["ids"], zip(records["documents"] or [], records["metadatas"] or [],
                                                    strict=True), strict=True))  # fmt: skip
            yield from _rows(page, articles, None)

    @staticmethod
    def _pages(collection: Any, include: list[str]) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            try:
                page = collection.get(limit=_PAGE, offset=offset, include=include)
            except Exception as exc:  # as in `_reads`: a generator cannot be wrapped from outside
                raise StoreError(f"reading from Chroma failed: {exc}") from exc
            if not page["ids"]:
                return
            yield page
            offset += len(page["ids"])


def _rows(
    got: dict[str, Any], articles: dict[str, tuple[str, dict[str, Any]]], live: dict[str, str] | None
) -> list[ChunkRow]:
    """Chunk rows from a `get` of chunks and their articles' records; with `live`, only live versions."""
    rows = []
    for cid, meta, emb in zip(got["ids"], got["metadatas"] or [], got["embeddings"], strict=True):
        aid, content_hash = str(meta["article_id"]), str(meta["content_hash"])
        if live is not None and live.get(aid) != content_hash:
            continue
        text, record = articles.get(aid, ("", {}))
        same = record.get("content_hash") == content_hash
        start, end = int(meta["start"]), int(meta["end"])
        rows.append(
            ChunkRow(
                id=cid,
                article_id=aid,
                content_hash=content_hash,
                published_day=int(record.get("published_day", _NO_DAY)),
                source=str(record.get("source", "")),
                title=str(record.get("title", "")),
                text=text[start:end] if same else "",
                embedding=np.asarray(emb, dtype=np.float32),
                start=start,
                end=end,
            )
        )
    return rows


def _article_meta(article: Article) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "article_id": article.id,
        "content_hash": article.content_hash,
        "title": article.title,
        "published_day": day_number(article.published_at),
        "source": article.source or "",
    }
    if article.published_at:
        meta["published_at"] = article.published_at.isoformat()
    if article.url:
        meta["url"] = article.url
    return meta


def _record(article_id: str, meta: dict[str, Any], text: str | None) -> ArticleRecord:
    published = meta.get("published_at")
    return ArticleRecord(
        id=article_id,
        title=str(meta.get("title", "")),
        content_hash=str(meta.get("content_hash", "")),
        chunks=int(meta.get("chunks", 0)),
        published_at=dt.date.fromisoformat(published) if published else None,
        url=meta.get("url"),
        source=meta.get("source") or None,
        author=meta.get("author"),
        ingested_at=str(meta.get("ingested_at", "")),
        text=text,
    )


def open_store(settings: Settings, embedder_name: str, dimension: int, lock: DataDirLock | None = None) -> ChromaStore:
    """Chroma server when `RAG_CHROMA_URL` is set, else Chroma on local disk under an exclusive lock.

    A caller that took the directory's lock already (to fail fast, before loading a model) passes it in.
    """
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if settings.chroma_url:
        parsed = urlparse(settings.chroma_url)
        if parsed.scheme not in {"http", "https"} or not parsed.hostname:
            raise ConfigError(f"RAG_CHROMA_URL '{settings.chroma_url}' must look like http://host:port")
        try:
            client = chromadb.HttpClient(
                host=parsed.hostname,
                port=parsed.port or (443 if parsed.scheme == "https" else 8000),
                ssl=parsed.scheme == "https",
                settings=chroma_settings,
            )
            client.heartbeat()
        except Exception as exc:  # connection errors come in many types
            raise StoreError(f"cannot reach the Chroma server at {settings.chroma_url}: {exc}") from exc
        return ChromaStore(client, settings.collection, embedder_name, dimension, lock=None)
    lock = lock or DataDirLock(settings.data_dir)
    try:
        client = chromadb.PersistentClient(path=str(settings.data_dir / "chroma"), settings=chroma_settings)
        return ChromaStore(client, settings.collection, embedder_name, dimension, lock=lock)
    except Exception:
        lock.release()
        raise
