"""Reading articles: the seed format, front matter, JSON Lines, JSON, HTML, ids, and bad input reported per file."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from conftest import SEED_FILE, SEED_ID, SEEDS, write_jsonl

from rag.documents import iter_files, read_file
from rag.errors import IngestError
from rag.models import Article
from rag.service import RagService

MAX = 10_000_000


def read_all(paths: list[Path], max_bytes: int = MAX) -> tuple[list[Article], list[IngestError]]:
    articles: list[Article] = []
    errors: list[IngestError] = []
    for path, root in iter_files(paths):
        for item in read_file(path, root, max_bytes=max_bytes):
            if isinstance(item, IngestError):
                errors.append(item)
            else:
                articles.append(item)
    return articles, errors


def read_one(path: Path) -> Article:
    articles, errors = read_all([path])
    assert not errors, errors
    assert len(articles) == 1
    return articles[0]


def test_seed_article_has_its_date_a_title_from_its_first_sentence_and_its_file_id() -> None:
    article = read_one(SEED_FILE)
    assert article.id == SEED_ID
    assert article.published_at == dt.date(2022, 2, 24)
    assert article.title.startswith("Russia has welcomes India’s “independent and balanced” approach")
    assert len(article.title) <= 101
    # The date line is metadata, not text: the canonical text opens with the first sentence.
    assert article.text.startswith("Russia has welcomes India’s")
    assert "date 2022-02-24" not in article.text
    assert article.url is None and article.source is None
    assert len(article.content_hash) == 64


def test_seed_folder_gives_the_same_id_as_the_file() -> None:
    articles, errors = read_all([SEEDS])
    assert not errors
    assert [a.id for a in articles] == [SEED_ID]


def test_title_is_the_first_line_when_it_ends_before_the_first_sentence(tmp_path: Path) -> None:
    path = tmp_path / "story.txt"
    path.write_text("Ferry strike ends\n\nThe ferry strike ended on Friday. Crossings resume today.")
    article = read_one(path)
    assert article.title == "Ferry strike ends"
    assert article.text.startswith("Ferry strike ends\n\nThe ferry strike")


def test_text_that_merely_opens_with_the_word_date_is_not_a_seed(tmp_path: Path) -> None:
    path = tmp_path / "palms.txt"
    path.write_text("date palms thrive in the oasis. Growers expect a good year.")
    article = read_one(path)
    assert article.published_at is None
    assert article.text.startswith("date palms")


def test_front_matter_markdown(tmp_path: Path) -> None:
    path = tmp_path / "story.md"
    path.write_text(
        "---\n"
        "title: Harbour bridge reopens\n"
        "url: https://coastal-times.example/news/bridge\n"
        "published_at: 2023-05-17\n"
        "source: Coastal Times\n"
        "author: Maria Lindqvist\n"
        "---\n\n"
        "The harbour bridge reopened on Wednesday.\n\nBuses return on Monday.\n",
        encoding="utf-8",
    )
    article = read_one(path)
    assert article.title == "Harbour bridge reopens"
    assert article.url == "https://coastal-times.example/news/bridge"
    assert article.published_at == dt.date(2023, 5, 17)
    assert article.source == "Coastal Times"
    assert article.author == "Maria Lindqvist"
    assert article.text == "The harbour bridge reopened on Wednesday.\n\nBuses return on Monday."


def test_front_matter_without_title_takes_the_first_sentence(tmp_path: Path) -> None:
    path = tmp_path / "story.md"
    path.write_text("---\nsource: Wire\n---\nShips collided off the cape. Nobody was hurt.\n")
    article = read_one(path)
    assert article.title == "Ships collided off the cape"
    assert article.source == "Wire"


def test_windows_line_endings_and_a_bom_are_canonicalised(tmp_path: Path) -> None:
    path = tmp_path / "crlf.txt"
    path.write_bytes("\ufeffFirst line here.\r\nSecond line.\r\n".encode())
    assert read_one(path).text == "First line here.\nSecond line."


def test_json_lines(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "feed.jsonl",
        [
            {
                "id": "a-1",
                "title": "First",
                "url": "https://x.example/1",
                "published_at": "2021-01-02",
                "source": "X",
                "body": "One.",
            },
            {"id": "a-2", "title": "Second", "published_at": "2021-01-03T10:00:00Z", "body": "Two. Three."},
        ],
    )
    articles, errors = read_all([path])
    assert not errors
    assert [(a.id, a.title, a.published_at, a.source, a.text) for a in articles] == [
        ("a-1", "First", dt.date(2021, 1, 2), "X", "One."),
        ("a-2", "Second", dt.date(2021, 1, 3), None, "Two. Three."),
    ]
    assert articles[0].url == "https://x.example/1"
    assert articles[1].origin.endswith("feed.jsonl:2")  # reports name the line


def test_json_array_file(tmp_path: Path) -> None:
    path = tmp_path / "batch.json"
    path.write_text(json.dumps([{"id": "j1", "body": "Alpha."}, {"id": "j2", "text": "Beta."}, 7]))
    articles, errors = read_all([path])
    assert [a.id for a in articles] == ["j1", "j2"]
    assert len(errors) == 1 and "batch.json[2]" in str(errors[0]) and "expected a JSON object" in str(errors[0])


HTML_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Harbour bridge reopens after repairs | The Coastal Times</title>
<meta property="og:title" content="Harbour bridge reopens after two years of repairs">
<meta property="og:url" content="https://coastal-times.example/news/harbour-bridge-reopens">
<meta property="og:site_name" content="The Coastal Times">
<meta name="author" content="Maria Lindqvist">
<meta property="article:published_time" content="2023-05-17T08:30:00Z">
</head>
<body>
<header><nav><ul>
<li><a href="/">Home</a></li><li><a href="/news">News</a></li><li><a href="/sport">Sport</a></li>
<li><a href="/subscribe">Subscribe now for 1 euro</a></li>
</ul></nav></header>
<main><article>
<h1>Harbour bridge reopens after two years of repairs</h1>
<p>The harbour bridge in Port Alden reopened to traffic on Wednesday morning after two years of repairs that
cost the city 48 million euros, officials said.</p>
<p>Mayor Ingrid Solberg cut a ribbon at the northern approach while about three hundred residents watched from
the quay. "This bridge connects the two halves of our city, and for two years they have been apart," she said.</p>
<p>Engineers replaced all 212 steel cables and resurfaced the deck. The work was delayed by a shortage of
specialised welders and by the storms of last winter, according to the city's transport department.</p>
<p>Buses will return to their old routes from Monday, and the temporary ferry between the two quays will stop
running at the end of the month.</p>
</article></main>
<aside class="related"><h2>Most read</h2><ul>
<li><a href="/a">Local team wins cup final</a></li><li><a href="/b">Weather warning for the weekend</a></li>
</ul></aside>
<footer><p>© 2023 The Coastal Times. All rights reserved.</p>
<p><a href="/privacy">Privacy policy</a> | <a href="/cookies">Cookie settings</a> |
<a href="/contact">Contact us</a></p>
</footer>
</body>
</html>
"""


