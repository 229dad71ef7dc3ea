"""The optional LLM judge: grades an answer against the gold one and checks each citation (prompts/judge.md)."""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser

from rag.errors import RagError
from rag.evals.dataset import EvalItem
from rag.llm import is_upstream_exception, load_prompt, upstream_error
from rag.models import Answer

PROMPT = "judge"
GRADES = ("correct", "partial", "incorrect")
_OBJECT = re.compile(r"\{.*\}", re.S)


@dataclass(slots=True)
class Judgement:
    """The judge's grade (None when its reply was unreadable), its reason and the citations it rejected."""

    grade: str | None
    reason: str
    unsupported_citations: list[int] = field(default_factory=list)


def prompt_inputs(item: EvalItem, answer: Answer) -> dict[str, str]:
    """The values of the judge prompt's variables, escaped so no field can close its tag."""

    def esc(text: str) -> str:
        return html.escape(text, quote=False)

    gold = item.answer + (f" (also accepted: {'; '.join(item.accepted)})" if item.accepted else "")
    citations = "\n".join(f"[{c.number}] {c.title}: “{c.quote}”" for c in answer.citations) or "(none)"
    return {
        "question": esc(item.question),
        "gold_answer": esc(gold),
        "evidence": esc("\n".join(f"“{e.quote}”" for e in item.evidence)),
        "answer": esc(answer.text),
        "citations": esc(citations),
    }


def parse_judgement(raw: str, citation_numbers: set[int]) -> Judgement:
    """The judge's JSON reply; a reply that cannot be read yields grade None with the reason."""
    match = _OBJECT.search(raw)
    try:
        value: Any = json.loads(match.group(0)) if match else None
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict) or value.get("grade") not in GRADES:
        return Judgement(None, f"unreadable judge reply: {raw.strip()[:120]!r}")
    unsupported = value.get("unsupported_citations") or []
    numbers = [int(n) for n in unsupported if isinstance(n, int | str) and str(n).isdigit()]
    return Judgement(str(value["grade"]), str(value.get("reason", ""))[:500], sorted(set(numbers) & citation_numbers))


class Judge:
    """Grades answers with a chat model; one call per answerable item."""

    def __init__(self, model: BaseChatModel) -> None:
        self.chain = load_prompt(PROMPT) | model | StrOutputParser()

    def grade(self, item: EvalItem, answer: Answer) -> Judgement:
        """Grade one answer (UpstreamError when the model cannot be reached)."""
        try:
            raw = self.chain.invoke(prompt_inputs(item, answer))
        except RagError:
            raise
        except Exception as exc:
            if is_upstream_exception(exc):
                raise upstream_error(exc) from exc
            raise
        return parse_judgement(raw, {c.number for c in answer.citations})
