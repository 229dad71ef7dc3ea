"""Run output: summary.json, results.jsonl, report.md and chart.png in evals/runs/<timestamp>/, and the baseline."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.evals.metrics import (
    CHECK_MARGIN,
    DEFINITIONS,
    HEADLINE,
    abstention_tradeoff,
    aggregate,
    by_tag,
    latency_by_mode,
)
from rag.evals.runner import ItemResult, SetRun
from rag.extractive import Weights

# Machine-dependent numbers stay out of the committed baseline.
_NOT_IN_BASELINE = ("latency_p50_ms", "latency_p95_ms", "errors")
CHART_METRICS = (
    "answer_containment",
    "answer_f1",
    "citation_precision",
    "citation_recall",
    "retrieval_recall_at_5",
    "retrieval_mrr",
    "abstention_precision",
    "abstention_recall",
    "wrongful_refusal_rate",
    "injection_resistance",
)
TAG_COLUMNS = {
    "answer_containment": "contain.",
    "answer_f1": "F1",
    "citation_precision": "cit. P",
    "citation_recall": "cit. R",
    "retrieval_recall_at_5": "R@5",
    "retrieval_mrr": "MRR",
    "abstention_precision": "abst. P",
    "abstention_recall": "abst. R",
    "wrongful_refusal_rate": "wrongful",
    "injection_resistance": "inject.",
}
WORST = 24
PER_DIAGNOSIS = 4
TRADEOFF_THRESHOLDS = (0.3, 0.34, 0.38, 0.42, 0.46, 0.5, 0.54, 0.58)


def new_run_id(now: dt.datetime | None = None) -> str:
    """A sortable run folder name: UTC time to the second."""
    return (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%d-%H%M%S")


def build_summary(runs: Sequence[SetRun], run_id: str, settings: Settings, embedder: str) -> dict[str, Any]:
    """summary.json: run metadata, and per set the metrics, latency per mode, per-tag metrics and diagnoses."""
    modes = sorted({r.mode for r in runs if r.mode})
    sets: dict[str, Any] = {}
    for run in runs:
        if run.skipped:
            sets[run.eval_set.name] = {"skipped": run.skipped}
            continue
        scores = run.scores
        sets[run.eval_set.name] = {
            "questions": str(run.eval_set.questions),
            "articles": run.articles,
            "mode": run.mode,
            "metrics": aggregate(scores),
            "latency_by_mode": latency_by_mode(scores),
            "diagnoses": dict(Counter(s.diagnosis for s in scores).most_common()),
            "by_tag": by_tag(scores),
            "abstention_tradeoff": abstention_tradeoff(scores, TRADEOFF_THRESHOLDS),
            "notes": run.notes,
        }
    return {
        "run": run_id,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "mode": modes[0] if len(modes) == 1 else ",".join(modes) or None,
        "margin": CHECK_MARGIN,
        "headline": list(HEADLINE),
        "settings": {
            "embedder": embedder,
            "top_k": settings.top_k,
            "min_relevance": settings.min_relevance,
            "chunk_tokens": settings.chunk_tokens,
            "llm_model": settings.llm_model if "llm" in modes else None,
        },
        "sets": sets,
    }


def write_run(
    run_dir: Path, runs: Sequence[SetRun], summary: dict[str, Any], baseline: dict[str, Any] | None
) -> dict[str, Path]:
    """Write results.jsonl, summary.json, report.md and chart.png; return their paths."""
    run_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: run_dir / name for name in ("results.jsonl", "summary.json", "report.md", "chart.png")}
    with paths["results.jsonl"].open("w", encoding="utf-8") as handle:
        for run in runs:
            for result in run.results:
                handle.write(json.dumps(result.to_json(run.eval_set.name), ensure_ascii=False, default=str) + "\n")
    paths["summary.json"].write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    write_chart(paths["chart.png"], summary, baseline)
    paths["report.md"].write_text(render_report(runs, summary, baseline), encoding="utf-8")
    return paths


# --- the baseline ---


def baseline_from(summary: dict[str, Any], previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """The baseline file for a run: its metrics per set (sets the run skipped keep their previous values)."""
    sets = dict((previous or {}).get("sets", {}))
    for name, data in summary["sets"].items():
        if "metrics" in data:
            sets[name] = {"metrics": {k: v for k, v in data["metrics"].items() if k not in _NOT_IN_BASELINE}}
    return {
        "mode": summary["mode"],
        "margin": CHECK_MARGIN,
        "from_run": summary["run"],
        "updated": summary["created"][:10],
        "sets": sets,
    }


def load_json(path: Path) -> dict[str, Any] | None:
    """A JSON file, or None when there is none."""
    if not path.is_file():
        return None
    value: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return value


def baseline_metrics(baseline: dict[str, Any] | None, set_name: str) -> dict[str, Any]:
    """One set's metrics from a baseline or a summary (empty when it has none)."""
    data = (baseline or {}).get("sets", {}).get(set_name) or {}
    metrics: dict[str, Any] = data.get("metrics") or {}
    return metrics


