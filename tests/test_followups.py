"""Follow-ups without pollution, through the whole service (extractive mode, no LLM)."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import NEWS, SEEDS, OpenService, write_jsonl

from rag.models import ChatTurn

REPO = Path(__file__).resolve().parent.parent


def standalone_questions(n: int) -> list[str]:
    """Questions of the seed eval set that stand alone (no history, no injection)."""
    questions = []
    for line in (REPO / "evals" / "seed.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        if not item["history"] and "injection" not in item["tags"]:
            questions.append(item["question"])
    return questions[:n]


def test_standalone_questions_in_one_conversation_get_the_answers_they_get_alone(
    open_service: OpenService, tmp_path: Path
) -> None:
    service = open_service(answer_mode="extractive")
    service.ingest_paths([SEEDS, write_jsonl(tmp_path / "news.jsonl", NEWS)])
    questions = standalone_questions(18)
    assert len(questions) >= 15
    alone = [service.ask(q).text for q in questions]
    history: list[ChatTurn] = []
    changed = []
    for question, expected in zip(questions, alone, strict=True):
        answer = service.ask(question, history=history)
        if answer.text != expected:
            changed.append(question)
        history += [ChatTurn(role="user", content=question), ChatTurn(role="assistant", content=answer.text)]
    assert changed == []


def test_a_real_follow_up_still_uses_the_conversation(open_service: OpenService) -> None:
    service = open_service(answer_mode="extractive")
    service.ingest_paths([SEEDS])
    history = [
        ChatTurn(role="user", content="What did Roman Babushkin say about sanctions?"),
        ChatTurn(role="assistant", content="That Russia keeps their possible negative influence in mind."),
    ]
    answer = service.ask("And what did he say about Defexpo?", history=history)
    assert answer.standalone_question.startswith("What did Roman Babushkin say about sanctions?")
    assert not answer.abstained and "Defexpo" in answer.text
