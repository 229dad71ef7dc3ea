"""The `rag` command: summaries, exit codes, JSON output, article management, and a busy data directory."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import NEWS, SEED_ID, SEED_QUESTION, SEEDS, OpenService, write_jsonl
from typer.testing import CliRunner, Result

import rag.service
from rag.cli import app
from rag.embeddings import OnnxMiniLM


@pytest.fixture
def rag_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedder: OnnxMiniLM) -> tuple[CliRunner, Path]:
    """A runner configured like a user would: RAG_DATA_DIR in the environment, no `.env` in the directory."""
    data = tmp_path / "data"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAG_DATA_DIR", str(data))
    monkeypatch.setenv("COLUMNS", "400")  # long tmp paths in messages stay on one line
    # The same real model, loaded once for the session instead of once per command.
    monkeypatch.setattr(rag.service, "make_embedder", lambda _settings: embedder)
    return CliRunner(), data


def run(cli: tuple[CliRunner, Path], *args: str) -> Result:
    return cli[0].invoke(app, list(args))


def flat(text: str) -> str:
    """Text with line wrapping undone (messages on stderr wrap at the console width)."""
    return " ".join(text.split())


def test_ingest_prints_a_summary_and_exits_0(rag_cli: tuple[CliRunner, Path]) -> None:
    result = run(rag_cli, "ingest", str(SEEDS))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "added 1, updated 0, unchanged 0, failed 0"
    assert result.stderr == ""  # no progress bar when not on a terminal

    again = run(rag_cli, "ingest", str(SEEDS))
    assert again.exit_code == 0
    assert again.stdout.strip() == "added 0, updated 0, unchanged 1, failed 0"


def test_ingest_exits_1_and_names_each_failed_file(rag_cli: tuple[CliRunner, Path], tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    write_jsonl(inbox / "news.jsonl", NEWS[:2])
    (inbox / "empty.txt").write_bytes(b"")
    (inbox / "old.txt").write_bytes("Caf\xe9 reopens.".encode("latin-1"))

    result = run(rag_cli, "ingest", str(inbox), str(tmp_path / "missing.md"))

    assert result.exit_code == 1
    assert result.stdout.strip() == "added 2, updated 0, unchanged 0, failed 3"
    errors = flat(result.stderr)
    assert f"failed {inbox / 'empty.txt'}: file is empty" in errors
    assert f"failed {inbox / 'old.txt'}: not valid UTF-8 (byte 0xe9 at offset 3); re-save the file as UTF-8" in errors
    assert f"failed {tmp_path / 'missing.md'}: no such file or folder" in errors


def test_ingest_json_report(rag_cli: tuple[CliRunner, Path], tmp_path: Path) -> None:
    feed = write_jsonl(tmp_path / "news.jsonl", [*NEWS[:2], "not an article"])  # type: ignore[list-item]
    result = run(rag_cli, "ingest", "--json", str(feed))
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["summary"] == {"added": 2, "updated": 0, "unchanged": 0, "failed": 1}
    assert sorted(r["status"] for r in report["results"]) == ["added", "added", "failed"]
    added = [r for r in report["results"] if r["status"] == "added"]
    assert {r["article_id"] for r in added} == {"harbour-bridge", "wheat-harvest"}
    assert all(r["chunks"] >= 1 for r in added)
    failed = next(r for r in report["results"] if r["status"] == "failed")
    assert failed["origin"] == f"{feed}:3" and failed["reason"].startswith("expected a JSON object")


def test_search_prints_ranked_passages_with_title_date_score_and_span(rag_cli: tuple[CliRunner, Path]) -> None:
    run(rag_cli, "ingest", str(SEEDS))
    result = run(rag_cli, "search", SEED_QUESTION, "-k", "2")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("1. Russia has welcomes India’s")
    assert "2022-02-24" in lines[0] and "rank score 0.0" in lines[0] and f"{SEED_ID} [0:" in lines[0]
    assert "We welcome the independent position India has taken in the UN Security Council twice already [and]" in (
        result.stdout
    )  # the article's own brackets print as they are
    assert any(line.startswith("2. ") for line in lines)
    assert not any(line.startswith("3. ") for line in lines)


def test_search_json(rag_cli: tuple[CliRunner, Path], tmp_path: Path) -> None:
    run(rag_cli, "ingest", str(SEEDS), str(write_jsonl(tmp_path / "news.jsonl", NEWS)))
    result = run(rag_cli, "search", SEED_QUESTION, "--json")
    assert result.exit_code == 0, result.output
    passages = json.loads(result.stdout)
    assert len(passages) == 5
    assert passages[0]["article_id"] == SEED_ID and passages[0]["published_at"] == "2022-02-24"
    assert {"chunk_id", "title", "start", "end", "text", "rank_score", "dense_score"} <= set(passages[0])

    since = json.loads(run(rag_cli, "search", "news", "--json", "-k", "20", "--since", "2023-01-01").stdout)
    assert {p["article_id"] for p in since} == {"harbour-bridge"}
    until = json.loads(run(rag_cli, "search", "news", "--json", "-k", "20", "--until", "2021-01-01").stdout)
    assert {p["article_id"] for p in until} == {"volcano-flights"}
    source = json.loads(run(rag_cli, "search", "news", "--json", "-k", "20", "--source", "Farm Gazette").stdout)
    assert {p["article_id"] for p in source} == {"wheat-harvest"}


def test_search_usage_errors_exit_2(rag_cli: tuple[CliRunner, Path]) -> None:
    run(rag_cli, "ingest", str(SEEDS))
    bad_date = run(rag_cli, "search", "q", "--since", "24/02/2022")
    assert bad_date.exit_code == 2 and "YYYY-MM-DD" in bad_date.stderr
    backwards = run(rag_cli, "search", "q", "--since", "2023-01-01", "--until", "2022-01-01")
    assert backwards.exit_code == 2 and "is after 'until'" in flat(backwards.stderr)
    too_many = run(rag_cli, "search", "q", "-k", "0")
    assert too_many.exit_code == 2 and "k must be between 1 and 20" in flat(too_many.stderr)


def test_search_on_an_empty_store(rag_cli: tuple[CliRunner, Path]) -> None:
    result = run(rag_cli, "search", "anything")
    assert result.exit_code == 0 and result.stdout.strip() == "no matching passages"


def test_titles_with_brackets_print_as_written(rag_cli: tuple[CliRunner, Path], tmp_path: Path) -> None:
    title = "Markets [live] fall; [/b] traders [bold]worry[/bold]"
    feed = write_jsonl(tmp_path / "t.jsonl", [{"id": "markets", "title": title, "body": "Shares in Oslo fell."}])
    assert run(rag_cli, "ingest", str(feed)).exit_code == 0
    search = run(rag_cli, "search", "Oslo shares")
    assert search.exit_code == 0, search.output
    assert search.stdout.startswith(f"1. {title}  undated")
    shown = run(rag_cli, "articles", "show", "markets")
    assert shown.exit_code == 0 and shown.stdout.startswith(title)
    listed = run(rag_cli, "articles", "list")
    assert listed.exit_code == 0 and "[live]" in listed.stdout


def test_articles_list_show_and_delete(rag_cli: tuple[CliRunner, Path], tmp_path: Path) -> None:
    run(rag_cli, "ingest", str(SEEDS), str(write_jsonl(tmp_path / "news.jsonl", NEWS)))

    listed = run(rag_cli, "articles", "list", "--json")
    assert listed.exit_code == 0, listed.output
    records = json.loads(listed.stdout)
    # Newest first.
    assert [r["id"] for r in records] == ["harbour-bridge", "chess-final", SEED_ID, "wheat-harvest", "volcano-flights"]
    assert records[0]["published_at"] == "2023-05-17" and records[0]["source"] == "Coastal Times"
    assert records[0]["text"] is None and records[0]["chunks"] == 1
    table = run(rag_cli, "articles", "list")
    assert table.exit_code == 0 and "harbour-bridge" in table.stdout and "Farm Gazette" in table.stdout

    shown = run(rag_cli, "articles", "show", SEED_ID)
    assert shown.exit_code == 0
    assert "2022-02-24" in shown.stdout and "Russian chargé d’affaires Roman Babushkin" in shown.stdout
    shown_json = json.loads(run(rag_cli, "articles", "show", "wheat-harvest", "--json").stdout)
    assert shown_json["text"] == NEWS[1]["body"] and shown_json["url"] == NEWS[1]["url"]

    deleted = run(rag_cli, "articles", "delete", SEED_ID)
    assert deleted.exit_code == 0 and deleted.stdout.strip() == f"deleted {SEED_ID}"
    assert SEED_ID not in run(rag_cli, "articles", "list").stdout
    search = json.loads(run(rag_cli, "search", SEED_QUESTION, "--json", "-k", "20").stdout)
    assert SEED_ID not in {p["article_id"] for p in search}


def test_unknown_article_exits_3(rag_cli: tuple[CliRunner, Path]) -> None:
    for command in ("show", "delete"):
        result = run(rag_cli, "articles", command, "no-such-id")
        assert result.exit_code == 3
        assert "no article with id 'no-such-id'" in result.stderr


def test_a_second_process_is_refused_at_once_with_a_clear_message(open_service: OpenService, tmp_path: Path) -> None:
    holder = open_service()  # this test process holds the data directory
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env["RAG_DATA_DIR"] = str(holder.settings.data_dir)
    done = subprocess.run(
        [str(Path(sys.executable).with_name("rag")), "search", SEED_QUESTION],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,  # a hang fails the test instead of blocking it
    )
    assert done.returncode == 4, done.stderr
    message = flat(done.stderr)
    assert f"the data directory {holder.settings.data_dir} is in use by pid {os.getpid()}" in message
    assert "Traceback" not in done.stderr and done.stdout == ""


def readme_exit_codes() -> dict[str, int]:
    """The README's exit-code table: the first words of each meaning -> code."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    rows = re.findall(r"^\| (\d) \| ([^|(]+)", readme, re.M)
    return {meaning.strip(): int(code) for code, meaning in rows}


