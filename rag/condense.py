"""Follow-up questions: when a question needs the conversation, and how a rewritten question is checked.

A reader asks many stand-alone questions in one conversation. Prepending the previous question to every one of
them changes what is retrieved and answered, so history is used only when the question cannot stand alone: it
leans on a pronoun with nothing named to resolve it, it is an ellipsis ("And in 2019?", "What about Germany?"),
or it is too short to search for.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.models import ChatTurn

_LEADING = re.compile(
    r"^\s*(?:and|but|also|so|then|what about|how about|what else|anything else|why not|and what|same for|"
    r"what happened next|what happened after(?:wards)?|after that|and then)\b",
    re.I,
)
_PRONOUN = re.compile(
    r"\b(?:he|she|him|his|her|hers|they|them|their|theirs|it|its|this|that|these|those|there|then|the same|"
    r"the latter|the former|the other|such)\b",
    re.I,
)
_NAME = re.compile(r"(?<!^)(?<![.?!]\s)\b[A-Z][\w'’-]+|\b\d{2,}\b")
_WORD = re.compile(r"[A-Za-z]{3,}")
_FILLER = frozenset(
    [
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "did",
        "does",
        "was",
        "were",
        "is",
        "are",
        "the",
        "and",
        "for",
        "with",
        "about",
        "from",
        "that",
        "this",
        "they",
        "them",
        "their",
        "there",
        "then",
        "have",
        "has",
        "had",
        "will",
        "would",
        "could",
        "should",
        "can",
        "say",
        "said",
        "many",
        "much",
    ]
)


def needs_context(question: str) -> bool:
    """True when the question cannot be understood without the earlier turns."""
    if _LEADING.search(question):
        return True
    content = [w for w in _WORD.findall(question.lower()) if w not in _FILLER]
    if len(content) <= 1:
        return True
    named = _NAME.findall(question.strip())
    # A pronoun with nothing named in the question refers back ("How old is he?"); one next to a name does not
    # ("How much did it cost to build the Tesla factory in Berlin?").
    return bool(_PRONOUN.search(question)) and not named


def condense_locally(question: str, history: Sequence[ChatTurn]) -> str:
    """Without an LLM: a follow-up that needs context is searched together with the previous user question."""
    if not needs_context(question):
        return question
    previous = [t.content for t in history if t.role == "user"]
    return f"{previous[-1]} {question}" if previous else question


def _names(text: str) -> set[str]:
    return {n.lower().strip("'’") for n in _NAME.findall(text)}


def accept_rewrite(question: str, rewritten: str, prompt_text: str) -> bool:
    """True when an LLM's rewrite of a follow-up can be used in place of the question.

    It must be one question, not an answer or the prompt's own words, and keep every name and number the
    reader typed.
    """
    rewritten = rewritten.strip()
    if not rewritten or len(rewritten) > max(300, 3 * len(question)):
        return False
    words = re.findall(r"\w+", rewritten.lower())
    prompt_words = re.findall(r"\w+", prompt_text.lower())
    grams = {tuple(prompt_words[i : i + 6]) for i in range(len(prompt_words) - 5)}
    if any(tuple(words[i : i + 6]) in grams for i in range(len(words) - 5)):
        return False  # the model copied its instructions
    if "<" in rewritten or ("conversation" in rewritten.lower() and "conversation" not in question.lower()):
        return False
    return _names(question) <= _names(rewritten) | {w.lower() for w in re.findall(r"\w+", rewritten)}
