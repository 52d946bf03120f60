"""Cache-Control for the compiled frontend's files (pure ASGI, installed by api/security.py).

The frontend build names its JavaScript/CSS under /assets/ after their content hash
(`root-B1x9_zQa.js`): such a file never changes, so browsers keep it for a year without
asking again (`immutable`). Pages (HTML) and every other file we serve (favicon, our own
styles.css, ...) keep their URL across releases: browsers may store them but must revalidate
(`no-cache`; the ETag/Last-Modified answer is a cheap 304). API responses and anything an
inner app already gave a Cache-Control header are left as they are.
"""
from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

IMMUTABLE = b"public, max-age=31536000, immutable"
REVALIDATE = b"no-cache"

#: /assets/<name>-<8+ char content hash>.<ext> (Vite's `[name]-[hash]`), also source maps
HASHED_ASSET = re.compile(r"^/assets/(?:[^/]+/)*[^/]+[-.][A-Za-z0-9_-]{8,}\.[A-Za-z0-9]+(?:\.map)?$")
#: our own endpoints (the REST API, the event socket, uploads, health checks): not files
NOT_FILES = ("/api/", "/_", "/ping", "/docs", "/redoc", "/openapi")


def is_hashed_asset(path: str) -> bool:
    return bool(HASHED_ASSET.match(path))


def cache_control_for(path: str, content_type: str, is_file: bool) -> bytes | None:
    """The Cache-Control a successful GET of `path` gets here (None: leave it alone)."""
    if path.startswith(NOT_FILES) or path == "/api":
        return None
    if is_hashed_asset(path):
        return IMMUTABLE
    if content_type.startswith("text/html") or is_file:
        return REVALIDATE
    return None


class CacheControlMiddleware:
    """Adds Cache-Control to 200/304 answers to GET/HEAD of frontend files and pages."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start" and int(message["status"]) in (200, 304):
                headers = list(message.get("headers") or [])
                names = {key.lower(): value for key, value in headers}
                if b"cache-control" not in names:
                    is_file = b"last-modified" in names or b"etag" in names
                    content_type = names.get(b"content-type", b"").decode("latin-1")
                    value = cache_control_for(path, content_type, is_file or int(message["status"]) == 304)
                    if value is not None:
                        message["headers"] = [*headers, (b"cache-control", value)]
            await send(message)

        await self.app(scope, receive, send_wrapper)
