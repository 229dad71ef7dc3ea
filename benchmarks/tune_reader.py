"""Choose the extractive reader's weights and abstention threshold on the dev items, and show the trade-off.

    python benchmarks/tune_reader.py [--sets seed,wikinews,reader] [--dev-only] [--grid small|none]

Every item is asked through the service (`RagService.ask`, as `rag eval` does), with retrieval memoised so that
each weight setting costs only the reader. Items of `evals/reader.jsonl` numbered rd-201 and up are held out of
tuning: `--dev-only` (the default) leaves them out, and the final figures are printed for them separately.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache
from typing import Any

from rag.config import Settings
from rag.embeddings import make_embedder
from rag.evals import metrics
from rag.evals.cache import CachedEmbedder
from rag.evals.dataset import EvalItem, builtin_sets, gold_spans, load_articles, load_items
from rag.evals.runner import ServicePool, score_item
from rag.extractive import Weights
from rag.service import RagService


def held_out(item: EvalItem) -> bool:
    """Reader items rd-201 and up were never looked at while tuning."""
    return item.id.startswith("rd-") and int(item.id[3:]) >= 201


HEADLINE = ("answer_containment", "citation_precision", "abstention_recall", "wrongful_refusal_rate")
Entry = tuple[RagService, EvalItem, Any, bool]


def run(entries: Sequence[Entry], weights: Weights, held: bool = False) -> dict[str, float]:
    """Headline metrics of the reader with `weights` over the dev (or held-out) entries."""
    scores = []
    for service, item, gold, is_held in entries:
        if is_held != held:
            continue
        service.engine.extractive.weights = weights
        answer = service.ask(item.question, history=list(item.history) or None, mode="extractive", as_of=item.as_of)
        scores.append(score_item(item, answer, gold, 0.0))
    m = metrics.aggregate(scores)
    return {k: m[k] for k in HEADLINE}


def objective(m: dict[str, float]) -> float:
    """One number to rank settings by: every headline target counts, refusals above 5 % cost double."""
    return (
        (m["answer_containment"] or 0.0)
        + (m["citation_precision"] or 0.0)
        + 0.6 * (m["abstention_recall"] or 0.0)
        - 2 * max(0.0, (m["wrongful_refusal_rate"] or 0.0) - 0.05)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="seed,wikinews,reader")
    parser.add_argument("--grid", default="small", choices=("small", "none"))
    parser.add_argument("--try", dest="tries", action="append", default=[], metavar="FIELD=VALUE,...",
                        help="Also score these weights (e.g. missing_names=0.4,threshold=0.4).")  # fmt: skip
    args = parser.parse_args()

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    embedder = CachedEmbedder(make_embedder(settings))
    wanted = args.sets.split(",")
    entries: list[Entry] = []
    with ServicePool(settings, embedder) as pool:
        memoised: set[int] = set()
        for eval_set in builtin_sets("all"):
            if eval_set.name not in wanted or eval_set.missing:
                continue
            service = pool.get(eval_set.articles)
            if id(service) not in memoised:  # retrieval does not depend on the reader's weights
                memoised.add(id(service))
                service.engine.search = lru_cache(maxsize=None)(service.engine.search)  # type: ignore[method-assign]
            articles = load_articles(eval_set.articles)
            for item in load_items(eval_set.questions):
                entries.append((service, item, gold_spans(item, articles), held_out(item)))
        embedder.save()

        base = Weights()
        first = run(entries, base)
        print("default", json.dumps(first), file=sys.stderr)
        best = (objective(first), base)
        if args.grid == "small":
            grid = itertools.product(
                (0.4, 0.5, 0.6), (0.2, 0.35, 0.5), (0.1, 0.25, 0.4), (0.0, 0.15), (0.36, 0.42, 0.48)
            )
            for sem, lex, nb, cs, th in grid:
                w = replace(base, semantic=sem, lexical=lex, neighbourhood=nb, context_semantic=cs, threshold=th)
                m = run(entries, w)
                if objective(m) > best[0]:
                    best = (objective(m), w)
                    print(f"better {best[0]:.3f} {w} {json.dumps(m)}", file=sys.stderr)
        for spec in args.tries:
            w = replace(base, **{k: float(v) for k, v in (kv.split("=") for kv in spec.split(","))})
            m = run(entries, w)
            print(f"try {spec}: objective {objective(m):.3f} {json.dumps(m)}", file=sys.stderr)
            if objective(m) > best[0]:
                best = (objective(m), w)
        weights = best[1]
        print("\nchosen:", weights)
        print("dev:", json.dumps(run(entries, weights)))
        print("held-out:", json.dumps(run(entries, weights, held=True)))
        print("\nthreshold sweep (dev): threshold, containment, citation precision, abstention recall, refusals")
        for th in (0.30, 0.34, 0.38, 0.42, 0.46, 0.50, 0.54):
            m = run(entries, replace(weights, threshold=th))
            print(th, *(m[k] for k in HEADLINE))
        embedder.save()


if __name__ == "__main__":
    main()
