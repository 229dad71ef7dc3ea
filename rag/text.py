"""Words of a text, for matching a question against sentences (the reader and citation checks)."""

from __future__ import annotations

import re

_TOKEN = re.compile(r"\w+", re.UNICODE)
_STOPWORDS = frozenset(
    "a an and are as at be been but by did do does for from had has have he her his how i in into is it its "  # noqa: SIM905
    "me my of on or our she so than that the their them then there these they this those to was we were what "
    "when where which who whom why will with would you your about after before said says also more most".split()
)


def content_tokens(text: str) -> list[str]:
    """Lower-cased word tokens without stop words, with a light plural/possessive stemmer."""
    out = []
    for raw in _TOKEN.findall(text.lower()):
        if raw in _STOPWORDS or len(raw) == 1:
            continue
        word = raw
        if len(word) > 4 and word.endswith("ies"):
            word = word[:-3] + "y"
        elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
            word = word[:-1]
        out.append(word)
    return out
