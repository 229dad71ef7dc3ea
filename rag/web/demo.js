/*
 * The demo page's suggestions and attribution, from the articles actually loaded (GET /v1/articles, newest
 * first). Everything from an article is inserted as text; links are http(s) only. Without access to the list
 * (a server that needs a key for reading), the page keeps its two seed questions.
 */
(() => {
  "use strict";

  const SUGGESTIONS = 4;
  // Corpora whose license asks for attribution, by the `source` their articles carry.
  const ATTRIBUTION = [
    {
      source: "Wikinews",
      text: "Articles from Wikinews by Wikinews contributors, under ",
      license: ["CC BY 2.5", "https://creativecommons.org/licenses/by/2.5/"],
      after: "; whitespace and datelines reformatted. Each answer links to its article.",
    },
    {
      source: "Wikipedia Current Events Portal",
      text: "Items from Wikipedia contributors, Portal:Current events, under ",
      license: ["CC BY-SA 4.0", "https://creativecommons.org/licenses/by-sa/4.0/"],
      after: ". Each answer links to its page.",
    },
  ];

  function httpUrl(value) {
    try {
      const url = new URL(String(value));
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (_e) {
      return null;
    }
  }

  function link(text, href) {
    const a = document.createElement("a");
    a.href = href;
    a.rel = "noopener noreferrer";
    a.textContent = text;
    return a;
  }

  async function articles(query) {
    const response = await fetch(`/v1/articles?${query}`, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return response.json();
  }

  function ask(question) {
    document.dispatchEvent(new CustomEvent("rag-news-widget:ask", { detail: { question } }));
  }

  function suggestion(question, meta) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = question;
    button.addEventListener("click", () => ask(question));
    item.append(button);
    if (meta) {
      const small = document.createElement("span");
      small.className = "meta";
      small.append(...meta);
      item.append(small);
    }
    return item;
  }

  async function suggest() {
    const list = document.getElementById("suggestions");
    const heading = document.getElementById("suggestions-note");
    if (!list) return;
    // The seed questions already in the page become buttons too (they work without the article list).
    for (const item of Array.from(list.children)) {
      const question = item.textContent.trim();
      item.replaceWith(suggestion(question, null));
    }
    let page;
    try {
      page = await articles(`limit=${SUGGESTIONS}`);
    } catch (_e) {
      return;
    }
    const items = Array.isArray(page.items) ? page.items : [];
    if (!items.length) return;
    list.replaceChildren(
      ...items.map((a) => {
        const title = String(a.title || "").trim() || "this article";
        const meta = [];
        const href = httpUrl(a.url);
        meta.push(href ? link(String(a.source || new URL(href).hostname), href) : document.createTextNode(String(a.source || "")));
        if (a.published_at) meta.push(document.createTextNode(` · ${a.published_at}`));
        return suggestion(`What happened in “${title}”?`, meta);
      }),
    );
    if (heading) heading.textContent = `Questions about the ${items.length} newest of the ${page.total} articles loaded:`;
  }

  async function attribute() {
    const box = document.getElementById("attribution");
    if (!box) return;
    for (const corpus of ATTRIBUTION) {
      let page;
      try {
        page = await articles(`limit=1&source=${encodeURIComponent(corpus.source)}`);
      } catch (_e) {
        continue;
      }
      if (!page.total) continue;
      const p = document.createElement("p");
      p.append(`${corpus.text}`, link(corpus.license[0], corpus.license[1]), `${corpus.after} (${page.total} articles)`);
      box.append(p);
    }
  }

  suggest();
  attribute();
})();
