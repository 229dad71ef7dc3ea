"""Large uploads as in-process jobs: POST /v1/articles answers 202 with a job URL at once, GET /v1/jobs/{id} reports.

A long ingest (293 articles took 268 s over HTTP) in one silent request is cut by any proxy with a 60 s timeout;
a job reports done/total and failures as it goes, and the final report when it ends. Jobs live in this process
only (a restart forgets them; the articles already stored stay stored) and the newest `_KEEP` are kept.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from rag.errors import IngestError, RagError
from rag.models import Article, IngestReport, IngestResult
from rag.service import RagService

log = logging.getLogger(__name__)
_KEEP = 100

JobStatus = Literal["running", "done", "failed"]


@dataclass
class Job:
    """One upload being ingested: progress, the failures so far, and the report once done."""

    id: str
    total: int
    status: JobStatus = "running"
    done: int = 0
    failures: list[IngestResult] = field(default_factory=list)
    report: IngestReport | None = None
    error: str | None = None


class Jobs:
    """The jobs of one app, each run in a thread of its own (the service serialises the writes)."""

    def __init__(self) -> None:
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, job_id: str) -> Job | None:
        """The job with this id, if this process still has it."""
        with self._lock:
            return self._jobs.get(job_id)

    def start(
        self,
        service: RagService,
        items: Sequence[Article | IngestError],
        on_done: Callable[[IngestReport], None] | None = None,
    ) -> Job:
        """Start ingesting `items` in the background; returns the job at once."""
        job = Job(id=uuid.uuid4().hex[:16], total=len(items))
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > _KEEP:
                self._jobs.popitem(last=False)

        def progress(result: IngestResult) -> None:
            job.done += 1
            if result.status == "failed":
                job.failures.append(result)

        def run() -> None:
            try:
                report = service.ingest(items, progress=progress)
            except Exception as exc:  # the job reports it; the thread must not die silently
                log.exception("ingest job %s failed", job.id)
                job.error = str(exc) if isinstance(exc, RagError) else "internal error; the server log has the details"
                job.status = "failed"
                return
            job.report, job.done, job.status = report, len(report.results), "done"
            if on_done is not None:
                on_done(report)

        threading.Thread(target=run, name=f"rag-ingest-{job.id}", daemon=True).start()
        return job
