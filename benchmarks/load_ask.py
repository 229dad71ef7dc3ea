"""Load on /v1/ask, and what /v1/ask/stream adds over the service call itself (extractive mode, 127.0.0.1 only).

    python benchmarks/load_ask.py [--requests 400] [--clients 16] [--corpus PATH ...] [--data-dir DIR | --fresh]

1. Opens a service on a data directory (default benchmarks/out/load_ask_data, kept between runs: unchanged
   articles are skipped, so only the first run pays for embedding), ingests seeds/ (and the Wikinews corpus when
   it is beside the repo in shared/corpora), and times `RagService.astream` in this process for a set of eval
   questions: time to its first event and to its answer.
2. Closes it and starts `rag serve` on that directory in a subprocess, on a free port on 127.0.0.1.
3. Sends each question to /v1/ask/stream one at a time: time to the first byte and to the `done` event.
4. Warms up, then sends N requests to /v1/ask from 16 concurrent clients: requests/s, p50, p95, max.

Bounded: a fixed number of requests, every one to 127.0.0.1, and a timeout on each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
KEY = "bench-key"
WIKINEWS = REPO.parent / "shared" / "corpora" / "wikinews-en.jsonl"
DATA_DIR = REPO / "benchmarks" / "out" / "load_ask_data"


def questions(limit: int) -> list[str]:
    """Eval questions without history, about the seed article and the Wikinews articles, interleaved."""
    sets = []
    for name in ("seed.jsonl", "wikinews.jsonl"):
        path = REPO / "evals" / name
        items = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        sets.append([i["question"] for i in items if not i["history"] and len(i["question"]) < 300])
    mixed = [q for pair in zip(*sets, strict=False) for q in pair]
    return mixed[:limit]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


# --- 1. the service in this process ---


def in_process(data_dir: Path, corpus: list[Path], asked: list[str], repeats: int) -> dict[str, dict[str, float]]:
    """Per question: the median time to the service's first event and to its answer (after one warm-up)."""
    from rag.answer import DoneEvent
    from rag.config import Settings
    from rag.service import RagService

    settings = Settings(_env_file=None, data_dir=data_dir, answer_mode="extractive")  # type: ignore[call-arg]
    with RagService.open(settings) as service:
        started = time.perf_counter()
        report = service.ingest_paths(corpus)
        s = report.summary()
        print(f"ingest: {s} in {time.perf_counter() - started:.1f} s; {len(service.index)} chunks in {data_dir}")

        async def measure() -> dict[str, dict[str, float]]:
            out: dict[str, dict[str, float]] = {}
            for q in asked:
                firsts, totals = [], []
                for attempt in range(repeats + 1):
                    t0 = time.perf_counter()
                    first, total = None, 0.0
                    async for event in service.astream(q, mode="extractive"):
                        first = first or time.perf_counter() - t0
                        if isinstance(event, DoneEvent):
                            total = time.perf_counter() - t0
                    if attempt:  # the first run warms caches
                        firsts.append(first or 0.0)
                        totals.append(total)
                out[q] = {"first": statistics.median(firsts), "done": statistics.median(totals)}
            return out

        return asyncio.run(measure())