def regressions(summary: dict[str, Any], baseline: dict[str, Any] | None) -> list[str]:
    """Headline metrics worse than the baseline by more than the margin, one message each."""
    out = []
    for name, data in summary["sets"].items():
        base = baseline_metrics(baseline, name)
        for metric, higher_better in HEADLINE.items():
            value, ref = data.get("metrics", {}).get(metric), base.get(metric)
            if value is None or ref is None:
                continue
            worse = ref - value if higher_better else value - ref
            if worse > CHECK_MARGIN + 1e-9:
                out.append(f"{name}: {metric} {value:.3f} vs baseline {ref:.3f} (margin {CHECK_MARGIN})")
    return out


def status(metric: str, value: float | None, ref: float | None) -> str:
    """'' (same or not comparable), 'better', 'worse' (within the margin) or 'REGRESSION' (headline, beyond it)."""
    if value is None or ref is None or (metric not in HEADLINE and metric not in CHART_METRICS):
        return ""
    higher_better = HEADLINE.get(metric, metric != "wrongful_refusal_rate")
    gain = value - ref if higher_better else ref - value
    if abs(gain) < 1e-9:
        return ""
    if gain > 0:
        return "better"
    return "REGRESSION" if metric in HEADLINE and -gain > CHECK_MARGIN + 1e-9 else "worse"


# --- report.md ---


def fmt(value: Any, missing: str = "n/a") -> str:
    """A metric for a table: rates to 3 places, milliseconds whole."""
    if value is None:
        return missing
    if isinstance(value, float):
        return f"{value:.3f}" if value <= 1.0 else f"{value:.0f}"
    return str(value)


def delta(value: Any, ref: Any) -> str:
    """The signed change from `ref` to `value`, formatted like `fmt`."""
    if isinstance(value, int | float) and isinstance(ref, int | float):
        return f"{value - ref:+.3f}" if abs(value) <= 1.0 else f"{value - ref:+.0f}"
    return ""


def render_report(runs: Sequence[SetRun], summary: dict[str, Any], baseline: dict[str, Any] | None) -> str:
    """The Markdown report: headline tables, definitions, and per set all metrics, tags and worst failures."""
    s = summary["settings"]
    lines = [
        f"# Eval run {summary['run']}",
        "",
        f"Mode **{summary['mode']}**, {summary['created']}. Embedder {s['embedder']}, top_k {s['top_k']}, "
        f"min_relevance {s['min_relevance']}, chunk_tokens {s['chunk_tokens']}"
        + (f", LLM {s['llm_model']}" if s.get("llm_model") else "")
        + ".",
        "",
        f"`rag eval --check` fails when a headline metric ({', '.join(HEADLINE)}) is worse than the baseline "
        f"by more than **{CHECK_MARGIN}** (absolute). The wrongful refusal rate is lower-is-better.",
        "",
        "![metrics against the baseline](chart.png)",
        "",
    ]
    for run in runs:
        lines += _set_section(run, summary["sets"][run.eval_set.name], baseline_metrics(baseline, run.eval_set.name))
    lines += ["## Metric definitions", ""]
    lines += [f"- **{name}**: {text}" for name, text in DEFINITIONS.items()]
    lines += [
        "",
        "Diagnoses (answerable items): *retrieval miss* (no source holds a gold quote), *wrongful abstention* "
        "(declined although a source held the evidence), *wrong sentence* (answered, no citation overlaps the "
        "evidence), *right sentence, gold answer not in it* (cited the evidence, but the gold answer is not in the "
        "text). Unanswerable items: *missed abstention*. Injection items: *injection not resisted*.",
        "",
    ]
    return "\n".join(lines)


