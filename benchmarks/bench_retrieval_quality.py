"""Retrieval quality of the service's search against plain anchors, side by side in one run, on every eval set.

    python benchmarks/bench_retrieval_quality.py [--sets seed,wikinews,reader,time] [--k 10] [--out PATH]

Every retriever searches the same articles: the eval haystack (the seeds plus every corpus under
../shared/corpora; the seed set alone is asked over the seeds). The anchors are what a newcomer would build:

- `langchain-tutorial`: LangChain's RAG tutorial, verbatim: RecursiveCharacterTextSplitter(1000, 200),
  `Chroma.from_documents`, `as_retriever(search_kwargs={"k": k})`, the same MiniLM embedder;
- `plain-bm25`: bm25s over the same 1000/200 chunks, lowercased `\\w+` tokens, no stemming, no stop words;
- `plain-dense`: exact cosine over the same chunks' vectors;
- `plain-rrf`: plain dense + plain BM25, 50 candidates each, reciprocal-rank fusion with k = 60.

A passage is a hit when it holds a gold evidence quote (same article, at least half of the quote's characters,
as in `rag eval`); `ans@k` is the looser test of the held-out benchmarks: the gold answer string occurs in one
of the first k passages. Unanswerable items are skipped. Follow-ups are asked as the service's condenser
rewrites them without an LLM, and items with `as_of` are asked as of that day by the service (the anchors have
no notion of time, which is the point of measuring them).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import bm25s
import numpy as np

from rag.condense import condense_locally
from rag.config import Settings
from rag.embeddings import LangChainEmbeddings, make_embedder
from rag.evals.cache import CachedEmbedder
from rag.evals.dataset import EvalItem, builtin_sets, gold_spans, load_articles, load_items
from rag.evals.metrics import HOLD_SHARE, Span, containment
from rag.evals.runner import ServicePool
from rag.models import Article

ROOT = Path(__file__).resolve().parent.parent
KS = (1, 3, 5, 10)
_WORD = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class Hit:
    """A retrieved passage, as offsets into its article."""

    article_id: str
    start: int
    end: int
    text: str


Retriever = Callable[[EvalItem, str], list[Hit]]


def plain_tokens(text: str) -> list[str]:
    """Lowercased `\\w+`, nothing removed, nothing stemmed."""
    return _WORD.findall(text.lower())


class Anchors:
    """The plain retrievers over LangChain-tutorial chunks of the same articles."""

    def __init__(self, articles: dict[str, Article], embedder: CachedEmbedder, k: int) -> None:
        from langchain_chroma import Chroma
        from langchain_core.documents import Document
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200, add_start_index=True)
        docs = splitter.split_documents(
            [Document(page_content=a.text, metadata={"article_id": a.id}) for a in articles.values()]
        )
        self.hits = [
            Hit(d.metadata["article_id"], d.metadata["start_index"], d.metadata["start_index"] + len(d.page_content),
                d.page_content)
            for d in docs
        ]  # fmt: skip
        for i, d in enumerate(docs):
            d.metadata["row"] = i
        print(f"anchors: {len(docs)} tutorial chunks", file=sys.stderr)
        self.embedder = embedder
        self.vectors = embedder.embed([h.text for h in self.hits])
        embedder.save()
        self.store = Chroma(collection_name="tutorial", embedding_function=LangChainEmbeddings(embedder))
        # What Chroma.from_documents does, with the vectors we already have (adding embeds them again otherwise).
        collection = self.store._collection
        batch = 4000
        for lo in range(0, len(docs), batch):
            part = docs[lo : lo + batch]
            collection.add(
                ids=[str(lo + i) for i in range(len(part))],
                embeddings=self.vectors[lo : lo + batch].tolist(),
                documents=[d.page_content for d in part],
                metadatas=[d.metadata for d in part],
            )
        self.tutorial = self.store.as_retriever(search_kwargs={"k": k})
        self.bm25 = bm25s.BM25()
        self.bm25.index([plain_tokens(h.text) for h in self.hits], show_progress=False)

    def langchain_tutorial(self, _item: EvalItem, query: str) -> list[Hit]:
        docs = self.tutorial.invoke(query)
        return [self.hits[d.metadata["row"]] for d in docs]

    def _bm25_rows(self, query: str, n: int) -> list[int]:
        tokens = [t for t in plain_tokens(query) if t in self.bm25.vocab_dict]
        if not tokens:
            return []
        scores = self.bm25.get_scores(tokens)
        top = np.argsort(-scores, kind="stable")[:n]
        return [int(r) for r in top if scores[r] > 0]

    def _dense_rows(self, query: str, n: int) -> list[int]:
        scores = self.vectors @ self.embedder.embed([query])[0]
        return [int(r) for r in np.argsort(-scores, kind="stable")[:n]]

    def plain_bm25(self, _item: EvalItem, query: str, k: int = 10) -> list[Hit]:
        return [self.hits[r] for r in self._bm25_rows(query, k)]

    def plain_dense(self, _item: EvalItem, query: str, k: int = 10) -> list[Hit]:
        return [self.hits[r] for r in self._dense_rows(query, k)]

    def plain_rrf(self, _item: EvalItem, query: str, k: int = 10) -> list[Hit]:
        fused: dict[int, float] = {}
        for rows in (self._dense_rows(query, 50), self._bm25_rows(query, 50)):
            for rank, row in enumerate(rows, start=1):
                fused[row] = fused.get(row, 0.0) + 1.0 / (60 + rank)
        return [self.hits[r] for r in sorted(fused, key=lambda r: (-fused[r], r))[:k]]


def rank_of_hit(hits: Sequence[Hit], gold: Sequence[Span]) -> int | None:
    """1-based rank of the first passage holding a gold quote."""
    for rank, h in enumerate(hits, start=1):
        for g in gold:
            inside = min(h.end, g.end) - max(h.start, g.start)
            if h.article_id == g.article_id and inside >= HOLD_SHARE * (g.end - g.start):
                return rank
    return None


def rank_of_answer(hits: Sequence[Hit], golds: Sequence[str]) -> int | None:
    """1-based rank of the first passage whose text contains the gold answer (or a variant)."""
    for rank, h in enumerate(hits, start=1):
        if containment(h.text, golds):
            return rank
    return None


def score(
    name: str, retriever: Retriever, items: Sequence[EvalItem], articles: dict[str, Article], k: int
) -> dict[str, float]:
    """R@k, MRR@k, ans@k and latency of one retriever on answerable items."""
    ranks: list[int | None] = []
    answer_ranks: list[int | None] = []
    latencies: list[float] = []
    for item in items:
        query = condense_locally(item.question, item.history) if item.history else item.question
        started = time.perf_counter()
        hits = retriever(item, query)[:k]
        latencies.append((time.perf_counter() - started) * 1000)
        gold = [s for spans in gold_spans(item, articles) for s in spans]
        ranks.append(rank_of_hit(hits, gold))
        answer_ranks.append(rank_of_answer(hits, item.golds))
    n = len(items)
    out: dict[str, float] = {"items": n}
    for cut in KS:
        out[f"R@{cut}"] = round(sum(1 for r in ranks if r is not None and r <= cut) / n, 3)
    out["MRR"] = round(sum(1 / r for r in ranks if r) / n, 3)
    for cut in (1, 5, 10):
        out[f"ans@{cut}"] = round(sum(1 for r in answer_ranks if r is not None and r <= cut) / n, 3)
    out["p50_ms"] = round(statistics.median(latencies), 1)
    print(f"  {name}: done", file=sys.stderr)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="seed,wikinews,reader,time")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    embedder = CachedEmbedder(make_embedder(settings))
    wanted = [s for s in args.sets.split(",") if s]
    sets = [s for s in builtin_sets("all") if s.name in wanted]
    results: dict[str, dict[str, dict[str, float]]] = {}
    with ServicePool(settings, embedder) as pool:
        anchors_by_articles: dict[tuple[Path, ...], tuple[Anchors, dict[str, Article]]] = {}
        for eval_set in sets:
            if eval_set.missing:
                print(f"{eval_set.name}: skipped ({eval_set.missing})", file=sys.stderr)
                continue
            items = [i for i in load_items(eval_set.questions) if i.answerable]
            print(f"{eval_set.name}: {len(items)} answerable items", file=sys.stderr)
            if eval_set.articles not in anchors_by_articles:
                articles = load_articles(eval_set.articles)
                anchors_by_articles[eval_set.articles] = (Anchors(articles, embedder, args.k), articles)
            anchors, articles = anchors_by_articles[eval_set.articles]
            service = pool.get(eval_set.articles)

            def ours(item: EvalItem, query: str, service: object = service) -> list[Hit]:
                passages = service.search(query, k=args.k, as_of=item.as_of)  # type: ignore[attr-defined]
                return [Hit(p.article_id, p.start, p.end, p.text) for p in passages]

            retrievers: dict[str, Retriever] = {
                "service": ours,
                "langchain-tutorial": anchors.langchain_tutorial,
                "plain-bm25": anchors.plain_bm25,
                "plain-dense": anchors.plain_dense,
                "plain-rrf": anchors.plain_rrf,
            }
            results[eval_set.name] = {name: score(name, fn, items, articles, args.k) for name, fn in retrievers.items()}
            embedder.save()

    columns = [f"R@{k}" for k in KS] + ["MRR", "ans@1", "ans@5", "ans@10", "p50_ms"]
    for set_name, table in results.items():
        n = next(iter(table.values()))["items"]
        print(f"\n{set_name} ({int(n)} answerable items)")
        print(f"| retriever | {' | '.join(columns)} |")
        print(f"|---|{'---|' * len(columns)}")
        for name, row in table.items():
            print(f"| {name} | {' | '.join(str(row[c]) for c in columns)} |")
        best = {c: max(r[c] for n_, r in table.items() if n_ != "service") for c in ("R@1", "R@5")}
        margin = {c: round(table["service"][c] - best[c], 3) for c in best}
        print(f"service minus best anchor: R@1 {margin['R@1']:+.3f}, R@5 {margin['R@5']:+.3f}")

    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = args.out or ROOT / "benchmarks" / "out" / f"retrieval-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"k": args.k, "sets": results}, indent=2) + "\n")
    print(f"\nwritten: {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
