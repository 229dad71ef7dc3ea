"""The `rag` command: ingest, search, ask, articles, serve, eval. Errors become messages and exit codes here."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rag.config import Settings
from rag.errors import (
    ConfigError,
    InvalidRequestError,
    NotFoundError,
    RagError,
    StoreError,
    StoreLockedError,
    UpstreamError,
)
from rag.models import Filters

app = typer.Typer(
    help="Question answering over news articles, with citations.", no_args_is_help=True, pretty_exceptions_enable=False
)
articles_app = typer.Typer(help="List, show and delete articles.", no_args_is_help=True)
app.add_typer(articles_app, name="articles")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)

# Exit codes, as the README's table says: 1 some input failed, 2 usage or bad request, 3 not found, 4 the data
# directory is in use, 5 the LLM failed, 6 configuration, 7 the store failed. Subclasses before their parents.
_EXIT = {
    NotFoundError: 3,
    StoreLockedError: 4,
    StoreError: 7,
    UpstreamError: 5,
    ConfigError: 6,
    InvalidRequestError: 2,
}
_QUOTE_MARKS = "\"'“”‘’«»"


def exit_code(exc: RagError) -> int:
    """The exit code of an error (1 for any other failure)."""
    return next((c for t, c in _EXIT.items() if isinstance(exc, t)), 1)


def quoted(text: str) -> str:
    """A quote in quotation marks, unless it already opens or closes with one of its own (no doubled marks)."""
    if text[:1] in _QUOTE_MARKS or text[-1:] in _QUOTE_MARKS:
        return text
    return f"“{text}”"


@contextmanager
def _service(settings: Settings | None = None) -> Iterator[Any]:
    from rag.service import RagService

    try:
        with RagService.open(settings or Settings()) as service:
            yield service
    except RagError as exc:  # raised by opening the store or by the command's body: one mapping for all
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(exit_code(exc)) from None


def _filters(since: str | None, until: str | None, source: str | None = None) -> Filters:
    try:
        return Filters(
            since=dt.date.fromisoformat(since) if since else None,
            until=dt.date.fromisoformat(until) if until else None,
            source=source,
        )
    except ValueError:
        err.print("[red]error:[/red] --since/--until take dates as YYYY-MM-DD")
        raise typer.Exit(2) from None


def _as_of(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        err.print("[red]error:[/red] --as-of takes a date as YYYY-MM-DD")
        raise typer.Exit(2) from None


AsOf = Annotated[
    str | None,
    typer.Option("--as-of", help="Answer as of this day (YYYY-MM-DD): later articles are not used. Default: today."),
]
Since = Annotated[str | None, typer.Option("--since", help="Only articles published on or after (YYYY-MM-DD).")]
Until = Annotated[str | None, typer.Option("--until", help="Only articles published on or before (YYYY-MM-DD).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]
K = Annotated[int | None, typer.Option("-k", help="How many passages.")]


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (.txt .md .html .json .jsonl).")],
    as_json: AsJson = False,
) -> None:
    """Add or update articles; unchanged ones are skipped. Exits 1 if any article failed."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with _service() as service:
        show = sys.stderr.isatty() and not as_json
        with Progress(
            TextColumn("ingesting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=err, disable=not show, transient=True,
        ) as bar:  # fmt: skip
            task = bar.add_task("ingest", total=None)
            report = service.ingest_paths(paths, progress=lambda _r: bar.advance(task))
    if as_json:
        out.print_json(
            json.dumps(
                {"summary": report.summary(), "results": [dataclasses.asdict(r) for r in report.results]}, default=str
            )
        )
    else:
        for r in report.results:
            if r.status == "failed":
                err.print(f"[red]failed[/red] {escape(r.origin)}: {escape(r.reason or '')}")
        s = report.summary()
        out.print(f"added {s['added']}, updated {s['updated']}, unchanged {s['unchanged']}, failed {s['failed']}")
    if report.failed:
        raise typer.Exit(1)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: K = None,
    since: Since = None,
    until: Until = None,
    source: Annotated[str | None, typer.Option(help="Only this source.")] = None,
    as_of: AsOf = None,
    as_json: AsJson = False,
) -> None:
    """Print the passages that best match a query, best first."""
    day = _as_of(as_of)
    with _service() as service:
        passages = service.search(query, k, _filters(since, until, source), as_of=day)
    if as_json:
        out.print_json(json.dumps([p.model_dump(mode="json") for p in passages]))
        return
    if not passages:
        out.print("no matching passages")
    for rank, p in enumerate(passages, start=1):
        date = p.published_at.isoformat() if p.published_at else "undated"
        out.print(
            f"[bold]{rank}. {escape(p.title)}[/bold]  {date}  rank score {p.rank_score:.4f} (cosine {p.dense_score})  "
            f"[dim]{p.article_id} [{p.start}:{p.end}][/dim]"
        )
        out.print(f"   {p.text}\n", markup=False)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="A question in plain language.")],
    k: K = None,
    since: Since = None,
    until: Until = None,
    mode: Annotated[str | None, typer.Option(help="extractive | llm (default: llm when configured).")] = None,
    as_of: AsOf = None,
    as_json: AsJson = False,
) -> None:
    """Answer a question from the articles, with numbered citations (or say the articles do not answer it)."""
    day = _as_of(as_of)
    with _service() as service:
        if (mode or service.settings.answer_mode) == "llm" and service.engine.chat_model is None:
            # A request for LLM mode is a bad request over HTTP, but on the command line it is this machine's
            # configuration that is missing.
            raise ConfigError(
                "LLM mode is not configured: set RAG_LLM_BASE_URL or an API key, or use --mode extractive"
            )
        answer = service.ask(question, filters=_filters(since, until), mode=mode, k=k, as_of=day)
    if as_json:
        out.print_json(answer.model_dump_json())
        return
    label = (
        "extractive answer: sentences quoted from the articles, no language model"
        if answer.mode == "extractive"
        else "LLM answer, citations verified against the articles"
    )
    out.print(f"[dim]({label})[/dim]")
    if answer.abstained:
        out.print(f"[yellow]{answer.text}[/yellow]  [dim]({answer.abstain_reason})[/dim]")
    else:
        out.print(answer.text, markup=False)
    if answer.citations:
        out.print("\n[bold]Sources[/bold]")
        for c in answer.citations:
            date = c.published_at.isoformat() if c.published_at else "undated"
            out.print(f"[{c.number}] {c.title} ({date}) {c.url or c.article_id} [{c.start}:{c.end}]", markup=False)
            out.print(f"    {quoted(c.quote)}", markup=False)
    elif answer.sources:
        out.print("\n[bold]Closest sources[/bold]")
        for s in answer.sources[:3]:
            date = s.published_at.isoformat() if s.published_at else "undated"
            out.print(f"[{s.number}] {s.title} ({date}) {s.url or s.article_id} [{s.start}:{s.end}]", markup=False)
    if answer.dropped_claims:
        out.print(f"[dim]{len(answer.dropped_claims)} unsupported claim(s) removed[/dim]")


