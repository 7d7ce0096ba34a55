"""Serving the page's files: pre-compressed bytes, long-lived cache headers, and the page's script tag.

Gradio's static-file route (`/gradio_api/file=<path>`, opened to our public folders by
`gr.set_static_paths`) sends no Cache-Control, so a browser would download the 14 MB runtime and
the model again on every visit, and its on-the-fly compression skips .wasm, .mjs and .onnx.
`PrecompressedFiles`, an ASGI middleware put on the FastAPI app Gradio builds (through
`launch(app_kwargs={"middleware": ...})`), answers requests for files of the public folders itself:
the `.br` or `.gz` sibling when the browser accepts it (with Content-Encoding), the right MIME
type, and `Cache-Control: public, max-age=31536000, immutable`, which is safe because every name
there changes with its content (a hash or a pinned version). Everything else passes through.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote

from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.responses import FileResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from web import assets

ROUTE = "/gradio_api/file="
IMMUTABLE = "public, max-age=31536000, immutable"
MEDIA_TYPES = {".wasm": "application/wasm", ".mjs": "text/javascript; charset=utf-8",
               ".js": "text/javascript; charset=utf-8", ".onnx": "application/octet-stream",
               ".json": "application/json"}
ENCODINGS = (("br", ".br"), ("gzip", ".gz"))  # preferred first
SCRIPT = assets.PACKAGE_DIR / "explore.js"


def accepted_encodings(header: str) -> set[str]:
    """Codings the client accepts (q=0 means refused)."""
    found = set()
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        if name and params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000"):
            found.add(name.strip().lower())
    return found


def public_file(url_path: str, roots: list[Path]) -> Path | None:
    """The file a `/gradio_api/file=` path names if it lies in a public root (no hidden or
    compressed sibling names, nothing reached through '..' or a link out of the root), else None."""
    if not url_path.startswith(ROUTE):
        return None
    target = Path(unquote(url_path[len(ROUTE):]))
    if not target.is_absolute():
        return None
    resolved = target.resolve()
    if resolved.name.startswith(".") or resolved.suffix in (".br", ".gz", ".tmp"):
        return None
    if not any(resolved.is_relative_to(root) for root in roots) or not resolved.is_file():
        return None
    return resolved


class PrecompressedFiles:
    """ASGI middleware: serve public files pre-compressed with immutable caching (see module docstring)."""

    def __init__(self, app: ASGIApp, roots: Callable[[], list[Path]] = assets.public_roots) -> None:
        self.app = app
        self.roots = roots

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            return await self.app(scope, receive, send)
        path = public_file(scope["path"], self.roots())
        if path is None:
            return await self.app(scope, receive, send)
        accepted = accepted_encodings(Headers(scope=scope).get("accept-encoding", ""))
        body, headers = path, {"Cache-Control": IMMUTABLE, "Vary": "Accept-Encoding",
                               "X-Content-Type-Options": "nosniff"}
        for coding, suffix in ENCODINGS:
            sibling = path.with_name(path.name + suffix)
            if coding in accepted and sibling.is_file():
                body, headers["Content-Encoding"] = sibling, coding
                break
        media_type = MEDIA_TYPES.get(path.suffix, "application/octet-stream")
        response = FileResponse(body, media_type=media_type, headers=headers, content_disposition_type="inline")
        await response(scope, receive, send)


def in_page_enabled() -> bool:
    """Whether Explore draws in the browser: yes unless $ATELIER_IN_PAGE is 0 (server renders only)."""
    return os.environ.get("ATELIER_IN_PAGE", "1").strip().lower() not in ("0", "false", "no", "off")


def middleware() -> Middleware:
    """The middleware entry for `launch(app_kwargs={"middleware": [...]})`."""
    return Middleware(PrecompressedFiles)


def script_url() -> str:
    """Publish the page's script under its content name; its page-relative URL."""
    data = SCRIPT.read_bytes()
    return assets.url_for(assets.publish_bytes(data, "js", "explore", ".js"))


def head_html() -> str:
    """What goes into the page's <head>: the in-page renderer, as a module (deferred, never blocking)."""
    return f'<script type="module" src="{script_url()}"></script>'
