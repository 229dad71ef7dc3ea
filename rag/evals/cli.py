"""`rag eval`: run eval sets against the service, compare runs, check and update the baseline."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from rag.errors import InvalidRequestError, RagError
from rag.evals.dataset import EVALS_DIR, EvalSet, builtin_sets
from rag.evals.metrics import CHECK_MARGIN, HEADLINE
from rag.evals.report import baseline_metrics, delta, fmt, status
from rag.evals.runner import Progress, SetRun

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)

_SHOWN = (
    *HEADLINE,
    "answer_f1",
    "judge_score",
    "citation_recall",
    "judged_citation_precision",
    "retrieval_recall_at_1",
    "retrieval_mrr",
    "abstention_precision",
    "latency_p50_ms",
    "latency_p95_ms",
)
_STYLE = {"better": "green", "worse": "yellow", "REGRESSION": "bold red"}


def register(app: typer.Typer) -> None:
    """Add the `eval` command to the `rag` app."""
    app.command("eval")(eval_command)


def eval_command(
    set_name: Annotated[str, typer.Option("--set", help="Committed set to run: seed, wikinews or all.")] = "all",
    articles: Annotated[
        list[Path] | None, typer.Option("--articles", help="Your articles (repeat for several files or folders).")
    ] = None,
    questions: Annotated[
        Path | None, typer.Option("--questions", help="Your questions (JSON Lines, see evals/README.md).")
    ] = None,
    mode: Annotated[str | None, typer.Option("--mode", help="extractive | llm (default: as configured).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary (or comparison) as JSON.")] = False,
    compare: Annotated[
        tuple[str, str] | None,
        typer.Option(
            "--compare", metavar="RUN_A RUN_B", help="Compare two runs (folders, names, 'latest' or a baseline file)."
        ),
    ] = None,
    baseline: Annotated[Path, typer.Option("--baseline", help="Baseline scores to compare with.")] = EVALS_DIR
    / "baseline.json",
    check: Annotated[
        bool,
        typer.Option("--check", help=f"Exit 1 if a headline metric is below the baseline by more than {CHECK_MARGIN}."),
    ] = False,
    update_baseline: Annotated[
        bool, typer.Option("--update-baseline", help="Write this run's scores to the baseline (extractive mode).")
    ] = False,
    judge: Annotated[
        bool | None, typer.Option("--judge/--no-judge", help="LLM judge (default: on when an LLM is configured).")
    ] = None,
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Where run folders are written.")] = EVALS_DIR / "runs",
) -> None:
    """Score answers, citations, retrieval and abstention on an eval set; compare with the baseline."""
    from rag.cli import _EXIT

    try:
        if compare:
            _compare(compare, runs_dir, as_json)
            return
        code = _run(set_name, articles, questions, mode, as_json, baseline, check, update_baseline, judge, runs_dir)
    except RagError as exc:
        err.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(next((c for t, c in _EXIT.items() if isinstance(exc, t)), 1)) from None
    if code:
        raise typer.Exit(code)


def _sets(set_name: str, articles: list[Path] | None, questions: Path | None) -> list[EvalSet]:
    if questions is None and not articles:
        return builtin_sets(set_name)
    if questions is None or not articles:
        raise InvalidRequestError("--articles and --questions go together: your articles and the questions about them")
    return [EvalSet(questions.stem, questions, tuple(articles))]


def _run(
    set_name: str,
    articles: list[Path] | None,
    questions: Path | None,
    mode: str | None,
    as_json: bool,
    baseline_path: Path,
    check: bool,
    update: bool,
    judge: bool | None,
    runs_dir: Path,
) -> int:
    from rag.config import Settings
    from rag.embeddings import make_embedder
    from rag.evals.cache import CachedEmbedder
    from rag.evals.report import baseline_from, build_summary, load_json, new_run_id, regressions, write_run
    from rag.evals.runner import ServicePool, run_set

    if mode not in (None, "extractive", "llm"):
        raise InvalidRequestError(f"unknown mode '{mode}': use extractive or llm")
    sets = _sets(set_name, articles, questions)
    settings = Settings()
    runnable = [s for s in sets if not s.missing]
    # Cached vectors: the haystack is the same texts from run to run (rag/evals/cache.py).
    embedder = CachedEmbedder(make_embedder(settings)) if runnable else None
    runs: list[SetRun] = []
    with (
        _progress(enabled=sys.stderr.isatty() and not as_json) as progress_for,
        ServicePool(settings, embedder, progress_for("articles")) as pool,
    ):
        for eval_set in sets:
            run = run_set(
                eval_set,
                settings,
                mode=mode,
                use_judge=judge,
                embedder=embedder,
                progress=progress_for(eval_set.name),
                pool=pool,
            )
            if run.skipped:
                err.print(f"{eval_set.name}: skipped: {run.skipped}")
            runs.append(run)
    if not any(r.results for r in runs):
        err.print("nothing to evaluate: no set could run here")
        return 0

    baseline = load_json(baseline_path)
    run_id = new_run_id()
    summary = build_summary(runs, run_id, settings, embedder.name if embedder else "")
    paths = write_run(runs_dir / run_id, runs, summary, baseline)
    if as_json:
        out.print_json(json.dumps(summary))
    else:
        _print_tables(summary, baseline)
        err.print(f"report: {paths['report.md']}  (results.jsonl, summary.json, chart.png beside it)")

    code = 0
    if check:
        code = _check(summary, baseline, baseline_path, regressions)
    if update and code:
        err.print("baseline not updated: the check failed")
    if update and code == 0:
        if summary["mode"] != "extractive":
            raise InvalidRequestError("the baseline holds extractive-mode scores: run with --mode extractive")
        baseline_path.write_text(json.dumps(baseline_from(summary, baseline), indent=2) + "\n", encoding="utf-8")
        err.print(f"baseline updated: {baseline_path}")
    return code


def _check(summary: dict[str, Any], baseline: dict[str, Any] | None, path: Path, regressions: Any) -> int:
    if baseline is None:
        raise InvalidRequestError(f"no baseline at {path}: write one with `rag eval --update-baseline`")
    if baseline.get("mode") != summary["mode"]:
        err.print(
            f"[yellow]note:[/yellow] this run is in {summary['mode']} mode, the baseline in {baseline.get('mode')} mode"
        )
    found: list[str] = regressions(summary, baseline)
    for message in found:
        err.print(f"[bold red]regression[/bold red] {message}")
    if not found:
        err.print(f"check passed: no headline metric is more than {CHECK_MARGIN} below the baseline")
    return 1 if found else 0


@contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
    """A function giving each set its progress callback; a rich bar on a terminal, silent otherwise."""
    from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar

    with Bar(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, disable=not enabled, transient=True,
    ) as bar:  # fmt: skip
        tasks: dict[str, TaskID] = {}

        def progress_for(set_name: str) -> Progress:
            def update(stage: str, done: int, total: int | None) -> None:
                key = f"{set_name}: {stage}"
                if key not in tasks:
                    tasks[key] = bar.add_task(key, total=total)
                bar.update(tasks[key], completed=done, total=total)

            return update

        yield progress_for


def _print_tables(summary: dict[str, Any], baseline: dict[str, Any] | None) -> None:
    for name, data in summary["sets"].items():
        if "metrics" not in data:
            continue
        m, base = data["metrics"], baseline_metrics(baseline, name)
        table = Table(title=f"{name}: {m['items']} items, {data['mode']} mode", title_justify="left")
        for column in ("metric", "value", "baseline", "Δ", ""):
            table.add_column(column, justify="left" if column in ("metric", "") else "right")
        for metric in _SHOWN:
            value, ref = m.get(metric), base.get(metric)
            if value is None and ref is None:
                continue
            flag = status(metric, value, ref)
            label = metric + (" *" if metric in HEADLINE else "")
            table.add_row(
                label,
                fmt(value, "–"),
                fmt(ref, "–"),
                delta(value, ref),
                f"[{_STYLE.get(flag, '')}]{flag}[/]" if flag else "",
            )
        out.print(table)
        out.print(f"[dim]* headline metric, checked with --check (margin {CHECK_MARGIN}). "
                  f"Diagnoses: {', '.join(f'{k} {v}' for k, v in data['diagnoses'].items())}[/dim]\n")  # fmt: skip


def _compare(refs: tuple[str, str], runs_dir: Path, as_json: bool) -> None:
    from rag.evals.compare import compare_runs, resolve_run

    result = compare_runs(resolve_run(refs[0], runs_dir), resolve_run(refs[1], runs_dir))
    if as_json:
        out.print_json(json.dumps(result))
        return
    out.print(f"A: {result['a']}  ({result['mode'][0]})\nB: {result['b']}  ({result['mode'][1]})")
    for name, data in result["sets"].items():
        if data.get("note"):
            out.print(f"{name}: {data['note']}")
            continue
        table = Table(title=name, title_justify="left")
        for column in ("metric", "A", "B", "Δ", ""):
            table.add_column(column, justify="left" if column in ("metric", "") else "right")
        for row in data["metrics"]:
            flag = row["status"]
            label = row["metric"] + (" *" if row["headline"] else "")
            table.add_row(label, fmt(row["a"], "–"), fmt(row["b"], "–"), delta(row["b"], row["a"]),
                          f"[{_STYLE.get(flag, '')}]{flag}[/]" if flag else "")  # fmt: skip
        out.print(table)
        if data["fixed"]:
            out.print("now passing: " + ", ".join(f"{x['id']} (was {x['was']})" for x in data["fixed"]))
        if data["broken"]:
            out.print("now failing: " + ", ".join(f"{x['id']} ({x['now']})" for x in data["broken"]))