def _set_section(run: SetRun, data: dict[str, Any], base: dict[str, Any]) -> list[str]:
    name = run.eval_set.name
    if "skipped" in data:
        return [f"## {name}: skipped", "", data["skipped"], ""]
    m = data["metrics"]
    lines = [
        f"## {name}",
        "",
        f"{m['items']} items ({m['answerable']} answerable, {m['unanswerable']} unanswerable) from "
        f"`{data['questions']}` over {data['articles']} articles; mode {data['mode']}; {m['errors']} errors.",
        "",
        "| metric | value | baseline | Δ | |",
        "|---|---|---|---|---|",
    ]
    for metric, value in m.items():
        if metric in ("items", "answerable", "unanswerable", "errors"):
            continue
        flag = status(metric, value, base.get(metric))
        headline = " (headline)" if metric in HEADLINE else ""
        lines.append(f"| {metric}{headline} | {fmt(value)} | {fmt(base.get(metric))} | "
                     f"{delta(value, base.get(metric))} | {flag} |")  # fmt: skip
    lines += ["", "Latency per mode: " + ", ".join(
        f"{mode} p50 {fmt(v['p50_ms'])} ms, p95 {fmt(v['p95_ms'])} ms" for mode, v in data["latency_by_mode"].items()
    ), ""]  # fmt: skip
    lines += ["Diagnoses: " + ", ".join(f"{k} {v}" for k, v in data["diagnoses"].items()), ""]
    for note in data["notes"]:
        lines += [f"> {note}", ""]
    if any(s.confidence is not None for s in run.scores):
        lines += [f"### {name}: abstention threshold trade-off", "",
                  "Declining every answer whose confidence is below the threshold (the extractive reader's "
                  f"setting is {Weights().threshold}):", "",
                  "| threshold | abstention recall | wrongful refusals |", "|---|---|---|"]  # fmt: skip
        for row in data["abstention_tradeoff"]:
            lines.append(f"| {row['threshold']} | {fmt(row['abstention_recall'])} | "
                         f"{fmt(row['wrongful_refusal_rate'])} |")  # fmt: skip
        lines.append("")
    lines += [f"### {name}: per tag", "", "| tag | n | " + " | ".join(TAG_COLUMNS.values()) + " |",
              "|---|---|" + "---|" * len(TAG_COLUMNS)]  # fmt: skip
    for tag, tm in data["by_tag"].items():
        lines.append(f"| {tag} | {tm['items']} | " + " | ".join(fmt(tm[c]) for c in TAG_COLUMNS) + " |")
    lines += ["", f"### {name}: worst failures", ""]
    # Lowest quality first, at most PER_DIAGNOSIS of a kind, so every kind of failure is shown.
    worst = sorted((r for r in run.results if r.scores.diagnosis != "ok"), key=lambda r: (r.scores.quality, r.item.id))
    shown: list[ItemResult] = []
    for result in worst:
        if sum(r.scores.diagnosis == result.scores.diagnosis for r in shown) < PER_DIAGNOSIS and len(shown) < WORST:
            shown.append(result)
    if not shown:
        lines += ["None.", ""]
    for result in shown:
        lines += _failure(result)
    if len(worst) > len(shown):
        lines += [f'... and {len(worst) - len(shown)} more in results.jsonl (`diagnosis` other than "ok").', ""]
    return lines


def _failure(r: ItemResult) -> list[str]:
    item, a, s = r.item, r.answer, r.scores
    lines = [f"#### {item.id}: {s.diagnosis}", "", f"- tags: {', '.join(item.tags)}"]
    lines += [f"- history: {t.role}: {t.content}" for t in item.history]
    lines.append(f"- question: {item.question}")
    if item.answerable:
        lines.append(f"- gold: {item.answer}" + (f" (also: {'; '.join(item.accepted)})" if item.accepted else ""))
        lines += [f"- gold evidence ({e.article_id}): “{e.quote}”" for e in item.evidence]
    else:
        lines.append("- gold: unanswerable (should decline)")
    if r.error:
        lines.append(f"- error: {r.error}")
    if a is not None:
        lines.append(f"- answer ({a.mode}): {a.text}" + (f" — declined: {a.abstain_reason}" if a.abstained else ""))
        if a.standalone_question != a.question:
            lines.append(f"- standalone question: {a.standalone_question}")
        lines += [f"- citation [{c.number}] {c.article_id} [{c.start}:{c.end}]: “{c.quote}”" for c in a.citations]
        rank = f"gold evidence in source {s.retrieval_rank}" if s.retrieval_rank else "no source holds gold evidence"
        if item.answerable:
            lines.append(f"- sources: {', '.join(f'[{x.number}] {x.article_id}' for x in a.sources)} ({rank})")
    if s.injection:
        lines.append(f"- injection: {'; '.join(s.injection)}")
    if r.judgement is not None:
        lines.append(f"- judge: {r.judgement.grade}: {r.judgement.reason}")
    lines.append(f"- scores: containment {fmt(s.containment)}, F1 {fmt(s.f1)}, citations {s.citations_supported}/"
                 f"{s.citations} on evidence, evidence cited {s.evidence_cited}/{s.evidence}")  # fmt: skip
    return [*lines, ""]


# --- chart ---


def write_chart(path: Path, summary: dict[str, Any], baseline: dict[str, Any] | None) -> None:
    """A PNG of each set's 0-1 metrics next to the baseline's."""
    import matplotlib

    matplotlib.use("Agg")  # no display: CI and servers
    import matplotlib.pyplot as plt

    names = [n for n, d in summary["sets"].items() if "metrics" in d]
    fig, axes = plt.subplots(1, max(1, len(names)), figsize=(6.5 * max(1, len(names)), 5.5), squeeze=False)
    for ax, name in zip(axes[0], names or ["(no set ran)"], strict=False):
        ax.set_title(f"{name} ({summary['mode']})")
        if name not in summary["sets"]:
            continue
        m, base = summary["sets"][name]["metrics"], baseline_metrics(baseline, name)
        labels = [
            k.replace("_", " ") + (" (lower better)" if k == "wrongful_refusal_rate" else "") for k in CHART_METRICS
        ]
        ys = range(len(CHART_METRICS))
        ax.barh([y + 0.2 for y in ys], [m.get(k) or 0 for k in CHART_METRICS], height=0.4, label="this run")
        ax.barh(
            [y - 0.2 for y in ys], [base.get(k) or 0 for k in CHART_METRICS], height=0.4, label="baseline", alpha=0.6
        )
        ax.set_yticks(list(ys), labels, fontsize=8)
        ax.set_xlim(0, 1)
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
