"""Browser hardening of every response from the app's one port: security headers, CORS, and
the event socket's origin check.

`SecurityMiddleware` (pure ASGI) sits on the FastAPI app. Served alone it wraps the API; mounted
into Reflex through `api_transformer` the FastAPI app wraps Reflex's own app, so the same
middleware also covers the pages, /assets, 404s and the /_event socket.

The Content-Security-Policy lets only our own files and the inline scripts of the page being
sent run: the compiled Reflex pages carry inline <script> blocks (React Router's context,
hydration, the colour-mode switch), so each HTML response gets the sha256 of its own blocks;
no 'unsafe-eval', no 'unsafe-inline' for scripts. Styles need 'unsafe-inline' (Emotion writes
<style> elements at run time, Radix sets style attributes); see the README's production part.
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
import zlib
from dataclasses import dataclass
from urllib.parse import parse_qs

from anyio import to_thread
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from booking_app.api.caching import CacheControlMiddleware
from booking_app.config import Settings, get_settings, origin_of
from booking_app.services import embed

#: the Reflex event socket (socket.io over a websocket)
EVENT_PATH = "/_event"

#: browser features no page of ours uses, switched off for them and for anything framed
PERMISSIONS_POLICY = ", ".join(f"{feature}=()" for feature in (
    "accelerometer", "camera", "display-capture", "geolocation", "gyroscope", "hid",
    "magnetometer", "microphone", "midi", "payment", "serial", "usb"))
#: manage links carry their token in the URL: no Referer at all, to us or anyone else (a
#: same-origin Referer would put it in a proxy's access log)
REFERRER_POLICY = "no-referrer"
HSTS = "max-age=31536000"
#: HTML bodies larger than this are sent without script hashes (pages are ~50 KB)
MAX_HASHED_HTML = 4 * 1024 * 1024

_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\ssrc\s*=)[^>]*>(.*?)</script\s*>", re.IGNORECASE | re.DOTALL)
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")


def inline_script_hashes(html: bytes) -> list[str]:
    """CSP sources ('sha256-…') of the inline <script> blocks of an HTML document, in order."""
    hashes = []
    for match in _INLINE_SCRIPT.finditer(html):
        digest = base64.b64encode(hashlib.sha256(match.group(1)).digest()).decode("ascii")
        source = f"'sha256-{digest}'"
        if source not in hashes:
            hashes.append(source)
    return hashes


@dataclass(frozen=True)
class _Policy:
    """What one Settings object means for the headers (computed once per Settings)."""

    common: tuple[tuple[bytes, bytes], ...]  # every response
    frame_ancestors: str
    socket_sources: str | None  # ws/wss origin of PUBLIC_URL; None: the request's Host
    other_csp: bytes  # anything that is not HTML: nothing may load or run in it


def _policy_for(settings: Settings) -> _Policy:
    ancestors = " ".join(settings.frame_ancestor_origins) or "'none'"
    common = [
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", REFERRER_POLICY.encode()),
        (b"permissions-policy", PERMISSIONS_POLICY.encode()),
        (b"cross-origin-opener-policy", b"same-origin"),
    ]
    if not settings.frame_ancestor_origins:
        common.append((b"x-frame-options", b"DENY"))  # for browsers without CSP frame-ancestors
    public = settings.public_url_configured
    if public and public.startswith("https://"):
        common.append((b"strict-transport-security", HSTS.encode()))
    socket_sources = None
    if public:
        socket_sources = ("wss://" if public.startswith("https://") else "ws://") + public.split("://", 1)[1]
    other = f"default-src 'none'; frame-ancestors {ancestors}; base-uri 'none'; form-action 'none'"
    return _Policy(tuple(common), ancestors, socket_sources, other.encode())


_cache: tuple[Settings, _Policy] | None = None


def _current_policy() -> tuple[Settings, _Policy]:
    global _cache
    settings = get_settings()
    cached = _cache
    if cached is None or cached[0] is not settings:
        cached = _cache = (settings, _policy_for(settings))
    return cached


def embed_policy(policy: _Policy, settings: Settings, extra: tuple[str, ...]) -> _Policy:
    """The policy of a booking widget page (/embed…, issue 25): framable by FRAME_ANCESTORS plus
    `extra` (EMBED_ALLOWED_ORIGINS and the provider's list, services/embed.py); with no origin at
    all it stays 'none' + X-Frame-Options: DENY."""
    origins = tuple(dict.fromkeys(settings.frame_ancestor_origins + extra))
    if not origins:
        return policy
    ancestors = " ".join(origins)
    common = tuple((k, v) for k, v in policy.common if k != b"x-frame-options")
    other = policy.other_csp.decode().replace(f"frame-ancestors {policy.frame_ancestors}", f"frame-ancestors {ancestors}")
    return dataclasses.replace(policy, common=common, frame_ancestors=ancestors, other_csp=other.encode())


def _first_id(query: dict[str, list[str]], name: str) -> int | None:
    values = query.get(name) or [""]
    return int(values[0]) if values[0].isascii() and values[0].isdigit() and len(values[0]) <= 10 else None


def embed_ancestors(path: str, query_string: bytes) -> tuple[str, ...]:
    """Who may frame the widget page at `path`: the origins of its bookable's provider (`id`
    on the widget and review pages, `service` on the booking page) or of `provider`."""
    try:
        query = parse_qs(query_string.decode("latin-1"), max_num_fields=20)
    except ValueError:
        return embed.frame_ancestors()
    bookable = _first_id(query, "service") or (None if path.rstrip("/").endswith("/booking") else _first_id(query, "id"))
    if bookable is not None:
        return embed.frame_ancestors(bookable_id=bookable)
    return embed.frame_ancestors(provider_id=_first_id(query, "provider"))


def is_embed_path(path: str) -> bool:
    return path == embed.EMBED_PREFIX or path.startswith(embed.EMBED_PREFIX + "/")


def page_csp(policy: _Policy, *, script_hashes: list[str], host: str | None) -> str:
    """The CSP of an HTML page: our files, the page's own inline scripts, the event socket."""
    if policy.socket_sources:
        sockets = policy.socket_sources
    elif host and _HOST.match(host):
        sockets = f"ws://{host} wss://{host}"
    else:
        sockets = ""
    return "; ".join([
        "default-src 'self'",
        "script-src " + " ".join(["'self'", *script_hashes]),
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        ("connect-src 'self' " + sockets).strip(),
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        f"frame-ancestors {policy.frame_ancestors}",
    ])


