"""Ingest throughput, retrieval latency, memory, disk and cold start of the real service, in one run.

    python benchmarks/bench_ingest_search.py                          # 10k and 100k chunks
    python benchmarks/bench_ingest_search.py --quick                  # 10k chunks, smaller ingest corpus
    python benchmarks/bench_ingest_search.py --sizes 1000000 --no-bulk  # 1M chunks (hours on 2 cores)

Per size it prints, from one run: search p50/p95 unfiltered and date-filtered; the same questions timed
interleaved against the LangChain tutorial retriever (`Chroma(...).as_retriever()`) and raw Chroma queries
over a plain collection with the same chunks and vectors; single-article ingest split into embedding and the
rest; two replicas on a `chroma run` server over the built store (first start, and how long the second one's
refresh tick takes to apply one write and one delete); cold start, peak RSS and disk per chunk.

What runs is the product's own code: `RagService.ingest` for ingest, `ChromaStore.write` + `LocalIndex.apply`
/ `save` to build the large stores, and `RagService.search` in a fresh process for latency, memory and cold
start. Only the vectors of most chunks in the large stores are synthetic (a real chunk's embedding of the
same topic plus small noise), because embedding 100k chunks on two cores takes over an hour. See README.md.

Module-level imports are the standard library only: the `--probe` child measures its own cold start, so it
must import exactly what a serving process imports, no more.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "benchmarks" / "out"
SEEDS_DIR = ROOT / "seeds"
TARGETS = {
    "ingest_ratio_min": 0.85,
    "p50_ms_max": 20.0,
    "p95_ms_max": 40.0,
    "filtered_p50_ms_max": 25.0,
    "peak_rss_mb_max": 1024.0,
    "cold_start_s_max": 5.0,
}
# Noise added to a real embedding to make a synthetic one: cosine to the original ~0.85, about as close as
# two chunks of one news story; much closer and HNSW would see thousands of near-duplicates.
NOISE_SIGMA = 0.032
WRITE_BATCH_CHUNKS = 5000  # under Chroma's max batch (5461 here): one upsert per write call
GENERATED_CHUNKS_MAX = 100_000  # chunks generated for real per store; larger stores are filled with clones
LC_COLLECTION = "bench-langchain"
INGEST_BATCH_ARTICLES = 20  # ~80 chunks: fills the embedder's batches of 32, as an API upload would
WRITE_REPEAT = 5  # single-article ingests timed per store (the median is reported)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def loadavg() -> float:
    return round(os.getloadavg()[0], 2)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q / 100
    lo, hi = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def make_settings(data_dir: Path) -> Any:
    from rag.config import Settings

    # Explicit values so that a developer's RAG_* variables or .env cannot turn this into another benchmark.
    return Settings(data_dir=data_dir, chroma_url=None, embedding_provider="onnx", _env_file=None)  # type: ignore[call-arg]


def disk_bytes(path: Path) -> int:
    """Allocated bytes under `path`, as `du` counts them."""
    total = 0
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            with suppress(OSError):  # a file removed while walking
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
    return total


# --- ingest: the pipeline against the bare embedder on the same texts ---


@contextmanager
def stage_timers(service: Any) -> Iterator[dict[str, float]]:
    """Seconds spent in each stage of `RagService.ingest`, by wrapping the stage calls (~1 us each).

    The wrappers go on the classes, not the instances: an index is copied before each write (copy-on-write),
    and a copied instance attribute would still call the original object's method.
    """
    import rag.ingest

    timings: dict[str, float] = defaultdict(float)
    patched: list[tuple[Any, str, Any]] = []

    def wrap(owner: Any, name: str, key: str) -> None:
        original = getattr(owner, name, None)
        if original is None:
            return

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                timings[key] += time.perf_counter() - start

        setattr(owner, name, timed)
        patched.append((owner, name, original))

    index_class = type(service.index)
    wrap(rag.ingest, "chunk_article", "chunking")
    wrap(type(service.embedder), "embed", "embedding")
    wrap(type(service.store), "live_hashes", "unchanged_check")
    wrap(type(service.store), "write", "chroma_write")
    wrap(index_class, "copy", "index_copy")
    wrap(index_class, "apply", "index_apply")
    wrap(index_class, "save", "index_save")
    wrap(index_class, "_bm25_index", "bm25_build")  # runs inside index_save (and the first search after)
    try:
        yield timings
    finally:
        for owner, name, original in reversed(patched):
            setattr(owner, name, original)


def bench_ingest(
    label: str, embedder: Any, feed: Callable[[Any], Any], articles: list[Any], repeat: int
) -> dict[str, Any]:
    """Ingest into fresh data dirs `repeat` times, alternating with bare embeddings of the same chunk texts.

    Bare, pipeline, bare, pipeline, ..., bare: each figure is the best (fastest) of its runs, the usual
    estimate of the undisturbed time when other processes share the machine.
    """
    from rag.chunking import chunk_article
    from rag.service import RagService

    settings = make_settings(Path("unused"))
    texts = [
        c.embed_text
        for a in articles
        for c in chunk_article(a, embedder.count_tokens, settings.chunk_tokens, settings.chunk_overlap_tokens)
    ]

    def bare() -> tuple[float, Any]:
        start = time.perf_counter()
        vectors = embedder.embed(texts)
        return time.perf_counter() - start, vectors

    pipeline_s: list[float] = []
    raw_s: list[float] = []
    embedding_s: list[float] = []
    stages: dict[str, float] = {}
    summary: dict[str, int] = {}
    chunks = 0
    load = loadavg()
    first, vectors = bare()
    raw_s.append(first)
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="rag-bench-ingest-") as tmp:
            service = RagService.open(make_settings(Path(tmp)), embedder=embedder)
            try:
                with stage_timers(service) as timings:
                    start = time.perf_counter()
                    report = feed(service)
                    pipeline_s.append(time.perf_counter() - start)
                stages = {k: round(v, 3) for k, v in timings.items()}
                embedding_s.append(timings["embedding"])
                summary = report.summary()
                chunks = sum(r.chunks for r in report.results)
            finally:
                service.close()
        seconds, vectors = bare()
        raw_s.append(seconds)
    if chunks != len(texts):
        raise RuntimeError(f"{label}: the pipeline stored {chunks} chunks, bare chunking made {len(texts)}")
    pipe, raw = min(pipeline_s), min(raw_s)
    result = {
        "label": label,
        "articles": len(articles),
        "chunks": chunks,
        "summary": summary,
        "repeat": repeat,
        "pipeline_s": round(pipe, 3),
        "articles_per_s": round(len(articles) / pipe, 2),
        "chunks_per_s": round(chunks / pipe, 2),
        "raw_embed_s": round(raw, 3),
        "raw_chunks_per_s": round(len(texts) / raw, 2),
        "ratio": round(raw / pipe, 3),
        # Load-independent view of the same thing: the share of the pipeline's own time spent embedding.
        "embedding_share": round(statistics.median(e / p for e, p in zip(embedding_s, pipeline_s, strict=True)), 3),
        "pipeline_runs_s": [round(x, 3) for x in pipeline_s],
        "raw_runs_s": [round(x, 3) for x in raw_s],
        "stages_s": stages,
        "loadavg_at_start": load,
        "loadavg_at_end": loadavg(),
    }
    log(
        f"ingest {label}: {result['articles_per_s']} articles/s, {result['chunks_per_s']} chunks/s, "
        f"raw {result['raw_chunks_per_s']} chunks/s, ratio {result['ratio']}, embedding share "
        f"{result['embedding_share']}"
    )
    return {**result, "_vectors": vectors}


# --- building a large store: real chunks, mostly synthetic vectors, the real write path ---


class VectorPool:
    """Real embeddings of generated chunks, by article index, and synthetic ones made from them."""

    def __init__(self, embedder: Any, seed: int) -> None:
        import numpy as np

        self.embedder = embedder
        self.real: dict[int, Any] = {}  # article index -> (chunks, 384) float32
        self.by_topic: dict[str, list[Any]] = defaultdict(list)
        self.rng = np.random.default_rng(seed)

    def add(self, index: int, topic: str, vectors: Any) -> None:
        self.real[index] = vectors
        self.by_topic[topic].extend(vectors)

    def vectors_for(self, index: int, topic: str, count: int) -> Any:
        import numpy as np

        if index in self.real:
            return self.real[index]
        pool = self.by_topic.get(topic) or [v for vs in self.by_topic.values() for v in vs]
        base = np.asarray([pool[i] for i in self.rng.integers(0, len(pool), count)], dtype=np.float32)
        noisy = base + self.rng.normal(0.0, NOISE_SIGMA, base.shape).astype(np.float32)
        return noisy / np.linalg.norm(noisy, axis=1, keepdims=True)


def clone(article: Any, chunks: list[Any], copy: int) -> tuple[Any, list[Any]]:
    """Copy `copy` of a generated article: new id, hash and date, the same text (shared, not duplicated).

    The title gains "archive": one more token in each chunk, so a clone never ties its original in BM25.
    """
    import dataclasses
    import hashlib

    import corpus

    span = (corpus.LAST_DAY - corpus.FIRST_DAY).days + 1
    days = ((article.published_at - corpus.FIRST_DAY).days + copy * 367) % span
    content_hash = hashlib.sha256(f"{article.content_hash}:{copy}".encode()).hexdigest()
    new = dataclasses.replace(
        article,
        id=f"{article.id}~{copy}",
        title=f"{article.title} archive",
        content_hash=content_hash,
        published_at=corpus.FIRST_DAY + dt.timedelta(days=days),
    )
    new_chunks = [
        dataclasses.replace(c, id=f"{new.id}:{content_hash[:12]}:{c.start}", article_id=new.id) for c in chunks
    ]
    return new, new_chunks


def build_store(data_dir: Path, target_chunks: int, real_chunks: int, pool: VectorPool, seed: int) -> dict[str, Any]:
    """Write generated articles until `target_chunks` chunks, through ChromaStore.write and LocalIndex.

    Articles are generated and chunked for real up to GENERATED_CHUNKS_MAX chunks (~800 chunks/s here);
    beyond that, clones of them with their own ids, dates and synthetic vectors fill the store (a 1M-chunk
    corpus generated for real would take ~25 minutes before the first write). The same chunks, vectors and
    texts also go into a plain Chroma collection beside the store (`<dir>-lc`), for the LangChain tutorial
    retriever and raw Chroma queries to be timed against.
    """
    import chromadb
    import corpus
    import numpy as np
    from chromadb.config import Settings as ChromaSettings

    from rag.chunking import chunk_article
    from rag.index import LocalIndex
    from rag.store import day_number, open_store

    embedder = pool.embedder
    settings = make_settings(data_dir)
    times: dict[str, float] = defaultdict(float)
    start = time.perf_counter()
    items: list[tuple[Any, Any, list[Any], int]] = []  # (generated, article, chunks, vector key)
    total = 0
    for generated in corpus.iter_generated(10**9, seed):
        if total >= min(target_chunks, GENERATED_CHUNKS_MAX):
            break
        article = generated.to_article()
        chunks = chunk_article(article, embedder.count_tokens, settings.chunk_tokens, settings.chunk_overlap_tokens)
        items.append((generated, article, chunks, generated.index))
        total += len(chunks)
    originals = list(items)
    copy = 0
    while total < target_chunks:
        copy += 1
        for generated, article, chunks, _ in originals:
            if total >= target_chunks:
                break
            items.append((generated, *clone(article, chunks, copy), -1))  # key -1: never a real vector
            total += len(chunks)
    times["generate_and_chunk"] = time.perf_counter() - start

    # Real vectors for the first articles, up to `real_chunks` chunks, embedded in one call (batched inside).
    t = time.perf_counter()
    real_items, real = [], 0
    for item in items:
        if real >= real_chunks:
            break
        real_items.append(item)
        real += len(item[2])
    missing = [(g, cs) for g, _, cs, _ in real_items if g.index not in pool.real]
    if missing:
        vectors = embedder.embed([c.embed_text for _, cs in missing for c in cs])
        offset = 0
        for g, cs in missing:
            pool.add(g.index, g.topic, vectors[offset : offset + len(cs)])
            offset += len(cs)
    times["embed_real"] = time.perf_counter() - t

    store = open_store(settings, embedder.name, embedder.dimension)
    lc_client = chromadb.PersistentClient(
        path=str(lc_dir(data_dir)), settings=ChromaSettings(anonymized_telemetry=False)
    )
    lc = lc_client.get_or_create_collection(LC_COLLECTION, embedding_function=None, metadata={"hnsw:space": "cosine"})
    index = LocalIndex(embedder.dimension)
    try:
        per_write = max(1, len(items) * WRITE_BATCH_CHUNKS // max(total, 1))  # articles of ~5000 chunks
        for lo in range(0, len(items), per_write):
            part = items[lo : lo + per_write]
            t = time.perf_counter()
            batch = [(a, cs, pool.vectors_for(key, g.topic, len(cs))) for g, a, cs, key in part]
            times["synthetic_vectors"] += time.perf_counter() - t
            t = time.perf_counter()
            generation = store.write(batch, set())
            times["chroma_write"] += time.perf_counter() - t
            t = time.perf_counter()
            index.apply(batch, (), generation)
            times["index_apply"] += time.perf_counter() - t
            t = time.perf_counter()
            lc.add(
                ids=[c.id for _, cs, _ in batch for c in cs],
                embeddings=np.concatenate([v for _, _, v in batch]),
                documents=[c.text for _, cs, _ in batch for c in cs],
                metadatas=[
                    {"article_id": a.id, "published_day": day_number(a.published_at), "start": c.start, "end": c.end}
                    for a, cs, _ in batch
                    for c in cs
                ],
            )
            times["langchain_collection_write"] += time.perf_counter() - t
        t = time.perf_counter()
        # The directory RagService loads its index from (rag/service.py); the probe checks it was not rebuilt.
        index.save(data_dir / "index")
        times["index_save"] = time.perf_counter() - t
    finally:
        store.close()
    elapsed = time.perf_counter() - start
    log(f"  store of {total:,} chunks ({len(items):,} articles, {real:,} real vectors) built in {elapsed:.0f} s")
    return {
        "chunks": total,
        "articles": len(items),
        "generated_articles": len(originals),
        "real_vector_chunks": real,
        "build_s": round(elapsed, 1),
        "build_stages_s": {k: round(v, 1) for k, v in times.items()},
        "chroma_write_chunks_per_s": round(total / max(times["chroma_write"], 1e-9)),
        "_real_articles": [g for g, _, _, _ in real_items],
    }


def lc_dir(data_dir: Path) -> Path:
    """Where the plain Chroma collection for the LangChain retriever sits (beside, not inside, the store)."""
    return data_dir.with_name(f"{data_dir.name}-lc")


def make_queries(real_articles: list[Any], n: int, seed: int) -> list[dict[str, Any]]:
    """Questions about articles whose chunks have real vectors, each with a date window of 1-10% of the corpus."""
    import random

    import corpus

    rng = random.Random(f"bench-windows:{seed}")
    span = (corpus.LAST_DAY - corpus.FIRST_DAY).days + 1
    out = []
    for question in corpus.questions(real_articles, n, seed):
        width = rng.randint(int(0.01 * span), int(0.10 * span))
        lo = question.published_at - dt.timedelta(days=rng.randint(0, width - 1))
        lo = max(corpus.FIRST_DAY, min(lo, corpus.LAST_DAY - dt.timedelta(days=width - 1)))
        hi = lo + dt.timedelta(days=width - 1)
        out.append(
            {"text": question.text, "article_id": question.article_id, "since": lo.isoformat(), "until": hi.isoformat()}
        )
    return out


def run_probe(data_dir: Path, queries_file: Path, warmup: int, ingest_start: int, seed: int) -> dict[str, Any]:
    """Start a fresh process that serves the store: cold start, warm latency, peak RSS, writes."""
    options = f"{warmup},{ingest_start},{seed}"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--probe", str(data_dir), str(queries_file), options]
    started = time.time()
    proc = subprocess.run([*cmd, repr(started)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"probe failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def probe(data_dir: str, queries_file: str, options: str, parent_time: str) -> None:
    """The child: open the store like a server would, answer one search, time the query set, then ingest."""
    t_main = time.time()
    warmup, ingest_start, seed = (int(x) for x in options.split(","))
    import logging

    from rag.embeddings import make_embedder
    from rag.models import Filters
    from rag.service import RagService

    t_imports = time.time()
    messages: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    logging.getLogger("rag").addHandler(Capture())
    logging.getLogger("rag").setLevel(logging.INFO)
    queries = json.loads(Path(queries_file).read_text())
    settings = make_settings(Path(data_dir))
    embedder = make_embedder(settings)
    t_model = time.time()
    service = RagService.open(settings, embedder=embedder)
    t_open = time.time()
    first = service.search(queries[0]["text"])
    t_first = time.time()
    if not first:
        raise RuntimeError("the first search returned nothing")
    cold = {
        "cold_start_s": round(t_first - float(parent_time), 3),
        "interpreter_s": round(t_main - float(parent_time), 3),
        "imports_s": round(t_imports - t_main, 3),
        "model_load_s": round(t_model - t_imports, 3),
        "open_store_and_index_s": round(t_open - t_model, 3),
        "first_search_s": round(t_first - t_open, 3),
        "index_rebuilt": any("rebuild" in m for m in messages),
    }

    def filters_of(q: dict[str, Any]) -> Any:
        return Filters(
            since=dt.date.fromisoformat(q["since"]),
            until=dt.date.fromisoformat(q["until"]),
            source=None,
            article_id=None,
        )

    for q in queries[:warmup]:
        service.search(q["text"])
        service.search(q["text"], filters=filters_of(q))

    def timed(filtered: bool) -> dict[str, Any]:
        latencies, hits = [], 0
        for q in queries:
            filters = filters_of(q) if filtered else None
            start = time.perf_counter()
            passages = service.search(q["text"], filters=filters)
            latencies.append((time.perf_counter() - start) * 1000)
            hits += any(p.article_id == q["article_id"] for p in passages)
        return {
            "p50_ms": round(pct(latencies, 50), 2),
            "p95_ms": round(pct(latencies, 95), 2),
            "mean_ms": round(statistics.fmean(latencies), 2),
            "max_ms": round(max(latencies), 2),
            "hit_at_5": round(hits / len(queries), 3),
        }

    unfiltered = timed(False)
    filtered = timed(True)
    stages = stage_breakdown(service, queries, filters_of)
    result = {
        **cold,
        "queries": len(queries),
        "chunks": len(service.index),
        "unfiltered": unfiltered,
        "filtered": filtered,
        "stages_p50_ms": stages,
        "peak_rss_mb": peak_rss_mb(),
        # For reference only: this child inherits its parent's peak through execve (see peak_rss_mb).
        "ru_maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    # Then what a serving process that also takes writes (POST /v1/articles) costs: single new articles (the
    # newsroom's case: median of several), then a batch large enough to fill the embedder's batches, and the
    # peak memory after both.
    ones = [timed_ingest(service, ingest_start + i, 1, seed) for i in range(WRITE_REPEAT)]
    ones.sort(key=lambda one: one["seconds"])
    result["ingest_one"] = ones[len(ones) // 2]
    result["ingest_one_all_s"] = [one["seconds"] for one in ones]
    result["ingest_one_rest_s"] = sorted(round(o["seconds"] - o["stages_s"].get("embedding", 0.0), 3) for o in ones)
    result["ingest_batch"] = timed_ingest(service, ingest_start + WRITE_REPEAT, INGEST_BATCH_ARTICLES, seed)
    result["peak_rss_after_ingest_mb"] = peak_rss_mb()
    result["side_by_side"] = side_by_side(service, Path(data_dir), queries, filters_of)
    service.close()
    print(json.dumps(result))


def side_by_side(service: Any, data_dir: Path, queries: list[dict[str, Any]], filters_of: Any) -> dict[str, Any]:
    """Ours, the LangChain tutorial retriever and raw Chroma queries, query by query, in rotating order.

    The other two read a plain Chroma collection holding the same chunks, vectors and texts (built beside the
    store); all three embed the question with the same model and return 5 passages with their texts.
    """
    import chromadb
    from chromadb.config import Settings as ChromaSettings
    from langchain_chroma import Chroma

    from rag.embeddings import LangChainEmbeddings
    from rag.store import day_number

    client = chromadb.PersistentClient(path=str(lc_dir(data_dir)), settings=ChromaSettings(anonymized_telemetry=False))
    embeddings = LangChainEmbeddings(service.embedder)
    store = Chroma(client=client, collection_name=LC_COLLECTION, embedding_function=embeddings)
    retriever = store.as_retriever(search_kwargs={"k": 5})
    raw = client.get_collection(LC_COLLECTION)
    k = service.settings.top_k

    def where(q: dict[str, Any]) -> dict[str, Any]:
        f = filters_of(q)
        return {
            "$and": [{"published_day": {"$gte": day_number(f.since)}}, {"published_day": {"$lte": day_number(f.until)}}]
        }

    def ours(q: dict[str, Any], filtered: bool) -> list[str]:
        return [p.article_id for p in service.search(q["text"], filters=filters_of(q) if filtered else None)]

    def langchain(q: dict[str, Any], filtered: bool) -> list[str]:
        chosen = store.as_retriever(search_kwargs={"k": k, "filter": where(q)}) if filtered else retriever
        return [d.metadata["article_id"] for d in chosen.invoke(q["text"])]

    def chroma(q: dict[str, Any], filtered: bool) -> list[str]:
        vector = service.embedder.embed([q["text"]])[0]
        got = raw.query(
            query_embeddings=[vector], n_results=k, where=where(q) if filtered else None,
            include=["documents", "metadatas", "distances"],
        )  # fmt: skip
        return [m["article_id"] for m in got["metadatas"][0]]

    ways = {"ours": ours, "langchain": langchain, "chroma": chroma}
    for q in queries[:10]:  # warm-up: HNSW segments load on the first query of each collection
        for fn in ways.values():
            fn(q, False)
            fn(q, True)
    out: dict[str, Any] = {}
    for filtered in (False, True):
        times: dict[str, list[float]] = {name: [] for name in ways}
        hits: dict[str, int] = dict.fromkeys(ways, 0)
        for i, q in enumerate(queries):
            names = list(ways)
            names = names[i % 3 :] + names[: i % 3]  # rotate: none always runs first (or after another)
            for name in names:
                began = time.perf_counter()
                found = ways[name](q, filtered)
                times[name].append((time.perf_counter() - began) * 1000)
                hits[name] += q["article_id"] in found
        out["filtered" if filtered else "unfiltered"] = {
            name: {
                "p50_ms": round(pct(times[name], 50), 2),
                "p95_ms": round(pct(times[name], 95), 2),
                "hit_at_5": round(hits[name] / len(queries), 3),
            }
            for name in ways
        }
    out["peak_rss_mb_with_all_three"] = peak_rss_mb()
    return out


def bench_replicas(data_dir: Path, embedder: Any, start: int, seed: int, refresh: float) -> dict[str, Any]:
    """Two replicas on a `chroma run` server over the built store: first start, then one write and one delete
    through replica A, and how long replica B's refresh tick takes to apply each (and to show it)."""
    import socket

    import corpus
    import httpx

    from rag.service import RagService

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    url = f"http://127.0.0.1:{port}"
    chroma = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    server_log = data_dir.with_name(f"{data_dir.name}-chroma.log").open("wb")
    cmd = [chroma, "run", "--host", "127.0.0.1", "--port", str(port), "--path", str(data_dir / "chroma")]
    server = subprocess.Popen(cmd, stdout=server_log, stderr=subprocess.STDOUT)
    services: list[Any] = []
    try:
        deadline = time.monotonic() + 120
        while True:
            with suppress(httpx.TransportError):
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("chroma run did not start")
            time.sleep(0.2)
        settings = make_settings(data_dir).model_copy(update={"chroma_url": url, "index_refresh_seconds": refresh})
        began = time.perf_counter()
        a = RagService.open(settings, embedder=embedder)
        services.append(a)
        first_start = time.perf_counter() - began
        b = RagService.open(settings, embedder=embedder)
        services.append(b)
        b.search("warm-up")
        shared_before = b.index.shared
        out: dict[str, Any] = {"refresh_seconds": refresh, "first_start_full_rebuild_s": round(first_start, 2)}
        articles = list(corpus.iter_articles(2, seed, start=start))

        def tick() -> float:
            b._checked_at = float("-inf")  # B's next refresh tick, which comes at most `refresh` s after a write
            t = time.perf_counter()
            b.current_index()
            return round(time.perf_counter() - t, 4)

        def shown(article_id: str, query: str) -> bool:
            return any(p.article_id == article_id for p in b.search(query, k=20))

        t = time.perf_counter()
        a.ingest([articles[0]])
        out["write_through_a_s"] = round(time.perf_counter() - t, 3)
        out["b_tick_after_write_s"] = tick()
        out["b_shows_write"] = shown(articles[0].id, articles[0].title)
        a.delete_article(articles[0].id)
        out["b_tick_after_delete_s"] = tick()
        out["b_hides_delete"] = not shown(articles[0].id, articles[0].title)
        # End to end with real ticks: from the write's return until B's searches show it.
        a.ingest([articles[1]])
        t = time.perf_counter()
        while not shown(articles[1].id, articles[1].title):
            if time.perf_counter() - t > refresh + 30:
                break
            time.sleep(0.02)
        out["write_to_visible_on_b_s"] = round(time.perf_counter() - t, 3)
        out["b_rebuilt"] = b.index.shared is not shared_before  # a rebuild makes new columns; the feed does not
        log(f"  replicas: B's tick applies a write in {out['b_tick_after_write_s']} s, a delete in "
            f"{out['b_tick_after_delete_s']} s; visible after {out['write_to_visible_on_b_s']} s")  # fmt: skip
        return out
    finally:
        for service in services:
            service.close()
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        server_log.close()


