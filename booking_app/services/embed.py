"""The embeddable booking widget's rules (issue 25, point 3; docs/embed.md).

- Which websites may frame a provider's widget: the provider's own allow-list (`origins_of`,
  `set_origins`, table `embed_origins`) plus EMBED_ALLOWED_ORIGINS (every provider's widget).
  `frame_ancestors` is what the security middleware (api/security.py) puts into the /embed
  pages' `frame-ancestors`; it is cached for CACHE_SECONDS per process (a change made in this
  process applies at once, in the others within that time).
- What an origin is (`normalise_origin`): https, a host and an optional port; plain http only
  for localhost / 127.0.0.1 / [::1] outside production; no path, query, credentials or
  wildcard. Anything else → InvalidInput (422).
- The widget's options (`parse_accent`, `parse_lang`) and its address and snippet
  (`widget_url`, `snippet`), the one home of the parameter names the loader (assets/embed.js),
  the pages and the settings page share.
"""
from __future__ import annotations

import html
import re
import threading
import time
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import delete
from sqlmodel import select

from booking_app import db
from booking_app.config import SUPPORTED_LOCALES, get_settings, origin_of
from booking_app.i18n import N_
from booking_app.models import Bookable, EmbedOrigin, User
from booking_app.services import audit
from booking_app.services.actors import Actor, require_staff
from booking_app.services.errors import Forbidden, InvalidInput, NotFound
from booking_app.services.validation import parse_int

MAX_ORIGINS = 20
MAX_ORIGIN_LENGTH = 300
CACHE_SECONDS = 5.0
#: hosts that may be framed over plain http outside production (a developer's machine, tests)
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
#: the widget's pages (ui/paths.py registers them under these; the middleware matches the prefix)
EMBED_PREFIX = "/embed"
#: the loader script (assets/embed.js), served from the site's root
LOADER_PATH = "/embed.js"

NOT_AN_ORIGIN = N_("Enter a website address like https://shop.example.com (https, a host name and an optional "
                   "port; no path).")
HTTPS_ONLY = N_("The address must start with https:// (http:// only for localhost while testing).")
TOO_MANY = N_("You can allow at most {max} websites.")
NOT_A_COLOUR = N_("Enter a colour as # and six hexadecimal digits, like #1a73e8.")
NOT_A_LANGUAGE = N_("This language is not available.")
PROVIDERS_ONLY = N_("Only providers and admins can embed the booking widget.")
NOT_A_PROVIDER = N_("This provider does not exist.")

_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
_lock = threading.Lock()
_cache: dict[int, tuple[float, tuple[str, ...]]] = {}
_bookable_provider: dict[int, tuple[float, int | None]] = {}


# ---- input rules ------------------------------------------------------------------------

def normalise_origin(value: Any) -> str:
    """`scheme://host[:port]` as browsers write an Origin (lower case, no default port);
    InvalidInput(field="origins") for anything else (see the module docstring)."""
    text = value.strip(" ").rstrip("/") if isinstance(value, str) else ""
    if not text or len(text) > MAX_ORIGIN_LENGTH or not text.isascii() or not text.isprintable() or "*" in text:
        raise InvalidInput(NOT_AN_ORIGIN, field="origins")
    origin = origin_of(text)
    if origin is None or "_" in origin:
        raise InvalidInput(NOT_AN_ORIGIN, field="origins")
    scheme, authority = origin.split("://", 1)
    host = authority.rsplit(":", 1)[0] if not authority.endswith("]") else authority
    if scheme == "http" and (host not in LOCAL_HOSTS or get_settings().environment == "production"):
        raise InvalidInput(HTTPS_ONLY, field="origins")
    return origin


def normalise_origins(values: Any) -> list[str]:
    """A list of origins, each normalised, duplicates dropped (first kept), at most MAX_ORIGINS."""
    if not isinstance(values, (list, tuple)):
        raise InvalidInput(NOT_AN_ORIGIN, field="origins")
    if len(values) > MAX_ORIGINS * 5:
        raise InvalidInput(TOO_MANY, field="origins", max=MAX_ORIGINS)
    out = list(dict.fromkeys(normalise_origin(v) for v in values))
    if len(out) > MAX_ORIGINS:
        raise InvalidInput(TOO_MANY, field="origins", max=MAX_ORIGINS)
    return out


def parse_accent(value: Any) -> str:
    """The widget's accent colour: '' (the site's own) or '#rrggbb' in lower case."""
    if value in (None, ""):
        return ""
    if not isinstance(value, str) or not _COLOUR.match(value.strip()):
        raise InvalidInput(NOT_A_COLOUR, field="accent")
    return value.strip().lower()


def parse_lang(value: Any) -> str:
    """The widget's language: '' (the visitor's) or one of the supported locales (pt-BR → pt_BR)."""
    if value in (None, ""):
        return ""
    text = value.strip().replace("-", "_") if isinstance(value, str) else ""
    for locale in SUPPORTED_LOCALES:
        if text.lower() == locale.lower():
            return locale
    raise InvalidInput(NOT_A_LANGUAGE, field="lang")


# ---- the per-provider allow-list ---------------------------------------------------------

def _target_provider(actor: Actor, provider_id: Any) -> int:
    """Whose list: the actor's own (default), or any provider's for an admin."""
    own = require_staff(actor, PROVIDERS_ONLY)
    if provider_id in (None, ""):
        return own
    target = parse_int(provider_id, field="provider_id", lo=1, hi=2**31 - 1)
    if target != actor.id and not actor.is_admin:
        raise Forbidden()
    return target


