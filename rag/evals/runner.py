"""Running an eval set: a fresh service on a temporary data directory, every item through `RagService.ask`.

The service is the very one the API and the CLI use (`RagService.open`), configured as the user configured it,
except that its data directory is a new temporary one and its store is local, so an eval never touches the
user's articles.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.embeddings import Embedder
from rag.errors import RagError, UpstreamError
from rag.evals import metrics
from rag.evals.cache import CachedEmbedder
from rag.evals.dataset import DatasetError, EvalItem, EvalSet, gold_spans, load_articles, load_items, validate_against
from rag.evals.judge import Judge, Judgement
from rag.evals.metrics import ItemScores, Span
from rag.llm import PROMPTS_DIR
from rag.models import Answer
from rag.service import RagService
from rag.temporal import format_date

log = logging.getLogger(__name__)

# (stage, done, total or None when unknown): drives the CLI's progress bar.
Progress = Callable[[str, int, int | None], None]


@dataclass(slots=True)
class ItemResult:
    """One item, the service's answer (or the error it raised), the judge's verdict and the scores."""

    item: EvalItem
    answer: Answer | None
    error: str | None
    scores: ItemScores
    judgement: Judgement | None = None

    def to_json(self, set_name: str) -> dict[str, Any]:
        """The results.jsonl line: question, gold, answer, citations, scores."""
        a = self.answer
        return {
            "set": set_name,
            "id": self.item.id,
            "question": self.item.question,
            "history": [t.model_dump() for t in self.item.history],
            "tags": list(self.item.tags),
            "answerable": self.item.answerable,
            "gold": {
                "answer": self.item.answer,
                "accepted": list(self.item.accepted),
                "evidence": [{"article_id": e.article_id, "quote": e.quote} for e in self.item.evidence],
            },
            "answer": None
            if a is None
            else {
                "text": a.text,
                "mode": a.mode,
                "abstained": a.abstained,
                "abstain_reason": a.abstain_reason,
                "standalone_question": a.standalone_question,
                "dropped_claims": a.dropped_claims,
                "citations": [c.model_dump(mode="json") for c in a.citations],
                "sources": [s.model_dump(mode="json", exclude={"text"}) for s in a.sources],
                "timings": a.timings.model_dump(),
            },
            "error": self.error,
            "judge": None if self.judgement is None else asdict(self.judgement),
            "scores": {k: v for k, v in asdict(self.scores).items() if k != "tags"},
        }


@dataclass(slots=True)
class SetRun:
    """The results of one eval set, or why it was skipped."""

    eval_set: EvalSet
    results: list[ItemResult] = field(default_factory=list)
    skipped: str | None = None
    mode: str | None = None
    notes: list[str] = field(default_factory=list)
    articles: int = 0

    @property
    def scores(self) -> list[ItemScores]:
        """Every item's scores."""
        return [r.scores for r in self.results]


def score_item(
    item: EvalItem,
    answer: Answer | None,
    gold: Sequence[Sequence[Span]],
    latency_ms: float,
    *,
    prompt_texts: Sequence[str] = (),
    secrets: Sequence[str] = (),
    judgement: Judgement | None = None,
) -> ItemScores:
    """All the per-item scores of one answer (`answer` None: the service raised an error)."""
    s = ItemScores(
        answerable=item.answerable,
        abstained=bool(answer and answer.abstained),
        tags=list(item.tags),
        latency_ms=round(latency_ms, 1),
        mode=answer.mode if answer else "error",
        error=answer is None,
    )
    text = answer.text if answer else ""
    citations = answer.citations if answer else []
    sources = sorted(answer.sources, key=lambda x: x.number) if answer else []
    if item.answerable:
        # answer text against the gold forms; a declined question scores 0 whatever its text
        # A multi-part item needs every part: the gold answer (or a variant) and each `all_of` string.
        parts = [item.golds] + [[extra] for extra in item.all_of]
        s.containment = 0.0 if s.abstained else min(metrics.containment(text, golds) for golds in parts)
        s.f1 = 0.0 if s.abstained else metrics.token_f1(text, item.golds)
        # citations against the gold evidence spans
        all_gold = [span for spans in gold for span in spans]
        cited = [Span(c.article_id, c.start, c.end) for c in citations]
        s.citations = len(cited)
        s.citations_supported = sum(any(metrics.overlap_chars(c, g) for g in all_gold) for c in cited)
        s.evidence = len(gold)
        s.evidence_cited = sum(any(metrics.overlap_chars(c, g) for c in cited for g in spans) for spans in gold)
        # retrieval: the answer's sources, in their numbered order
        s.retrieval_rank = metrics.retrieval_rank([Span(x.article_id, x.start, x.end) for x in sources], all_gold)
    s.confidence = answer.confidence if answer else None
    if answer is not None and not answer.abstained:
        dates = [c.published_at for c in answer.citations]
        if "latest" in item.tags:
            gold_articles = {e.article_id for e in item.evidence}
            s.cites_newest = any(c.article_id in gold_articles for c in answer.citations)
        if "time-sensitive" in item.tags and "timeline" not in item.tags:
            current = answer.current_as_of
            s.states_as_of = current is not None and text.startswith(f"As of {format_date(current)}")
        if "timeline" in item.tags:
            known = [d for d in dates if d is not None]
            s.in_order = known == sorted(known)
    elif answer is not None and "latest" in item.tags:
        s.cites_newest = False
    if "injection" in item.tags:
        s.injection = metrics.injection_failures(
            item.question,
            item.answerable,
            text,
            s.abstained,
            [c.number for c in citations],
            [x.number for x in sources],
            prompt_texts,
            secrets,
        )
    if judgement is not None:
        s.judge_grade = judgement.grade
        s.judge_unsupported = len(judgement.unsupported_citations) if judgement.grade else None
    s.diagnosis = metrics.diagnose(s)
    s.quality = metrics.quality(s)
    return s