def test_html_page_keeps_the_article_and_drops_the_boilerplate(tmp_path: Path) -> None:
    path = tmp_path / "bridge.html"
    path.write_text(HTML_PAGE, encoding="utf-8")
    article = read_one(path)
    assert article.title == "Harbour bridge reopens after two years of repairs"
    assert "cost the city 48 million euros" in article.text
    assert "Engineers replaced all 212 steel cables" in article.text
    assert "temporary ferry between the two quays" in article.text
    for boilerplate in ("Subscribe now", "Home", "Most read", "cup final", "Privacy policy", "All rights reserved"):
        assert boilerplate not in article.text
    assert article.url == "https://coastal-times.example/news/harbour-bridge-reopens"
    assert article.published_at == dt.date(2023, 5, 17)
    assert article.source == "The Coastal Times"
    assert article.author == "Maria Lindqvist"
    assert article.id.startswith("url-")  # the page's own url names it


def test_html_page_without_article_text_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "empty.html"
    path.write_text(
        "<html><head><title>Menu</title></head><body><nav><ul><li><a href='/'>Home</a></li>"
        "<li><a href='/news'>News</a></li></ul></nav><footer>© 2023 Coastal Times</footer></body></html>"
    )
    _, errors = read_all([path])
    assert len(errors) == 1 and "no article text" in str(errors[0])


