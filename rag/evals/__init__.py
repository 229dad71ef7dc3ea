"""Evals: score the service's answers, citations, retrieval and abstention on hand-written question sets.

dataset (items and articles) -> runner (a fresh service, every item through `ask`) -> metrics (per item, per
set, per tag) -> report (run folder, baseline) -> compare; `cli` is `rag eval`, `judge` the optional LLM grader.
"""
