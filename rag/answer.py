"""Answers with verified citations: the LCEL chain, LLM output parsing, extractive mode and streaming events.

Both modes produce the same stream of typed events (sources, text deltas, citations, done); the non-streaming
answer is the `done` event's answer, so the two can never disagree.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Literal

from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableBranch, RunnableLambda, RunnablePassthrough
from pydantic import BaseModel

from rag.chunking import split_sentences
from rag.citations import (
    ABSTAIN_TEXT,
    MARKER,
    SupportFinder,
    build_sources,
    citation_for,
    finalize,
    neutralize,
    source_sentences,
)
from rag.condense import accept_rewrite, condense_locally
from rag.embeddings import Embedder
from rag.errors import RagError, UpstreamError
from rag.extractive import ExtractiveAnswerer, focus
from rag.llm import is_upstream_exception, load_prompt, prompt_text, upstream_error
from rag.models import Answer, ChatTurn, Citation, Passage, Source, Timings
from rag.temporal import Intent, annotate_relative, format_date, parse_intent

NOT_IN_ARTICLES = "NOT_IN_ARTICLES"
_TAG = re.compile(r"</?[A-Za-z!][^>]*>")
Mode = Literal["extractive", "llm"]
# Passages a timeline question is answered from, at least: one story told over several articles.
TIMELINE_K = 10


class SourcesEvent(BaseModel):
    """The retrieved passages, numbered as the answer cites them."""

    type: Literal["sources"] = "sources"
    sources: list[Source]


class DeltaEvent(BaseModel):
    """A piece of answer text as it is produced (LLM mode: raw, before verification)."""

    type: Literal["delta"] = "delta"
    text: str


class CitationEvent(BaseModel):
    """A verified citation of the final answer."""

    type: Literal["citation"] = "citation"
    citation: Citation


class DoneEvent(BaseModel):
    """The final answer, identical to the non-streaming result."""

    type: Literal["done"] = "done"
    answer: Answer


AnswerEvent = SourcesEvent | DeltaEvent | CitationEvent | DoneEvent


def render_passages(sources: Sequence[Source]) -> str:
    """Passages fenced as data. Angle brackets are escaped so an article cannot close its own fence."""
    blocks = []
    for s in sources:
        date = s.published_at.isoformat() if s.published_at else "undated"
        title = html.escape(s.title, quote=True)
        text = neutralize(html.escape(s.text, quote=False))
        blocks.append(f'<passage number="{s.number}" title="{title}" date="{date}">\n{text}\n</passage>')
    return "\n".join(blocks)


def passages_from_documents(docs: Sequence[Document]) -> list[Passage]:
    """Back from LangChain documents to our passages."""
    return [Passage.model_validate({**d.metadata, "text": d.page_content}) for d in docs]


def make_answer_chain(
    retriever: BaseRetriever,
    prompt: ChatPromptTemplate,
    model: BaseChatModel,
    is_relevant: Callable[[list[Passage]], bool],
) -> Runnable[dict[str, Any], dict[str, Any]]:
    """question -> {question, passages, raw}: retrieve, then (if anything relevant was found) generate.

    Streams: the `passages` chunk arrives first, then `raw` text deltas.
    """

    def prompt_inputs(x: dict[str, Any]) -> dict[str, str]:
        return {"passages": render_passages(build_sources(x["passages"])), "question": x["question"]}

    generate = RunnableLambda(prompt_inputs) | prompt | model | StrOutputParser()
    nothing: Runnable[dict[str, Any], str] = RunnableLambda(lambda _x: NOT_IN_ARTICLES)
    return RunnablePassthrough.assign(
        passages=itemgetter("question") | retriever | RunnableLambda(passages_from_documents)
    ) | RunnablePassthrough.assign(raw=RunnableBranch((lambda x: not is_relevant(x["passages"]), nothing), generate))


@dataclass(frozen=True, slots=True)
class ParsedAnswer:
    """LLM output after verification."""

    text: str
    citations: list[Citation]
    dropped: list[str]


def parse_llm_answer(raw: str, sources: Sequence[Source], embedder: Embedder | None) -> ParsedAnswer:
    """Split the model's text into claims, anchor each to the sentence that supports it, drop the rest."""
    raw = raw.strip()
    if not raw or NOT_IN_ARTICLES in raw:
        return ParsedAnswer("", [], [])
    by_number = {s.number: s for s in sources}
    finder = SupportFinder(embedder, source_sentences(sources), sources)
    parts: list[str] = []
    citations: list[Citation] = []
    dropped: list[str] = []
    for s, e in split_sentences(raw):
        claim_with_markers = raw[s:e]
        cited = [int(n) for n in MARKER.findall(claim_with_markers)]
        # Plain text only: a tag the model copied (or was tricked into writing) never reaches a client.
        claim = _TAG.sub("", MARKER.sub("", claim_with_markers)).strip()
        if len(re.findall(r"\w+", claim)) < 3:
            continue  # a marker on its own, or a fragment: nothing to verify
        preferred = [n for n in cited if n in by_number]
        sentence, _moved = finder.locate(claim, preferred)
        shown = claim
        if sentence is None:
            # Supported in substance but a particular (a number, a date, a name) is not in the sentence: the
            # claim is reduced to the quote, which says what the article says.
            sentence, _moved = finder.locate(claim, preferred, strict=False)
            if sentence is None:
                dropped.append(claim)
                continue
            shown = f"“{neutralize(sentence.text)}”"
        citation = citation_for(sentence, by_number[sentence.number])
        citations.append(citation)
        parts.append(f"{annotate_relative(shown, by_number[citation.number].published_at)} [{citation.number}]")
    return ParsedAnswer(" ".join(parts), citations, dropped)