def security_headers(*, html: bytes | None = None, host: str | None = None, is_html: bool = False,
                     settings: Settings | None = None) -> dict[str, str]:
    """The header set a response gets (tests and docs read it from here)."""
    policy = _policy_for(settings) if settings is not None else _current_policy()[1]
    headers = {k.decode(): v.decode() for k, v in policy.common}
    if is_html:
        hashes = inline_script_hashes(html) if html else []
        headers["content-security-policy"] = page_csp(policy, script_hashes=hashes, host=host)
    else:
        headers["content-security-policy"] = policy.other_csp.decode()
    return headers


# ---- origins --------------------------------------------------------------------------------

def _authority(origin: str) -> str:
    return origin.split("://", 1)[1]


def _host_authority(host: str, scheme: str) -> str:
    host = host.strip().lower()
    default = ":443" if scheme == "https" else ":80"
    return host[: -len(default)] if host.endswith(default) else host


def origin_allowed(origin: str | None, host: str | None, settings: Settings | None = None) -> bool:
    """May a browser page of `origin` talk to us (event socket; CORS follows the same list)?
    PUBLIC_URL's origin and CORS_ALLOWED_ORIGINS may; when PUBLIC_URL is unset, so may the
    page's own origin (the Origin names the host the request went to) and the fallback
    `public_url` (this machine's frontend port). No Origin: not a browser page (browsers always
    send one on websockets), so nothing to refuse."""
    if origin is None:
        return True
    settings = settings or get_settings()
    normalized = origin_of(origin.strip())
    if normalized is None:
        return False  # "null" (sandboxed frames, file:) and anything unreadable
    if normalized in settings.cors_origins:
        return True
    if settings.public_url_is_set:
        return False
    if normalized == settings.public_url:
        return True  # http://localhost:<frontend port>: `reflex run` in dev serves pages apart
    if not host:
        return False
    return _authority(normalized) == _host_authority(host, normalized.split("://", 1)[0])


def cors_middleware_options(settings: Settings | None = None) -> dict:
    """Options of Starlette's CORSMiddleware for our origins (credentials only for them)."""
    settings = settings or get_settings()
    return {
        "allow_origins": list(settings.cors_origins),
        "allow_credentials": True,
        "allow_methods": ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        "allow_headers": ["Authorization", "Content-Type", "Accept-Language", "Idempotency-Key"],
        "expose_headers": ["Retry-After", "Location"],
        "max_age": 600,
    }


def install(app) -> None:
    """CORS for our origins, then the security middleware outermost (so CORS answers carry the
    headers too). Reflex adds its own CORS layers from rxconfig's list, which is the same."""
    app.add_middleware(CORSMiddleware, **cors_middleware_options())
    app.add_middleware(CacheControlMiddleware)  # immutable hashed /assets, revalidated pages (api/caching.py)
    app.add_middleware(SecurityMiddleware)


# ---- the middleware -------------------------------------------------------------------------

def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return value.decode("latin-1")
    return None


