"""The pre-rendered pages as sent: their content first, their scripts after the first paint
(pure ASGI, wrapped around Reflex's own app in booking_app.py, inside the security and
caching middlewares so the CSP hashes and Cache-Control see the final page).

Two changes to every page (HTML) Reflex's build serves:

- **Scripts after the first paint.** The build names every module of the page in
  `<link rel="modulepreload">` tags and starts the app from one inline module script. Those
  downloads compete with the stylesheet on a slow phone line, and the app's start-up work
  runs before the page is first painted. Here the tags go, and the inline script waits for
  the first frame, then adds the same preload hints and starts the app exactly as before.
  The page is painted from its HTML as soon as the stylesheet is there.
- **Content in the HTML.** A page may carry empty slots (`<div data-prerender="NAME">`,
  ui/previews.py) that a *filler* registered for its path fills on the server from the
  request (query, cookies, Accept-Language); React leaves their HTML alone when it takes
  over the page. Fillers return escaped HTML; a failing filler leaves the slot empty.

The rewritten page gets its own ETag (a 304 when it is unchanged), and is gzipped when the
browser accepts it. What does not depend on the request (the page with its scripts moved, its
ETag, its gzipped bytes) is made once per page as built and kept (`RewriteCache`, keyed by a
digest of the built page's bytes, so a rebuilt frontend is never answered from an old entry);
only a page with a filler is filled, hashed and gzipped again for every request.

A page stored as `<path>/index.html` is sent for `<path>` itself, not redirected to `<path>/`
first (one round trip less for a link to `/service?id=3`).
"""
from __future__ import annotations

import gzip
import hashlib
import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from urllib.parse import parse_qsl, urlsplit

from anyio import to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

#: request → {slot name: HTML}; runs in a worker thread (it may read the database)
Filler = Callable[["PageRequest"], Mapping[str, str]]

#: paths that are never pages: files (a dot in the last segment), the API, the event socket...
NOT_PAGES = ("/api/", "/_", "/assets/", "/ping", "/docs", "/redoc", "/openapi")
#: the booking widget's pages (framed by other websites, often below their fold, where
#: frames get no animation frames): their app starts at once, as built
DEFERRED_NOT_UNDER = "/embed"
#: larger HTML bodies are passed on untouched (pages are ~20-60 KB)
MAX_PAGE = 2 * 1024 * 1024
#: rewritten pages kept per middleware, at most this many (the build has ~40 pages, and a
#: page under /embed is kept apart from the same file elsewhere) ...
CACHE_PAGES = 64
#: ... and of at most this many bytes in all (their gzipped copies, smaller, come on top)
CACHE_BYTES = 8 * 1024 * 1024

_MODULEPRELOAD = re.compile(r'<link\s+rel="modulepreload"\s+href="(/assets/[^"<>]+\.js)"\s*/?>')
_BOOT = re.compile(r'(<script type="module"[^>]*>)(\s*import "(/assets/[^"]+\.js)";(.*?))</script>', re.DOTALL)
_ROUTE_IMPORT = re.compile(r'import \* as (route\d+) from "(/assets/[^"]+\.js)";')
_ROUTE_MODULES = re.compile(r'window\.__reactRouterRouteModules = (\{[^;<]*\});')
_ENTRY = re.compile(r'import\("(/assets/entry\.client-[^"]+\.js)"\);')
_SLOT = re.compile(r'(<div\b[^>]*\sdata-prerender="([a-z0-9-]+)"[^>]*>)(</div>)')


class PageRequest:
    """What a filler may read of the request: the path, the query, two headers."""

    def __init__(self, path: str, query_string: bytes, headers: Mapping[bytes, bytes]) -> None:
        self.path = path
        self.query: dict[str, str] = dict(parse_qsl(query_string.decode("latin-1"), keep_blank_values=True))
        self.cookie = headers.get(b"cookie", b"").decode("latin-1")
        self.accept_language = headers.get(b"accept-language", b"").decode("latin-1")[:200]


def is_page_path(path: str) -> bool:
    last = path.rsplit("/", 1)[-1]
    return not path.startswith(NOT_PAGES) and ("." not in last or last.endswith(".html"))