def test_exit_codes_match_the_readme_table(rag_cli: tuple[CliRunner, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    codes = readme_exit_codes()
    assert run(rag_cli, "ingest", str(SEEDS)).exit_code == 0
    cases = {
        ("ask", SEED_QUESTION, "--mode", "llm"): "configuration",
        ("search", "sanctions", "-k", "0"): "usage or bad request",
        ("search", "sanctions", "--since", "2022-13-01"): "usage or bad request",
        ("ask", "", "--mode", "extractive"): "usage or bad request",
        ("articles", "show", "no-such-article"): "not found",
        ("articles", "delete", "no-such-article"): "not found",
    }
    for args, meaning in cases.items():
        result = run(rag_cli, *args)
        assert result.exit_code == codes[meaning], f"rag {' '.join(args)}: {result.output}"
        assert "error:" in result.stderr

    monkeypatch.setenv("RAG_LLM_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens on port 9
    monkeypatch.setenv("RAG_LLM_MAX_RETRIES", "0")
    result = run(rag_cli, "ask", SEED_QUESTION, "--mode", "llm")
    assert result.exit_code == codes["the LLM failed"], result.output
    monkeypatch.delenv("RAG_LLM_BASE_URL")

    monkeypatch.setenv("RAG_CHROMA_URL", "http://127.0.0.1:9")
    for args in (("search", "sanctions"), ("ask", SEED_QUESTION), ("articles", "list")):
        result = run(rag_cli, *args)
        assert result.exit_code == codes["the article store failed"], result.output


def test_ask_quotes_each_passage_once(rag_cli: tuple[CliRunner, Path]) -> None:
    """A quote that opens with the article's own quotation mark is not wrapped in a second pair."""
    assert run(rag_cli, "ingest", str(SEEDS)).exit_code == 0
    result = run(rag_cli, "ask", "What did Babushkin say about the influence of sanctions?", "--mode", "extractive")
    assert result.exit_code == 0, result.output
    assert "We keep in mind the possibility of negative influence of sanctions" in result.stdout
    for doubled in ("““", "””", "“\"", "\"”", "““"):
        assert doubled not in result.stdout
    quotes = [line.strip() for line in result.stdout.splitlines() if line.startswith("    ")]
    assert quotes and all(q[0] in "“\"" for q in quotes), quotes
