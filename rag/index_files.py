"""The keyword index on disk: a snapshot of every column plus a journal of the writes since.

A write appends one journal record (its rows, postings and vectors: bytes in proportion to the article), so
saving costs what the write changed. When the journal has grown to a fifth of the snapshot (or the index was
compacted or rebuilt), the next save writes a new snapshot instead. Loading reads the snapshot (vectors and
postings memory-mapped) and replays the journal. A record cut short by a crash makes the whole directory
unreadable (ValueError), and the service rebuilds from Chroma, as it does when the generation tokens differ.
"""

from __future__ import annotations

import json
import shutil
import struct
import uuid
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from rag.index import Delta, LocalIndex, Shared
from rag.postings import Grow, Postings

_FORMAT = 2
_JOURNAL = "journal.bin"
_JOURNAL_SHARE = 0.2  # a snapshot once the journal holds this share of the snapshot's rows
_JOURNAL_MIN_ROWS = 10_000
_ARRAYS = ("day", "source_code", "doclen", "start", "end", "alive", "vectors", "p_offsets", "p_rows", "p_tfs")


def save(index: LocalIndex, directory: Path) -> None:
    """Append the versions' writes to the journal when it continues there, else write a snapshot."""
    s = index.shared
    pending = s.deltas[s.disk_deltas : index.n_deltas]
    rows = sum(d.row_hi - d.row_lo for d in pending)
    continues = s.disk == directory and (directory / "state.json").exists() and s.disk_deltas <= index.n_deltas
    if continues and s.journal_rows + rows <= max(_JOURNAL_MIN_ROWS, _JOURNAL_SHARE * s.disk_rows):
        with (directory / _JOURNAL).open("ab") as out:
            for delta in pending:
                _write_record(out, index, delta)
        s.disk_deltas, s.journal_rows = index.n_deltas, s.journal_rows + rows
        return
    snapshot(index, directory)