def _require_provider_row(s: Any, provider_id: int) -> None:
    user = s.get(User, provider_id)
    if user is None or user.role not in ("provider", "admin"):
        raise NotFound(NOT_A_PROVIDER)


def origins_of(*, actor: Actor, provider_id: Any = None) -> list[str]:
    """The provider's own allowed origins (the actor's, or for an admin any provider's)."""
    target = _target_provider(actor, provider_id)
    with db.read_session() as s:
        _require_provider_row(s, target)
        return _stored(s, target)


def _stored(s: Any, provider_id: int) -> list[str]:
    rows = s.exec(select(EmbedOrigin.origin).where(EmbedOrigin.provider_id == provider_id)
                  .order_by(EmbedOrigin.id)).all()
    return list(rows)


def set_origins(*, actor: Actor, origins: Any, provider_id: Any = None) -> list[str]:
    """Replace the provider's allowed origins (validated as a whole: nothing is written when one
    is refused); audited. Returns the stored list."""
    target = _target_provider(actor, provider_id)
    clean = normalise_origins(origins)
    with db.unit_of_work() as s:
        _require_provider_row(s, target)
        before = _stored(s, target)
        if before != clean:
            s.exec(delete(EmbedOrigin).where(EmbedOrigin.provider_id == target))  # type: ignore[call-overload]
            s.add_all([EmbedOrigin(provider_id=target, origin=o) for o in clean])
            audit.record(s, actor_id=actor.id, action="embed.origins_changed", entity="user", entity_id=target,
                         data={"before": before, "after": clean})
    with _lock:
        _cache.pop(target, None)
    return clean


# ---- what the middleware asks ------------------------------------------------------------

def frame_ancestors(*, provider_id: int | None = None, bookable_id: int | None = None) -> tuple[str, ...]:
    """Origins that may frame the widget of a provider (or of a bookable's provider):
    EMBED_ALLOWED_ORIGINS and the provider's list. An unknown bookable or provider: the
    global list only. Cached per process for CACHE_SECONDS (reads one small index)."""
    settings_origins = get_settings().embed_origins
    if provider_id is None and bookable_id is not None:
        provider_id = _provider_of(bookable_id)
    if provider_id is None:
        return settings_origins
    now = time.monotonic()
    with _lock:
        hit = _cache.get(provider_id)
    if hit is None or hit[0] <= now:
        with db.read_session() as s:
            own = tuple(_stored(s, provider_id))
        hit = (now + CACHE_SECONDS, own)
        with _lock:
            if len(_cache) > 10_000:
                _cache.clear()
            _cache[provider_id] = hit
    return tuple(dict.fromkeys(settings_origins + hit[1]))


def _provider_of(bookable_id: int) -> int | None:
    now = time.monotonic()
    with _lock:
        hit = _bookable_provider.get(bookable_id)
    if hit is None or hit[0] <= now:
        with db.read_session() as s:
            provider = s.exec(select(Bookable.provider_id).where(Bookable.id == bookable_id)).first()
        hit = (now + CACHE_SECONDS, provider)
        with _lock:
            if len(_bookable_provider) > 10_000:
                _bookable_provider.clear()
            _bookable_provider[bookable_id] = hit
    return hit[1]


def clear_cache() -> None:
    """Forget cached lists (tests; a provider's change clears its own entry itself)."""
    with _lock:
        _cache.clear()
        _bookable_provider.clear()


# ---- the widget's address and snippet ----------------------------------------------------

def widget_query(*, service_id: Any = None, provider_id: Any = None, accent: Any = "", lang: Any = "") -> dict[str, str]:
    """The widget's parameters (validated): `id` (one bookable) or `provider` (a provider's
    bookables), `accent`, `lang`. Exactly one of service_id / provider_id."""
    if (service_id in (None, "")) == (provider_id in (None, "")):
        raise InvalidInput(N_("Pick one service or a provider."), field="service_id")
    query: dict[str, str] = {}
    if service_id not in (None, ""):
        query["id"] = str(parse_int(service_id, field="service_id", lo=1, hi=2**31 - 1))
    else:
        query["provider"] = str(parse_int(provider_id, field="provider_id", lo=1, hi=2**31 - 1))
    if colour := parse_accent(accent):
        query["accent"] = colour
    if locale := parse_lang(lang):
        query["lang"] = locale
    return query


def widget_url(*, base: str | None = None, **options: Any) -> str:
    """The widget's page address (a plain iframe's `src`)."""
    root = (base or get_settings().public_url).rstrip("/")
    return f"{root}{EMBED_PREFIX}?{urlencode(widget_query(**options))}"


def snippet(*, kind: str = "script", base: str | None = None, title: str = "Booking", **options: Any) -> str:
    """The HTML a provider pastes into their website: the loader script and its placeholder
    (`kind="script"`: resizes to its content), or a plain iframe of a fixed height."""
    root = (base or get_settings().public_url).rstrip("/")
    query = widget_query(**options)
    if kind == "iframe":
        src = html.escape(f"{root}{EMBED_PREFIX}?{urlencode(query)}")
        return (f'<iframe src="{src}" title="{html.escape(title)}" style="width:100%;height:720px;border:0" '
                f'loading="lazy"></iframe>')
    names = {"id": "data-service", "provider": "data-provider", "accent": "data-accent", "lang": "data-lang"}
    attrs = " ".join(f'{names[k]}="{html.escape(v)}"' for k, v in query.items())
    return (f'<div class="booking-widget" {attrs}></div>\n'
            f'<script src="{html.escape(root + LOADER_PATH)}" async></script>')