class SecurityMiddleware:
    """Adds the security headers to every HTTP response (headers an inner app set itself win),
    hashes the inline scripts of HTML responses into their CSP, and refuses the event socket to
    pages of other origins (403 before the handshake)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        settings, policy = _current_policy()
        path = scope.get("path", "")
        if path == EVENT_PATH or path.startswith(EVENT_PATH + "/"):
            if not origin_allowed(_header(scope, b"origin"), _header(scope, b"host"), settings):
                await self._refuse(scope, send, policy)
                return
        if kind == "websocket":
            await self.app(scope, receive, send)
            return
        if is_embed_path(path):  # the booking widget: framable by its provider's allow-list
            extra = await to_thread.run_sync(embed_ancestors, path, scope.get("query_string") or b"")
            policy = embed_policy(policy, settings, extra)
        head_only = scope.get("method") == "HEAD"
        held: list[Message] = []
        buffered: list[bytes] = []
        size = [0]

        async def send_wrapper(message: Message) -> None:
            if held:  # collecting an HTML body
                if message["type"] == "http.response.pathsend":  # a file the server sends itself
                    start = held[0]
                    self._add(start, policy, self._html_csp(scope, start, _read(message["path"]), policy))
                    held.clear()
                    await send(start)
                    await send(message)
                    return
                if message["type"] != "http.response.body":
                    await send(message)
                    return
                buffered.append(message.get("body", b""))
                size[0] += len(buffered[-1])
                if message.get("more_body", False) and size[0] <= MAX_HASHED_HTML:
                    return
                start = held[0]
                body = b"".join(buffered)
                self._add(start, policy, self._html_csp(scope, start, body, policy))
                await send(start)
                await send({"type": "http.response.body", "body": body,
                            "more_body": message.get("more_body", False)})
                held.clear()
                return
            if message["type"] != "http.response.start":
                await send(message)
                return
            content_type = _response_header(message, b"content-type") or ""
            if int(message["status"]) == 304:
                # a 304 carries no content type; the cached response keeps its own CSP (for a
                # page: with its script hashes), which a header here would replace
                self._add(message, policy, None)
                await send(message)
                return
            if content_type.startswith("text/html"):
                if head_only:  # no body to hash, nothing rendered
                    self._add(message, policy, page_csp(policy, script_hashes=[], host=None).encode())
                    await send(message)
                    return
                held.append(message)
                return
            self._add(message, policy, policy.other_csp)
            await send(message)

        await self.app(scope, receive, send_wrapper)
        if held:  # the app ended without a final body message
            start = held[0]
            self._add(start, policy, self._html_csp(scope, start, b"".join(buffered), policy))
            await send(start)
            await send({"type": "http.response.body", "body": b"".join(buffered)})

    @staticmethod
    def _html_csp(scope: Scope, start: Message, body: bytes, policy: _Policy) -> bytes:
        encoding = (_response_header(start, b"content-encoding") or "identity").strip().lower()
        html = b""
        if len(body) <= MAX_HASHED_HTML:
            if encoding == "gzip":
                try:
                    html = zlib.decompress(body, 16 + zlib.MAX_WBITS)
                except zlib.error:
                    html = b""
            elif encoding == "identity":
                html = body
        csp = page_csp(policy, script_hashes=inline_script_hashes(html), host=_header(scope, b"host"))
        return csp.encode()

    @staticmethod
    def _add(message: Message, policy: _Policy, csp: bytes | None) -> None:
        headers = list(message.get("headers") or [])
        present = {key.lower() for key, _ in headers}
        extra = list(policy.common)
        if csp is not None:
            extra.append((b"content-security-policy", csp))
        headers.extend((k, v) for k, v in extra if k not in present)
        if b"access-control-allow-credentials" in present and b"access-control-allow-origin" not in present:
            # CORSMiddleware says "credentials: true" even to origins it refused: credentials
            # are for our origins only
            headers = [(k, v) for k, v in headers if k.lower() != b"access-control-allow-credentials"]
        message["headers"] = merge_vary(headers)

    async def _refuse(self, scope: Scope, send: Send, policy: _Policy) -> None:
        if scope["type"] == "websocket":
            # closing before accepting makes the server answer the handshake with 403
            await send({"type": "websocket.close", "code": 1008})
            return
        body = b"Origin not allowed"
        start: Message = {"type": "http.response.start", "status": 403,
                          "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                      (b"content-length", str(len(body)).encode())]}
        self._add(start, policy, policy.other_csp)
        await send(start)
        await send({"type": "http.response.body", "body": body})


def merge_vary(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """One Vary header naming each field once (Reflex's CORS layers and ours each add Origin)."""
    fields: list[bytes] = []
    for key, value in headers:
        if key.lower() == b"vary":
            fields += [f for f in (part.strip() for part in value.split(b",")) if f and f.lower() not in
                       {x.lower() for x in fields}]
    if not fields:
        return headers
    rest = [(k, v) for k, v in headers if k.lower() != b"vary"]
    return [*rest, (b"vary", b", ".join(fields))]


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(MAX_HASHED_HTML + 1)
    except OSError:
        return b""


def _response_header(message: Message, name: bytes) -> str | None:
    for key, value in message.get("headers") or ():
        if key.lower() == name:
            return value.decode("latin-1")
    return None
