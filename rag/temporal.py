"""Time in questions and in articles: temporal intent, recency priors, and relative dates resolved.

News questions are about time ("the latest", "this week", "in March 2020") but rarely name a window, and a hard
date filter is the wrong tool: for many questions no article holding the answer falls inside any short window.
So intent becomes a *prior* on article age, relative to the as-of day, fused with the hybrid score; only
articles published after the as-of day are excluded outright (the archive as it stood then).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal

IntentKind = Literal["none", "latest", "recent", "window", "timeline"]

_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_name) if m}
_MONTHS |= {m.lower(): i for i, m in enumerate(calendar.month_abbr) if m and m != "May"}
_MONTHS["sept"] = 9
_WEEKDAYS = {d.lower(): i for i, d in enumerate(calendar.day_name)}
_MONTH_RE = "|".join(sorted(_MONTHS, key=len, reverse=True))

_LATEST = re.compile(
    r"\b(?:latest|most recent(?:ly)?|newest|last known|current(?:ly)?|now|right now|as of now|so far|to date|"
    r"up to date|still|at present|presently|these days|nowadays)\b"
    # the present progressive of a running story: "who is winning", "where does the count stand"
    r"|\b(?:is|are) (?:winning|leading|ahead|trailing|rising|growing|happening)\b|\bdoes .{3,60}? stand\b",
    re.I,
)
# Not "new": it is in "New Delhi" and "the new envoy", neither of which asks for recent reports.
_RECENT = re.compile(r"\b(?:recent(?:ly)?|lately|this (?:week|month|year)|past (?:few )?(?:days|weeks))\b", re.I)
_THIS_WEEK = re.compile(r"\b(?:this week|past (?:few )?days|in the last (?:few )?days|today|yesterday)\b", re.I)
_TIMELINE = re.compile(
    r"\b(?:timeline|chronology|what (?:has )?happened (?:with|to)|how did .{3,80}? (?:unfold|develop|evolve)|"
    r"sequence of events|(?:the )?story so far|what are the developments|developments (?:in|on|with))\b",
    re.I,
)
_FUTURE = re.compile(r"\b(?:next (?:week|month|year)|tomorrow|in the coming (?:days|weeks|months))\b", re.I)
_LAST_PERIOD = re.compile(r"\blast (week|month|year)\b", re.I)
_MONTH_YEAR = re.compile(
    rf"\b(?:(\d{{1,2}})\s+)?({_MONTH_RE})\.?(?:\s+(\d{{1,2}})(?:st|nd|rd|th)?,?)?\s+((?:19|20)\d\d)\b", re.I
)
_MONTH_ALONE = re.compile(rf"\b(?:in|during|since|throughout|early|late|mid-?)\s+({_MONTH_RE})\b(?!\s+\d)", re.I)
_YEAR = re.compile(r"\b(?:in|during|throughout|of|for)\s+((?:19|20)\d\d)\b", re.I)
# "on 19 July", "on July 19" with no year: the one in the as-of day's year ("the 2026 final on 19 July").
_DAY_MONTH = re.compile(
    rf"\bon\s+(?:(\d{{1,2}})(?:st|nd|rd|th)?\s+({_MONTH_RE})|({_MONTH_RE})\s+(\d{{1,2}})(?:st|nd|rd|th)?)\b", re.I
)
_ANY_YEAR = re.compile(r"\b((?:19|20)\d\d)\b")

# Half-lives of the recency prior, in days. "latest"/"this week" questions want the newest reports on a story;
# "recently" is looser. Chosen on evals/time.jsonl (the eval report shows the R@k with and without the prior).
HALF_LIFE = {"latest": 20.0, "recent": 45.0, "timeline": 0.0}
# Outside an explicit window the prior halves every this many days, so a report a day late still counts.
WINDOW_HALF_LIFE = 7.0


@dataclass(frozen=True, slots=True)
class Intent:
    """What a question says about time, relative to `as_of`."""

    kind: IntentKind = "none"
    start: dt.date | None = None  # an explicit window, inclusive
    end: dt.date | None = None
    future: bool = False  # the window lies after the as-of day

    @property
    def time_sensitive(self) -> bool:
        """True when an answer should say how current it is."""
        return self.kind in ("latest", "recent", "window")


def _month_window(year: int, month: int) -> tuple[dt.date, dt.date]:
    return dt.date(year, month, 1), dt.date(year, month, calendar.monthrange(year, month)[1])


def parse_intent(question: str, as_of: dt.date) -> Intent:
    """The temporal intent of a question: an explicit window, "latest"/"recent", a timeline, or none."""
    q = question
    window: tuple[dt.date, dt.date] | None = None
    timeline = bool(_TIMELINE.search(q))
    if m := _MONTH_YEAR.search(q):
        day = m.group(1) or m.group(3)
        year, month = int(m.group(4)), _MONTHS[m.group(2).lower()]
        if day and 1 <= int(day) <= calendar.monthrange(year, month)[1]:
            when = dt.date(year, month, int(day))
            window = (when, when)
        else:
            window = _month_window(year, month)
    elif m := _DAY_MONTH.search(q):
        day, month = int(m.group(1) or m.group(4)), _MONTHS[(m.group(2) or m.group(3)).lower()]
        named = _ANY_YEAR.search(q)
        year = int(named.group(1)) if named else as_of.year
        if 1 <= day <= calendar.monthrange(year, month)[1]:
            window = (dt.date(year, month, day), dt.date(year, month, day))
    elif m := _YEAR.search(q):
        year = int(m.group(1))
        window = (dt.date(year, 1, 1), dt.date(year, 12, 31))
    elif m := _MONTH_ALONE.search(q):
        month = _MONTHS[m.group(1).lower()]
        year = as_of.year if month <= as_of.month else as_of.year - 1
        window = _month_window(year, month)
    elif m := _LAST_PERIOD.search(q):
        unit = m.group(1).lower()
        if unit == "week":
            window = (as_of - dt.timedelta(days=13), as_of - dt.timedelta(days=6))
        elif unit == "month":
            prev = as_of.replace(day=1) - dt.timedelta(days=1)
            window = _month_window(prev.year, prev.month)
        else:
            window = (dt.date(as_of.year - 1, 1, 1), dt.date(as_of.year - 1, 12, 31))
    elif _FUTURE.search(q):
        return Intent("window", as_of + dt.timedelta(days=1), as_of + dt.timedelta(days=31), future=True)
    if timeline:  # "a timeline of ... in 2019": the story in order, favouring that window when one is named
        return Intent("timeline", *(window or (None, None)))
    if window is not None:
        return Intent("window", window[0], window[1], future=window[0] > as_of)
    if _THIS_WEEK.search(q):
        return Intent("latest", as_of - dt.timedelta(days=7), as_of)
    if _LATEST.search(q):
        return Intent("latest")
    if _RECENT.search(q):
        return Intent("recent")
    return Intent()


def prior(intent: Intent, published: dt.date | None, as_of: dt.date) -> float:
    """The recency prior of an article, in [0, 1] (1 for no intent: every article alike)."""
    if intent.kind == "none" or (intent.kind == "timeline" and intent.start is None) or published is None:
        return 1.0 if published is not None or intent.kind in ("none", "timeline") else 0.5
    if intent.kind in ("window", "timeline") and intent.start and intent.end:
        if intent.start <= published <= intent.end:
            return 1.0
        gap = (intent.start - published).days if published < intent.start else (published - intent.end).days
        return float(0.5 ** (gap / WINDOW_HALF_LIFE))
    age = max(0, (as_of - published).days)
    if intent.start and published >= intent.start:
        return 1.0
    return float(0.5 ** (age / HALF_LIFE[intent.kind]))


# --- relative dates in article text ---

_RELATIVE = re.compile(
    rf"\b(?:(?:on|last|this past|this|next|early|late)\s+)?({'|'.join(_WEEKDAYS)})"
    r"(?:\s+(?:morning|afternoon|evening|night))?\b"
    r"|\b(yesterday|today|tomorrow|tonight)\b"
    r"|\b(last week|last month|last year|this week|this month)\b",
    re.I,
)
_EXPLICIT_AFTER = re.compile(rf"^\s*,?\s*(?:\(|the\s+)?\d{{1,2}}(?:st|nd|rd|th)?\b|^\s*,?\s*(?:{_MONTH_RE})\b", re.I)


@dataclass(frozen=True, slots=True)
class RelativeDate:
    """A relative date expression in a text, the characters it spans and the calendar date it means."""

    start: int
    end: int
    phrase: str
    date: dt.date | None  # None for spans ("last week") that name no single day
    label: str  # what to state: "23 February 2022", "the week before 10 March 2020"


def format_date(day: dt.date) -> str:
    """23 February 2022."""
    return f"{day.day} {calendar.month_name[day.month]} {day.year}"


def resolve_relative(text: str, published: dt.date) -> list[RelativeDate]:
    """Relative dates in `text` of an article published on `published`, with the dates they mean."""
    out: list[RelativeDate] = []
    for m in _RELATIVE.finditer(text):
        if _EXPLICIT_AFTER.match(text[m.end() : m.end() + 20]):
            continue  # "on Wednesday, 23 February" already says which day
        phrase = m.group(0)
        lowered = phrase.lower()
        if m.group(1):
            target = _WEEKDAYS[m.group(1).lower()]
            if lowered.startswith("next"):
                delta = (target - published.weekday()) % 7 or 7
                day = published + dt.timedelta(days=delta)
            else:
                # "on Wednesday" in news copy is the most recent Wednesday up to the publication day itself.
                day = published - dt.timedelta(days=(published.weekday() - target) % 7)
            out.append(RelativeDate(m.start(), m.end(), phrase, day, format_date(day)))
        elif m.group(2):
            shift = {"yesterday": -1, "today": 0, "tonight": 0, "tomorrow": 1}[lowered]
            day = published + dt.timedelta(days=shift)
            out.append(RelativeDate(m.start(), m.end(), phrase, day, format_date(day)))
        else:
            label = {
                "last week": f"the week before {format_date(published)}",
                "last month": f"{calendar.month_name[(published.month - 2) % 12 + 1]} "
                f"{published.year if published.month > 1 else published.year - 1}",
                "last year": str(published.year - 1),
                "this week": f"the week of {format_date(published)}",
                "this month": f"{calendar.month_name[published.month]} {published.year}",
            }[lowered]
            out.append(RelativeDate(m.start(), m.end(), phrase, None, label))
    return out


def annotate_relative(text: str, published: dt.date | None) -> str:
    """`text` with each relative date followed by the date it means: "on Wednesday (23 February 2022)"."""
    if published is None:
        return text
    parts: list[str] = []
    last = 0
    for rel in resolve_relative(text, published):
        parts.append(text[last : rel.end])
        parts.append(f" ({rel.label})")
        last = rel.end
    parts.append(text[last:])
    return "".join(parts)