def snapshot(index: LocalIndex, directory: Path) -> None:
    """Write every column of this version to `directory`, replacing what was there."""
    s, n = index.shared, index.n
    tmp = directory.with_name(f"{directory.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir(parents=True)
    terms, rows, tfs = s.postings.flat(n)
    offsets = Postings.from_flat(len(s.terms), terms, rows, tfs).offsets
    for name, array in {
        "day": index.day,
        "source_code": index.source_code,
        "doclen": s.doclen.view(n),
        "start": s.start.view(n),
        "end": s.end.view(n),
        "alive": index.alive,
        "p_offsets": offsets,
        "p_rows": rows,
        "p_tfs": tfs,
    }.items():
        np.save(tmp / f"{name}.npy", array)
    vectors = np.lib.format.open_memmap(tmp / "vectors.npy", mode="w+", dtype=np.float32, shape=(n, index.dimension))
    b = min(s.base_rows, n)
    vectors[:b] = s.base_vectors[:b]
    if n > b:
        assert s.tail_vectors is not None
        vectors[b:] = s.tail_vectors.view(n - b)
    vectors.flush()
    del vectors
    state = {
        "format": _FORMAT,
        "generation": index.generation,
        "dimension": index.dimension,
        "rows": n,
        "ids": s.ids[:n],
        "article_of": s.article_of[:n],
        "live_hash": s.live_hash,
        "sources": s.source_names,
        "terms": s.terms,
    }
    (tmp / "state.json").write_text(json.dumps(state))
    (tmp / _JOURNAL).write_bytes(b"")
    old = directory.with_name(f"{directory.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if directory.exists():
        directory.rename(old)
    tmp.rename(directory)
    shutil.rmtree(old, ignore_errors=True)
    s.disk, s.disk_deltas, s.disk_rows, s.journal_rows = directory, index.n_deltas, n, 0


def load(directory: Path) -> LocalIndex:
    """Read a snapshot and replay its journal."""
    state = json.loads((directory / "state.json").read_text())
    if state.get("format") != _FORMAT:
        raise ValueError(f"index format {state.get('format')} is not {_FORMAT}")
    arrays = {name: np.load(directory / f"{name}.npy", mmap_mode="r") for name in _ARRAYS}
    n, dimension = int(state["rows"]), int(state["dimension"])
    if (
        any(len(arrays[c]) != n for c in ("day", "source_code", "doclen", "start", "end", "alive", "vectors"))
        or len(state["ids"]) != n
    ):
        raise ValueError("index files disagree in length")
    if arrays["vectors"].shape[1:] != (dimension,) or len(arrays["p_offsets"]) != len(state["terms"]) + 1:
        raise ValueError("index files disagree in shape")
    terms: list[str] = state["terms"]
    sources: list[str] = state["sources"]
    shared = Shared(
        dimension,
        ids=state["ids"],
        article_of=state["article_of"],
        day=Grow(np.int32, initial=arrays["day"]),
        source_code=Grow(np.int32, initial=arrays["source_code"]),
        doclen=Grow(np.int32, initial=arrays["doclen"]),
        start=Grow(np.int32, initial=arrays["start"]),
        end=Grow(np.int32, initial=arrays["end"]),
        # Only live rows are ever fetched, and a live row's version is its article's live one.
        row_hash=[state["live_hash"].get(aid, "") for aid in state["article_of"]],
        base_vectors=arrays["vectors"],
        postings=Postings(arrays["p_offsets"], arrays["p_rows"], arrays["p_tfs"]),
        vocab={t: i for i, t in enumerate(terms)},
        terms=terms,
        sources={name: i for i, name in enumerate(sources)},
        source_names=sources,
        live_hash=state["live_hash"],
    )
    alive = np.array(arrays["alive"], dtype=bool)
    for i, (cid, aid) in enumerate(zip(shared.ids, shared.article_of, strict=True)):
        shared.chunk_row[cid] = i
        shared.article_rows.setdefault(aid, []).append(i)
    index = LocalIndex(dimension, shared)
    index.n, index.alive, index.generation = n, alive, state["generation"]
    index.live = int(alive.sum())
    index.live_tokens = int(shared.doclen.view(n)[alive].sum())
    replayed = 0
    with (directory / _JOURNAL).open("rb") as journal:
        while (record := _read_record(journal)) is not None:
            replayed += _replay(index, *record)
    shared.disk, shared.disk_deltas, shared.disk_rows, shared.journal_rows = directory, index.n_deltas, n, replayed
    return index


# --- journal records: an 8-byte header length, a JSON header, then the arrays' raw bytes ---


def _write_record(out: BinaryIO, index: LocalIndex, d: Delta) -> None:
    s = index.shared
    lo, hi, b = d.row_lo, d.row_hi, s.base_rows
    off = s.row_term_off.buf
    t_lo, t_hi = int(off[lo - b]), int(off[hi - b])
    assert s.tail_vectors is not None
    arrays = {
        "day": s.day.buf[lo:hi],
        "source_code": s.source_code.buf[lo:hi],
        "doclen": s.doclen.buf[lo:hi],
        "spans": np.stack([s.start.buf[lo:hi], s.end.buf[lo:hi]], axis=1),
        "vectors": s.tail_vectors.buf[lo - b : hi - b],
        "term_counts": np.diff(off[lo - b : hi - b + 1]),
        "terms": s.row_terms.buf[t_lo:t_hi],
        "tfs": s.row_tfs.buf[t_lo:t_hi],
    }
    header = {
        "generation": d.generation,
        "removed": list(d.removed),
        "rows": [lo, d.alive_from, hi],
        "hashes": d.hashes,
        "vocab_lo": d.vocab_lo,
        "new_terms": s.terms[d.vocab_lo : d.vocab_hi],
        "sources_lo": d.sources_lo,
        "new_sources": s.source_names[d.sources_lo : d.sources_hi],
        "ids": s.ids[lo:hi],
        "article_of": s.article_of[lo:hi],
        "row_hash": s.row_hash[lo:hi],
        "arrays": [[name, a.dtype.str, list(a.shape)] for name, a in arrays.items()],
    }
    raw = json.dumps(header).encode()
    out.write(struct.pack("<Q", len(raw)) + raw)
    for a in arrays.values():
        out.write(np.ascontiguousarray(a).tobytes())


def _read_record(journal: BinaryIO) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    size = journal.read(8)
    if not size:
        return None
    try:
        header = json.loads(journal.read(struct.unpack("<Q", size)[0]))
        arrays = {}
        for name, dtype, shape in header["arrays"]:
            count = int(np.prod(shape)) if shape else 1
            data = journal.read(count * np.dtype(dtype).itemsize)
            arrays[name] = np.frombuffer(data, dtype=dtype).reshape(shape)
    except (struct.error, json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"journal record unreadable: {exc}") from exc
    return header, arrays


def _replay(index: LocalIndex, h: dict[str, Any], a: dict[str, np.ndarray]) -> int:
    s = index.shared
    lo, alive_from, hi = h["rows"]
    if lo != len(s.ids) or h["vocab_lo"] != len(s.terms) or h["sources_lo"] != len(s.source_names):
        raise ValueError("journal does not continue its snapshot")
    for term in h["new_terms"]:
        s.vocab[term] = len(s.terms)
        s.terms.append(term)
    for name in h["new_sources"]:
        s.sources[name] = len(s.source_names)
        s.source_names.append(name)
    counts = a["term_counts"]
    cuts = np.concatenate([[0], np.cumsum(counts)])
    postings = [((a["terms"][cuts[i] : cuts[i + 1]], a["tfs"][cuts[i] : cuts[i + 1]]), int(a["doclen"][i]))
                for i in range(hi - lo)]  # fmt: skip
    k = alive_from - lo

    def append(part: slice, retire: list[str], hashes: dict[str, str]) -> None:
        index._append(
            h["ids"][part], h["article_of"][part], h["row_hash"][part], a["spans"][part], a["day"][part],
            a["source_code"][part], a["vectors"][part], postings[part], retire, hashes,
        )  # fmt: skip

    if k:  # leftovers of a failed write: appended as they were, dead
        append(slice(0, k), [], {})
        index.alive[lo:alive_from] = False
        index.live -= k
        index.live_tokens -= int(a["doclen"][:k].sum())
    append(slice(k, None), [*h["hashes"], *h["removed"]], h["hashes"])
    index._record(
        Delta(tuple(h["removed"]), lo, alive_from, hi, h["hashes"], h["vocab_lo"], len(s.terms), h["sources_lo"],
              len(s.source_names), h["generation"]),
        compact=False,
    )  # fmt: skip
    return int(hi - lo)