def defer_scripts(html: str) -> str:
    """The page with its app started after the first paint (module docstring); unchanged when
    its start-up script is not the one React Router writes."""
    boot = _BOOT.search(html)
    if boot is None:
        return html
    body = boot.group(2)
    routes = _ROUTE_IMPORT.findall(body)
    modules = _ROUTE_MODULES.search(body)
    entry = _ENTRY.search(body)
    if not routes or modules is None or entry is None:
        return html
    preloads = list(dict.fromkeys(_MODULEPRELOAD.findall(html)))
    imports = [boot.group(3)] + [src for _, src in routes]
    script = (
        # the first frame is painted before the callback of the timeout set in its rAF callback;
        # a tab in the background paints no frame: there the app starts after a second anyway
        "await new Promise((r) => { requestAnimationFrame(() => setTimeout(r, 0)); setTimeout(r, 1000); });\n"
        f"for (const href of {json.dumps(preloads)}) {{\n"
        "  const link = document.createElement(\"link\");\n"
        "  link.rel = \"modulepreload\"; link.href = href; document.head.appendChild(link);\n"
        "}\n"
        f"const [, {', '.join(name for name, _ in routes)}] = await Promise.all("
        f"[{', '.join(f'import({json.dumps(src)})' for src in imports)}]);\n"
        f"window.__reactRouterRouteModules = {modules.group(1)};\n"
        f"import({json.dumps(entry.group(1))});"
    )
    html = html[:boot.start()] + boot.group(1) + script + "</script>" + html[boot.end():]
    return _MODULEPRELOAD.sub("", html)


def fill_slots(html: str, fragments: Mapping[str, str]) -> str:
    """Each `data-prerender` slot with its fragment (trusted, already escaped HTML)."""
    if not fragments:
        return html
    return _SLOT.sub(lambda m: m.group(1) + fragments.get(m.group(2), "") + m.group(3), html)


def _location_path(location: bytes) -> str:
    return urlsplit(location.decode("latin-1")).path


def etag_of(body: bytes) -> bytes:
    return b'W/"' + hashlib.sha256(body).hexdigest()[:32].encode() + b'"'


class RewrittenPage:
    """A page as sent to everyone: its bytes after `defer_scripts`, their ETag, whether it has
    a slot to fill, and its gzipped bytes (made on first use)."""

    __slots__ = ("body", "etag", "fillable", "_gzipped")

    def __init__(self, body: bytes, fillable: bool) -> None:
        self.body = body
        self.etag = etag_of(body)
        self.fillable = fillable
        self._gzipped: bytes | None = None

    def gzipped(self) -> bytes:
        if self._gzipped is None:  # two threads may both make it: the same bytes
            self._gzipped = gzip.compress(self.body, 6, mtime=0)
        return self._gzipped


def rewrite(body: bytes, deferred: bool) -> RewrittenPage:
    """The built page `body` as sent to everyone: its scripts after the first paint when
    `deferred`; a body that is not UTF-8 as it is."""
    try:
        html = body.decode("utf-8")
    except UnicodeDecodeError:
        return RewrittenPage(body, fillable=False)
    if deferred:
        html = defer_scripts(html)
    return RewrittenPage(html.encode("utf-8"), fillable=_SLOT.search(html) is not None)


class RewriteCache:
    """`rewrite`'s pages, least recently used first out beyond `pages` entries or `max_bytes`
    of bodies; keyed by the SHA-256 of the built page and `deferred`, so the same file served
    for many paths is one entry and a rebuilt one is a new entry. `pages=0` keeps nothing.
    Thread-safe (an ASGI server may call the app from several threads)."""

    def __init__(self, pages: int = CACHE_PAGES, max_bytes: int = CACHE_BYTES) -> None:
        self.pages = pages
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[bytes, bool], RewrittenPage] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, body: bytes, deferred: bool) -> RewrittenPage:
        if self.pages <= 0:
            return rewrite(body, deferred)
        key = (hashlib.sha256(body).digest(), deferred)
        with self._lock:
            page = self._entries.get(key)
            if page is not None:
                self._entries.move_to_end(key)
                return page
        page = rewrite(body, deferred)  # outside the lock: a miss doesn't hold up the hits
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= len(old.body)
            self._entries[key] = page
            self._bytes += len(page.body)
            while self._entries and (len(self._entries) > self.pages or self._bytes > self.max_bytes):
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= len(dropped.body)
        return page


def _accepts_gzip(headers: Mapping[bytes, bytes]) -> bool:
    for part in headers.get(b"accept-encoding", b"").decode("latin-1").split(","):
        token, _, params = part.strip().partition(";")
        if token.strip().lower() in ("gzip", "*"):
            return params.replace(" ", "").lower() not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


