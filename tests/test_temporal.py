"""Temporal intent, the recency prior and relative dates (rag/temporal.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from rag.temporal import annotate_relative, format_date, parse_intent, prior, resolve_relative

AS_OF = dt.date(2020, 3, 14)  # a Saturday


@pytest.mark.parametrize(
    ("question", "kind", "start", "end", "future"),
    [
        ("What is the latest on the Brexit talks?", "latest", None, None, False),
        ("How many cases have been confirmed so far?", "latest", None, None, False),
        ("Who currently leads the party?", "latest", None, None, False),
        ("What did the minister announce this week?", "latest", dt.date(2020, 3, 7), AS_OF, False),
        ("What happened in Hong Kong in March 2020?", "window", dt.date(2020, 3, 1), dt.date(2020, 3, 31), False),
        ("Who won the vote last month?", "window", dt.date(2020, 2, 1), dt.date(2020, 2, 29), False),
        ("How did the team do in 2019?", "window", dt.date(2019, 1, 1), dt.date(2019, 12, 31), False),
        ("Give me a timeline of the governors in 2019", "timeline", dt.date(2019, 1, 1), dt.date(2019, 12, 31), False),
        ("Who is winning the presidential election?", "latest", None, None, False),
        ("Who won the final on 19 July?", "window", dt.date(2020, 7, 19), dt.date(2020, 7, 19), True),
        ("What did he say on 5 March 2020?", "window", dt.date(2020, 3, 5), dt.date(2020, 3, 5), False),
        ("What happened in the war in September 2020?", "window", dt.date(2020, 9, 1), dt.date(2020, 9, 30), True),
        ("Who will win the election next month?", "window", dt.date(2020, 3, 15), dt.date(2020, 4, 14), True),
        ("Give me a timeline of the impeachment", "timeline", None, None, False),
        ("What happened with the Boeing 737 MAX?", "timeline", None, None, False),
        ("Who is the president of France?", "none", None, None, False),
        ("What did the new envoy in New Delhi say?", "none", None, None, False),
    ],
)
def test_intent_is_read_relative_to_the_as_of_day(
    question: str, kind: str, start: dt.date | None, end: dt.date | None, future: bool
) -> None:
    intent = parse_intent(question, AS_OF)
    assert (intent.kind, intent.start, intent.end, intent.future) == (kind, start, end, future)


def test_prior_prefers_newer_articles_only_when_the_question_asks_for_them() -> None:
    latest = parse_intent("What is the latest death toll?", AS_OF)
    assert prior(latest, AS_OF, AS_OF) == 1.0
    assert prior(latest, dt.date(2020, 3, 1), AS_OF) > prior(latest, dt.date(2019, 3, 1), AS_OF)
    plain = parse_intent("What was the death toll?", AS_OF)
    assert prior(plain, dt.date(2019, 3, 1), AS_OF) == prior(plain, AS_OF, AS_OF) == 1.0
    window = parse_intent("What happened in March 2020?", AS_OF)
    assert prior(window, dt.date(2020, 3, 10), AS_OF) == 1.0
    assert prior(window, dt.date(2020, 4, 7), AS_OF) == 0.5  # a week late: half
    assert prior(window, dt.date(2020, 5, 1), AS_OF) < 0.1


def test_relative_dates_resolve_against_the_publication_day() -> None:
    published = dt.date(2022, 2, 24)  # a Thursday
    text = (
        "Babushkin said on Wednesday that talks went well, yesterday's meeting included. "
        "He leaves on Monday, 28 February."
    )
    resolved = {r.phrase: r.date for r in resolve_relative(text, published)}
    assert resolved == {"on Wednesday": dt.date(2022, 2, 23), "yesterday": dt.date(2022, 2, 23)}
    annotated = annotate_relative(text, published)
    assert "on Wednesday (23 February 2022)" in annotated and "Monday, 28 February." in annotated
    assert format_date(dt.date(2019, 10, 10)) == "10 October 2019"


def test_same_weekday_as_publication_means_that_day_and_next_means_after() -> None:
    published = dt.date(2020, 3, 11)  # a Wednesday
    (same,) = resolve_relative("The vote was held on Wednesday.", published)
    assert same.date == published
    (later,) = resolve_relative("The vote will be held next Monday.", published)
    assert later.date == dt.date(2020, 3, 16)
