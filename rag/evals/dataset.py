"""Eval sets: loading and validating items (evals/README.md documents the format), and where the articles are."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.documents import iter_files, read_file
from rag.errors import IngestError, InvalidRequestError
from rag.evals.metrics import Span, find_spans
from rag.models import Article, ChatTurn

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
EVALS_DIR = REPO_ROOT / "evals"
SEEDS_DIR = REPO_ROOT / "seeds"
CORPORA_ENV = "RAG_EVAL_CORPORA_DIR"
WIKINEWS_FILE = "wikinews-en.jsonl"

KEYS = ("id", "question", "history", "answer", "accepted", "evidence", "answerable", "tags")
# Optional keys: `all_of` (more gold strings a multi-part answer must also contain) and `as_of` (the day the
# question is asked on, YYYY-MM-DD).
OPTIONAL_KEYS = ("all_of", "as_of")
# The documented tag vocabulary (evals/README.md); a user's own set may use other tags.
TAGS = frozenset((
    "fact", "who", "what", "when", "where", "how-many", "date", "quote-attribution", "position", "paraphrase",
    "follow-up", "unanswerable", "near-topic", "later-event", "injection", "near-miss", "date-dependent",
    "multi-part", "comparison", "what-next", "amount", "organisation",
    "latest", "time-sensitive", "relative-date", "future-period", "timeline", "window",
))  # fmt: skip
_ERRORS_SHOWN = 10


class DatasetError(InvalidRequestError):
    """An eval file that does not follow the documented format, or that does not match its articles."""


@dataclass(frozen=True, slots=True)
class Evidence:
    """A verbatim quote from an article that supports the gold answer."""

    article_id: str
    quote: str


@dataclass(frozen=True, slots=True)
class EvalItem:
    """One question with its gold answer, evidence and tags."""

    id: str
    question: str
    history: tuple[ChatTurn, ...]
    answer: str
    accepted: tuple[str, ...]
    evidence: tuple[Evidence, ...]
    answerable: bool
    tags: tuple[str, ...]
    all_of: tuple[str, ...] = ()
    as_of: dt.date | None = None

    @property
    def golds(self) -> list[str]:
        """The gold answer and its accepted variants."""
        return [g for g in (self.answer, *self.accepted) if g.strip()]


@dataclass(frozen=True, slots=True)
class EvalSet:
    """Questions and the articles to ingest for them; `missing` says why the set cannot run here."""

    name: str
    questions: Path
    articles: tuple[Path, ...]
    missing: str | None = None


def corpora_dir() -> Path:
    """Where the shared corpora are: $RAG_EVAL_CORPORA_DIR, else ../shared/corpora next to the repository."""
    override = os.environ.get(CORPORA_ENV)
    return Path(override) if override else REPO_ROOT.parent / "shared" / "corpora"


def haystack() -> tuple[tuple[Path, ...], str | None]:
    """The articles the corpus sets are asked over: the seeds plus every corpus file under `corpora_dir()`.

    Retrieval is measured in a haystack, not in the few articles a set asks about: more corpora may arrive there,
    and all of them are read. The second value says why the haystack is missing, when it is.
    """
    folder = corpora_dir()
    files = sorted(folder.glob("*.jsonl")) if folder.is_dir() else []
    if not files:
        return (SEEDS_DIR,), f"no corpus is at {folder} (set {CORPORA_ENV} to the folder holding {WIKINEWS_FILE})"
    return (*files, SEEDS_DIR), None


# Sets asked over the haystack, and the corpus each one's questions are about (the set cannot run without it).
WCEP_FILE = "wcep-2025-2026.jsonl"
CORPUS_SETS = {"wikinews": (WIKINEWS_FILE,), "reader": (WIKINEWS_FILE,), "time": (WIKINEWS_FILE, WCEP_FILE)}


def builtin_sets(name: str) -> list[EvalSet]:
    """The committed sets for `--set seed|wikinews|reader|time|all`."""
    sets = {"seed": EvalSet("seed", EVALS_DIR / "seed.jsonl", (SEEDS_DIR,))}
    articles, missing = haystack()
    for set_name, needed in CORPUS_SETS.items():
        questions = EVALS_DIR / f"{set_name}.jsonl"
        if not questions.is_file():
            continue
        why = missing
        absent = [f for f in needed if not (corpora_dir() / f).is_file()]
        if why is None and absent:
            why = f"the corpus {', '.join(absent)} is not in {corpora_dir()}"
        sets[set_name] = EvalSet(set_name, questions, articles, why)
    if name == "all":
        return list(sets.values())
    if name not in sets:
        raise InvalidRequestError(f"unknown eval set '{name}': use {', '.join(sets)} or all")
    return [sets[name]]


def load_items(path: Path) -> list[EvalItem]:
    """Read and validate a JSON Lines eval file; every problem is reported with its line number."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read the eval file ({exc.strerror})") from None
    items: list[EvalItem] = []
    problems: list[str] = []
    seen: set[str] = set()
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = parse_item(json.loads(line))
        except (json.JSONDecodeError, ValueError) as exc:
            problems.append(f"line {lineno}: {exc}")
            continue
        if item.id in seen:
            problems.append(f"line {lineno}: duplicate id '{item.id}'")
        seen.add(item.id)
        items.append(item)
    if not items and not problems:
        problems.append("no items")
    _raise(path, problems)
    return items