class PrerenderMiddleware:
    """Rewrites the pages Reflex serves (module docstring); everything else passes by."""

    def __init__(self, app: ASGIApp, fillers: Mapping[str, Filler] | None = None,
                 cache_pages: int = CACHE_PAGES) -> None:
        self.app = app
        self.fillers = dict(fillers or {})
        self.cache = RewriteCache(cache_pages)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "GET" or not is_page_path(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers") or ()}
        # the page as stored (no sidecar .gz, no 304 for the stored file's ETag, no sendfile):
        # the answer is made here
        inner_headers = [(k, v) for k, v in scope.get("headers") or ()
                         if k.lower() not in (b"accept-encoding", b"if-none-match", b"if-modified-since")]
        extensions = {k: v for k, v in (scope.get("extensions") or {}).items() if k != "http.response.pathsend"}
        inner = dict(scope, headers=inner_headers, extensions=extensions)
        start: list[Message] = []
        chunks: list[bytes] = []
        passing = [False]
        to_slash = [False]

        async def capture(message: Message) -> None:
            if passing[0]:
                await send(message)
                return
            if to_slash[0]:
                return
            if message["type"] == "http.response.start":
                response_headers = {k.lower(): v for k, v in message.get("headers") or ()}
                content_type = response_headers.get(b"content-type", b"")
                if (int(message["status"]) in (301, 307, 308) and not inner["path"].endswith("/")
                        and _location_path(response_headers.get(b"location", b"")) == inner["path"] + "/"):
                    to_slash[0] = True  # the page is stored as <path>/index.html: served here, no redirect
                    return
                if int(message["status"]) not in (200, 404) or not content_type.startswith(b"text/html"):
                    passing[0] = True
                    await send(message)
                    return
                start.append(message)
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if sum(map(len, chunks)) > MAX_PAGE:  # not a page of ours: send it as it is
                passing[0] = True
                await send(start[0])
                await send({"type": "http.response.body", "body": b"".join(chunks),
                            "more_body": message.get("more_body", False)})
                return
            if not message.get("more_body", False):
                await self._answer(scope, headers, start[0], b"".join(chunks), send)

        await self.app(inner, receive, capture)
        if to_slash[0]:
            to_slash[0] = False
            inner = dict(inner, path=inner["path"] + "/", raw_path=(inner.get("raw_path") or inner["path"].encode()) + b"/")
            await self.app(inner, receive, capture)

    async def _answer(self, scope: Scope, headers: Mapping[bytes, bytes], start: Message, body: bytes,
                      send: Send) -> None:
        path = scope.get("path", "")
        deferred = path != DEFERRED_NOT_UNDER and not path.startswith(DEFERRED_NOT_UNDER + "/")
        page = self.cache.get(body, deferred)
        filler = self.fillers.get(path.rstrip("/") or "/")
        # its language and what it shows depend on the visitor
        personal = filler is not None and int(start["status"]) == 200 and page.fillable
        if personal:
            request = PageRequest(path, scope.get("query_string") or b"", headers)
            try:
                fragments = await to_thread.run_sync(filler, request)
            except Exception:  # a preview is optional: the page works without it
                log.exception("pre-rendering %s failed", path)
                fragments = {}
            body = fill_slots(page.body.decode("utf-8"), fragments).encode("utf-8")
            etag = etag_of(body)
        else:
            body, etag = page.body, page.etag
        kept = [(k, v) for k, v in start.get("headers") or ()
                if k.lower() not in (b"content-length", b"content-encoding", b"etag", b"last-modified", b"vary")]
        kept += [(b"etag", etag), (b"vary", b"Accept-Encoding, Cookie, Accept-Language" if personal else b"Accept-Encoding")]
        if int(start["status"]) == 200 and etag in [t.strip() for t in headers.get(b"if-none-match", b"").split(b",")]:
            await send({"type": "http.response.start", "status": 304, "headers": kept})
            await send({"type": "http.response.body", "body": b""})
            return
        if _accepts_gzip(headers):
            body = gzip.compress(body, 6, mtime=0) if personal else page.gzipped()
            kept.append((b"content-encoding", b"gzip"))
        kept.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": start["status"], "headers": kept})
        await send({"type": "http.response.body", "body": body})
