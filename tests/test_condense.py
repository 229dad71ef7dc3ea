"""Follow-ups without pollution: history is used only when the question needs it (rag/condense.py)."""

from __future__ import annotations

import pytest

from rag.condense import accept_rewrite, condense_locally, needs_context
from rag.llm import prompt_text
from rag.models import ChatTurn

HISTORY = [
    ChatTurn(role="user", content="What did Babushkin say about sanctions?"),
    ChatTurn(role="assistant", content="That they would not affect the S-400 deal [1]."),
]


@pytest.mark.parametrize(
    "question",
    [
        "What did he say about defence?",
        "And about defence?",
        "What about Germany?",
        "How old is she?",
        "Why?",
        "When did it happen?",
    ],
)
def test_follow_ups_take_the_previous_question(question: str) -> None:
    assert needs_context(question)
    assert condense_locally(question, HISTORY).startswith("What did Babushkin say about sanctions?")


@pytest.mark.parametrize(
    "question",
    [
        "How many people died in the fire on the dive boat Conception?",
        "How much did it cost to build the Tesla factory in Berlin?",
        "Who won the 2019 Rugby World Cup?",
        "What did Boris Johnson say about the prorogation of Parliament?",
        "When was the Notre-Dame fire?",
    ],
)
def test_standalone_questions_are_asked_as_they_are(question: str) -> None:
    assert not needs_context(question)
    assert condense_locally(question, HISTORY) == question


def test_a_rewrite_must_keep_the_readers_names_and_not_copy_the_prompt() -> None:
    prompt = prompt_text("condense")
    question = "What did Babushkin say about Defexpo?"
    assert accept_rewrite(question, "What did Roman Babushkin say about Defexpo 2022?", prompt)
    assert not accept_rewrite(question, "What did he say about the arms fair?", prompt)  # lost the names
    copied = "Replace pronouns and references with the names and things they refer to in the conversation"
    assert not accept_rewrite("What did he say?", copied, prompt)
    assert not accept_rewrite("What did he say?", "", prompt)
