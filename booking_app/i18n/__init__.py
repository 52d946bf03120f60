"""Translations: gettext catalogs (`locales/<lang>/LC_MESSAGES/messages.po`) managed with
Babel (`make i18n-extract i18n-update i18n-compile`).

- `translate(msgid, locale, **params)` returns the message in `locale` with `{params}` filled.
- `N_(msgid)` only marks a string for extraction (translated later, at the edge).
- `Np_(singular, plural, count)` marks a message whose words follow a number: the
  parameter `count` picks the catalog's plural form for the language ("1 seat", "2
  seats"; Arabic has six forms). It is a `Plural` (a str: the singular), translated by
  `translate` like any msgid.
- `negotiate_locale(user_locale, accept_language)` picks the user's setting, else the
  browser's Accept-Language, else DEFAULT_LOCALE. A language shipped for one region only
  takes every region of its language (`pt`, `pt-PT`, `pt-BR` → `pt_BR`).
- `language_tag(locale)` is the BCP 47 tag for HTML and HTTP (`pt_BR` → `pt-BR`).

Adding a language: docs/i18n.md.
"""
from __future__ import annotations

import functools
import gettext
import pathlib
from collections.abc import Callable
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from booking_app.config import RTL_LOCALES, SUPPORTED_LOCALES, get_settings

LOCALES_DIR = pathlib.Path(__file__).parent / "locales"
DOMAIN = "messages"

LANGUAGE_NAMES = {
    "en": "English",
    "es": "Español",
    "fr": "Français",
    "de": "Deutsch",
    "ar": "العربية",
    "it": "Italiano",
    "pt_BR": "Português (Brasil)",
    "nl": "Nederlands",
    "pl": "Polski",
    "tr": "Türkçe",
}

# language → its supported locale ("pt" → "pt_BR"; the first one listed when there are several)
_BY_LANGUAGE: dict[str, str] = {}
for _code in SUPPORTED_LOCALES:
    _BY_LANGUAGE.setdefault(_code.split("_")[0], _code)


def N_(msgid: str) -> str:
    """Mark a string for extraction without translating it."""
    return msgid


class Plural(str):
    """A msgid with a plural: the str value is the singular (English "1 seat"), `plural` the
    other English form, `count` the name of the parameter holding the number."""

    plural: str
    count: str

    def __new__(cls, singular: str, plural: str, count: str) -> "Plural":
        obj = super().__new__(cls, singular)
        obj.plural, obj.count = plural, count
        return obj

    def __reduce__(self):  # (copies and pickles keep the plural)
        return Plural, (str(self), self.plural, self.count)


def Np_(singular: str, plural: str, count: str) -> Plural:  # noqa: N802 - gettext's naming
    """Mark a message with a plural for extraction (`-k Np_:1,2`) without translating it."""
    return Plural(singular, plural, count)


