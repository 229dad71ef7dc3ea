"""The chat widget in a real browser: Playwright driving Debian's headless Chromium against a live uvicorn.

Two services run for the module, on 127.0.0.1 at free ports, sharing the session's embedder:
- `newsroom`: extractive mode, the seed article and a small newsroom; the demo page `/` (with its CSP) is used.
- `hostile`: LLM mode with a scripted model, an article full of script payloads (and a `javascript:` URL);
  the widget is embedded cross-origin in a third-party page that has NO Content-Security-Policy, so nothing but
  the widget itself stands between a payload and its execution.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import NEWS, SEED_FILE, SEED_ID, make_settings
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, Route, expect, sync_playwright
from servers import LiveServer

from rag.config import Settings
from rag.documents import build_article
from rag.embeddings import OnnxMiniLM
from rag.models import Article
from rag.service import RagService

CHROMIUM = shutil.which("chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# scripts/setup.sh installs Debian's chromium; without it these tests fail (never pass silently) unless
# SKIP_BROWSER_TESTS=1 says to skip them.
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("SKIP_BROWSER_TESTS") == "1", reason="SKIP_BROWSER_TESTS=1 and no chromium"
)

SEED_QUESTION = "What did Babushkin say about sanctions and defence cooperation?"
SCREENSHOT = Path("/tmp/widget.png")
WIDGET = "rag-news-widget"
TIMEOUT_MS = 15_000

# --- hostile content: every payload would set window.__pwned (and open a dialog) if it ever ran ---

PWN = "window.__pwned=1;alert(1)"
EVIL = "http://evil.invalid"
HOSTILE_TITLE = f'Ferry <img src="{EVIL}/t.png" onerror="{PWN}"> news <script>{PWN}</script>'
HOSTILE_SENTENCE = (
    f'Officials said the <img src="{EVIL}/a.png" onerror="{PWN}"> ferry terminal in Port Alden will reopen on '
    "Friday after the storm."
)
HOSTILE_BODY = (
    f'{HOSTILE_SENTENCE} <script>{PWN}</script> The ferry timetable <svg onload="{PWN}"></svg> returns to '
    f'normal next week, the harbour master said. Details: <a href="javascript:{PWN}">timetable</a> and '
    f'<iframe src="javascript:{PWN}"></iframe>.'
)
HOSTILE_QUESTION = f'When will the ferry terminal reopen? <img src=x onerror="{PWN}"><script>{PWN}</script>'
HOSTILE_MODEL_OUTPUT = (
    f'{HOSTILE_SENTENCE} [1] <script>{PWN}</script><a href="javascript:{PWN}">more</a> '
    f'<img src="{EVIL}/m.png" onerror="{PWN}">'
)


def hostile_article() -> Article:
    """Built by hand: `build_article` rightly refuses a javascript: URL, but the widget must not trust the API."""
    return Article(
        id="hostile-ferry",
        text=HOSTILE_BODY,
        title=HOSTILE_TITLE,
        content_hash="hostile-ferry-v1",
        published_at=dt.date(2024, 3, 8),
        url=f"javascript:{PWN}",
        source=f'<b onmouseover="{PWN}">Harbour Herald</b>',
        origin="test",
    )


# --- live servers ---


@dataclass
class LiveService:
    """A RagService behind a live uvicorn on 127.0.0.1 (tests/servers.py), run in a thread."""

    service: RagService
    server: LiveServer

    @property
    def base(self) -> str:
        return self.server.base

    @classmethod
    def start(cls, service: RagService, settings: Settings) -> LiveService:
        from rag.api.app import create_app

        return cls(service, LiveServer.start(create_app(settings=settings, service=service)))

    def stop(self) -> None:
        self.server.stop()


class _HostPage(BaseHTTPRequestHandler):
    html = b""

    def do_GET(self) -> None:
        if self.path in ("/", "/index.html"):
            body, status, kind = self.html, 200, "text/html; charset=utf-8"
        else:
            body, status, kind = b"not found", 404, "text/plain"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@dataclass
class HostSite:
    """A third-party news site on its own origin, with no CSP: it embeds the widget with one script tag."""

    origin: str
    server: ThreadingHTTPServer
    thread: threading.Thread

    @classmethod
    def start(cls) -> HostSite:
        server = ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (_HostPage,), {}))
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        return cls(f"http://127.0.0.1:{server.server_address[1]}", server, thread)

    def serve(self, api: str) -> None:
        self.server.RequestHandlerClass.html = (  # type: ignore[attr-defined]
            "<!doctype html><html lang=en><head><meta charset=utf-8><title>Third-party news site</title>"
            '<link rel="icon" href="data:,"></head><body><h1>Harbour Herald</h1><p>Local news.</p>'
            f'<div id="control"></div><script src="{api}/widget.js" data-api="{api}" defer></script></body></html>'
        ).encode()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def newsroom(embedder: OnnxMiniLM, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    """Extractive mode, the seed article and four more, asking open to the public (the widget's case)."""
    settings = make_settings(tmp_path_factory.mktemp("newsroom"), answer_mode="extractive", public_ask=True)
    service = RagService.open(settings, embedder=embedder)
    report = service.ingest_paths([SEED_FILE])
    report2 = service.ingest([build_article(a, origin="news", fallback_id=None) for a in NEWS])
    assert not report.failed and not report2.failed
    live = LiveService.start(service, settings)
    yield live
    live.stop()
    service.close()


@pytest.fixture(scope="module")
def host_site() -> Iterator[HostSite]:
    site = HostSite.start()
    yield site
    site.stop()


@pytest.fixture(scope="module")
def hostile(
    embedder: OnnxMiniLM, tmp_path_factory: pytest.TempPathFactory, host_site: HostSite
) -> Iterator[LiveService]:
    """LLM mode with a scripted model whose output carries payloads; the host site's origin is allowed by CORS."""
    settings = make_settings(
        tmp_path_factory.mktemp("hostile"), answer_mode="auto", public_ask=True, widget_origins=[host_site.origin]
    )
    service = RagService.open(settings, embedder=embedder)
    report = service.ingest([hostile_article(), *(build_article(a, origin="news", fallback_id=None) for a in NEWS)])
    assert not report.failed
    # A small sleep between streamed characters keeps the streaming phase long enough to be observed.
    service.use_chat_model(lambda: FakeListChatModel(responses=[HOSTILE_MODEL_OUTPUT], sleep=0.004))
    live = LiveService.start(service, settings)
    host_site.serve(live.base)
    yield live
    live.stop()
    service.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if CHROMIUM is None:
        pytest.fail("the browser tests need Debian's chromium: apt-get install -y chromium (or SKIP_BROWSER_TESTS=1)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


# --- page helpers ---


@dataclass
class Watch:
    """Everything a page did that a test may want to assert on."""

    requests: list[str] = field(default_factory=list)
    asks: list[dict[str, Any]] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)


def open_page(browser: Browser, url: str, **context_args: Any) -> tuple[Page, Watch]:
    context = browser.new_context(**context_args)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    watch = Watch()

    def on_request(request: Request) -> None:
        watch.requests.append(request.url)
        if request.url.endswith("/v1/ask/stream") and request.method == "POST":
            watch.asks.append(json.loads(request.post_data or "{}"))

    def on_dialog(dialog: Any) -> None:
        watch.dialogs.append(dialog.message)
        dialog.dismiss()

    def on_console(msg: ConsoleMessage) -> None:
        watch.console.append(f"{msg.type}: {msg.text}")

    page.on("request", on_request)
    page.on("dialog", on_dialog)
    page.on("pageerror", lambda exc: watch.errors.append(str(exc)))
    page.on("console", on_console)
    page.goto(url)
    return page, watch


def widget(page: Page, selector: str) -> Any:
    """A locator inside the widget's (open) shadow root; Playwright's CSS engine pierces it."""
    return page.locator(f"{WIDGET} {selector}")


def finished(page: Page, index: int) -> Any:
    """The `index`-th reply bubble, once it is no longer streaming (an answer, an abstention or an error)."""
    page.wait_for_function(
        """([tag, n]) => {
            const b = document.querySelector(tag).shadowRoot.querySelectorAll('.msg.bot')[n];
            return b && !b.classList.contains('streaming');
        }""",
        arg=[WIDGET, index],
    )
    return widget(page, ".msg.bot").nth(index)


def ask(page: Page, question: str) -> Any:
    """Type a question, send it with Enter, and return the finished reply bubble."""
    before = widget(page, ".msg.bot").count()
    box = widget(page, "textarea")
    box.fill(question)
    box.press("Enter")
    return finished(page, before)


def csp_violations(watch: Watch) -> list[str]:
    return [m for m in watch.console if "Content Security Policy" in m or "Content-Security-Policy" in m]


# --- tests ---


def test_ask_cite_and_keyboard_on_demo_page(browser: Browser, newsroom: LiveService, tmp_path: Path) -> None:
    """Demo page: open with the keyboard, ask, see the streamed answer, open [n], see the passage; Esc closes."""
    page, watch = open_page(browser, newsroom.base + "/", viewport={"width": 1280, "height": 860})
    launcher = widget(page, "button.launcher")
    expect(launcher).to_be_visible()
    expect(launcher).to_have_attribute("aria-expanded", "false")

    launcher.focus()
    page.keyboard.press("Enter")
    panel = widget(page, "[role=dialog]")
    expect(panel).to_be_visible()
    expect(launcher).to_have_attribute("aria-expanded", "true")
    box = widget(page, "textarea")
    expect(box).to_be_focused()

    # The question's length limit is shown as a counter.
    counter = widget(page, ".count")
    expect(counter).to_have_text("0 / 2,000 characters")
    box.fill("x" * 2500)  # maxlength stops it at the limit
    expect(counter).to_have_text("2,000 / 2,000 characters")
    expect(counter).to_contain_class("full")
    box.fill("")
    expect(counter).not_to_contain_class("full")

    # Shift+Enter is a new line, not a send.
    page.keyboard.type("first line")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("second line")
    expect(box).to_have_value("first line\nsecond line")
    assert watch.asks == []

    bubble = ask(page, SEED_QUESTION)
    assert watch.asks[-1]["question"] == SEED_QUESTION
    expect(widget(page, ".msg.user").last).to_contain_text(SEED_QUESTION)
    expect(bubble.locator(".label")).to_contain_text("Extractive")
    expect(bubble).not_to_have_class("abstained")
    text = bubble.locator(".text")
    expect(text).to_contain_text("sanctions")
    cite = bubble.locator("button.cite-btn").first
    expect(cite).to_be_visible()
    assert cite.get_attribute("aria-label", timeout=TIMEOUT_MS).startswith("Source ")

    cite.click()
    expect(cite).to_have_attribute("aria-expanded", "true")
    source = bubble.locator(".source")
    expect(source).to_be_visible()
    seed = newsroom.service.get_article(SEED_ID)
    expect(source.locator(".source-title")).to_contain_text(seed.title)
    expect(source.locator("time")).to_have_attribute("datetime", "2022-02-24")
    mark = source.locator(".passage mark")
    expect(mark).to_be_visible()
    quote = mark.inner_text()
    passage = source.locator(".passage").inner_text()
    assert quote and quote in passage and len(passage) > len(quote), "the quote is highlighted inside its passage"
    assert quote in (seed.text or ""), "the highlighted quote is the article's own words"
    assert source.locator("a").count() == 0, "the seed article has no URL, so no link"

    shot = tmp_path / "widget.png"
    page.screenshot(path=str(shot))
    shutil.copyfile(shot, SCREENSHOT)
    assert shot.stat().st_size > 10_000

    # The mode label stays on one line.
    label = bubble.locator(".label")
    assert label.evaluate("e => e.getBoundingClientRect().height") < 30, "the mode label wrapped"

    # Esc closes the open source card first (focus back on its [n]), then the panel (focus on the launcher).
    mark.click()
    page.keyboard.press("Escape")
    expect(source).to_be_hidden()
    expect(panel).to_be_visible()
    expect(cite).to_be_focused()
    expect(cite).to_have_attribute("aria-expanded", "false")
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(launcher).to_be_focused()
    expect(launcher).to_have_attribute("aria-expanded", "false")

    assert csp_violations(watch) == [], "the widget must work under the demo page's strict CSP"
    assert watch.errors == []
    page.context.close()


def test_conversation_abstention_and_errors(browser: Browser, newsroom: LiveService) -> None:
    """Follow-ups carry history, New conversation clears it, abstentions look different, errors offer Retry."""
    page, watch = open_page(browser, newsroom.base + "/", viewport={"width": 1280, "height": 860})
    widget(page, "button.launcher").click()

    first = ask(page, SEED_QUESTION)
    expect(first.locator("button.cite-btn").first).to_be_visible()
    answer_text = first.locator(".text").inner_text()
    ask(page, "And what did he say about the UN Security Council?")
    assert "history" not in watch.asks[0]
    history = watch.asks[1]["history"]
    assert history[0] == {"role": "user", "content": SEED_QUESTION}
    assert history[1]["role"] == "assistant" and history[1]["content"].strip() == answer_text.strip()

    widget(page, "button.new").click()
    expect(widget(page, ".msg")).to_have_count(0)
    expect(widget(page, "textarea")).to_be_focused()
    off_topic = ask(page, "Who won the 1966 football World Cup final at Wembley?")
    assert "history" not in watch.asks[2], "New conversation clears the history"
    expect(off_topic).to_contain_class("abstained")
    expect(off_topic.locator(".abstain-head")).to_have_text("Not in the articles")
    reason = off_topic.locator(".reason").inner_text()
    assert reason.startswith("None of the articles mention") and "World Cup" in reason, reason
    expect(off_topic.locator("button.cite-btn")).to_have_count(0)
    closest = off_topic.locator(".closest li").all_inner_texts()
    assert closest and len(closest) == len(set(closest)), "closest articles are listed, each once"

    # Rate limited once: plain words, a Retry button that waits out Retry-After, then the answer.
    calls = {"n": 0}

    def limited(route: Route) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            route.fulfill(
                status=429,
                headers={"Retry-After": "1", "Content-Type": "application/json"},
                body=json.dumps({"error": {"code": "rate_limited", "message": "too many requests"}}),
            )
        else:
            route.continue_()

    page.route("**/v1/ask/stream", limited)
    error = ask(page, SEED_QUESTION)
    expect(error).to_contain_class("error")
    expect(error.get_by_role("alert")).to_contain_text("Too many questions")
    retry = error.get_by_role("button", name="Retry")
    expect(retry).to_be_enabled(timeout=5_000)
    retry.click()
    expect(widget(page, "textarea")).to_be_focused()
    answered = widget(page, ".msg.bot").last
    expect(answered.locator("button.cite-btn").first).to_be_visible()
    expect(widget(page, ".msg.bot.error")).to_have_count(0)
    page.unroute("**/v1/ask/stream")

    # Server down / network gone.
    page.route("**/v1/ask/stream", lambda route: route.abort("connectionrefused"))
    down = ask(page, SEED_QUESTION)
    expect(down.get_by_role("alert")).to_contain_text("Can't reach the service")
    expect(down.get_by_role("button", name="Retry")).to_be_enabled()
    page.unroute("**/v1/ask/stream")

    # A 500 from the server.
    page.route(
        "**/v1/ask/stream",
        lambda route: route.fulfill(
            status=500, content_type="application/json", body='{"error": {"code": "internal", "message": "boom"}}'
        ),
    )
    broken = ask(page, SEED_QUESTION)
    expect(broken.get_by_role("alert")).to_contain_text("went wrong on the server")
    page.unroute("**/v1/ask/stream")

    # The LLM fails after the stream started: an `error` event, after some text.
    failing = sse(
        ("sources", {"sources": [SCRIPTED_SOURCE]}),
        ("delta", {"text": "Partial text"}),
        ("error", {"error": {"code": "upstream_timeout", "message": "the LLM did not answer in 30 s"}}),
    )
    page.route("**/v1/ask/stream", lambda route: route.fulfill(status=200, headers=SSE_HEADERS, body=failing))
    cut = ask(page, SEED_QUESTION)
    expect(cut.get_by_role("alert")).to_contain_text("not responding")
    expect(cut.get_by_role("button", name="Retry")).to_be_visible()
    page.unroute("**/v1/ask/stream")

    # A stream written with CRLF line ends, keep-alive comments and a citation with an http(s) URL.
    scripted = sse(
        ("sources", {"sources": [SCRIPTED_SOURCE]}),
        ("delta", {"text": "The repairs took "}),
        ("delta", {"text": "two years [1]."}),
        ("citation", {"citation": SCRIPTED_CITATION}),
        ("done", {"answer": SCRIPTED_ANSWER}),
        crlf=True,
    )
    page.route("**/v1/ask/stream", lambda route: route.fulfill(status=200, headers=SSE_HEADERS, body=scripted))
    done = ask(page, "How long did the bridge repairs take?")
    expect(done.locator(".text")).to_have_text("The repairs took two years. [1]")
    done.locator("button.cite-btn").click()
    link = done.locator(".source a")
    expect(link).to_have_attribute("href", SCRIPTED_SOURCE["url"])
    expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")
    expect(done.locator(".source-meta")).to_contain_text("Coastal Times")
    expect(done.locator(".passage mark")).to_have_text(SCRIPTED_CITATION["quote"])
    page.unroute("**/v1/ask/stream")
    assert watch.errors == []
    page.context.close()


SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
SCRIPTED_SOURCE: dict[str, Any] = {
    "number": 1,
    "article_id": "harbour-bridge",
    "title": "Harbour bridge reopens after two years of repairs",
    "url": "https://coastal-times.example/news/harbour-bridge",
    "published_at": "2023-05-17",
    "source": "Coastal Times",
    "start": 100,
    "end": 180,
    "text": "It opened on Wednesday. The repairs took two years and cost 48 million euros. Buses return Monday.",
    "similarity": 0.7,
}
SCRIPTED_CITATION: dict[str, Any] = {
    **{k: SCRIPTED_SOURCE[k] for k in ("number", "article_id", "title", "url", "published_at")},
    "quote": "The repairs took two years and cost 48 million euros.",
    "start": 124,
    "end": 177,
}
SCRIPTED_ANSWER: dict[str, Any] = {
    "question": "How long did the bridge repairs take?",
    "standalone_question": "How long did the bridge repairs take?",
    "text": "The repairs took two years. [1]",
    "citations": [SCRIPTED_CITATION],
    "sources": [SCRIPTED_SOURCE],
    "mode": "llm",
    "abstained": False,
    "abstain_reason": None,
    "dropped_claims": [],
    "timings": {},
}


def sse(*events: tuple[str, dict[str, Any]], crlf: bool = False) -> str:
    """A server-sent-events body; with `crlf`, CRLF line ends and a keep-alive comment before every event."""
    nl = "\r\n" if crlf else "\n"
    out = []
    for name, data in events:
        if crlf:
            out.append(f": ping{nl}")
        out.append(f"event: {name}{nl}data: {json.dumps(data)}{nl}{nl}")
    return "".join(out)


def test_payloads_never_execute(browser: Browser, hostile: LiveService, host_site: HostSite) -> None:
    """Script payloads in an article, a question and the model's output are shown as text; nothing runs or leaks."""
    page, watch = open_page(browser, host_site.origin + "/", viewport={"width": 1280, "height": 860})
    allowed = {urlsplit(hostile.base).netloc, urlsplit(host_site.origin).netloc}
    widget(page, "button.launcher").click()

    box = widget(page, "textarea")
    box.fill(HOSTILE_QUESTION)
    box.press("Enter")
    # The model's raw text streams in (as text) before verification replaces it.
    page.wait_for_function(
        """(tag) => {
            const b = document.querySelector(tag).shadowRoot.querySelector('.msg.bot.streaming .text');
            return b && b.textContent.includes('<img src=');
        }""",
        arg=WIDGET,
    )
    bubble = finished(page, 0)
    expect(bubble).to_have_class("msg bot")
    assert watch.asks[0]["question"] == HOSTILE_QUESTION
    expect(widget(page, ".msg.user").first).to_contain_text(HOSTILE_QUESTION)
    expect(bubble.locator(".label")).to_contain_text("AI-written")
    text = bubble.locator(".text")
    # The verified answer drops the markup the model wrote (its raw text above showed it, as text).
    expect(text).not_to_contain_text("<img")
    expect(text).to_contain_text("ferry terminal in Port Alden")
    cite = bubble.locator("button.cite-btn").first
    cite.click()
    source = bubble.locator(".source")
    expect(source).to_be_visible()
    expect(source.locator(".source-title")).to_contain_text(HOSTILE_TITLE)
    expect(source.locator(".passage mark")).to_contain_text("<img src=")
    expect(source.locator(".passage")).to_contain_text("<script>")
    expect(source.locator(".source-meta")).to_contain_text("<b onmouseover=")
    assert source.locator("a").count() == 0, "a javascript: URL never becomes a link"
    # The answer cites source 1 twice, with two different quotes: each [1] opens its own.
    second = bubble.locator("button.cite-btn").nth(1)
    second.click()
    expect(second).to_have_attribute("aria-expanded", "true")
    expect(cite).to_have_attribute("aria-expanded", "false")
    expect(source.locator(".passage mark")).to_contain_text('Details: <a href="javascript:')
    source.locator(".source-meta").hover()
    text.hover()

    page.wait_for_timeout(300)  # let any injected handler (onerror/onload) have its chance
    assert page.evaluate("() => window.__pwned") is None
    assert watch.dialogs == []
    injected = page.evaluate(
        """(tag) => {
            const root = document.querySelector(tag).shadowRoot;
            const all = [...root.querySelectorAll('*'), ...document.querySelectorAll('body *')];
            return all.filter((n) => ['IMG', 'SCRIPT', 'IFRAME', 'B', 'OBJECT', 'EMBED'].includes(n.tagName)
                    || [...n.attributes].some((a) => a.name.startsWith('on') || /javascript:/i.test(a.value)))
                .map((n) => n.outerHTML.slice(0, 80));
        }""",
        WIDGET,
    )
    # The host page's own script tag is fine; nothing else may be an element made from payload text.
    assert [h for h in injected if not h.startswith("<script src=")] == []
    strangers = [u for u in watch.requests if urlsplit(u).scheme != "data" and urlsplit(u).netloc not in allowed]
    assert strangers == [], f"requests to other hosts: {strangers}"
    assert watch.errors == []

    # Control: on this page an injected handler WOULD run, so the checks above can fail.
    control = '<img src="missing.png" onerror="window.__control=1">'
    page.evaluate("(html) => { document.getElementById('control').innerHTML = html; }", control)
    page.wait_for_function("() => window.__control === 1")
    page.context.close()


def test_phone_width(browser: Browser, newsroom: LiveService, tmp_path: Path) -> None:
    """At 375x700 the panel fills the screen, nothing overflows sideways, and a cited answer is readable."""
    page, watch = open_page(
        browser, newsroom.base + "/", viewport={"width": 375, "height": 700}, is_mobile=True, has_touch=True
    )
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 375, "the demo page itself fits a phone"
    launcher = widget(page, "button.launcher")
    launcher.click()
    panel = widget(page, "[role=dialog]")
    expect(panel).to_be_visible()
    expect(panel).to_have_attribute("aria-modal", "true")
    box = panel.bounding_box()
    assert box is not None
    assert box["x"] >= 0 and box["y"] >= 0
    assert box["x"] + box["width"] <= 375 + 0.5 and box["y"] + box["height"] <= 700 + 0.5
    assert box["width"] >= 370 and box["height"] >= 690, f"full screen on a phone, got {box}"

    bubble = ask(page, SEED_QUESTION)
    bubble.locator("button.cite-btn").first.click()
    expect(bubble.locator(".source .passage mark")).to_be_visible()
    for selector in ("textarea", "button.send", "button.close", "button.new"):
        b = widget(page, selector).bounding_box()
        assert b is not None and b["x"] >= 0 and b["x"] + b["width"] <= 375 + 0.5, selector
        assert b["y"] >= 0 and b["y"] + b["height"] <= 700 + 0.5, selector
    overflow = page.evaluate(
        """(tag) => {
            const root = document.querySelector(tag).shadowRoot;
            return [...root.querySelectorAll('.panel, .log, .msg, .source, .passage')]
                .filter((n) => n.scrollWidth > n.clientWidth + 1).map((n) => n.className);
        }""",
        WIDGET,
    )
    assert overflow == []
    assert bubble.locator(".label").evaluate("e => e.getBoundingClientRect().height") < 30, "the label wrapped"
    page.screenshot(path=str(tmp_path / "widget-phone.png"))
    page.keyboard.press("Escape")  # the source card first
    expect(bubble.locator(".source")).to_be_hidden()
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(launcher).to_be_focused()
    assert csp_violations(watch) == []
    page.context.close()


def test_api_docs_work_with_the_network_cut(browser: Browser, newsroom: LiveService) -> None:
    """/docs must list the operations with every request to a host other than 127.0.0.1 aborted."""
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    outside: list[str] = []

    def cut(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", cut)
    page = context.new_page()
    violations: list[str] = []
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.goto(f"{newsroom.base}/docs")
    expect(page.locator(".opblock-summary-path", has_text="/v1/ask/stream")).to_be_visible()
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert {"/v1/ask", "/v1/chat/completions", "/v1/articles", "/healthz"} <= {p.strip() for p in paths}
    assert outside == [] and violations == []
    context.close()


def test_demo_page_is_styled_suggests_from_the_newest_articles_and_attributes(
    browser: Browser, newsroom: LiveService
) -> None:
    wikinews = build_article(
        {
            "id": "wikinews-demo",
            "title": "Lighthouse keepers return to Skerry Point",
            "url": "https://en.wikinews.org/wiki/Lighthouse_keepers_return_to_Skerry_Point",
            "published_at": "2019-03-02",
            "source": "Wikinews",
            "body": "Two lighthouse keepers returned to Skerry Point on Saturday after the lamp was automated in 1990.",
        },
        origin="test",
        fallback_id=None,
    )
    assert not newsroom.service.ingest([wikinews]).failed
    try:
        page, watch = open_page(browser, newsroom.base + "/", viewport={"width": 1280, "height": 900})
        # Styled by its own stylesheet under the strict CSP: not the browser's default serif at 16px.
        body_font = page.evaluate("() => getComputedStyle(document.body).fontSize")
        assert body_font == "17px"
        masthead = "() => getComputedStyle(document.querySelector('.masthead')).borderBottomStyle"
        assert page.evaluate(masthead) == "double"

        # Suggestions come from the newest articles (newest first), not only the seed questions.
        buttons = page.locator("#suggestions button")
        expect(buttons.first).to_contain_text("Harbour bridge reopens after two years of repairs")
        assert buttons.count() == 4
        expect(page.locator("#suggestions-note")).to_contain_text("of the 6 articles loaded")
        question = buttons.first.inner_text()
        buttons.first.click()
        bubble = finished(page, 0)
        assert watch.asks[-1]["question"] == question
        expect(bubble.locator("button.cite-btn").first).to_be_visible()

        # A licensed corpus in the store is credited.
        attribution = page.locator("#attribution")
        expect(attribution).to_contain_text("Wikinews contributors")
        expect(attribution.locator("a")).to_have_attribute("href", "https://creativecommons.org/licenses/by/2.5/")
        assert "Wikipedia" not in attribution.inner_text()
        assert csp_violations(watch) == [] and watch.errors == []
        page.context.close()
    finally:
        newsroom.service.delete_article("wikinews-demo")