# --- 2. the server ---


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "RAG_DATA_DIR": str(data_dir),
        "RAG_ANSWER_MODE": "extractive",
        "RAG_API_KEYS": KEY,
        "RAG_RATE_LIMIT_PER_MINUTE": "0",  # measuring the service, not the limiter
    }
    cmd = [sys.executable, "-m", "rag.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"rag serve exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("rag serve did not become ready in 60 s")


# --- 3. streaming, one request at a time ---


def stream_times(base: str, asked: list[str], repeats: int) -> dict[str, dict[str, float]]:
    """Per question, medians: time to the first byte of /v1/ask/stream and to its `done` event, and what the
    service itself reported spending on that same request (the answer's `timings`, in the server process)."""
    out: dict[str, dict[str, float]] = {}
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as client:
        for q in asked:
            runs: list[dict[str, float]] = []
            for attempt in range(repeats + 1):
                t0 = time.perf_counter()
                first = total = None
                body = b""
                with client.stream("POST", "/v1/ask/stream", json={"question": q, "mode": "extractive"}) as r:
                    r.raise_for_status()
                    for chunk in r.iter_raw():
                        first = first or time.perf_counter() - t0
                        body += chunk
                        if total is None and b"event: done" in body[-len(chunk) - 16 :]:
                            total = time.perf_counter() - t0
                if total is None or first is None:
                    raise RuntimeError(f"no done event for {q!r}")
                timings = done_answer(body.decode())["timings"]
                if attempt:  # the first run warms caches
                    runs.append(
                        {
                            "first": first,
                            "done": total,
                            "service_first": (timings["condense_ms"] + timings["retrieve_ms"]) / 1000,
                            "service_done": timings["total_ms"] / 1000,
                        }
                    )
            out[q] = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    return out


def done_answer(stream: str) -> dict[str, Any]:
    """The answer carried by the `done` event of an SSE body."""
    for block in stream.replace("\r\n", "\n").split("\n\n"):
        lines = block.split("\n")
        if "event: done" in lines:
            data = "".join(line[5:].strip() for line in lines if line.startswith("data:"))
            return dict(json.loads(data)["answer"])
    raise RuntimeError("no done event")


# --- 4. load ---


async def load(base: str, asked: list[str], total: int, clients: int, warmup: int) -> dict[str, Any]:
    """`total` requests to /v1/ask from `clients` concurrent clients (after `warmup` unmeasured ones)."""
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {KEY}"}, timeout=60, limits=limits
    ) as client:

        async def one(q: str) -> tuple[float, int]:
            t0 = time.perf_counter()
            r = await client.post("/v1/ask", json={"question": q, "mode": "extractive"})
            return time.perf_counter() - t0, r.status_code

        queue: asyncio.Queue[str] = asyncio.Queue()
        for i in range(warmup):
            queue.put_nowait(asked[i % len(asked)])

        results: list[tuple[float, int]] = []

        async def worker() -> None:
            while not queue.empty():
                results.append(await one(queue.get_nowait()))

        await asyncio.gather(*(worker() for _ in range(clients)))
        results.clear()
        rng = random.Random(7)
        for _ in range(total):
            queue.put_nowait(rng.choice(asked))
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    latencies = [t for t, _ in results]
    statuses: dict[int, int] = {}
    for _, status in results:
        statuses[status] = statuses.get(status, 0) + 1
    return {
        "requests": len(results),
        "seconds": elapsed,
        "rps": len(results) / elapsed,
        "p50": percentile(latencies, 50),
        "p95": percentile(latencies, 95),
        "max": max(latencies),
        "statuses": statuses,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=400, help="measured /v1/ask requests (default 400)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument("--warmup", type=int, default=32, help="unmeasured requests first (default 32)")
    parser.add_argument("--questions", type=int, default=20, help="distinct eval questions used (default 20)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per question for the stream comparison")
    parser.add_argument(
        "--corpus", type=Path, nargs="*", default=None,
        help="files or folders to ingest (default: seeds/ and shared/corpora/wikinews-en.jsonl when present)",
    )  # fmt: skip
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help=f"store to (re)use (default {DATA_DIR})")
    parser.add_argument("--fresh", action="store_true", help="use a new temporary store instead")
    args = parser.parse_args()
    if not 1 <= args.requests <= 20_000 or not 1 <= args.clients <= 64:
        parser.error("--requests must be 1..20000 and --clients 1..64")

    corpus = args.corpus or [REPO / "seeds", *([WIKINEWS] if WIKINEWS.is_file() else [])]
    asked = questions(args.questions)
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        data_dir = Path(tmp) / "data" if args.fresh else args.data_dir
        inproc = in_process(data_dir, corpus, asked, args.repeats)
        port = free_port()
        server = start_server(data_dir, port)
        try:
            base = f"http://127.0.0.1:{port}"
            http = stream_times(base, asked, args.repeats)
            result = asyncio.run(load(base, asked, args.requests, args.clients, args.warmup))
        finally:
            server.terminate()
            server.wait(timeout=15)

    def med(values: Any) -> float:
        return float(statistics.median(list(values)))

    h = http.values()
    ttfb, done = med(v["first"] for v in h), med(v["done"] for v in h)
    own_first, own_done = med(v["service_first"] for v in h), med(v["service_done"] for v in h)
    in_first, in_done = med(v["first"] for v in inproc.values()), med(v["done"] for v in inproc.values())
    add_first = med(v["first"] - v["service_first"] for v in h)
    add_done = med(v["done"] - v["service_done"] for v in h)
    add_first_in = med(http[q]["first"] - inproc[q]["first"] for q in asked)
    add_done_in = med(http[q]["done"] - inproc[q]["done"] for q in asked)
    ttfb_minus_aask = med(http[q]["first"] - inproc[q]["done"] for q in asked)

    print(f"\ncorpus: {', '.join(str(p) for p in corpus)}; {len(asked)} questions; extractive mode; 127.0.0.1")
    print(f"\n/v1/ask under load: {result['requests']} requests, {args.clients} concurrent clients")
    print(f"  throughput  {result['rps']:7.1f} requests/s  ({result['seconds']:.1f} s)")
    print(f"  latency     p50 {ms(result['p50'])}   p95 {ms(result['p95'])}   max {ms(result['max'])}")
    print(f"  statuses    {result['statuses']}")
    print("\n/v1/ask/stream, one request at a time (medians over questions of the median of runs)")
    print(f"  HTTP client:            first byte  {ms(ttfb)}   done event {ms(done)}")
    print(f"  service, same request:  sources     {ms(own_first)}   answer     {ms(own_done)}   (its own timings)")
    print(f"  service, in-process:    first event {ms(in_first)}   answer     {ms(in_done)}   (before the server ran)")
    print("  added by HTTP + SSE over the service call:")
    print(f"    vs the same request's timings:  to first byte {ms(add_first)}   to done {ms(add_done)}")
    print(f"    vs the in-process runs:         to first byte {ms(add_first_in)}   to done {ms(add_done_in)}")
    print(f"    first byte minus the in-process aask time: {ms(ttfb_minus_aask)}")


if __name__ == "__main__":
    main()