# --- ids: explicit > url > file path > content ---


def test_explicit_id_wins_over_url(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [{"id": "my-id", "url": "https://x.example/a", "body": "Text."}])
    assert read_one(path).id == "my-id"


def test_url_wins_over_file_path_and_is_stable(tmp_path: Path) -> None:
    first = tmp_path / "one.md"
    second = tmp_path / "elsewhere" / "two.md"
    second.parent.mkdir()
    first.write_text("---\nurl: https://x.example/story\n---\nVersion one.\n")
    second.write_text("---\nurl: https://x.example/story\n---\nVersion two, edited.\n")
    a, b = read_one(first), read_one(second)
    assert a.id == b.id and a.id.startswith("url-")
    assert a.content_hash != b.content_hash


def test_file_path_below_the_ingested_folder_names_a_file_without_id_or_url(tmp_path: Path) -> None:
    path = tmp_path / "corpus" / "Politics" / "Budget Vote.md"
    path.parent.mkdir(parents=True)
    path.write_text("The budget passed. Debate was long.")
    articles, _ = read_all([tmp_path / "corpus"])
    assert [a.id for a in articles] == ["politics-budget-vote"]
    # Editing the file keeps its id, so ingesting it again replaces the article.
    path.write_text("The budget passed narrowly. Debate was long.")
    edited, _ = read_all([tmp_path / "corpus"])
    assert edited[0].id == "politics-budget-vote"
    assert edited[0].content_hash != articles[0].content_hash


def test_content_names_an_article_with_no_id_url_or_file(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "f.jsonl", [{"body": "Same words."}, {"body": "Same words."}, {"body": "Other."}])
    articles, _ = read_all([path])
    assert articles[0].id == articles[1].id != articles[2].id
    assert articles[0].id.startswith("txt-")


def test_invalid_explicit_id_is_reported(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "f.jsonl", [{"id": "has spaces and ?", "body": "Text."}])
    _, errors = read_all([path])
    assert len(errors) == 1 and "id 'has spaces and ?'" in str(errors[0])


# --- bad input: each reported per file, with a reason a person can act on ---

