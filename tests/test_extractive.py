"""The offline reader (rag/extractive.py): the sentence that answers, typed; abstention on missing particulars."""

from __future__ import annotations

import datetime as dt
import random
from concurrent.futures import ThreadPoolExecutor

import pytest

from rag.answer_types import answer_type, carries, is_question_or_heading, question_parts
from rag.citations import build_sources
from rag.embeddings import OnnxMiniLM
from rag.extractive import ExtractiveAnswerer
from rag.models import Passage, Source
from rag.temporal import Intent

TESCO = (
    "Danish retailer Salling Group announced on Tuesday it is buying the Polish stores of British chain Tesco. "
    "Both Tesco and Salling entered the Polish market in 1995. "
    "The deal is worth 900 million złotys, about 206 million euros, and covers 301 stores. "
    "Will shoppers notice a difference? "
    "Salling said the stores would be converted to its Netto brand."
)
BOAT = (
    "A fire broke out before dawn on the dive boat Conception off Santa Cruz Island. "
    "Thirty-four people died in the blaze, officials said. "
    "The boat was carrying 39 people, among them five crew members."
)


def sources_for(*texts: tuple[str, str, dt.date]) -> list[Source]:
    passages = [
        Passage(chunk_id=f"{aid}:h:0", article_id=aid, title=title, start=0, end=len(text), text=text,
                rank_score=1.0 / (i + 1), dense_score=0.6, published_at=day)
        for i, (aid, (title, text, day)) in enumerate(zip(("a", "b", "c"), texts, strict=False))
    ]  # fmt: skip
    return build_sources(passages)


@pytest.fixture(scope="module")
def reader(embedder: OnnxMiniLM) -> ExtractiveAnswerer:
    return ExtractiveAnswerer(embedder)


@pytest.fixture(scope="module")
def sources() -> list[Source]:
    return sources_for(
        ("Salling Group to buy Tesco's Polish stores", TESCO, dt.date(2020, 6, 10)),
        ("Dive boat fire kills 34 off California", BOAT, dt.date(2019, 9, 3)),
    )


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("How much is Salling Group paying for Tesco's Polish stores?", "money"),
        ("How many people died in the fire?", "number"),
        ("When did Tesco enter Poland?", "date"),
        ("Who bought the stores?", "person"),
        ("Where did the boat sink?", "place"),
        ("Which company is buying the stores?", "org"),
        ("What did the mayor say about the fire?", "quote"),
        ("Why did the boat catch fire?", "reason"),
        ("What share of the vote did she win?", "percent"),
        ("What is Netto?", "other"),
    ],
)
def test_questions_are_typed_by_the_answer_they_want(question: str, kind: str) -> None:
    assert answer_type(question) == kind


def test_a_sentence_carries_a_type_only_with_something_the_question_does_not_name() -> None:
    words = {"how", "many", "died", "in", "the", "2019", "fire"}
    assert not carries("number", "The 2019 fire was the worst in years.", words)
    assert carries("number", "Thirty-four people died in the 2019 fire.", words)
    assert carries("money", "The deal is worth 900 million złotys.", set())
    assert not carries("money", "The deal covers 301 stores.", set())


def test_questions_and_headings_are_never_answers() -> None:
    assert is_question_or_heading("Will shoppers notice a difference?")
    assert is_question_or_heading("Image: Nicholas Moreau")
    assert not is_question_or_heading("The deal is worth 900 million złotys.")


def test_the_amount_is_quoted_not_the_sentence_sharing_the_questions_words(
    reader: ExtractiveAnswerer, sources: list[Source]
) -> None:
    result = reader.answer("How much is Salling Group paying for Tesco's Polish stores?", sources)
    assert "900 million złotys" in result.text
    assert "1995" not in result.text
    (citation,) = result.citations
    assert citation.quote in TESCO and "900 million" in citation.quote


def test_the_death_toll_is_found_in_the_next_sentence(reader: ExtractiveAnswerer, sources: list[Source]) -> None:
    result = reader.answer("How many people were killed when the Conception dive boat caught fire?", sources)
    assert "Thirty-four" in result.text and "39 people" not in result.text


def test_multi_part_questions_get_a_sentence_per_part(reader: ExtractiveAnswerer, sources: list[Source]) -> None:
    parts = question_parts("How much is the Tesco deal worth, and which brand will the stores take?")
    assert [p.type for p in parts] == ["money", "org"]
    result = reader.answer("How much is the Tesco deal worth, and which brand will the stores take?", sources)
    assert "900 million" in result.text and "Netto" in result.text
    assert len(result.citations) == 2


def test_abstains_when_no_sentence_carries_the_asked_particulars(
    reader: ExtractiveAnswerer, sources: list[Source]
) -> None:
    result = reader.answer("What percentage of Tesco's Polish staff will lose their jobs?", sources)
    assert result.abstain_reason is not None and not result.citations


def test_relative_dates_are_stated_and_article_markers_neutralised(embedder: OnnxMiniLM) -> None:
    text = "Parliament voted on Wednesday to delay the election by a month [1]. Turnout rules were unchanged."
    srcs = sources_for(("Election delayed", text, dt.date(2020, 3, 14)))
    result = ExtractiveAnswerer(embedder).answer("When did parliament vote to delay the election?", srcs)
    assert "on Wednesday (11 March 2020)" in result.text
    assert "[1]." not in result.text and "［1］" in result.text  # the article's own marker is not a citation
    assert result.citations[0].quote.startswith("Parliament voted on Wednesday to delay")


def test_timelines_are_dated_and_in_chronological_order(embedder: OnnxMiniLM) -> None:
    srcs = sources_for(
        ("Volcano erupts again", "The volcano erupted again, sending ash over the island town.", dt.date(2020, 1, 20)),
        ("Volcano alert raised", "Authorities raised the volcano alert to its highest level.", dt.date(2020, 1, 12)),
        ("Volcano alert lowered", "Authorities lowered the volcano alert as the eruption eased.", dt.date(2020, 2, 14)),
    )
    result = ExtractiveAnswerer(embedder).answer("What happened with the volcano?", srcs, intent=Intent("timeline"))
    dates = [c.published_at for c in result.citations]
    assert len(dates) == 3 and dates == sorted(dates)
    assert result.text.startswith("12 January 2020:")


TOWNS = ["Port Alden", "Millbrook", "Eastfield", "Norhaven", "Kestrel Bay", "Lowmoor", "Ashby", "Cranwell"]


def bridge(i: int) -> Passage:
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
    passages = [bridge(i) for i in range(40)]

    def ask(seed: int) -> str:
        picked = random.Random(seed).sample(passages, 3)
        return answerer.answer("How much did the bridge cost?", build_sources(picked)).text

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(ask, range(100)))
    assert all("million euros" in a for a in answers)


def test_an_abstention_names_what_is_missing_in_the_questions_words(embedder: OnnxMiniLM) -> None:
    answerer = ExtractiveAnswerer(embedder)
    sources = build_sources([bridge(1), bridge(2)])
    result = answerer.answer("Who won the 1966 football World Cup final at Wembley?", sources)
    assert not result.text
    assert result.abstain_reason == "None of the articles mention 1966, World Cup or Wembley."
    result = answerer.answer("What did the Prime Minister of Norhaven say about the bridge?", sources)
    assert result.abstain_reason == "None of the articles mention the Prime Minister or Norhaven."
