/*
 * News Q&A chat widget: one file, no dependencies, no build step (ES2020).
 *
 *   <script src="https://HOST/widget.js" data-api="https://HOST" data-key="PUBLIC_KEY" defer></script>
 *
 * Attributes (all optional):
 *   data-api    base URL of the service (default: the origin this script was loaded from)
 *   data-key    public API key, sent as X-API-Key
 *   data-mode   "extractive" or "llm" (default: the service's setting)
 *   data-title  heading of the chat panel
 *
 * Safety rules this file keeps: every string that comes from the model, an article or the user is
 * inserted as text (textContent / createTextNode), never parsed as HTML; links are made only from URLs
 * that parse with protocol http: or https:. Styles live in a constructable stylesheet adopted by a
 * shadow root (no <style> elements, no style attributes), so a strict Content-Security-Policy is fine.
 */
(() => {
  "use strict";

  const TAG = "rag-news-widget";
  const MAX_HISTORY_TURNS = 10; // user + assistant messages sent with a follow-up
  const MAX_TURN_CHARS = 4000;
  const MAX_QUESTION_CHARS = 2000;
  const REQUEST_TIMEOUT_MS = 120000;
  const SVG_NS = "http://www.w3.org/2000/svg";
  // What the model is told to reply when the passages lack the answer; streamed token by token, it is no text
  // for a reader (the final answer replaces it with the service's abstention).
  const SENTINEL = "NOT_IN_ARTICLES";

  const script = document.currentScript;
  if (document.querySelector(TAG)) return; // included twice

  // --- configuration from the script tag ---

  function scriptUrl() {
    try {
      if (script && script.src) return new URL(script.src, document.baseURI);
    } catch (_e) {
      /* fall through */
    }
    return new URL(document.baseURI);
  }

  function apiBase() {
    const raw = ((script && script.getAttribute("data-api")) || "").trim();
    let url;
    try {
      url = raw ? new URL(raw, scriptUrl()) : new URL(scriptUrl().origin);
    } catch (_e) {
      url = new URL(scriptUrl().origin);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") url = new URL(scriptUrl().origin);
    return url.origin + url.pathname.replace(/\/+$/, "");
  }

  const config = {
    api: apiBase(),
    key: ((script && script.getAttribute("data-key")) || "").trim(),
    mode: ((script && script.getAttribute("data-mode")) || "").trim(),
    title: ((script && script.getAttribute("data-title")) || "").trim() || "Ask about the news",
  };
  if (config.mode !== "extractive" && config.mode !== "llm") config.mode = "";

  // --- small DOM helpers (text only, never HTML) ---

  let idCounter = 0;
  const newId = (prefix) => `${prefix}-${++idCounter}`;

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    if (attrs) {
      for (const [name, value] of Object.entries(attrs)) {
        if (value === null || value === undefined || value === false) continue;
        if (name === "class") node.className = value;
        else if (name === "text") node.textContent = value;
        else node.setAttribute(name, value === true ? "" : String(value));
      }
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function icon(pathData) {
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    const path = document.createElementNS(SVG_NS, "path");
    path.setAttribute("d", pathData);
    svg.append(path);
    return svg;
  }

  const ICON_CHAT =
    "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2zm3 6.5a1.5 1.5 0 1 0 0-.01zm5 0a1.5 1.5 0 1 0 0-.01zm5 0a1.5 1.5 0 1 0 0-.01z";
  const ICON_CLOSE = "M6.4 5 12 10.6 17.6 5 19 6.4 13.4 12 19 17.6 17.6 19 12 13.4 6.4 19 5 17.6 10.6 12 5 6.4z";

  /** An http(s) URL as a string, or null: nothing else ever becomes a link. */
  function safeHttpUrl(value) {
    if (typeof value !== "string" || !value) return null;
    try {
      const url = new URL(value);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (_e) {
      return null;
    }
  }

  function hostOf(href) {
    try {
      return new URL(href).hostname.replace(/^www\./, "");
    } catch (_e) {
      return "";
    }
  }

  const dateFormat = (() => {
    try {
      return new Intl.DateTimeFormat(undefined, { year: "numeric", month: "long", day: "numeric", timeZone: "UTC" });
    } catch (_e) {
      return null;
    }
  })();

  /** A <time> for an ISO date (YYYY-MM-DD...), or null. */
  function dateElement(iso) {
    if (typeof iso !== "string" || !/^\d{4}-\d{2}-\d{2}/.test(iso)) return null;
    const day = iso.slice(0, 10);
    const parsed = new Date(`${day}T00:00:00Z`);
    const label = dateFormat && !Number.isNaN(parsed.getTime()) ? dateFormat.format(parsed) : day;
    return el("time", { datetime: day, text: label });
  }

  /** Streamed raw text as shown: without the sentinel, nor a trailing piece that may be its beginning. */
  function visibleStream(raw) {
    const text = raw.split(SENTINEL).join("");
    for (let n = Math.min(SENTINEL.length - 1, text.length); n > 0; n--) {
      if (text.endsWith(SENTINEL.slice(0, n))) return text.slice(0, text.length - n);
    }
    return text;
  }

  const str = (value) => (typeof value === "string" ? value : value === null || value === undefined ? "" : String(value));
  /** A reason as a sentence: capital first letter, one full stop. */
  function sentence(text) {
    const t = text.trim().replace(/\.+$/, "");
    return t ? `${t.charAt(0).toUpperCase()}${t.slice(1)}.` : "";
  }

  // --- styles (constructable stylesheet: no <style> element, no inline style attributes) ---

  const CSS = `
:host { all: initial; }
:host, * { box-sizing: border-box; }
[hidden] { display: none !important; }
.root {
  --accent: var(--rag-accent, #1f5fbf);
  --accent-ink: var(--rag-accent-ink, #ffffff);
  --bg: var(--rag-bg, #ffffff);
  --ink: var(--rag-ink, #1b1d21);
  --muted: var(--rag-muted, #5b6270);
  --line: var(--rag-line, #d7dbe2);
  --soft: var(--rag-soft, #f3f5f8);
  --mark: var(--rag-mark, #ffe58a);
  --danger: #a4231a;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: var(--ink);
  -webkit-text-size-adjust: 100%;
}
@media (prefers-color-scheme: dark) {
  .root {
    --accent: var(--rag-accent, #7fb0ff);
    --accent-ink: var(--rag-accent-ink, #0d1420);
    --bg: var(--rag-bg, #171a20);
    --ink: var(--rag-ink, #e8eaee);
    --muted: var(--rag-muted, #a3aab7);
    --line: var(--rag-line, #343a45);
    --soft: var(--rag-soft, #222730);
    --mark: var(--rag-mark, #6b5a12);
    --danger: #ff9b8f;
  }
}
button, textarea { font: inherit; color: inherit; }
button { cursor: pointer; }
button:disabled { cursor: not-allowed; opacity: .55; }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.sr-only {
  position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px;
  overflow: hidden; clip: rect(0 0 0 0); clip-path: inset(50%); white-space: nowrap; border: 0;
}
svg { width: 22px; height: 22px; fill: currentColor; flex: none; }

.launcher {
  position: fixed; right: 20px; bottom: 20px; z-index: 2147483000;
  display: inline-flex; align-items: center; gap: 8px;
  min-height: 52px; padding: 0 18px 0 14px; border: 0; border-radius: 26px;
  background: var(--accent); color: var(--accent-ink);
  box-shadow: 0 6px 20px rgba(0,0,0,.25); font-weight: 600;
}
.launcher:hover { filter: brightness(1.08); }

.panel {
  position: fixed; right: 20px; bottom: 84px; z-index: 2147483001;
  width: min(420px, calc(100vw - 40px)); height: min(640px, calc(100vh - 108px));
  display: flex; flex-direction: column;
  background: var(--bg); color: var(--ink);
  border: 1px solid var(--line); border-radius: 14px;
  box-shadow: 0 12px 40px rgba(0,0,0,.28); overflow: hidden;
}
.header {
  display: flex; align-items: center; gap: 6px; padding: 10px 10px 10px 16px;
  border-bottom: 1px solid var(--line); flex: none;
}
.title { margin: 0; font-size: 16px; font-weight: 700; flex: 1; min-width: 0; overflow-wrap: anywhere; }
.header-btn {
  border: 1px solid transparent; background: transparent; border-radius: 8px;
  min-height: 36px; min-width: 36px; padding: 4px 8px;
  display: inline-flex; align-items: center; justify-content: center; color: var(--muted);
}
.header-btn:hover { background: var(--soft); color: var(--ink); }

.log { flex: 1; overflow-y: auto; padding: 14px 14px 6px; overscroll-behavior: contain; }
.intro { color: var(--muted); margin: 4px 0 14px; font-size: 14px; }
.msg { margin: 0 0 12px; max-width: 100%; overflow-wrap: anywhere; }
.msg.user {
  margin-left: 15%; padding: 8px 12px; border-radius: 12px 12px 2px 12px;
  background: var(--accent); color: var(--accent-ink); white-space: pre-wrap;
}
.msg.bot { padding: 10px 12px; border-radius: 12px 12px 12px 2px; background: var(--soft); }
.msg.bot .text { white-space: pre-wrap; }
.msg.bot.streaming .text::after {
  content: "\\258D"; color: var(--muted); animation: blink 1s steps(2, start) infinite;
}
@keyframes blink { to { visibility: hidden; } }
@media (prefers-reduced-motion: reduce) { .msg.bot.streaming .text::after { animation: none; } }
.status { color: var(--muted); font-size: 14px; font-style: italic; }
.label {
  display: inline-block; margin: 0 0 6px; padding: 1px 8px; border-radius: 6px;
  white-space: nowrap; max-width: 100%; overflow: hidden; text-overflow: ellipsis; vertical-align: top;
  border: 1px solid var(--line); color: var(--muted); font-size: 12px; background: var(--bg);
}
.cite-btn {
  display: inline; margin: 0 1px; padding: 0 4px; min-width: 24px; min-height: 22px;
  border: 1px solid var(--accent); border-radius: 6px; background: var(--bg); color: var(--accent);
  font-size: 12px; font-weight: 700; line-height: 18px; vertical-align: baseline;
}
.cite-btn[aria-expanded="true"] { background: var(--accent); color: var(--accent-ink); }
.note { margin: 8px 0 0; color: var(--muted); font-size: 12px; }

.msg.bot.abstained { background: transparent; border: 1px dashed var(--line); color: var(--muted); }
.abstain-head { margin: 0 0 4px; font-weight: 700; font-size: 13px; letter-spacing: .02em; text-transform: uppercase; }
.closest { margin: 8px 0 0; padding-left: 18px; font-size: 13px; }
.closest li { margin: 2px 0; }

.msg.bot.error { background: transparent; border: 1px solid var(--danger); color: var(--ink); }
.error-head { margin: 0 0 4px; font-weight: 700; color: var(--danger); }
.retry {
  margin-top: 8px; padding: 6px 14px; border-radius: 8px;
  border: 1px solid var(--accent); background: var(--bg); color: var(--accent); font-weight: 600;
}

.source {
  margin: 10px 0 0; padding: 10px 12px; border-radius: 10px;
  background: var(--bg); border: 1px solid var(--line); color: var(--ink);
}
.source-head { display: flex; gap: 8px; align-items: flex-start; }
.source-title { margin: 0; font-size: 14px; font-weight: 700; flex: 1; min-width: 0; }
.source-meta { margin: 2px 0 8px; font-size: 12px; color: var(--muted); }
.source-meta > * + *::before { content: " · "; }
.source-meta a { color: var(--accent); }
.passage {
  position: relative; margin: 0; max-height: 220px; overflow-y: auto;
  font-size: 13px; line-height: 1.5; white-space: pre-wrap; color: var(--muted);
}
.passage mark { background: var(--mark); color: var(--ink); padding: 0 1px; border-radius: 2px; }

.composer { flex: none; border-top: 1px solid var(--line); padding: 10px; display: flex; gap: 8px; align-items: flex-end; }
.input {
  flex: 1; min-width: 0; resize: none; min-height: 44px; max-height: 140px; field-sizing: content;
  padding: 10px 12px; border: 1px solid var(--line); border-radius: 10px; background: var(--bg);
}
.send {
  flex: none; min-height: 44px; padding: 0 16px; border: 0; border-radius: 10px;
  background: var(--accent); color: var(--accent-ink); font-weight: 600;
}
.hint { flex: none; margin: 0; padding: 0 12px 8px; font-size: 11px; color: var(--muted); }
.count { flex: none; margin: 0; padding: 0 12px 2px; font-size: 11px; color: var(--muted); text-align: right; }
.count.full { color: var(--danger); font-weight: 700; }

@media (max-width: 480px) {
  .panel {
    inset: 0; right: 0; bottom: 0; width: 100vw; height: 100vh; height: 100dvh;
    max-width: 100%; max-height: 100%; border: 0; border-radius: 0;
  }
  .launcher { right: 12px; bottom: 12px; }
  .msg.user { margin-left: 8%; }
  .hint { display: none; }
}
@media (forced-colors: active) {
  .launcher, .send, .cite-btn, .retry { border: 1px solid ButtonText; }
  .passage mark { background: Mark; color: MarkText; }
}
`;

  function adoptStyles(root) {
    try {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
    } catch (_e) {
      // Very old browsers (no constructable stylesheets): the widget still works, unstyled.
    }
  }

  // --- Server-Sent Events over fetch (EventSource cannot POST) ---

  async function* readSse(body) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let eventName = "";
    let data = [];
    try {
      for (;;) {
        const { value, done } = await reader.read();
        buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
        for (;;) {
          const match = /\r\n|\r|\n/.exec(buffer);
          if (!match) break;
          // A lone "\r" at the end might be the first half of "\r\n": wait for more.
          if (match[0] === "\r" && match.index === buffer.length - 1 && !done) break;
          const line = buffer.slice(0, match.index);
          buffer = buffer.slice(match.index + match[0].length);
          if (line === "") {
            if (data.length) yield { event: eventName || "message", data: data.join("\n") };
            eventName = "";
            data = [];
            continue;
          }
          if (line[0] === ":") continue; // comment / keep-alive
          const colon = line.indexOf(":");
          const field = colon === -1 ? line : line.slice(0, colon);
          let value2 = colon === -1 ? "" : line.slice(colon + 1);
          if (value2[0] === " ") value2 = value2.slice(1);
          if (field === "event") eventName = value2;
          else if (field === "data") data.push(value2);
        }
        if (done) {
          if (data.length) yield { event: eventName || "message", data: data.join("\n") };
          return;
        }
      }
    } finally {
      reader.cancel().catch(() => {});
    }
  }

  class AskError extends Error {
    constructor(kind, detail, retryAfter) {
      super(kind);
      this.kind = kind; // network | timeout | rate | busy | auth | too_large | invalid | server | upstream | protocol
      this.detail = detail || "";
      this.retryAfter = retryAfter || 0;
    }
  }

  function errorFromStatus(status, detail, retryAfter) {
    if (status === 429) return new AskError("rate", detail, retryAfter);
    if (status === 401 || status === 403) return new AskError("auth", detail);
    if (status === 413) return new AskError("too_large", detail);
    if (status >= 400 && status < 500) return new AskError("invalid", detail);
    if (status === 502 || status === 504) return new AskError("upstream", detail, retryAfter);
    if (status === 503) return new AskError("busy", detail, retryAfter);
    return new AskError("server", detail, retryAfter);
  }

  function errorFromEvent(payload) {
    const err = (payload && payload.error) || {};
    const code = str(err.code);
    const message = str(err.message);
    if (/rate|too_many/i.test(code)) return new AskError("rate", message);
    if (/busy|unavailable|not_ready/i.test(code)) return new AskError("busy", message);
    if (/upstream|llm|model|timeout/i.test(code)) return new AskError("upstream", message);
    if (/invalid|request|validation/i.test(code)) return new AskError("invalid", message);
    return new AskError("server", message);
  }

  function plainWords(error) {
    const wait = error.retryAfter ? ` Please wait about ${error.retryAfter} second${error.retryAfter === 1 ? "" : "s"} and try again.` : " Please wait a moment and try again.";
    switch (error.kind) {
      case "rate":
        return ["Too many questions right now.", `The service is limiting how often it can be asked.${wait}`];
      case "busy":
        return ["The service is busy right now.", `Too many answers are being written at once.${wait}`];
      case "network":
        return ["Can't reach the service.", "Check your internet connection, then try again."];
      case "timeout":
        return ["That took too long.", "The service did not answer in time. Please try again."];
      case "auth":
        return ["This site's access to the service was refused.", "The site's key for the news assistant is missing or not accepted."];
      case "too_large":
        return ["That question is too long.", "Please shorten it and try again."];
      case "invalid":
        return ["The service couldn't accept that question.", error.detail || "Please rephrase it and try again."];
      case "upstream":
        return ["The answer service is not responding.", `The language model behind it didn't answer.${wait}`];
      case "protocol":
        return ["The answer was cut off.", "The connection ended before the answer was complete. Please try again."];
      default:
        return ["Something went wrong on the server.", `It's not your fault.${wait}`];
    }
  }

  // --- matching [n] markers to citations ---

  const words = (text) => new Set((str(text).toLowerCase().match(/[\p{L}\p{N}]+/gu) || []).filter((w) => w.length > 2));

  /**
   * For each [n] marker in `text`, the citation it stands for. The service lists citations in the order their
   * markers appear, so the k-th [n] takes the k-th citation numbered n; a marker repeated for the same quote
   * (the service keeps such a citation once) falls back to the citation numbered n that best fits its claim.
   */
  function pieces(text, citations, sources) {
    const out = [];
    const re = /\[(\d{1,3})\]/g;
    const used = new Map(); // number -> how many of its citations were taken
    let last = 0;
    let claimStart = 0;
    let m;
    while ((m = re.exec(text))) {
      const number = Number(m[1]);
      const candidates = citations.filter((c) => c && c.number === number);
      const source = sources.find((s) => s && s.number === number) || null;
      if (!candidates.length && !source) continue; // not a marker we can explain: leave it as text
      if (m.index > last) out.push({ text: text.slice(last, m.index) });
      const taken = used.get(number) || 0;
      let citation = candidates[taken] || null;
      if (citation) {
        used.set(number, taken + 1);
      } else if (candidates.length) {
        const claim = words(text.slice(claimStart, m.index));
        let best = -1;
        for (const c of candidates) {
          const q = words(c.quote);
          let shared = 0;
          for (const w of claim) if (q.has(w)) shared += 1;
          if (shared > best) {
            best = shared;
            citation = c;
          }
        }
      }
      out.push({ number, citation, source });
      last = re.lastIndex;
      if (!/^\s*\[\d{1,3}\]/.test(text.slice(last))) claimStart = last;
    }
    if (last < text.length) out.push({ text: text.slice(last) });
    return out;
  }

  // --- the widget ---

  class Widget {
    constructor(host) {
      this.host = host;
      this.root = host.attachShadow({ mode: "open" });
      adoptStyles(this.root);
      this.history = [];
      this.controller = null;
      this.busy = false;
      this.narrow = window.matchMedia ? window.matchMedia("(max-width: 480px)") : null;
      this.build();
    }

    build() {
      const panelId = newId("rag-panel");
      const titleId = newId("rag-title");
      const hintId = newId("rag-hint");
      const wrap = el("div", { class: "root" });

      this.launcher = el(
        "button",
        { type: "button", class: "launcher", "aria-label": config.title, "aria-expanded": "false", "aria-controls": panelId, "aria-haspopup": "dialog" },
        icon(ICON_CHAT),
        el("span", { text: "Ask" }),
      );
      this.launcher.addEventListener("click", () => (this.isOpen() ? this.close() : this.open()));

      this.newButton = el("button", { type: "button", class: "header-btn new", text: "New conversation" });
      this.newButton.addEventListener("click", () => this.reset());
      this.closeButton = el("button", { type: "button", class: "header-btn close", "aria-label": "Close chat" }, icon(ICON_CLOSE));
      this.closeButton.addEventListener("click", () => this.close());

      this.log = el("div", { class: "log", role: "log", "aria-live": "polite", "aria-relevant": "additions", "aria-label": "Conversation", tabindex: "-1" });
      this.intro = el("p", { class: "intro", text: "Ask a question about the news. Answers are quoted from the articles, with numbered sources you can open." });
      this.log.append(this.intro);

      this.status = el("div", { class: "sr-only", role: "status", "aria-live": "polite" });

      this.input = el("textarea", {
        class: "input",
        rows: "1",
        maxlength: String(MAX_QUESTION_CHARS),
        "aria-label": "Your question",
        "aria-describedby": hintId,
        placeholder: "Ask a question…",
        autocomplete: "off",
      });
      this.counter = el("p", { class: "count", id: newId("rag-count") });
      this.input.setAttribute("aria-describedby", `${hintId} ${this.counter.id}`);
      this.input.addEventListener("input", () => this.updateCount());
      this.updateCount();
      this.input.addEventListener("keydown", (e) => {
        if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
          e.preventDefault();
          this.submit();
        }
      });
      this.sendButton = el("button", { type: "submit", class: "send", text: "Send" });
      const form = el("form", { class: "composer", "aria-label": "Ask a question" }, this.input, this.sendButton);
      form.addEventListener("submit", (e) => {
        e.preventDefault();
        this.submit();
      });

      this.panel = el(
        "div",
        { class: "panel", id: panelId, role: "dialog", "aria-modal": "false", "aria-labelledby": titleId, hidden: true },
        el("div", { class: "header" }, el("h2", { class: "title", id: titleId, text: config.title }), this.newButton, this.closeButton),
        this.log,
        form,
        this.counter,
        el("p", { class: "hint", id: hintId, text: "Enter to send · Shift+Enter for a new line · Esc to close" }),
        this.status,
      );
      wrap.addEventListener("keydown", (e) => this.onKey(e)); // panel and launcher: Esc closes from either

      wrap.append(this.panel, this.launcher);
      this.root.append(wrap);
    }

    /** "123 / 2,000 characters", in red at the limit (the textarea's maxlength stops typing there). */
    updateCount() {
      const n = this.input.value.length;
      this.counter.textContent = `${n.toLocaleString("en")} / ${MAX_QUESTION_CHARS.toLocaleString("en")} characters`;
      this.counter.classList.toggle("full", n >= MAX_QUESTION_CHARS);
    }

    isOpen() {
      return !this.panel.hidden;
    }

    open() {
      this.panel.hidden = false;
      this.panel.setAttribute("aria-modal", this.isNarrow() ? "true" : "false");
      this.launcher.setAttribute("aria-expanded", "true");
      this.input.focus();
    }

    close() {
      if (!this.isOpen()) return;
      this.panel.hidden = true;
      this.launcher.setAttribute("aria-expanded", "false");
      this.launcher.focus();
    }

    isNarrow() {
      return !!(this.narrow && this.narrow.matches);
    }

    onKey(e) {
      if (e.key === "Escape" && this.isOpen()) {
        e.preventDefault();
        e.stopPropagation();
        // An open source card closes first (focus back on its [n]); the next Esc closes the panel.
        if (!this.closeSourceCard()) this.close();
        return;
      }
      if (e.key === "Tab" && this.isOpen() && this.isNarrow()) {
        // Full-screen on phones: keep focus inside the panel (the page behind is covered).
        const focusable = Array.from(this.panel.querySelectorAll("button, a[href], textarea, [tabindex='0']")).filter(
          (n) => !n.disabled && n.getClientRects().length > 0,
        );
        if (!focusable.length) return;
        const first = focusable[0];
        const last = focusable[focusable.length - 1];
        const active = this.root.activeElement;
        if (e.shiftKey && active === first) {
          e.preventDefault();
          last.focus();
        } else if (!e.shiftKey && active === last) {
          e.preventDefault();
          first.focus();
        }
      }
    }

    /** Hide the open source card that holds the focus (else the last one opened); false when none is open. */
    closeSourceCard() {
      const open = Array.from(this.log.querySelectorAll(".source")).filter((card) => !card.hidden);
      if (!open.length) return false;
      const active = this.root.activeElement;
      const card = open.find((c) => active && c.contains(active)) || open[open.length - 1];
      card.hidden = true;
      const opener = card.parentNode && card.parentNode.querySelector(".cite-btn[aria-expanded='true']");
      if (opener) {
        opener.setAttribute("aria-expanded", "false");
        opener.focus();
      }
      return true;
    }

    announce(text) {
      this.status.textContent = "";
      // A fresh text node so screen readers announce repeated messages too.
      window.setTimeout(() => {
        this.status.textContent = text;
      }, 50);
    }

    scrollToEnd() {
      this.log.scrollTop = this.log.scrollHeight;
    }

    setBusy(busy) {
      this.busy = busy;
      this.sendButton.disabled = busy;
      this.log.setAttribute("aria-busy", busy ? "true" : "false");
    }

    reset() {
      if (this.controller) this.controller.abort();
      this.controller = null;
      this.history = [];
      this.log.replaceChildren(this.intro);
      this.setBusy(false);
      this.input.value = "";
      this.updateCount();
      this.announce("New conversation started.");
      this.input.focus();
    }

    submit() {
      if (this.busy) return;
      const question = this.input.value.trim();
      if (!question) {
        this.input.focus();
        return;
      }
      this.input.value = "";
      this.updateCount();
      this.log.append(el("div", { class: "msg user" }, el("span", { class: "sr-only", text: "You: " }), question));
      this.ask(question, this.history.slice(-MAX_HISTORY_TURNS));
    }

    async ask(question, history) {
      const bubble = el("div", { class: "msg bot streaming", "aria-busy": "true" });
      const label = el("span", { class: "sr-only", text: "Answer: " });
      const text = el("div", { class: "text" });
      const status = el("div", { class: "status", text: "Searching the articles…" });
      bubble.append(label, status, text);
      this.log.append(bubble);
      this.scrollToEnd();
      this.setBusy(true);
      this.announce("Searching the articles…");

      const controller = new AbortController();
      this.controller = controller;
      let timedOut = false;
      const timer = window.setTimeout(() => {
        timedOut = true;
        controller.abort();
      }, REQUEST_TIMEOUT_MS);

      const state = { sources: [], citations: [], streamed: "" };
      try {
        const answer = await this.stream(question, history, controller.signal, state, {
          onSources: () => {
            status.textContent = "Writing the answer…";
          },
          onDelta: (piece) => {
            state.streamed += piece;
            const shown = visibleStream(state.streamed);
            if (shown) status.hidden = true;
            text.textContent = shown;
            this.scrollToEnd();
          },
        });
        if (this.controller !== controller) return; // reset while streaming
        this.renderAnswer(bubble, answer, state);
        this.history.push({ role: "user", content: question.slice(0, MAX_TURN_CHARS) });
        this.history.push({ role: "assistant", content: str(answer.text).slice(0, MAX_TURN_CHARS) });
        this.history = this.history.slice(-MAX_HISTORY_TURNS);
        this.announce(answer.abstained ? "The articles do not answer this question." : "Answer ready.");
      } catch (err) {
        if (this.controller !== controller) return; // reset: the bubble is gone already
        let error = err;
        if (!(error instanceof AskError)) {
          error = timedOut ? new AskError("timeout") : error && error.name === "AbortError" ? new AskError("timeout") : new AskError("network");
        }
        this.renderError(bubble, error, question, history);
      } finally {
        window.clearTimeout(timer);
        if (this.controller === controller) {
          this.controller = null;
          this.setBusy(false);
        }
        this.scrollToEnd();
      }
    }

    async stream(question, history, signal, state, on) {
      const headers = { "Content-Type": "application/json", Accept: "text/event-stream" };
      if (config.key) headers["X-API-Key"] = config.key;
      const body = { question };
      if (history.length) body.history = history;
      if (config.mode) body.mode = config.mode;
      const response = await fetch(`${config.api}/v1/ask/stream`, {
        method: "POST",
        headers,
        body: JSON.stringify(body),
        signal,
        credentials: "omit",
        mode: "cors",
        cache: "no-store",
        referrerPolicy: "no-referrer",
      });
      if (!response.ok) {
        let detail = "";
        try {
          const payload = await response.json();
          detail = str(payload && payload.error && payload.error.message);
        } catch (_e) {
          /* not JSON */
        }
        const retryAfter = parseInt(response.headers.get("Retry-After") || "", 10);
        throw errorFromStatus(response.status, detail, Number.isFinite(retryAfter) && retryAfter > 0 ? Math.min(retryAfter, 3600) : 0);
      }
      const type = response.headers.get("Content-Type") || "";
      if (!response.body || !/^text\/event-stream/i.test(type)) throw new AskError("protocol");

      for await (const message of readSse(response.body)) {
        let payload;
        try {
          payload = JSON.parse(message.data);
        } catch (_e) {
          continue; // not ours
        }
        if (!payload || typeof payload !== "object") continue;
        switch (message.event) {
          case "sources":
            state.sources = Array.isArray(payload.sources) ? payload.sources : [];
            on.onSources();
            break;
          case "delta":
            if (typeof payload.text === "string" && payload.text) on.onDelta(payload.text);
            break;
          case "citation":
            if (payload.citation && typeof payload.citation === "object") state.citations.push(payload.citation);
            break;
          case "done":
            if (payload.answer && typeof payload.answer === "object") return payload.answer;
            throw new AskError("protocol");
          case "error":
            throw errorFromEvent(payload);
          default:
            break;
        }
      }
      throw new AskError("protocol");
    }

    renderAnswer(bubble, answer, state) {
      const sources = Array.isArray(answer.sources) ? answer.sources : state.sources;
      const citations = Array.isArray(answer.citations) ? answer.citations : state.citations;
      const finalText = str(answer.text);
      bubble.classList.remove("streaming");
      bubble.removeAttribute("aria-busy");
      bubble.replaceChildren();

      if (answer.abstained) {
        bubble.classList.add("abstained");
        bubble.append(
          el("p", { class: "abstain-head", text: "Not in the articles" }),
          el("div", { class: "text", text: finalText || "The articles I have do not answer this question." }),
        );
        if (answer.abstain_reason) bubble.append(el("p", { class: "note reason", text: sentence(str(answer.abstain_reason)) }));
        const seen = new Set();
        const closest = sources
          .filter((s) => s && typeof s === "object" && !seen.has(s.article_id) && seen.add(s.article_id))
          .slice(0, 3);
        if (closest.length) {
          const list = el("ul", { class: "closest", "aria-label": "Closest articles" });
          for (const s of closest) {
            const href = safeHttpUrl(s.url);
            const title = str(s.title) || "Untitled article";
            const item = el("li", null, href ? el("a", { href, target: "_blank", rel: "noopener noreferrer nofollow", text: title }) : title);
            const date = dateElement(s.published_at);
            if (date) item.append(" (", date, ")");
            list.append(item);
          }
          bubble.append(el("p", { class: "note", text: "Closest articles found:" }), list);
        }
        return;
      }

      if (answer.mode === "extractive") {
        bubble.append(el("span", { class: "label", title: "Sentences quoted from the articles; no language model wrote this answer.", text: "Extractive · quoted from the articles" }));
      } else if (answer.mode === "llm") {
        bubble.append(el("span", { class: "label", title: "Written by a language model; every citation was checked against the articles.", text: "AI-written · citations checked" }));
      }
      const text = el("div", { class: "text" });
      const panelId = newId("rag-source");
      const panel = el("div", { class: "source", id: panelId, role: "region", hidden: true });
      const buttons = [];
      for (const piece of pieces(finalText, citations, sources)) {
        if (piece.text !== undefined) {
          text.append(document.createTextNode(piece.text));
          continue;
        }
        const title = str((piece.citation || piece.source).title) || "Untitled article";
        const button = el("button", {
          type: "button",
          class: "cite-btn",
          "aria-expanded": "false",
          "aria-controls": panelId,
          "aria-label": `Source ${piece.number}: ${title}`,
          text: `[${piece.number}]`,
        });
        button.addEventListener("click", () => {
          const wasOpen = button.getAttribute("aria-expanded") === "true";
          for (const b of buttons) b.setAttribute("aria-expanded", "false");
          if (wasOpen) {
            panel.hidden = true;
            return;
          }
          button.setAttribute("aria-expanded", "true");
          this.showSource(panel, piece);
        });
        buttons.push(button);
        text.append(button);
      }
      bubble.append(text);
      if (Array.isArray(answer.dropped_claims) && answer.dropped_claims.length) {
        const n = answer.dropped_claims.length;
        bubble.append(el("p", { class: "note", text: `${n} statement${n === 1 ? "" : "s"} removed because the articles did not support ${n === 1 ? "it" : "them"}.` }));
      }
      bubble.append(panel);
    }

    /** The cited article's title, date and link, and the quote highlighted within its source passage. */
    showSource(panel, piece) {
      const citation = piece.citation;
      const source = piece.source;
      const meta = citation || source;
      const title = str(meta.title) || "Untitled article";
      const headingId = newId("rag-source-title");
      panel.setAttribute("aria-labelledby", headingId);
      panel.replaceChildren();

      const close = el("button", { type: "button", class: "header-btn", "aria-label": "Hide source" }, icon(ICON_CLOSE));
      close.addEventListener("click", () => {
        panel.hidden = true;
        const opener = panel.parentNode && panel.parentNode.querySelector(".cite-btn[aria-expanded='true']");
        if (opener) {
          opener.setAttribute("aria-expanded", "false");
          opener.focus();
        }
      });
      panel.append(
        el("div", { class: "source-head" }, el("h3", { class: "source-title", id: headingId }, `[${piece.number}] `, title), close),
      );

      const metaLine = el("p", { class: "source-meta" });
      const date = dateElement(meta.published_at || (source && source.published_at));
      if (date) metaLine.append(el("span", null, date));
      const outlet = str(source && source.source);
      if (outlet) metaLine.append(el("span", { text: outlet }));
      const href = safeHttpUrl(meta.url || (source && source.url));
      if (href) {
        metaLine.append(el("a", { href, target: "_blank", rel: "noopener noreferrer nofollow", text: `Read the article on ${hostOf(href) || "its site"}` }));
      }
      if (metaLine.childNodes.length) panel.append(metaLine);

      const passage = el("p", { class: "passage", tabindex: "0", "aria-label": "Quoted passage in context" });
      let mark = null;
      const quote = str(citation && citation.quote);
      const context = str(source && source.text);
      if (quote && context) {
        let offset = Number(citation.start) - Number(source.start);
        if (!(Number.isInteger(offset) && offset >= 0 && context.slice(offset, offset + quote.length) === quote)) {
          offset = context.indexOf(quote);
        }
        if (offset >= 0) {
          mark = el("mark", { text: quote });
          // Paragraph breaks at the passage's edges would only show as blank lines.
          passage.append(context.slice(0, offset).replace(/^\s+/, ""), mark, context.slice(offset + quote.length).replace(/\s+$/, ""));
        }
      }
      if (!mark && quote) {
        mark = el("mark", { text: quote });
        passage.append(mark);
      } else if (!mark) {
        passage.append(context.trim() || "(no passage text)");
      }
      panel.append(passage);
      panel.hidden = false;
      if (mark) {
        // Scroll the passage (not the page) so the highlighted quote is in view.
        passage.scrollTop = Math.max(0, mark.offsetTop - 24);
      }
      const box = panel.getBoundingClientRect();
      const logBox = this.log.getBoundingClientRect();
      if (box.bottom > logBox.bottom) this.log.scrollTop += Math.min(box.bottom - logBox.bottom + 8, box.top - logBox.top);
    }

    renderError(bubble, error, question, history) {
      bubble.classList.remove("streaming");
      bubble.classList.add("error");
      bubble.removeAttribute("aria-busy");
      const [head, body] = plainWords(error);
      const retry = el("button", { type: "button", class: "retry", text: "Retry" });
      retry.addEventListener("click", () => {
        if (this.busy) return;
        this.input.focus(); // the button is about to go: keep focus in the panel
        bubble.remove();
        this.ask(question, history);
      });
      bubble.replaceChildren(el("div", { role: "alert" }, el("p", { class: "error-head", text: head }), el("p", { class: "error-body", text: body })), retry);
      if (error.kind === "rate" && error.retryAfter) {
        retry.disabled = true;
        retry.textContent = `Retry in ${error.retryAfter}s`;
        let left = error.retryAfter;
        const tick = window.setInterval(() => {
          left -= 1;
          if (left <= 0 || !bubble.isConnected) {
            window.clearInterval(tick);
            retry.disabled = false;
            retry.textContent = "Retry";
          } else {
            retry.textContent = `Retry in ${left}s`;
          }
        }, 1000);
      }
    }
  }

  function start() {
    if (document.querySelector(TAG)) return;
    const host = document.createElement(TAG);
    document.body.append(host);
    const widget = new Widget(host);
    // A page may put a question to the widget (the demo page's suggestions do):
    //   document.dispatchEvent(new CustomEvent("rag-news-widget:ask", { detail: { question: "..." } }))
    document.addEventListener(`${TAG}:ask`, (e) => {
      const question = e && e.detail && typeof e.detail.question === "string" ? e.detail.question.slice(0, MAX_QUESTION_CHARS) : "";
      if (!question.trim()) return;
      if (!widget.isOpen()) widget.open();
      widget.input.value = question;
      widget.updateCount();
      widget.submit();
    });
  }

  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start, { once: true });
})();
