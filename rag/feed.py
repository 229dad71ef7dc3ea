"""The change feed: every write to the store records what it changed, so replicas apply only that.

Entries live in the store's `<name>-feed` collection: a sequence number, the operation, the article ids and
the generation token the write ends with. The head (last number given) and the floor (oldest number kept)
sit in the meta collection. Chroma has no atomic counter, so two replicas writing at the same instant can
take the same number; their entries keep distinct ids, and readers always look a few numbers back and skip
entries they have already applied. Entries older than the last `KEEP` are trimmed; a replica whose position
is below the floor rebuilds in full.

An entry is written after the write's data and before its final generation token: a replica that sees the
new token finds the entry, and fetching the named articles then returns the data the entry describes.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

KEEP = 10_000
LOOKBACK = 64  # numbers re-read behind a replica's position, for entries that took a number already passed
_TRIM_EVERY = 100

Operation = Literal["write", "delete"]


@dataclass(frozen=True, slots=True)
class Change:
    """One feed entry."""

    id: str
    seq: int
    op: str
    article_ids: tuple[str, ...]
    generation: str


class ChangeFeed:
    """Append and read the feed of one store (collections passed in by the store)."""

    def __init__(self, entries: Any, meta: Callable[[], Any]) -> None:
        self.entries = entries
        self._meta = meta  # the store's meta collection, looked up on each use

    @property
    def meta(self) -> Any:
        return self._meta()

    def position(self) -> tuple[int, int]:
        """(head, floor): the last number given and the oldest kept."""
        got = self.meta.get(ids=["feed"], include=["metadatas"])
        meta = ((got["metadatas"] or [{}])[0] or {}) if got["ids"] else {}
        return int(meta.get("head", 0)), int(meta.get("floor", 0))

    def append(self, op: Operation, article_ids: Sequence[str], generation: str) -> int:
        """Record one write and make `generation` the store's token (one meta write for both); returns its number."""
        head, floor = self.position()
        seq = head + 1
        self.entries.add(
            ids=[f"{seq:012d}-{uuid.uuid4().hex[:8]}"],
            embeddings=[[1.0]],
            documents=[json.dumps(list(article_ids))],
            metadatas=[{"seq": seq, "op": op, "generation": generation}],
        )
        if seq % _TRIM_EVERY == 0 and seq > KEEP:
            floor = seq - KEEP
            self.entries.delete(where={"seq": {"$lt": floor}})
        self.meta.upsert(
            ids=["feed", "generation"],
            embeddings=[[1.0], [1.0]],
            metadatas=[{"head": seq, "floor": floor}, {"token": generation}],
        )
        return seq

    def since(self, seq: int) -> list[Change]:
        """Entries numbered above `seq - LOOKBACK`, oldest first."""
        got = self.entries.get(where={"seq": {"$gt": seq - LOOKBACK}}, include=["metadatas", "documents"])
        changes = [
            Change(eid, int(meta["seq"]), str(meta["op"]), tuple(json.loads(doc)), str(meta.get("generation", "")))
            for eid, meta, doc in zip(got["ids"], got["metadatas"] or [], got["documents"] or [], strict=True)
        ]
        return sorted(changes, key=lambda c: (c.seq, c.id))