def peak_rss_mb() -> float:
    """Peak resident memory of this process's own address space (VmHWM).

    Not `ru_maxrss`: Linux keeps that across execve, so a child started by a large parent (this benchmark,
    holding a 100k-chunk build) reports the parent's peak. VmHWM is the same high-water mark, but per
    address space; in a process started from a small shell the two agree.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def timed_ingest(service: Any, start: int, count: int, seed: int) -> dict[str, Any]:
    """Ingest `count` new generated articles into the open service, with the time of each stage."""
    import corpus

    articles = list(corpus.iter_articles(count, seed, start=start))
    with stage_timers(service) as timings:
        began = time.perf_counter()
        report = service.ingest(articles)
        elapsed = time.perf_counter() - began
    if report.count("added") != count:
        raise RuntimeError(f"ingest into the served store: {report.summary()}")
    return {
        "articles": count,
        "chunks": sum(r.chunks for r in report.results),
        "seconds": round(elapsed, 3),
        "stages_s": {k: round(v, 3) for k, v in timings.items()},
    }


def stage_breakdown(service: Any, queries: list[dict[str, Any]], filters_of: Callable[[Any], Any]) -> dict[str, Any]:
    """Median time of each step of a search, each step timed on its own with the search's own inputs."""
    from rag.retrieve import row_filter

    searcher, index = service.searcher, service.current_index()
    n = max(searcher.candidates, service.settings.top_k)
    steps: dict[str, list[float]] = defaultdict(list)

    @contextmanager
    def clock(name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        steps[name].append((time.perf_counter() - start) * 1000)

    # Two passes in the order of the two search paths, so that each step follows the same steps it follows
    # in a real search (thread pools that spin after a call slow down whatever runs next).
    fractions = []
    k = service.settings.top_k
    for q in queries:
        with clock("embed_query"):
            vector = searcher.embedder.embed([q["text"]])[0]
        with clock("dense_chroma_hnsw"):
            dense = searcher._dense(index, vector, n, None)
        with clock("keyword_bm25"):
            index.keyword(q["text"], n, None)
        ids = [index.ids[row] for row, _ in dense[:k]]
        with clock("fetch_texts"):
            service.store.get_chunks(ids)
    for q in queries:
        with clock("f_embed_query"):
            vector = searcher.embedder.embed([q["text"]])[0]
        with clock("f_mask"):
            mask = index.mask(row_filter(filters_of(q)))
        fractions.append(float(mask.sum()) / max(len(index), 1))
        with clock("f_dense_numpy"):
            dense = index.dense(vector, n, mask)
        with clock("f_keyword_bm25"):
            index.keyword(q["text"], n, mask)
        ids = [index.ids[row] for row, _ in dense[:k]]
        with clock("f_fetch_texts"):
            service.store.get_chunks(ids)
    out: dict[str, Any] = {name: round(pct(values, 50), 2) for name, values in steps.items()}
    out["filter_share_mean"] = round(statistics.fmean(fractions), 4)
    out["filter_share_min"] = round(min(fractions), 4)
    out["filter_share_max"] = round(max(fractions), 4)
    return out


# --- the run ---


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.probe:
        probe(*args.probe)
        return 0

    import corpus

    from rag.chunking import chunk_article
    from rag.documents import iter_files, read_file
    from rag.embeddings import OnnxMiniLM

    sizes = [10_000] if args.quick and not args.sizes_given else args.sizes
    ingest_n = args.ingest_articles or (120 if args.quick else 300)
    real_chunks = args.real_chunks or (1500 if args.quick else 3000)
    queries_n = args.queries or (200 if args.quick else 300)
    run_start = time.perf_counter()
    settings = make_settings(Path("unused"))
    results: dict[str, Any] = {
        "started": dt.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "loadavg_at_start": loadavg(),
        },
        "params": {
            "sizes": sizes,
            "ingest_articles": ingest_n,
            "real_vector_chunks": real_chunks,
            "queries": queries_n,
            "seed": args.seed,
            "batch_size": settings.embedding_batch_size,
            "chunk_tokens": settings.chunk_tokens,
            "top_k": settings.top_k,
            "candidates": settings.candidates,
        },
        "targets": TARGETS,
    }
    log(f"sizes {sizes}, ingest {ingest_n} articles, {real_chunks} real vectors, {queries_n} queries")
    embedder = OnnxMiniLM(batch_size=settings.embedding_batch_size)
    embedder.embed(["warm-up: the first run of an onnxruntime session allocates its buffers"] * 4)

    # 1. ingest throughput: generated articles, then the shipped seeds
    generated = [] if args.no_bulk else list(corpus.iter_generated(ingest_n, args.seed))
    articles = [g.to_article() for g in generated]
    pool = VectorPool(embedder, args.seed)
    results["ingest"] = {}
    if args.no_bulk:
        log("skipping the bulk-ingest comparison (--no-bulk)")
    else:
        ingest = bench_ingest("generated", embedder, lambda s: s.ingest(articles), articles, args.ingest_repeat)
        vectors = ingest.pop("_vectors")
        results["ingest"]["generated"] = ingest
    offset = 0
    for g, article in zip(generated, articles, strict=True):
        # The bare run embedded these articles' chunks, in order: they are the stores' first real vectors.
        count = len(chunk_article(article, embedder.count_tokens, settings.chunk_tokens, settings.chunk_overlap_tokens))
        pool.add(g.index, g.topic, vectors[offset : offset + count])
        offset += count
    seed_articles = [
        a for path, root in iter_files([SEEDS_DIR]) for a in read_file(path, root, max_bytes=settings.max_file_bytes)
    ]
    if not args.no_bulk:
        seeds = bench_ingest(
            "seeds", embedder, lambda s: s.ingest_paths([SEEDS_DIR]), seed_articles, repeat=args.seed_repeat
        )
        seeds.pop("_vectors")
        results["ingest"]["seeds"] = seeds

    # 2-4. per store size: build, probe in a fresh process, disk, one more write
    keep_root = OUT_DIR / "stores" if args.keep else None
    results["sizes"] = {}
    for size in sizes:
        log(f"building a store of {size:,} chunks")
        if keep_root is not None:
            keep_root.mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix=f"rag-bench-{size}-", dir=keep_root))
        try:
            built = build_store(root, size, real_chunks, pool, args.seed)
            real_articles = built.pop("_real_articles")
            queries = make_queries(real_articles, queries_n, args.seed)
            queries_file = root.parent / f"{root.name}-queries.json"
            queries_file.write_text(json.dumps(queries))
            entry: dict[str, Any] = {"build": built}
            entry["disk"] = {
                "total_bytes": disk_bytes(root),
                "chroma_bytes": disk_bytes(root / "chroma"),
                "index_bytes": disk_bytes(root / "index"),
            }
            entry["disk"]["bytes_per_chunk"] = round(entry["disk"]["total_bytes"] / built["chunks"])
            log(f"  probing {size:,} chunks in a fresh process ({queries_n} queries, unfiltered and filtered)")
            entry["loadavg_before_probe"] = loadavg()
            # New articles for the probe's writes come from far beyond any store's prefix of the corpus.
            entry["serve"] = run_probe(root, queries_file, args.warmup, 10**7, args.seed)
            entry["disk"]["langchain_collection_bytes_per_chunk"] = round(disk_bytes(lc_dir(root)) / built["chunks"])
            OUT_DIR.mkdir(parents=True, exist_ok=True)  # a long run's figures so far, in case it is stopped
            (OUT_DIR / f"partial-{size}.json").write_text(json.dumps(entry, indent=2, default=str))
            if not args.no_replicas:
                log(f"  two replicas on chroma run over {size:,} chunks")
                entry["replicas"] = bench_replicas(root, embedder, 2 * 10**7, args.seed, args.refresh)
            results["sizes"][str(size)] = entry
            queries_file.unlink(missing_ok=True)
        finally:
            if not args.keep:
                shutil.rmtree(root, ignore_errors=True)
                shutil.rmtree(lc_dir(root), ignore_errors=True)
    results["elapsed_s"] = round(time.perf_counter() - run_start, 1)
    results["machine"]["loadavg_at_end"] = loadavg()

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    out_file = OUT_DIR / f"bench-{dt.datetime.now():%Y%m%d-%H%M%S}{'-quick' if args.quick else ''}.json"
    out_file.write_text(json.dumps(results, indent=2, default=str))
    print_table(results)
    print(f"\nJSON: {out_file.relative_to(ROOT)}")
    return 0