@dataclass(slots=True)
class _Asked:
    """One question on its way through the engine."""

    question: str
    standalone: str
    filters: Any
    k: int
    as_of: dt.date
    intent: Intent
    timings: Timings


class AnswerEngine:
    """Runs one question through condense -> retrieve -> answer -> verify, as a stream of events."""

    def __init__(
        self,
        embedder: Embedder,
        search: Callable[[str, int, Any, dt.date | None], list[Passage]],
        article_texts: Callable[[Sequence[str]], dict[str, str]],
        min_relevance: float,
        chat_model: Callable[[], BaseChatModel] | None,
    ) -> None:
        self.embedder = embedder
        self.search = search
        self.article_texts = article_texts
        self.min_relevance = min_relevance
        self.chat_model = chat_model
        self.extractive = ExtractiveAnswerer(embedder)

    def is_relevant(self, passages: Sequence[Passage]) -> bool:
        """True when some passage is close enough in meaning to be worth answering from."""
        return any((p.dense_score or 0.0) >= self.min_relevance for p in passages)

    async def stream(
        self,
        question: str,
        history: Sequence[ChatTurn],
        filters: Any,
        mode: Mode,
        k: int,
        as_of: dt.date | None = None,
    ) -> AsyncIterator[AnswerEvent]:
        """Answer `question` as of `as_of` (default today), yielding events; the last one is `done`."""
        started = time.perf_counter()
        timings = Timings()
        standalone = question
        if history:
            t0 = time.perf_counter()
            standalone = await self._condense(question, history, mode)
            timings.condense_ms = _ms(t0)
        day = as_of or dt.date.today()
        asked = _Asked(question, standalone, filters, k, day, parse_intent(focus(standalone), day), timings)
        if asked.intent.kind == "timeline":
            asked.k = max(k, TIMELINE_K)  # a story told over several articles needs passages from each

        if mode == "llm":
            assert self.chat_model is not None
            events = self._llm(asked)
        else:
            events = self._extractive(asked)
        async for event in events:
            if isinstance(event, DoneEvent):
                event.answer.timings.total_ms = _ms(started)
            yield event

    async def _condense(self, question: str, history: Sequence[ChatTurn], mode: Mode) -> str:
        if mode != "llm" or self.chat_model is None:
            # Without a model, history is used only when the question cannot stand alone (rag/condense.py).
            return condense_locally(question, history)
        transcript = "\n".join(f"{t.role}: {t.content}" for t in history[-8:])
        chain = load_prompt("condense") | self.chat_model() | StrOutputParser()
        try:
            rewritten = await chain.ainvoke({"history": html.escape(transcript, quote=False), "question": question})
        except Exception as exc:
            if is_upstream_exception(exc):
                raise upstream_error(exc) from exc
            raise
        rewritten = rewritten.strip().splitlines()[0].strip() if rewritten.strip() else ""
        if accept_rewrite(question, rewritten, prompt_text("condense")):
            return rewritten
        # A rewrite that lost the reader's names, copied the prompt or answered instead: keep what was asked.
        return condense_locally(question, history)

    async def _extractive(self, asked: _Asked) -> AsyncIterator[AnswerEvent]:
        t0 = time.perf_counter()
        passages = await asyncio.to_thread(self.search, asked.standalone, asked.k, asked.filters, asked.as_of)
        asked.timings.retrieve_ms = _ms(t0)
        sources = build_sources(passages)
        yield SourcesEvent(sources=sources)
        t0 = time.perf_counter()
        why: str | None = None
        result_text, citations, confidence = "", [], None
        if not self.is_relevant(passages):
            why = "no passage is relevant enough to the question" if passages else "no passage was retrieved"
        elif (why := self._uncovered(asked, sources)) is None:
            standalone, question = asked.standalone, asked.question
            context = standalone[: -len(question)].strip() if standalone.endswith(question) else ""
            result = await asyncio.to_thread(self.extractive.answer, question, sources, context, asked.intent)
            result_text, citations, why = result.text, result.citations, result.abstain_reason
            confidence = result.confidence
        asked.timings.generate_ms = _ms(t0)
        async for event in self._finish(asked, "extractive", result_text, citations, sources, why, [], confidence):
            yield event

    def _uncovered(self, asked: _Asked, sources: Sequence[Source]) -> str | None:
        """Why the archive cannot answer a question about a period it does not cover (None when it can)."""
        intent = asked.intent
        if intent.kind != "window" or intent.start is None:
            return None
        relevant = [s.published_at for s in sources if s.published_at and s.similarity >= self.min_relevance]
        newest = max(relevant, default=None)
        on_topic = f" The newest article I have on this is from {format_date(newest)}." if newest else ""
        if intent.future:
            return f"the question is about a time after {format_date(asked.as_of)}.{on_topic}"
        if newest is not None and intent.start > newest:
            return f"the question is about a time after the newest article on this topic.{on_topic}"
        return None

    async def _llm(self, asked: _Asked) -> AsyncIterator[AnswerEvent]:
        from rag.retrieve import PassageRetriever

        assert self.chat_model is not None
        retriever = PassageRetriever(search_fn=self.search, k=asked.k, filters=asked.filters, as_of=asked.as_of)
        chain = make_answer_chain(retriever, load_prompt("answer"), self.chat_model(), self.is_relevant)
        sources: list[Source] = []
        raw_parts: list[str] = []
        shown = ""
        timings = asked.timings
        t0 = time.perf_counter()
        try:
            async for chunk in chain.astream({"question": asked.standalone}):
                if "passages" in chunk:
                    timings.retrieve_ms = _ms(t0)
                    t0 = time.perf_counter()
                    sources = build_sources(chunk["passages"])
                    yield SourcesEvent(sources=sources)
                    if self._uncovered(asked, sources):
                        break  # the archive does not reach the period asked about: no model call
                if chunk.get("raw"):
                    raw_parts.append(chunk["raw"])
                    # The refusal sentinel never leaves the service, wherever the model writes it: an answer
                    # that opens with it shows nothing (it becomes the abstention), and elsewhere it is cut out,
                    # with any tail that could still grow into it held back until the next chunk decides.
                    so_far = "".join(raw_parts)
                    if NOT_IN_ARTICLES.startswith(so_far.lstrip()) or so_far.lstrip().startswith(NOT_IN_ARTICLES):
                        continue
                    visible = _without_sentinel(so_far)
                    if len(visible) > len(shown) and visible.startswith(shown):
                        yield DeltaEvent(text=visible[len(shown) :])
                        shown = visible
        except RagError:
            raise
        except Exception as exc:
            if is_upstream_exception(exc):
                raise upstream_error(exc) from exc
            # A model that streams nothing at all surfaces as this ValueError: treat it as an empty answer.
            if isinstance(exc, ValueError) and "No generation chunks" in str(exc):
                raw_parts = []
            elif isinstance(exc, ValueError | IndexError | KeyError | TypeError):
                raise UpstreamError(f"the LLM returned a malformed response ({exc.__class__.__name__})") from exc
            else:
                raise
        timings.generate_ms = _ms(t0)
        raw = "".join(raw_parts)
        why = self._uncovered(asked, sources)
        parsed = ParsedAnswer("", [], [])
        if why is None:
            parsed = await asyncio.to_thread(parse_llm_answer, raw, sources, self.embedder)
        if not parsed.text and why is None:
            if not sources or not any(s.similarity >= self.min_relevance for s in sources):
                why = "no passage is relevant enough to the question"
            elif NOT_IN_ARTICLES in raw:
                why = "the model found no answer in the passages"
            elif raw.strip():
                why = "no claim in the model's answer was supported by the passages"
            else:
                why = "the model returned an empty answer"
        async for event in self._finish(asked, "llm", parsed.text, parsed.citations, sources, why, parsed.dropped):
            yield event

    async def _finish(
        self,
        asked: _Asked,
        mode: Mode,
        text: str,
        citations: list[Citation],
        sources: list[Source],
        abstain_reason: str | None,
        dropped: list[str],
        confidence: float | None = None,
    ) -> AsyncIterator[AnswerEvent]:
        if text and citations:
            texts = await asyncio.to_thread(self.article_texts, [c.article_id for c in citations])
            text, citations = finalize(text, citations, sources, texts)
        current: dt.date | None = None
        if not text or not citations:
            text, citations = ABSTAIN_TEXT, []
            abstain_reason = abstain_reason or "no supported answer was found"
        else:
            abstain_reason = None
            if asked.intent.time_sensitive:
                # Say how current the answer is: the newest article it rests on.
                current = max((c.published_at for c in citations if c.published_at), default=None)
                if current is not None:
                    text = f"As of {format_date(current)}: {text}"
        if mode == "extractive":
            yield DeltaEvent(text=text)
        for citation in citations:
            yield CitationEvent(citation=citation)
        yield DoneEvent(
            answer=Answer(
                question=asked.question,
                standalone_question=asked.standalone,
                text=text,
                citations=citations,
                sources=sources,
                mode=mode,
                abstained=abstain_reason is not None,
                abstain_reason=abstain_reason,
                dropped_claims=dropped,
                as_of=asked.as_of,
                current_as_of=current,
                confidence=confidence,
                timings=asked.timings,
            )
        )


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 2)


def _without_sentinel(text: str) -> str:
    """`text` without the refusal sentinel, and without a tail that may be its start (held back, not shown)."""
    while NOT_IN_ARTICLES in text:
        text = text.replace(NOT_IN_ARTICLES, "")
    for cut in range(min(len(NOT_IN_ARTICLES) - 1, len(text)), 0, -1):
        if NOT_IN_ARTICLES.startswith(text[-cut:]):
            return text[:-cut]
    return text