@functools.lru_cache(maxsize=None)
def _load(locale: str) -> tuple[dict[str, str], dict[tuple[str, str], tuple[str, ...]], Callable[[int], int]]:
    """One locale's catalog (compiled .mo when fresh, else the .po): msgid → translation,
    (singular, plural) → its forms, and the language's plural rule (number → form index,
    the catalog's Plural-Forms)."""
    base = LOCALES_DIR / locale / "LC_MESSAGES"
    po, mo = base / f"{DOMAIN}.po", base / f"{DOMAIN}.mo"
    if mo.exists() and (not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as fh:
            cat = read_mo(fh)
    elif po.exists():
        with po.open("rb") as fh:
            cat = read_po(fh, locale=locale)
    else:
        return {}, {}, _english_rule
    out: dict[str, str] = {}
    plurals: dict[tuple[str, str], tuple[str, ...]] = {}
    for message in cat:
        if not message.id or message.fuzzy:
            continue
        if isinstance(message.id, (list, tuple)):  # (a list when read from a .mo)
            forms = tuple(message.string or ())
            if forms and all(forms):
                plurals[(message.id[0], message.id[1])] = forms
        elif message.string:
            out[message.id] = message.string
    try:
        rule = gettext.c2py(cat.plural_expr)
    except (ValueError, SyntaxError):  # pragma: no cover - a broken header
        rule = _english_rule
    return out, plurals, rule


def _english_rule(n: int) -> int:
    return 0 if n == 1 else 1


def catalog(locale: str) -> dict[str, str]:
    """msgid → translation for one locale."""
    return _load(locale)[0]


def reload_catalogs() -> None:
    _load.cache_clear()


def normalize_locale(value: str | None) -> str | None:
    """The supported locale for a language tag: 'es-MX' → 'es', 'pt-BR' / 'pt' / 'pt-PT' →
    'pt_BR' (the exact region when it is shipped, else the language's locale); unknown → None."""
    if not value:
        return None
    parts = value.strip().replace("_", "-").split("-")
    lang = parts[0].lower()
    if len(parts) > 1:
        exact = f"{lang}_{parts[1].upper()}"
        if exact in SUPPORTED_LOCALES:
            return exact
    return _BY_LANGUAGE.get(lang)


def language_tag(locale: str | None) -> str:
    """The BCP 47 tag of a locale for <html lang> and Content-Language ('pt_BR' → 'pt-BR')."""
    return (normalize_locale(locale) or get_settings().default_locale).replace("_", "-")


def parse_accept_language(header: str | None) -> list[str]:
    """Languages from an Accept-Language header, best first."""
    if not header:
        return []
    weighted: list[tuple[float, int, str]] = []
    for i, part in enumerate(header.split(",")):
        piece = part.strip()
        if not piece:
            continue
        lang, _, q = piece.partition(";")
        weight = 1.0
        if q.strip().startswith("q="):
            try:
                weight = float(q.strip()[2:])
            except ValueError:
                weight = 0.0
        weighted.append((-weight, i, lang.strip()))
    return [lang for w, _, lang in sorted(weighted) if w < 0]


def negotiate_locale(user_locale: str | None = None, accept_language: str | None = None) -> str:
    chosen = normalize_locale(user_locale)
    if chosen:
        return chosen
    for lang in parse_accept_language(accept_language):
        chosen = normalize_locale(lang)
        if chosen:
            return chosen
    return get_settings().default_locale


def page_locale(choice: str | None, user_locale: str | None = None, accept_language: str | None = None) -> str:
    """The language a page is shown in: the visitor's explicit choice (the language cookie),
    else the signed-in user's setting, else the browser's Accept-Language, else the default.
    The page's state (ui/state/base.py) and its server-rendered preview (ui/previews.py) agree."""
    return normalize_locale(choice) or negotiate_locale(user_locale, accept_language)


def translate(msgid: str, locale: str | None = None, /, **params: Any) -> str:
    loc = normalize_locale(locale) or get_settings().default_locale
    if isinstance(msgid, Plural):
        english = _plural_text(msgid, "en", params)
        text = _plural_text(msgid, loc, params) if loc != "en" else english
    else:
        english = msgid
        text = catalog(loc).get(msgid, msgid) if loc != "en" else catalog("en").get(msgid, msgid)
    if params:
        try:
            return text.format(**params)
        except (KeyError, IndexError, ValueError):
            return english.format(**params)
    return text


def _plural_text(msgid: Plural, locale: str, params: dict[str, Any]) -> str:
    """The form of a plural message for the number in `params[msgid.count]` (the English
    forms where the catalog has none; the plural without a whole number)."""
    n = params.get(msgid.count)
    _messages, plurals, rule = _load(locale)
    forms = plurals.get((str(msgid), msgid.plural))
    if isinstance(n, bool) or not isinstance(n, int):
        return forms[-1] if forms else msgid.plural
    if forms:
        index = rule(abs(n))
        if 0 <= index < len(forms):
            return forms[index]
    return str(msgid) if abs(n) == 1 else msgid.plural


def is_rtl(locale: str | None) -> bool:
    return (normalize_locale(locale) or "en") in RTL_LOCALES


def text_direction(locale: str | None) -> str:
    return "rtl" if is_rtl(locale) else "ltr"


def babel_locale(locale: str | None) -> Locale:
    try:
        return Locale.parse(normalize_locale(locale) or get_settings().default_locale)
    except UnknownLocaleError:  # pragma: no cover - supported locales all exist
        return Locale.parse("en")


@functools.lru_cache(maxsize=None)
def known_msgids() -> tuple[str, ...]:
    """Every msgid of the extracted template (messages.pot), else of the English catalog."""
    for path in (LOCALES_DIR.parent / "messages.pot", LOCALES_DIR / "en" / "LC_MESSAGES" / f"{DOMAIN}.po"):
        if path.exists():
            with path.open("rb") as fh:
                cat = read_po(fh)
            return tuple(m.id for m in cat if m.id and isinstance(m.id, str))
    return ()


def messages_for(locale: str | None, extra: "frozenset[str] | set[str] | tuple[str, ...]" = ()) -> dict[str, str]:
    """msgid → text in `locale` for every known msgid (untranslated ones fall back to English)."""
    loc = normalize_locale(locale) or get_settings().default_locale
    translations = catalog(loc)
    english = catalog("en")
    out: dict[str, str] = {}
    for msgid in (*known_msgids(), *extra):
        out[msgid] = translations.get(msgid) or english.get(msgid) or msgid
    return out
