"""Why an answer abstained, in words a reader understands ("None of the articles mention the World Cup.")."""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.index import keyword_tokens

_WORD = re.compile(r"[\w’'.-]*\w")


def missing_terms_reason(question: str, missing: Sequence[str]) -> str:
    """A sentence naming what the question asks about and no article mentions, in the question's own words.

    `missing` holds the folded search terms ("world", "cup"); the words of the question that fold onto them are
    shown instead, with their capitals, adjacent ones as one phrase ("the World Cup").
    """
    from rag.extractive import canonical  # here, not above: extractive imports this module

    wanted = set(missing)
    words = list(_WORD.finditer(question))
    phrases: list[str] = []
    found: set[str] = set()
    run: list[int] = []

    def close_run() -> None:
        if not run:
            return
        first = words[run[0]].group()
        phrase = question[words[run[0]].start() : words[run[-1]].end()]
        before = words[run[0] - 1].group().lower() if run[0] > 0 else ""
        if before == "the" and first[:1].isupper():
            phrase = f"the {phrase}"
        phrases.append(phrase)
        run.clear()

    for i, match in enumerate(words):
        tokens = keyword_tokens(match.group())
        term = canonical(tokens[0]) if tokens else None
        gap = question[words[run[-1]].end() : match.start()] if run else ""
        if term in wanted and (not run or gap.strip() == ""):
            run.append(i)
            found.add(term)
            continue
        close_run()
        if term in wanted:
            run.append(i)
            found.add(term)
    close_run()
    phrases += [t for t in missing if t not in found]
    phrases = list(dict.fromkeys(phrases))
    if not phrases:
        return "None of the articles mention what the question asks about."
    named = phrases[0] if len(phrases) == 1 else f"{', '.join(phrases[:-1])} or {phrases[-1]}"
    return f"None of the articles mention {named}."
