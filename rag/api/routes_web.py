"""The demo page (/), the embeddable widget (/widget.js) and the API docs (/docs), each with its own CSP."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import re
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from rag.api.errors import ApiError
from rag.api.security import DEMO_PAGE_CSP

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
DOCS_ASSETS_URL = "/docs/assets"
# Swagger UI's files as shipped in the `fastapi-offline` wheel (only its static folder is used), so /docs works
# with no CDN and no network. Found without importing the package.
_DOCS_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon.png": "image/png",
}


def docs_assets_dir() -> Path | None:
    """The folder with Swagger UI's files, or None when the package is missing."""
    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "static"
    return folder if folder.is_dir() else None


router = APIRouter(include_in_schema=False)


def _file(name: str, media_type: str, headers: dict[str, str]) -> FileResponse:
    path = WEB_DIR / name
    if not path.is_file():
        raise ApiError(404, "not_found", f"the widget is not built: rag/web/{name} is missing")
    # no-cache = revalidate each time (ETag), so a new widget reaches pages at once.
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "no-cache", **headers})


@router.get("/")
async def demo_page() -> FileResponse:
    """The demo page with the widget."""
    return _file(
        "index.html",
        "text/html; charset=utf-8",
        {"Content-Security-Policy": DEMO_PAGE_CSP, "Cross-Origin-Resource-Policy": "same-origin"},
    )


@router.get("/demo.css")
async def demo_styles() -> FileResponse:
    """The demo page's stylesheet (a file: the page's CSP allows no inline styles)."""
    return _file("demo.css", "text/css; charset=utf-8", {"Cross-Origin-Resource-Policy": "same-origin"})


@router.get("/demo.js")
async def demo_script() -> FileResponse:
    """The demo page's suggestions and attribution, from the articles loaded."""
    return _file("demo.js", "text/javascript; charset=utf-8", {"Cross-Origin-Resource-Policy": "same-origin"})


@router.get("/widget.js")
async def widget_script() -> FileResponse:
    """The widget: any site may load it with a script tag, so it is a cross-origin resource on purpose."""
    return _file("widget.js", "text/javascript; charset=utf-8", {"Cross-Origin-Resource-Policy": "cross-origin"})


def _sources(urls: list[str]) -> list[str]:
    """CSP sources for the given URLs: 'self' for same-origin paths, else each URL's origin."""
    found: list[str] = []
    for url in urls:
        parts = urlsplit(url)
        source = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else "'self'"
        if parts.scheme == "data":
            source = "data:"
        if source not in found:
            found.append(source)
    return found


def docs_csp(html: str) -> str:
    """A CSP for the Swagger UI page built from what the page loads: the origins of its script, style and icon
    URLs ('self' when they are served from here, so no outside origin is named), and its inline scripts by hash.
    """
    scripts = re.findall(r"<script[^>]*\ssrc=[\"']([^\"']+)", html)
    styles = re.findall(r"<link[^>]*rel=[\"']stylesheet[\"'][^>]*href=[\"']([^\"']+)", html)
    icons = re.findall(r"<link[^>]*rel=[\"'][^\"']*icon[\"'][^>]*href=[\"']([^\"']+)", html)
    hashes = [
        f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
        for script in re.findall(r"<script>(.*?)</script>", html, flags=re.S)
    ]
    script_src = " ".join([*_sources(scripts), *hashes]) or "'none'"
    # Swagger UI sets style attributes from script, which only 'unsafe-inline' allows (it names no origin).
    style_src = " ".join([*_sources(styles), "'unsafe-inline'"])
    img_src = " ".join(dict.fromkeys(["'self'", "data:", *_sources(icons)]))
    return (
        f"default-src 'none'; script-src {script_src}; style-src {style_src}; img-src {img_src}; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )


def docs_page(openapi_url: str, title: str) -> HTMLResponse:
    """Swagger UI from our own origin (assets from the fastapi-offline package), under a CSP that allows exactly
    what the page loads (`docs_csp`): no outside origin."""
    page = get_swagger_ui_html(
        openapi_url=openapi_url,
        title=title,
        swagger_js_url=f"{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{DOCS_ASSETS_URL}/favicon.png",
    )
    body = bytes(page.body).decode()
    return HTMLResponse(body, headers={"Content-Security-Policy": docs_csp(body)})


def docs_router(openapi_url: str, title: str) -> APIRouter:
    """GET /docs, the page built once, and its asset files."""
    docs = APIRouter(include_in_schema=False)
    page = docs_page(openapi_url, title)

    @docs.get("/docs")
    async def swagger_ui() -> HTMLResponse:
        return HTMLResponse(
            bytes(page.body), headers={"Content-Security-Policy": page.headers["content-security-policy"]}
        )

    @docs.get(DOCS_ASSETS_URL + "/{name}")
    async def swagger_asset(name: str) -> FileResponse:
        folder = docs_assets_dir()
        if name not in _DOCS_ASSETS or folder is None or not (folder / name).is_file():
            raise ApiError(404, "not_found", f"no docs asset '{name}' (is fastapi-offline installed?)")
        # The files change only with the pinned package: a day of caching is safe.
        return FileResponse(folder / name, media_type=_DOCS_ASSETS[name], headers={"Cache-Control": "max-age=86400"})

    return docs