BAD_FILES: list[tuple[str, bytes, str]] = [
    ("empty.txt", b"", "file is empty"),
    ("blank.md", b"  \n\t\n", "file is empty"),
    ("image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "binary file"),
    ("latin1.txt", "Café au lait à Paris, déjà vu.".encode("latin-1"), "not valid UTF-8 (byte 0xe9 at offset 3)"),
    (
        "baddate.txt",
        b" date 2022-02-30 Something happened on a day that does not exist.",
        "'2022-02-30' is not a valid date",
    ),
    ("baddate.md", b"---\npublished_at: yesterday\n---\nBody.", "'yesterday' is not a valid date"),
    ("badyaml.md", b"---\ntitle: [unclosed\n---\nBody.", "front matter is not valid YAML"),
    ("notobject.jsonl", b"[1, 2, 3]\n", "expected a JSON object with a 'body', got list"),
    ("brokenjson.jsonl", b'{"body": "unterminated\n', "invalid JSON"),
    ("nobody.jsonl", b'{"title": "No text"}\n', "missing 'body'"),
    ("surrogate.jsonl", b'{"body": "broken \\ud800 escape"}\n', "unpaired surrogate"),
    ("badurl.jsonl", b'{"body": "Text.", "url": "javascript:alert(1)"}\n', "is not an http(s) URL"),
    ("report.pdf", b"%PDF-1.4", "unsupported file type '.pdf'"),
]


@pytest.mark.parametrize(("name", "content", "reason"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_file_is_reported_with_its_name_and_reason(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    articles, errors = read_all([path])
    assert not articles
    assert len(errors) == 1
    message = str(errors[0])
    assert message.startswith(str(path)), message
    assert reason in message, message


def test_a_50_megabyte_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.txt"
    with path.open("wb") as handle:  # sparse: instant to create
        handle.truncate(50 * 1024 * 1024)
    articles, errors = read_all([path])  # refused by its size, before it is read
    assert not articles
    assert "52,428,800 bytes, over the 10,000,000-byte limit (RAG_MAX_FILE_BYTES); split it" in str(errors[0])


def test_an_oversized_json_line_is_reported_and_the_other_lines_are_read(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    line = json.dumps({"body": "x" * 1000}) + "\n"
    with path.open("w") as handle:
        handle.write(json.dumps({"id": "first", "body": "A real article."}) + "\n")
        handle.write('{"body": "' + "y" * (11 * 1024 * 1024) + '"}\n')  # one line over the limit
        handle.write(line * 40)
    articles, errors = read_all([path])
    assert articles[0].id == "first"
    assert len(articles) == 41
    assert len(errors) == 1 and "big.jsonl:2: line is" in str(errors[0]) and "over the" in str(errors[0])


def test_hidden_files_and_readmes_are_skipped(tmp_path: Path) -> None:
    (tmp_path / ".hidden.txt").write_text("Secret.")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "note.txt").write_text("Not an article.")
    (tmp_path / "README.md").write_text("About this folder.")
    (tmp_path / "story.txt").write_text("A story.")
    assert [p.name for p, _ in iter_files([tmp_path])] == ["story.txt"]


def test_a_folder_of_10000_files_with_a_few_bad_ones(tmp_path: Path) -> None:
    root = tmp_path / "many"
    bad = {
        root / "d007" / "f013.txt": b"",
        root / "d042" / "f099.txt": "naïve".encode("latin-1"),
        root / "d099" / "f000.txt": b"\x00\x01\x02binary",
    }
    for d in range(100):
        folder = root / f"d{d:03d}"
        folder.mkdir(parents=True)
        for f in range(100):
            (folder / f"f{f:03d}.txt").write_text(f"date 2021-03-{1 + f % 28:02d} Item {d}-{f}: the river rose {f} cm.")
    for path, content in bad.items():
        path.write_bytes(content)

    articles, errors = read_all([root])

    assert len(articles) == 10_000 - len(bad)
    assert len({a.id for a in articles}) == len(articles)
    assert sorted(str(e).split(": ", 1)[0] for e in errors) == sorted(str(p) for p in bad)


def test_bad_files_never_stop_the_rest_of_an_ingest(tmp_path: Path, service: RagService) -> None:
    folder = tmp_path / "inbox"
    folder.mkdir()
    for name, content, _ in BAD_FILES:
        (folder / name).write_bytes(content)
    (folder / "good.txt").write_text("date 2022-05-01 The ferry service resumed on Tuesday. Passengers cheered.")
    write_jsonl(
        folder / "mixed.jsonl",
        [{"id": "ok-1", "body": "The first good line."}, {"id": "ok-2", "body": "The second good line."}],
    )
    with (folder / "mixed.jsonl").open("a") as handle:
        handle.write('"not an object"\n{"id": "ok-3", "body": "After the bad line."}\n')

    report = service.ingest_paths([folder])

    summary = report.summary()
    assert summary["added"] == 4  # good.txt and three good JSON lines
    assert summary["failed"] == len(BAD_FILES) + 1
    failed = {r.origin: r.reason for r in report.results if r.status == "failed"}
    assert failed[str(folder / "mixed.jsonl") + ":3"].startswith("expected a JSON object")
    assert all(reason for reason in failed.values())
    assert {a.id for a in service.list_articles()} == {"good", "ok-1", "ok-2", "ok-3"}


def test_missing_path_is_reported(tmp_path: Path, service: RagService) -> None:
    report = service.ingest_paths([tmp_path / "nope.txt"])
    assert report.summary()["failed"] == 1
    assert report.results[0].reason == "no such file or folder"