def parse_item(value: Any) -> EvalItem:
    """One item from its JSON object (ValueError saying what is wrong)."""
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    missing, extra = set(KEYS) - set(value), set(value) - set(KEYS) - set(OPTIONAL_KEYS)
    if missing or extra:
        raise ValueError(
            f"keys must be {', '.join(KEYS)}, optionally {', '.join(OPTIONAL_KEYS)}"
            f" (missing {sorted(missing)}, extra {sorted(extra)})"
        )
    _expect(value, "id", str)
    _expect(value, "question", str)
    _expect(value, "answer", str)
    _expect(value, "answerable", bool)
    for name in ("history", "accepted", "evidence", "tags"):
        _expect(value, name, list)
    if not value["id"].strip() or not value["question"].strip():
        raise ValueError("'id' and 'question' must not be empty")
    try:
        history = tuple(ChatTurn.model_validate(t) for t in value["history"])
        evidence = tuple(Evidence(str(e["article_id"]), str(e["quote"])) for e in value["evidence"])
    except (TypeError, KeyError, ValueError) as exc:
        raise ValueError(f"{value['id']}: bad 'history' or 'evidence' entry ({exc.__class__.__name__})") from None
    all_of = value.get("all_of", [])
    if not isinstance(all_of, list) or not all(isinstance(a, str) and a.strip() for a in all_of):
        raise ValueError(f"{value['id']}: 'all_of' must be a list of non-empty strings")
    as_of = None
    if value.get("as_of") is not None:
        try:
            as_of = dt.date.fromisoformat(str(value["as_of"]))
        except ValueError:
            raise ValueError(f"{value['id']}: 'as_of' must be a date, YYYY-MM-DD") from None
    item = EvalItem(
        id=value["id"],
        question=value["question"],
        history=history,
        answer=value["answer"],
        accepted=tuple(str(a) for a in value["accepted"]),
        evidence=evidence,
        answerable=value["answerable"],
        tags=tuple(str(t) for t in value["tags"]),
        all_of=tuple(all_of),
        as_of=as_of,
    )
    if item.answerable and not (item.golds and item.evidence):
        raise ValueError(f"{item.id}: an answerable item needs an 'answer' and 'evidence'")
    if not item.answerable and (item.golds or item.evidence or item.all_of):
        raise ValueError(f"{item.id}: an unanswerable item has an empty 'answer', 'accepted' and 'evidence'")
    return item


def _expect(value: dict[str, Any], name: str, kind: type) -> None:
    if not isinstance(value[name], kind):
        raise ValueError(f"'{name}' must be a {kind.__name__}")


def load_articles(paths: Sequence[Path], max_bytes: int = 10_000_000) -> dict[str, Article]:
    """The articles the service will ingest, parsed the same way, by id."""
    articles: dict[str, Article] = {}
    problems: list[str] = []
    for path, root in iter_files(paths):
        if not path.exists():
            problems.append(f"{path}: no such file or folder")
            continue
        for parsed in read_file(path, root, max_bytes=max_bytes):
            if isinstance(parsed, IngestError):
                problems.append(str(parsed))
            else:
                articles[parsed.id] = parsed
    _raise(Path(", ".join(str(p) for p in paths)), problems)
    return articles


def gold_spans(item: EvalItem, articles: dict[str, Article]) -> list[list[Span]]:
    """For each evidence quote, every place it occurs in its article (empty when it does not)."""
    out = []
    for e in item.evidence:
        article = articles.get(e.article_id)
        out.append(find_spans(e.article_id, article.text, e.quote) if article else [])
    return out


def check_evidence(items: Iterable[EvalItem], articles: dict[str, Article]) -> list[str]:
    """Problems that make gold evidence unusable: unknown articles and quotes not verbatim in theirs."""
    problems = []
    for item in items:
        for e, spans in zip(item.evidence, gold_spans(item, articles), strict=True):
            if e.article_id not in articles:
                problems.append(f"{item.id}: cites article '{e.article_id}', which is not among the articles")
            elif not spans:
                problems.append(f"{item.id}: quote is not verbatim in {e.article_id}: {e.quote[:80]!r}")
    return problems


def validate_against(path: Path, items: Sequence[EvalItem], articles: dict[str, Article]) -> None:
    """Raise DatasetError when some item's evidence does not match the articles."""
    _raise(path, check_evidence(items, articles))


def _raise(path: Path, problems: Sequence[str]) -> None:
    if problems:
        more = f"\n  ... and {len(problems) - _ERRORS_SHOWN} more" if len(problems) > _ERRORS_SHOWN else ""
        raise DatasetError(f"{path}:\n  " + "\n  ".join(problems[:_ERRORS_SHOWN]) + more)
