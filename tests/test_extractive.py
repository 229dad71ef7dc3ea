"""The extractive answerer (rag/extractive.py) under concurrent load."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

from rag.citations import build_sources
from rag.embeddings import OnnxMiniLM
from rag.extractive import ExtractiveAnswerer
from rag.models import Passage

TOWNS = ["Port Alden", "Millbrook", "Eastfield", "Norhaven", "Kestrel Bay", "Lowmoor", "Ashby", "Cranwell"]


def passage(i: int) -> Passage:
    town = TOWNS[i % len(TOWNS)]
    text = (
        f"The council of {town} opened bridge number {i} on Monday. "
        f"Engineers said bridge {i} had cost {i + 3} million euros. Traffic resumed at noon."
    )
    return Passage(chunk_id=f"a{i}:h:0", article_id=f"a{i}", title=f"Bridge {i}", start=0, end=len(text), text=text,
                   rank_score=1.0)  # fmt: skip


def test_answers_from_many_threads_share_the_sentence_cache(embedder: OnnxMiniLM) -> None:
    """A cache smaller than the working set, evicting while other threads read it: every answer still comes."""
    answerer = ExtractiveAnswerer(embedder, cache_size=6)
    passages = [passage(i) for i in range(40)]

    def ask(seed: int) -> str:
        picked = random.Random(seed).sample(passages, 3)
        return answerer.answer("How much did the bridge cost?", build_sources(picked)).text

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(ask, range(100)))
    assert all("million euros" in a for a in answers)


def test_an_abstention_names_what_is_missing_in_the_questions_words(embedder: OnnxMiniLM) -> None:
    answerer = ExtractiveAnswerer(embedder)
    sources = build_sources([passage(1), passage(2)])
    result = answerer.answer("Who won the 1966 football World Cup final at Wembley?", sources)
    assert not result.text
    assert result.abstain_reason == "None of the articles mention 1966, World Cup or Wembley."
    result = answerer.answer("What did the Prime Minister of Norhaven say about the bridge?", sources)
    assert result.abstain_reason == "None of the articles mention the Prime Minister or Norhaven."