@articles_app.command("list")
def articles_list(as_json: AsJson = False) -> None:
    """List the stored articles, newest first."""
    with _service() as service:
        records = service.list_articles()
    if as_json:
        out.print_json(json.dumps([{**dataclasses.asdict(r), "text": None} for r in records], default=str))
        return
    table = Table("id", "date", "title", "chunks", "source")
    for r in records:
        table.add_row(r.id, str(r.published_at or ""), escape(r.title[:70]), str(r.chunks), escape(r.source or ""))
    out.print(table)


@articles_app.command("show")
def articles_show(article_id: str, as_json: AsJson = False) -> None:
    """Print one article with its metadata."""
    with _service() as service:
        record = service.get_article(article_id)
    if as_json:
        out.print_json(json.dumps(dataclasses.asdict(record), default=str))
        return
    date = record.published_at or "undated"
    out.print(f"[bold]{escape(record.title)}[/bold]\n{date}  {escape(record.url or '')}  {record.chunks} chunks\n")
    out.print(record.text or "", markup=False)


@articles_app.command("delete")
def articles_delete(article_id: str) -> None:
    """Delete an article and all its chunks."""
    with _service() as service:
        service.delete_article(article_id)
    out.print(f"deleted {article_id}")


from rag.evals.cli import register as _register_eval

_register_eval(app)


from rag.api.cli import register as _register_serve

_register_serve(app)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
