"""Comparing two runs (or a run and a baseline): metric by metric, and the items that started or stopped failing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rag.evals.dataset import DatasetError
from rag.evals.metrics import HEADLINE
from rag.evals.report import CHART_METRICS, baseline_metrics, load_json, status


def resolve_run(ref: str, runs_dir: Path) -> Path:
    """A run folder, a summary/baseline JSON file, a folder name under `runs_dir`, or `latest`."""
    if ref == "latest":
        runs = sorted(p for p in runs_dir.glob("*") if (p / "summary.json").is_file()) if runs_dir.is_dir() else []
        if not runs:
            raise DatasetError(f"no runs in {runs_dir} yet: run `rag eval` first")
        return runs[-1]
    for candidate in (Path(ref), runs_dir / ref):
        if (candidate / "summary.json").is_file() or (candidate.is_file() and candidate.suffix == ".json"):
            return candidate
    raise DatasetError(
        f"'{ref}' is neither a run folder (with summary.json), a JSON summary or baseline, nor a run in {runs_dir}"
    )


def load_run(path: Path) -> tuple[dict[str, Any], dict[tuple[str, str], str]]:
    """(summary or baseline, diagnosis per (set, item id) when the run has results.jsonl)."""
    summary = load_json(path / "summary.json" if path.is_dir() else path) or {}
    diagnoses: dict[tuple[str, str], str] = {}
    results = path / "results.jsonl"
    if path.is_dir() and results.is_file():
        for line in results.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            diagnoses[(row["set"], row["id"])] = row["scores"]["diagnosis"]
    return summary, diagnoses


def compare_runs(a_path: Path, b_path: Path) -> dict[str, Any]:
    """Every metric of every set in either run, A then B, with the change; items fixed and broken from A to B."""
    a, a_items = load_run(a_path)
    b, b_items = load_run(b_path)
    out: dict[str, Any] = {"a": str(a_path), "b": str(b_path), "mode": [a.get("mode"), b.get("mode")], "sets": {}}
    for name in dict.fromkeys([*a.get("sets", {}), *b.get("sets", {})]):
        ma, mb = baseline_metrics(a, name), baseline_metrics(b, name)
        if not ma or not mb:
            out["sets"][name] = {"metrics": [], "fixed": [], "broken": [], "note": f"only {'A' if ma else 'B'} has it"}
            continue
        rows = []
        for metric in dict.fromkeys([*ma, *mb]):
            va, vb = ma.get(metric), mb.get(metric)
            if not isinstance(va, int | float | None) or not isinstance(vb, int | float | None):
                continue
            rows.append(
                {
                    "metric": metric,
                    "headline": metric in HEADLINE,
                    "a": va,
                    "b": vb,
                    "delta": round(vb - va, 4) if va is not None and vb is not None else None,
                    "status": status(metric, vb, va) if metric in HEADLINE or metric in CHART_METRICS else "",
                }
            )
        ids = sorted({i for s, i in [*a_items, *b_items] if s == name})
        fixed, broken = [], []
        for item_id in ids:
            da, db = a_items.get((name, item_id)), b_items.get((name, item_id))
            if da is None or db is None:
                continue
            if not da.startswith("ok") and db.startswith("ok"):
                fixed.append({"id": item_id, "was": da})
            elif da.startswith("ok") and not db.startswith("ok"):
                broken.append({"id": item_id, "now": db})
        out["sets"][name] = {"metrics": rows, "fixed": fixed, "broken": broken}
    return out