@contextmanager
def eval_service(
    settings: Settings,
    article_paths: Sequence[Path],
    embedder: Embedder | None = None,
    progress: Progress | None = None,
) -> Iterator[RagService]:
    """A service on a new temporary, local data directory holding exactly `article_paths`."""
    with tempfile.TemporaryDirectory(prefix="rag-eval-", ignore_cleanup_errors=True) as tmp:
        scoped = settings.model_copy(update={"data_dir": Path(tmp), "chroma_url": None})
        with RagService.open(scoped, embedder) as service:
            done = 0

            def advance(_result: object) -> None:
                nonlocal done
                done += 1
                if progress:
                    progress("ingesting", done, None)

            report = service.ingest_paths(list(article_paths), progress=advance)
            if isinstance(embedder, CachedEmbedder):
                embedder.save()
            if report.failed:
                failed = [f"{r.origin}: {r.reason}" for r in report.results if r.status == "failed"]
                raise DatasetError("some eval articles could not be ingested:\n  " + "\n  ".join(failed[:10]))
            yield service


class ServicePool:
    """One eval service per distinct article set, opened on first use: sets asked over the same haystack share
    one ingest."""

    def __init__(self, settings: Settings, embedder: Embedder | None, progress: Progress | None = None) -> None:
        self.settings = settings
        self.embedder = embedder
        self.progress = progress
        self._stack = ExitStack()
        self._services: dict[tuple[Path, ...], RagService] = {}

    def get(self, articles: Sequence[Path]) -> RagService:
        """The service holding exactly `articles`."""
        key = tuple(articles)
        if key not in self._services:
            self._services[key] = self._stack.enter_context(
                eval_service(self.settings, key, self.embedder, self.progress)
            )
        return self._services[key]

    def __enter__(self) -> ServicePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


def run_items(
    service: RagService,
    items: Sequence[EvalItem],
    articles: dict[str, Any],
    mode: str | None = None,
    judge: Judge | None = None,
    progress: Progress | None = None,
    notes: list[str] | None = None,
) -> list[ItemResult]:
    """Ask every item's question (with its history) and score the answers."""
    prompt_texts = [p.read_text(encoding="utf-8") for p in sorted(PROMPTS_DIR.glob("*.md"))]
    secrets = [
        k
        for k in [service.settings.resolved_llm_key(), *(s.get_secret_value() for s in service.settings.api_keys)]
        if k
    ]
    results = []
    for done, item in enumerate(items, start=1):
        answer, error = None, None
        started = time.perf_counter()
        try:
            answer = service.ask(item.question, history=list(item.history) or None, mode=mode, as_of=item.as_of)
        except RagError as exc:  # scored as a failed item; the run goes on
            error = f"{exc.__class__.__name__}: {exc}"
        latency = (time.perf_counter() - started) * 1000
        judgement = None
        if judge is not None and answer is not None and item.answerable:
            try:
                judgement = judge.grade(item, answer)
            except UpstreamError as exc:  # one unreachable judge should not cost the whole run
                judge = None
                if notes is not None:
                    notes.append(f"LLM judge disabled after an error: {exc}")
        gold = gold_spans(item, articles)
        scores = score_item(
            item, answer, gold, latency, prompt_texts=prompt_texts, secrets=secrets, judgement=judgement
        )
        results.append(ItemResult(item, answer, error, scores, judgement))
        if progress:
            progress("asking", done, len(items))
    return results


def run_set(
    eval_set: EvalSet,
    settings: Settings,
    *,
    mode: str | None = None,
    use_judge: bool | None = None,
    embedder: Embedder | None = None,
    progress: Progress | None = None,
    prepare: Callable[[RagService], None] | None = None,
    pool: ServicePool | None = None,
) -> SetRun:
    """Ingest the set's articles into a fresh service (or take it from `pool`) and run every item; `use_judge`
    None: when an LLM is set.

    `prepare` is called on the service before the first question (tests use it to script the chat model).
    """
    run = SetRun(eval_set)
    if eval_set.missing:
        run.skipped = eval_set.missing
        return run
    items = load_items(eval_set.questions)
    articles = load_articles(eval_set.articles, settings.max_file_bytes)
    validate_against(eval_set.questions, items, articles)
    run.articles = len(articles)
    with ExitStack() as stack:
        if pool is None:
            service = stack.enter_context(eval_service(settings, eval_set.articles, embedder, progress))
        else:
            service = pool.get(eval_set.articles)
        if prepare:
            prepare(service)
        run.mode = service.resolve_mode(mode)
        judge = None
        if use_judge or (use_judge is None and service.engine.chat_model is not None):
            if service.engine.chat_model is None:
                run.notes.append("no LLM is configured, so the LLM judge did not run")
            else:
                judge = Judge(service.chat_model_factory())
        run.results = run_items(service, items, articles, run.mode, judge, progress, run.notes)
    if isinstance(embedder, CachedEmbedder):
        embedder.save()
    return run