def print_table(r: dict[str, Any]) -> None:
    """The figures, with their targets."""
    t = r["targets"]

    def mark(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    def stages(d: dict[str, float]) -> str:
        return ", ".join(f"{k} {v}" for k, v in d.items())

    m = r["machine"]
    lines = [
        f"rag benchmarks, {r['started']}: {m['cpus']} CPUs, load average {m['loadavg_at_start']} at start, "
        f"{m['loadavg_at_end']} at end; {r['elapsed_s']} s",
        f"command: {r['command']}",
        "",
        f"{'INGEST (RagService.ingest)':<28}{'articles':>9}{'chunks':>8}{'art/s':>8}{'chunks/s':>10}"
        f"{'bare embed chunks/s':>21}{'ratio':>7}{'':<10}{'embed share':>12}",
    ]
    for name, g in r["ingest"].items():
        runs = f" (best of {g['repeat']})" if g["repeat"] > 1 else ""
        lines.append(
            f"{name + runs:<28}{g['articles']:>9}{g['chunks']:>8}{g['articles_per_s']:>8}{g['chunks_per_s']:>10}"
            f"{g['raw_chunks_per_s']:>21}{g['ratio']:>7}{mark(g['ratio'] >= t['ingest_ratio_min']):>10}"
            f"{g['embedding_share']:>12}"
        )
    lines.append(
        f"  target ratio >= {t['ingest_ratio_min']}; embed share = embedding time / pipeline time in the same run"
    )
    for name, g in r["ingest"].items():
        lines.append(f"  {name}: pipeline {g['pipeline_s']} s = {stages(g['stages_s'])}")
    lines += [
        "",
        f"{'SEARCH (RagService.search)':<28}{'p50 ms':>8}{'p95 ms':>8}{'hit@5':>7}   {'filtered: p50':>13}"
        f"{'p95':>7}{'hit@5':>7}{'share':>8}",
    ]
    for e in r["sizes"].values():
        s = e["serve"]
        u, f = s["unfiltered"], s["filtered"]
        share = f"{s['stages_p50_ms']['filter_share_mean'] * 100:.1f}%"
        lines.append(
            f"{e['build']['chunks']:>10,} chunks{'':<11}{u['p50_ms']:>8}{u['p95_ms']:>8}{u['hit_at_5']:>7}   "
            f"{f['p50_ms']:>13}{f['p95_ms']:>7}{f['hit_at_5']:>7}{share:>8}"
        )
    lines.append(
        f"  targets at 100k: p50 <= {t['p50_ms_max']}, p95 <= {t['p95_ms_max']}, filtered p50 <= "
        f"{t['filtered_p50_ms_max']} ms"
    )
    for size, e in r["sizes"].items():
        st = {k: v for k, v in e["serve"]["stages_p50_ms"].items() if not k.startswith("filter_share")}
        plain = {k: v for k, v in st.items() if not k.startswith("f_")}
        filtered = {k.removeprefix("f_"): v for k, v in st.items() if k.startswith("f_")}
        lines.append(f"  {int(size):,} steps, p50 ms: {stages(plain)}")
        lines.append(f"  {int(size):,} filtered steps, p50 ms: {stages(filtered)}")
    lines += [
        "",
        f"{'SERVING PROCESS':<28}{'peak RSS MB':>12}{'after ingest':>13}{'disk B/chunk':>14}{'cold start s':>14}"
        f"{'+1 article s':>14}",
    ]
    for e in r["sizes"].values():
        s = e["serve"]
        lines.append(
            f"{e['build']['chunks']:>10,} chunks{'':<11}{s['peak_rss_mb']:>12}{s['peak_rss_after_ingest_mb']:>13}"
            f"{e['disk']['bytes_per_chunk']:>14,}{s['cold_start_s']:>14}{s['ingest_one']['seconds']:>14}"
        )
    lines.append(
        f"  targets: peak RSS <= {t['peak_rss_mb_max']:.0f} MB, cold start <= {t['cold_start_s_max']} s (at 100k)"
    )
    for size, e in r["sizes"].items():
        s, b = e["serve"], e["build"]
        lines += [
            f"  {int(size):,}: cold start = interpreter {s['interpreter_s']}, imports {s['imports_s']}, model "
            f"{s['model_load_s']}, store + index {s['open_store_and_index_s']}, first search {s['first_search_s']}"
            f"{'  (INDEX WAS REBUILT)' if s['index_rebuilt'] else ''}",
            f"  {int(size):,}: +1 article = {stages(s['ingest_one']['stages_s'])}; "
            f"+{s['ingest_batch']['articles']} articles {s['ingest_batch']['seconds']} s",
            f"  {int(size):,}: disk chroma {e['disk']['chroma_bytes'] / 2**20:.0f} MB + index "
            f"{e['disk']['index_bytes'] / 2**20:.0f} MB; build {b['build_s']} s = {stages(b['build_stages_s'])} "
            f"({b['chroma_write_chunks_per_s']:,} chunks/s into Chroma)",
        ]
    lines += [
        "",
        f"{'SIDE BY SIDE (interleaved)':<28}{'unfiltered p50':>15}{'p95':>7}{'hit@5':>7}   "
        f"{'filtered p50':>13}{'p95':>7}{'hit@5':>7}",
    ]
    for e in r["sizes"].values():
        sbs = e["serve"]["side_by_side"]
        for name in ("ours", "langchain", "chroma"):
            u, f = sbs["unfiltered"][name], sbs["filtered"][name]
            lines.append(
                f"{e['build']['chunks']:>10,} {name:<17}{u['p50_ms']:>15}{u['p95_ms']:>7}{u['hit_at_5']:>7}   "
                f"{f['p50_ms']:>13}{f['p95_ms']:>7}{f['hit_at_5']:>7}"
            )
        ratio = sbs["unfiltered"]["ours"]["p50_ms"] / max(sbs["unfiltered"]["langchain"]["p50_ms"], 1e-9)
        lines.append(f"{'':>11}ours / langchain p50: {ratio:.2f}x (target <= 1.2x)")
    lines += ["", f"{'WRITES':<28}{'+1 article s':>13}{'embedding s':>12}{'rest s':>8}{'rest runs s':>30}"]
    for e in r["sizes"].values():
        s1 = e["serve"]
        one = s1["ingest_one"]
        emb = one["stages_s"].get("embedding", 0.0)
        lines.append(
            f"{e['build']['chunks']:>10,} chunks{'':<11}{one['seconds']:>13}{emb:>12}{one['seconds'] - emb:>8.3f}"
            f"{s1['ingest_one_rest_s']!s:>30}"
        )
    lines.append("  target: rest (everything but embedding) <= 0.150 s")
    lines += [
        "",
        f"{'REPLICAS (chroma run)':<28}{'first start s':>14}{'tick after write s':>19}{'after delete s':>15}"
        f"{'write->visible s':>17}",
    ]
    for e in r["sizes"].values():
        rep_ = e.get("replicas")
        if rep_:
            lines.append(
                f"{e['build']['chunks']:>10,} chunks{'':<11}{rep_['first_start_full_rebuild_s']:>14}"
                f"{rep_['b_tick_after_write_s']:>19}{rep_['b_tick_after_delete_s']:>15}{rep_['write_to_visible_on_b_s']:>17}"
                f"  shown {rep_['b_shows_write']}, hidden {rep_['b_hides_delete']}, rebuilt {rep_['b_rebuilt']}"
            )
    lines.append(
        "  refresh interval "
        + ", ".join(str(e["replicas"]["refresh_seconds"]) for e in r["sizes"].values() if e.get("replicas"))
        + " s; target: a tick applies a write within 1 s"
    )
    lines += ["", f"{'DISK per chunk':<28}{'ours B':>10}{'langchain collection B':>24}"]
    for e in r["sizes"].values():
        d = e["disk"]
        lc = d.get("langchain_collection_bytes_per_chunk", 0)
        lines.append(f"{e['build']['chunks']:>10,} chunks{'':<11}{d['bytes_per_chunk']:>10,}{lc:>24,}")
    if "100000" in r["sizes"]:
        s = r["sizes"]["100000"]["serve"]
        checks = [
            ("p50", s["unfiltered"]["p50_ms"] <= t["p50_ms_max"]),
            ("p95", s["unfiltered"]["p95_ms"] <= t["p95_ms_max"]),
            ("filtered p50", s["filtered"]["p50_ms"] <= t["filtered_p50_ms_max"]),
            ("peak RSS", s["peak_rss_mb"] <= t["peak_rss_mb_max"]),
            ("cold start", s["cold_start_s"] <= t["cold_start_s_max"]),
        ]
        lines += ["", "TARGETS AT 100k CHUNKS: " + ", ".join(f"{name} {mark(ok)}" for name, ok in checks)]
    print("\n".join(lines))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", help="store sizes in chunks, comma-separated (default 10000,100000)")
    parser.add_argument("--quick", action="store_true", help="10k chunks only, a smaller ingest corpus")
    parser.add_argument("--ingest-articles", type=int, help="generated articles for ingest (quick 120, full 300)")
    parser.add_argument(
        "--real-chunks", type=int, help="chunks embedded for real in each store (quick 1500, full 3000)"
    )
    parser.add_argument("--queries", type=int, help="questions timed per store (quick 200, full 300)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed queries before timing")
    parser.add_argument("--ingest-repeat", type=int, default=2, help="pipeline runs of the generated ingest (best)")
    parser.add_argument("--seed-repeat", type=int, default=5, help="pipeline runs of the seeds ingest (best)")
    parser.add_argument("--seed", type=int, default=0, help="corpus seed")
    parser.add_argument("--keep", action="store_true", help="keep the built stores under benchmarks/out/stores")
    parser.add_argument("--no-bulk", action="store_true", help="skip the bulk-ingest comparison with bare embedding")
    parser.add_argument("--no-replicas", action="store_true", help="skip the two-replica refresh benchmark")
    parser.add_argument("--refresh", type=float, default=1.0, help="RAG_INDEX_REFRESH_SECONDS of the replicas")
    parser.add_argument("--probe", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.sizes_given = args.sizes is not None
    args.sizes = [int(s) for s in (args.sizes or "10000,100000").split(",") if s.strip()]
    return args


if __name__ == "__main__":
    raise SystemExit(main())
