"""What a question asks for, and whether a sentence holds it: rules for the kinds of answer news questions want.

A question's answer type (a number, an amount of money, a date, a person, a place, an organisation, a quote, a
reason) is read from its wording; a sentence "carries" that type when it holds an item of that kind that the
question does not already name ("How many died in the 2019 fire?" is not answered by "2019"). Rules, not a
model: no NER model ships its weights in a PyPI wheel that we could vet (FIELD-NOTES), and these are testable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

AnswerType = Literal["number", "money", "percent", "date", "person", "place", "org", "quote", "reason", "other"]

_MONEY_VERBS = (
    r"cost|costs|pay|paid|paying|worth|price|priced|spend|spent|fine|fined|raise|raised|sell|sold|selling|buy|"
    r"bought|money|fund|funding|funds|budget|loan|deal|salary|compensation|damages|bail|donat\w*|invest\w*|"
    r"valu\w*|revenue|profit|loss|bid|offer\w*|charg\w*|award\w*|prize|ransom|tax|grant\w*|earn\w*|bill"
)
_PERSON_NOUNS = (
    r"person|man|woman|official|player|politician|minister|leader|actor|actress|author|writer|candidate|"
    r"president|judge|scientist|spokesperson|spokesman|spokeswoman|director|chief|head|ceo|coach|captain|driver|"
    r"pilot|singer|artist|athlete|member|senator|governor|mayor|lawyer|doctor|professor|researcher|journalist|"
    r"victim|suspect|winner|champion|individual|people|one"
)
_PLACE_NOUNS = (
    r"city|country|town|state|province|region|island|village|nation|county|district|place|venue|stadium|"
    r"airport|port|area|location|capital|continent|street|neighbourhood|neighborhood|territory|site|hospital"
)
_ORG_NOUNS = (
    r"company|organisation|organization|team|party|group|agency|firm|club|university|airline|bank|network|"
    r"newspaper|body|court|union|charity|government|ministry|department|broadcaster|outlet|manufacturer|"
    r"carrier|retailer|regulator|institution|school|museum|committee|council|publisher|studio|brand|band"
)


def _rule(*alternatives: str) -> re.Pattern[str]:
    return re.compile("|".join(alternatives))


_TYPE_RULES: list[tuple[AnswerType, re.Pattern[str]]] = [
    ("percent", _rule(r"\bwhat (?:percentage|percent|share|proportion|fraction)\b", r"\bhow many percent\b")),
    (
        "money",
        _rule(
            rf"\bhow much\b.*\b(?:{_MONEY_VERBS})\b",
            r"\bhow much money\b",
            r"\bwhat (?:was|is) the (?:price|cost|fine|value|amount)\b",
            r"\bwhat (?:sum|amount)\b",
            r"\bfor how much\b",
        ),
    ),
    (
        "number",
        _rule(
            r"\bhow (?:many|much|long|old|far|tall|high|big|large|fast|deep|heavy|wide|often)\b",
            r"\bwhat (?:number|age|score|toll|total|margin|tally|count|magnitude|size|distance|speed|rank|position|"
            r"temperature)\b",
            r"\bby how\b",
        ),
    ),
    (
        "date",
        _rule(
            r"\bwhen\b",
            r"\bwhat (?:date|day|year|month|time|week)\b",
            r"\bwhich (?:date|day|year|month|week)\b",
            r"\bsince when\b",
            r"\bon what (?:date|day)\b",
        ),
    ),
    (
        "person",
        _rule(
            r"\bwho\b|\bwhom\b|\bwhose\b",
            rf"\bwhich (?:{_PERSON_NOUNS})\b",
            rf"\bname (?:of )?the (?:{_PERSON_NOUNS})\b",
            rf"\bwhat (?:is|was) (?:the )?name of the (?:{_PERSON_NOUNS})\b",
        ),
    ),
    ("place", _rule(r"\bwhere\b", rf"\b(?:which|what|in what|in which) (?:{_PLACE_NOUNS})\b")),
    ("org", _rule(rf"\b(?:which|what) (?:{_ORG_NOUNS})\b", rf"\bname (?:of )?the (?:{_ORG_NOUNS})\b")),
    (
        "quote",
        _rule(
            r"\bwhat did .{2,60}? (?:say|tell|write|post|tweet|claim|warn|argue|add)\b",
            r"\bhow did .{2,60}? (?:describe|characteri[sz]e|call|react|respond)\b",
            r"\bwhat (?:was|were) .{2,40}?(?:reaction|response|words|message|statement)\b",
            r"\bwhat did .{2,60}? (?:call|describe)\b",
            r"\baccording to whom\b",
        ),
    ),
    (
        "reason",
        _rule(
            r"\bwhy\b",
            r"\bwhat (?:caused|causes|led to|prompted|triggered|was the (?:cause|reason|motive))\b",
            r"\bfor what reason\b",
            r"\bhow come\b",
        ),
    ),
]

_NUMBER_WORDS = (
    r"one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|"
    r"eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|hundreds|thousand|"
    r"thousands|million|millions|billion|billions|dozen|dozens|half|third|quarter|twice|once|single|double|triple"
)
_NUMBER = re.compile(rf"\b\d[\d,.]*\b|\b(?:{_NUMBER_WORDS})\b", re.I)
_CURRENCY = (
    r"dollars?|euros?|pounds?|yuan|renminbi|rupees?|z[łl]otys?|zloty|kronor|kroner|krona|krone|francs?|yen|pesos?|"
    r"rand|won|reais|real|rubles?|roubles?|lira|shekels?|dirhams?|riyals?|ringgit|baht|naira|shillings?|cedis?|"
    r"USD|EUR|GBP|AUD|CAD|NZD|PLN|INR|CHF|SEK|NOK|DKK|JPY|CNY|HKD"
)
_MONEY = re.compile(
    rf"(?:[$€£¥₹₽₩]|\b(?:US|A|C|NZ|HK|S|R)\$)\s?\d[\d,.]*(?:\s?(?:million|billion|trillion|thousand|[mbk]n?)\b)?"
    rf"|\b\d[\d,.]*\s?(?:million|billion|trillion|thousand)?\s?(?:{_CURRENCY})\b",
    re.I,
)
_PERCENT = re.compile(r"\b\d[\d,.]*\s?(?:%|per ?cent\b)", re.I)
_MONTHS = "january|february|march|april|may|june|july|august|september|october|november|december"
_DAYS = "monday|tuesday|wednesday|thursday|friday|saturday|sunday"
_DATE = re.compile(
    rf"\b(?:{_MONTHS}|{_DAYS}|yesterday|today|tomorrow|tonight|(?:19|20)\d\d|\d{{1,2}}/\d{{1,2}}(?:/\d{{2,4}})?)\b",
    re.I,
)
_CAP = r"[A-Z][\w’'.-]*[\w]|[A-Z]"
# Two or more capitalised words in a row, allowing "de", "van", "bin" and initials inside: a person's name.
_NAME = re.compile(rf"\b(?:{_CAP})(?:\s+(?:(?:de|da|van|von|der|bin|al|la|le|di|du)\s+)?(?:{_CAP})){{1,3}}\b")
_TITLED = re.compile(
    r"\b(?:Mr|Mrs|Ms|Dr|Prof|Sir|Dame|Lord|Lady|President|Prime Minister|Minister|Senator|Governor|Mayor|Judge|"
    r"King|Queen|Prince|Princess|Pope|Chancellor|General|Colonel|Captain|Chief|Sheikh|Rev)\.?\s+[A-Z][\w’'-]+"
)
_SAID_NAME = re.compile(r"\b(?:said|says|told|according to|stated|added|wrote)\s+(?:[a-z]+\s+){0,3}([A-Z][\w’'-]+)")
_PLACE = re.compile(rf"\b(?:in|at|from|near|to|into|across|outside|inside|off|toward|towards)\s+(?:the\s+)?(?:{_CAP})")
_ORG_WORDS = (
    r"Company|Inc|Ltd|Corp|Corporation|Group|University|Party|Association|Agency|Ministry|Department|Council|"
    r"Committee|Union|Bank|Airlines|Airways|Club|FC|Organisation|Organization|Commission|Court|Police|Army|Navy|"
    r"Federation|League|Institute|Foundation|Network|News|Times|Post|Board|Service|Authority|Office|Trust|"
    r"Society|Centre|Center|Hospital|School|College|Museum|Studios|Records|Motors|Energy|Systems|Technologies"
)
_ORG = re.compile(
    rf"(?:\b(?:{_CAP})\s+)*\b(?:{_ORG_WORDS})\b(?:\s+(?:of|for)\s+(?:the\s+)?(?:{_CAP})(?:\s+{_CAP})*)?|\b[A-Z]{{2,6}}\b"
)
# A quotation, closed or not (a quote running over several sentences opens in one and closes in another), or a
# verb of saying.
_QUOTE = re.compile(
    r"[“\"][^”\"]{12,}|[^“\"]{12,}[”\"]|\b(?:said|says|told|stated|added|described|called|wrote|warned)\b"
)
_REASON = re.compile(
    r"\b(?:because|due to|as a result|caused by|blamed|owing to|led to|following|after|since|reason|"
    r"in response to|in protest|amid|so that|in order to|attributed)\b",
    re.I,
)
_FINDERS: dict[AnswerType, list[re.Pattern[str]]] = {
    "number": [_NUMBER],
    "money": [_MONEY],
    "percent": [_PERCENT],
    "date": [_DATE],
    "person": [_NAME, _TITLED, _SAID_NAME],
    "place": [_PLACE],
    "org": [_ORG, re.compile(rf"\b(?:{_CAP})(?:\s+(?:{_CAP}))*")],  # a brand or a club is just a proper name
    "quote": [_QUOTE],
    "reason": [_REASON],
}
_WORD = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class QuestionPart:
    """One thing a question asks: its text and the kind of answer it wants."""

    text: str
    type: AnswerType
    context: str = ""  # the first part, whose subject a later part leans on ("... and how many died?")


def answer_type(question: str) -> AnswerType:
    """The kind of answer a question (one part of it) asks for."""
    q = question.lower()
    for kind, rule in _TYPE_RULES:
        if rule.search(q):
            return kind
    return "other"


_WH = r"(?=(?:how|who|whom|when|where|what|which|why)\b)"
_SPLIT = re.compile(rf"\s*(?:,\s*|;\s*|\?\s+)(?:and\s+)?{_WH}|\s+and\s+{_WH}", re.I)


def question_parts(question: str) -> list[QuestionPart]:
    """The parts of a multi-part question ("Where did it happen, and how many died?"), each with its type."""
    pieces = [p.strip(" ,;?") for p in _SPLIT.split(question) if p and p.strip(" ,;?")]
    if len(pieces) <= 1:
        return [QuestionPart(question, answer_type(question))]
    # Later parts lean on the first for their subject ("... and how many died?"): it is their context.
    head = pieces[0]
    parts = [QuestionPart(head, answer_type(head))]
    parts += [QuestionPart(p, answer_type(p), head) for p in pieces[1:]]
    return parts


def items_of(kind: AnswerType, sentence: str) -> list[str]:
    """The items of `kind` in a sentence ("3,000", "$5 million", "Boris Johnson", ...)."""
    found: list[str] = []
    for finder in _FINDERS.get(kind, []):
        for match in finder.finditer(sentence):
            text = match.group(1) if finder.groups else match.group(0)
            # A capital at the start of a sentence proves nothing; a two-word name there still counts.
            at_start = kind in ("person", "place", "org") and match.start() == _first_word_start(sentence)
            if at_start and (kind != "person" or " " not in text.strip()):
                continue
            found.append(text)
    return found


def _first_word_start(sentence: str) -> int:
    m = re.search(r"\w", sentence)
    return m.start() if m else 0


def carries(kind: AnswerType, sentence: str, question_words: set[str]) -> bool:
    """True when the sentence holds an item of `kind` that the question does not already name."""
    if kind == "other":
        return True
    for item in items_of(kind, sentence):
        words = {w.lower() for w in _WORD.findall(item)}
        if kind in ("quote", "reason"):
            return True
        if words and not words <= question_words:
            return True
    return False


def is_question_or_heading(sentence: str) -> bool:
    """A sentence that asks something, or a heading/caption, never answers a question."""
    text = sentence.strip()
    if text.endswith("?") or text.endswith("?”") or text.endswith('?"'):
        return True
    words = text.split()
    if not text or (text[-1] not in ".!”\"’')…" and len(words) <= 12):
        return True  # a heading, a caption or a credit line ("Image: Nicholas Moreau")
    return bool(re.match(r"^(?:Image|Photo|File|Video|Source|Related news|See also)\s*:", text))
