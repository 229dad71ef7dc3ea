"""RagService end to end on a local store: ingest, re-ingest, edit, delete, concurrent readers."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from conftest import NEWS, SEED_ID, SEED_QUESTION, SEEDS, OpenService, write_jsonl

from rag.errors import InvalidRequestError, NotFoundError
from rag.models import IngestResult
from rag.service import RagService

OLD = "The council voted to close the Elmwood library branch on Tuesday. Readers protested outside the town hall."
NEW = "The council voted to keep the Elmwood library branch open on Tuesday. Readers celebrated at the town hall."


def chunk_texts(service: RagService, article_id: str) -> list[str]:
    return [text or "" for _, text in service.store.chunk_texts(article_id)]


def test_seeds_ingest_and_answer_the_sample_question(service: RagService) -> None:
    report = service.ingest_paths([SEEDS])
    assert report.summary() == {"added": 1, "updated": 0, "unchanged": 0, "failed": 0}
    assert report.results[0].article_id == SEED_ID and report.results[0].chunks >= 2
    top = service.search(SEED_QUESTION)[0]
    assert top.article_id == SEED_ID
    assert "We welcome the independent position India has taken in the UN Security Council" in top.text
    assert service.get_article(SEED_ID).text[top.start : top.end] == top.text
    assert service.ready() == {
        "articles": 1,
        "chunks": report.results[0].chunks,
        "embedder": "all-MiniLM-L6-v2-int8",
        "store": str(service.settings.data_dir),
    }


def test_re_ingesting_unchanged_articles_writes_nothing(service: RagService, tmp_path: Path) -> None:
    feed = write_jsonl(tmp_path / "news.jsonl", NEWS)
    service.ingest_paths([SEEDS, feed])
    generation = service.store.generation()
    chunks = service.store.count_chunks()
    index_files = {p: p.stat().st_mtime_ns for p in (service.settings.data_dir / "index").iterdir()}

    report = service.ingest_paths([SEEDS, feed])

    assert report.summary() == {"added": 0, "updated": 0, "unchanged": 5, "failed": 0}
    assert service.store.generation() == generation
    assert service.store.count_chunks() == chunks
    assert service.index.generation == generation
    assert {p.name for p in index_files} == {p.name for p in (service.settings.data_dir / "index").iterdir()}


def test_editing_a_file_and_re_ingesting_replaces_the_article(service: RagService, tmp_path: Path) -> None:
    path = tmp_path / "local" / "library.txt"
    path.parent.mkdir()
    path.write_text(f"date 2024-03-05 {OLD}")
    assert service.ingest_paths([path.parent]).summary()["added"] == 1

    path.write_text(f"date 2024-03-05 {NEW}")
    report = service.ingest_paths([path.parent])

    assert report.summary()["updated"] == 1 and report.results[0].article_id == "library"
    assert chunk_texts(service, "library") == [NEW]  # the old chunks are gone from Chroma
    for query in ("close the library branch", "readers protested", "Elmwood library"):
        assert all("protested" not in p.text for p in service.search(query, k=10))
    assert service.search("Elmwood library")[0].text == NEW
    assert service.get_article("library").text == NEW
    assert [a.id for a in service.list_articles()] == ["library"]


def test_the_same_id_twice_in_one_ingest_keeps_the_later_version(service: RagService, tmp_path: Path) -> None:
    feed = write_jsonl(tmp_path / "f.jsonl", [{"id": "x", "body": OLD}, {"id": "x", "body": NEW}])
    report = service.ingest_paths([feed])
    assert [r.status for r in report.results] == ["added", "updated"]
    assert service.get_article("x").text == NEW and chunk_texts(service, "x") == [NEW]


def test_deleting_an_article_removes_it_and_all_its_chunks(service: RagService, tmp_path: Path) -> None:
    service.ingest_paths([SEEDS, write_jsonl(tmp_path / "news.jsonl", NEWS)])
    assert chunk_texts(service, SEED_ID)

    service.delete_article(SEED_ID)

    assert chunk_texts(service, SEED_ID) == []
    assert SEED_ID not in {a.id for a in service.list_articles()}
    assert all(p.article_id != SEED_ID for p in service.search(SEED_QUESTION, k=20))
    with pytest.raises(NotFoundError):
        service.get_article(SEED_ID)
    with pytest.raises(NotFoundError, match=f"no article with id '{SEED_ID}'"):
        service.delete_article(SEED_ID)
    assert len(service.list_articles()) == len(NEWS)


def test_deleting_every_article_leaves_an_empty_searchable_store(open_service: OpenService, tmp_path: Path) -> None:
    service = open_service()
    service.ingest_paths([write_jsonl(tmp_path / "news.jsonl", NEWS[:2])])
    for article in NEWS[:2]:
        service.delete_article(article["id"])
    assert service.search("wheat harvest") == []
    service.close()
    assert open_service().search("wheat harvest") == []


def test_no_search_sees_old_and_new_chunks_of_an_article_side_by_side(
    open_service: OpenService, tmp_path: Path
) -> None:
    service = open_service(chunk_tokens=32, chunk_overlap_tokens=0)  # several chunks per version
    versions = {
        tag: " ".join(f"Version {tag} sentence {i}: the Elmwood library council vote, round {i}." for i in range(12))
        for tag in ("alpha", "bravo")
    }
    feeds = {
        tag: write_jsonl(tmp_path / f"{tag}.jsonl", [{"id": "lib", "body": body}]) for tag, body in versions.items()
    }
    service.ingest_paths([feeds["alpha"]])
    mixed: list[set[str]] = []
    searches = 0
    stop = threading.Event()

    errors: list[BaseException] = []

    def reader() -> None:
        nonlocal searches
        while not stop.is_set():
            try:
                found = service.search("Elmwood library council vote round", k=20)
            except Exception as exc:
                errors.append(exc)
                return
            passages = [p for p in found if p.article_id == "lib"]
            seen = {tag for tag in versions for p in passages if f"Version {tag}" in p.text}
            if len(seen) > 1:
                mixed.append(seen)
            searches += 1

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for tag in ["bravo", "alpha"] * 3:
            assert service.ingest_paths([feeds[tag]]).summary()["updated"] == 1
    finally:
        stop.set()
        thread.join()
    assert not errors
    assert searches > 0
    assert not mixed
    assert all("Version alpha" in text for text in chunk_texts(service, "lib"))


def test_search_validates_k_and_the_query(service: RagService) -> None:
    service.ingest_paths([SEEDS])
    assert len(service.search(SEED_QUESTION, k=1)) == 1
    for k in (0, -1, 21):
        with pytest.raises(InvalidRequestError, match="k must be between 1 and 20"):
            service.search(SEED_QUESTION, k=k)
    with pytest.raises(InvalidRequestError, match="empty"):
        service.search("   ")


def test_search_on_an_empty_store_finds_nothing(service: RagService) -> None:
    assert service.search(SEED_QUESTION) == []


def test_progress_is_reported_once_per_article(service: RagService, tmp_path: Path) -> None:
    seen: list[IngestResult] = []
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "empty.txt").write_bytes(b"")
    write_jsonl(tmp_path / "in" / "news.jsonl", NEWS)
    report = service.ingest_paths([tmp_path / "in"], progress=seen.append)
    assert seen == report.results and len(seen) == len(NEWS) + 1


@pytest.mark.slow
def test_ingesting_a_folder_of_10000_small_files(open_service: OpenService, tmp_path: Path) -> None:
    root = tmp_path / "many"
    for d in range(100):
        (root / f"d{d:02d}").mkdir(parents=True)
        for f in range(100):
            (root / f"d{d:02d}" / f"{f:02d}.txt").write_text(f"Note {d}-{f}: the river rose {f} cm at gauge {d}.")
    (root / "d13" / "07.txt").write_bytes(b"\xff\xfe\x00")  # broken UTF-16
    (root / "d50" / "50.txt").write_bytes(b"")
    service = open_service()

    report = service.ingest_paths([root])

    assert report.summary() == {"added": 9_998, "updated": 0, "unchanged": 0, "failed": 2}
    assert service.store.count_articles() == 9_998 == len(service.index)
    assert service.search("river rose at gauge 42", k=5)
    assert service.ingest_paths([root]).summary()["unchanged"] == 9_998
