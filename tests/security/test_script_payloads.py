"""A sample of the red team's script payloads, rendered by the widget in real Chromium: none may execute.

Six articles carry payloads in their title, body, url and source, and each question carries one too; the widget
is embedded in a third-party page with no CSP (the browser helpers of tests/test_widget_browser.py), so nothing
but the widget stands between a payload and its execution. Every answer's citations are opened, so titles,
sources, links and passages are all drawn. A positive control at the end proves the detector can fire.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import test_widget_browser as wb
from conftest import NEWS
from playwright.sync_api import Browser, expect
from test_widget_browser import LiveService, browser, host_site  # noqa: F401  (fixtures)

from rag.documents import build_article
from rag.embeddings import OnnxMiniLM
from rag.models import Article
from rag.service import RagService

pytestmark = wb.pytestmark

PWN = "window.__pwned=(window.__pwned||0)+1;alert(1)"
EVIL = "http://evil.invalid"
# 28 payloads: tags with handlers, javascript: and data: URLs, attribute and element breakouts, mutation-XSS
# shapes, template-injection text, and resources that would only phone home.
PAYLOADS = [
    f'<img src=x onerror="{PWN}">',
    f'<svg onload="{PWN}"></svg>',
    f"<script>{PWN}</script>",
    f'<iframe src="javascript:{PWN}"></iframe>',
    '<iframe srcdoc="&lt;script&gt;parent.__pwned=1&lt;/script&gt;"></iframe>',
    f'<details open ontoggle="{PWN}">x</details>',
    f'<body onload="{PWN}">',
    f'<input autofocus onfocus="{PWN}">',
    f'<a href="javascript:{PWN}">click</a>',
    f'<math><mtext><table><mglyph><style><img src=x onerror="{PWN}">',
    f'<object data="javascript:{PWN}"></object>',
    f'<embed src="javascript:{PWN}">',
    f'<video><source onerror="{PWN}"></video>',
    f'<marquee onstart="{PWN}">news</marquee>',
    f'"><img src=x onerror="{PWN}">',
    f"'><svg/onload={PWN}>",
    f'</textarea><img src=x onerror="{PWN}">',
    f'--><img src=x onerror="{PWN}">',
    f"<style>@import '{EVIL}/x.css';</style>",
    f'<meta http-equiv="refresh" content="0;url=javascript:{PWN}">',
    f'<form><button formaction="javascript:{PWN}">go</button></form>',
    f'<noscript><p title="</noscript><img src=x onerror={PWN}>">',
    "{{constructor.constructor('window.__pwned=1')()}}",
    "${window.__pwned=1}",
    f'<img src="{EVIL}/beacon.png">',
    f'<link rel=stylesheet href="{EVIL}/s.css">',
    f'<div style="background:url({EVIL}/bg.png)">bg</div>',
    "\\u003cscript\\u003ewindow.__pwned=1\\u003c/script\\u003e",
]
URLS = [
    f"javascript:{PWN}",
    f"data:text/html,<script>{PWN}</script>",
    f'https://news.example/"><img src=x onerror="{PWN}">',
    f"JaVaScRiPt:{PWN}",
    f"https://news.example/a?x=</a><script>{PWN}</script>",
    f"vbscript:{PWN}",
]
TOPICS = [
    ("ferry", "ferry terminal in Port Alden reopens on Friday after the storm"),
    ("library", "city library in Millbrook extends its opening hours to midnight"),
    ("bakery", "old bakery on Harbour Street wins the regional bread prize"),
    ("tram", "new tram line to the airport opens to passengers in June"),
    ("museum", "maritime museum shows a recovered Viking ship from Sunday"),
    ("stadium", "football stadium roof repairs will cost nine million euros"),
]


def payload(i: int) -> str:
    return PAYLOADS[i % len(PAYLOADS)]


def hostile_articles() -> list[Article]:
    """Built by hand, as a compromised feed or store could hand them over (the ingest checks would refuse some)."""
    articles = []
    for n, (slug, fact) in enumerate(TOPICS):
        base = 4 * n
        body = (
            f"The {fact}, officials said on Monday {payload(base + 1)}. "
            f"Residents welcomed the news {payload(base + 2)} and the council thanked the workers. "
            f"More details about the {slug} will follow next week {payload(base + 3)}."
        )
        articles.append(
            Article(
                id=f"payload-{slug}",
                text=body,
                title=f"The {slug} story {payload(base)}",
                content_hash=f"payload-{slug}-v1",
                published_at=dt.date(2024, 3, 1 + n),
                url=URLS[n],
                source=f"Herald {PAYLOADS[24 + n % 4]}",
                origin="test",
            )
        )
    return articles


@pytest.fixture(scope="module")
def hostile(
    embedder: OnnxMiniLM,
    tmp_path_factory: pytest.TempPathFactory,
    host_site: wb.HostSite,  # noqa: F811
) -> Iterator[LiveService]:
    settings = wb.make_settings(
        tmp_path_factory.mktemp("payloads"),
        answer_mode="extractive",
        public_ask=True,
        widget_origins=[host_site.origin],
        rate_limit_per_minute=0,
    )
    service = RagService.open(settings, embedder=embedder)
    news = [build_article(a, origin="news", fallback_id=None) for a in NEWS]
    assert not service.ingest([*hostile_articles(), *news]).failed
    live = LiveService.start(service, settings)
    host_site.serve(live.base)
    yield live
    live.stop()
    service.close()


def test_script_payloads_never_execute(browser: Browser, hostile: LiveService, host_site: wb.HostSite) -> None:  # noqa: F811
    page, watch = wb.open_page(browser, host_site.origin + "/", viewport={"width": 1280, "height": 900})
    allowed = {urlsplit(hostile.base).netloc, urlsplit(host_site.origin).netloc}
    wb.widget(page, "button.launcher").click()
    titles: list[str] = []
    for n, (slug, _fact) in enumerate(TOPICS):
        question = f"What happened with the {slug}? {PAYLOADS[(5 * n + 2) % len(PAYLOADS)]}"
        bubble = wb.ask(page, question)
        expect(wb.widget(page, ".msg.user").last).to_contain_text(question)
        cites = bubble.locator("button.cite-btn")
        assert cites.count() >= 1, f"{slug}: an answer with citations, not {bubble.inner_text()[:200]!r}"
        for i in range(cites.count()):
            cites.nth(i).click()
            source = bubble.locator(".source")
            expect(source).to_be_visible()
            titles.append(source.locator(".source-title").inner_text())
        bubble.locator(".text").hover()
        assert page.evaluate("() => window.__pwned") is None, f"a payload ran after the {slug} answer"
    # Each hostile article was drawn, its title's markup shown as text.
    for slug, _fact in TOPICS:
        assert any(f"] The {slug} story <" in t for t in titles), (slug, titles)

    page.wait_for_timeout(300)  # let any injected handler (onerror/onload/ontoggle) have its chance
    assert page.evaluate("() => window.__pwned") is None
    assert watch.dialogs == []
    injected = page.evaluate(
        r"""(tag) => {
            const root = document.querySelector(tag).shadowRoot;
            const all = [...root.querySelectorAll('*'), ...document.querySelectorAll('body *')];
            const bad = ['IMG', 'SCRIPT', 'IFRAME', 'OBJECT', 'EMBED', 'VIDEO', 'MARQUEE', 'MATH',
                         'INPUT', 'DETAILS', 'STYLE', 'LINK', 'META', 'NOSCRIPT', 'TEMPLATE'];
            // Payload text in an aria-label is only text; in a URL-bearing attribute it would be a link to run.
            const urls = ['href', 'src', 'action', 'formaction', 'data', 'srcdoc', 'xlink:href', 'poster'];
            const risky = (a) => a.name.startsWith('on')
                || (urls.includes(a.name) && /(java|vb)script:|^\s*data:/i.test(a.value));
            return all.filter((n) => bad.includes(n.tagName.toUpperCase()) || [...n.attributes].some(risky))
                .map((n) => n.outerHTML.slice(0, 80));
        }""",
        wb.WIDGET,
    )
    # The host page's own script tag is fine (and the widget's own svg icons and form, which carry no handler);
    # nothing else may be an element made from payload text.
    assert [h for h in injected if not h.startswith("<script src=")] == []
    hrefs = page.evaluate(
        "(tag) => [...document.querySelector(tag).shadowRoot.querySelectorAll('a[href]')].map((a) => a.href)",
        wb.WIDGET,
    )
    assert all(urlsplit(h).scheme in ("http", "https") for h in hrefs), hrefs
    strangers = [u for u in watch.requests if urlsplit(u).scheme != "data" and urlsplit(u).netloc not in allowed]
    assert strangers == [], f"requests to other hosts: {strangers}"
    assert watch.errors == []

    # Control: on this page an injected handler WOULD run, so the checks above can fail.
    page.evaluate("(html) => { document.getElementById('control').innerHTML = html; }", PAYLOADS[0])
    page.wait_for_function("() => window.__pwned === 1")
    page.context.close()
