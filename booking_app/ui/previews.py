"""Server-rendered previews: a page's main content in the HTML the server sends, before any
script runs (issue 22, fast on a phone).

A page puts an empty `slot(name)` where its content will be while its state is on the way;
for a full page load, api/prerender.py fills that slot with the HTML a filler of FILLERS
builds from the request. React leaves a slot's HTML alone when it takes over the page (an
element whose only content is `dangerouslySetInnerHTML`, unchanged), and the page's real
content replaces it, in the same place and at the same size, once the state arrived. After a
client-side page change the slot stays empty and the page's placeholders show instead (CSS:
`.prerender-slot:not(:empty) + *`).

The bookable page's preview is its left column: kind, name, description, facts, price and
policy, the same markup as ui/pages/customer.bookable renders (Radix Themes classes); the
results page's is its first result cards (ui/pages/search.result_card), found and worded by
the functions its state uses. Both in the language the page will be shown in
(i18n.page_locale), for the caller the page would show them to (the services' visibility).
Every text is escaped.
"""
from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Protocol

import reflex as rx

from booking_app.config import get_settings
from booking_app.i18n import page_locale, text_direction, translate
from booking_app.services import auth, browser_sessions, catalog
from booking_app.services.actors import Actor
from booking_app.services.errors import ServiceError
from booking_app.ui import paths
from booking_app.ui.state.base import LOCALE_COOKIE
from booking_app.ui.state.booking_common import bookable_dict, bookable_summary
from booking_app.ui.state import search as search_state
from booking_app.ui.state.fmt import int_param


class PageRequest(Protocol):
    """What a filler reads of the request (api/prerender.PageRequest)."""

    query: Mapping[str, str]
    cookie: str
    accept_language: str


def slot(name: str) -> rx.Component:
    """An empty element the server may fill with the page's preview named `name`."""
    return rx.html("", class_name="prerender-slot", width="100%",
                   custom_attrs={"data-prerender": name, "suppressHydrationWarning": True})


def cookie_value(header: str, name: str) -> str:
    for part in (header or "").split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value.strip().strip('"')[:40]
    return ""


def visitor(request: PageRequest) -> tuple[Actor | None, str]:
    """The caller (None: a guest) and the language their page is shown in, by the rules of
    the page's own state (AppState._actor, AppState.init_page)."""
    actor = None
    token = browser_sessions.token_from_cookie_header(request.cookie)
    if token:
        try:
            actor = auth.authenticate(token).actor
        except ServiceError:
            actor = None
    locale = page_locale(cookie_value(request.cookie, LOCALE_COOKIE), actor.locale if actor else None,
                         request.accept_language)
    return actor, locale


# ---- the markup of ui/pages/customer.bookable (Radix Themes classes, lucide icons) --------

_ICONS = {
    "arrow_left": '<path d="m12 19-7-7 7-7"></path><path d="M19 12H5"></path>',
    "clock": '<circle cx="12" cy="12" r="10"></circle><path d="M12 6v6l4 2"></path>',
    "map_pin": '<path d="M20 10c0 4.993-5.539 10.193-7.399 11.799a1 1 0 0 1-1.202 0C9.539 20.193 4 14.993 4 10a8 '
               '8 0 0 1 16 0"></path><circle cx="12" cy="10" r="3"></circle>',
    "user": '<path d="M19 21v-2a4 4 0 0 0-4-4H9a4 4 0 0 0-4 4v2"></path><circle cx="12" cy="7" r="4"></circle>',
    "info": '<circle cx="12" cy="12" r="10"></circle><path d="M12 16v-4"></path><path d="M12 8h.01"></path>',
}


def _icon(name: str, size: int, extra: str = "") -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" viewBox="0 0 24 24" '
            'fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" '
            f'class="lucide lucide-{name.replace("_", "-")}"{extra} aria-hidden="true">{_ICONS[name]}</svg>')


def _fact(icon: str, text: str) -> str:
    return ('<div class="rt-Flex rt-r-fd-row rt-r-ai-center rt-r-gap-2 rx-Stack">'
            + _icon(icon, 16, ' style="color:var(--gray-10)"')
            + f'<p class="rt-Text rt-r-size-2">{html.escape(text)}</p></div>')


def bookable_html(info: Mapping[str, str], bookable_id: int, locale: str) -> str:
    """The bookable page's left column for `info` (booking_common.bookable_summary)."""
    e = html.escape
    facts = [_fact("clock", info["duration"])]
    if info["location"]:
        facts.append(_fact("map_pin", info["location"]))
    if info["provider"]:
        facts.append(_fact("user", info["provider"]))
    link = 'class="rt-Text rt-reset rt-Link rt-r-size-2 rt-underline-auto"'
    return (
        f'<div class="rt-Flex rt-r-fd-column rt-r-ai-start rt-r-gap-3 rx-Stack" style="width:100%" '
        f'lang="{e(locale.replace("_", "-"))}" dir="{text_direction(locale)}">'
        f'<a {link} href="{paths.SEARCH}"><div class="rt-Flex rt-r-fd-row rt-r-ai-center rt-r-gap-1 rx-Stack">'
        + _icon("arrow_left", 16).replace('class="lucide lucide-arrow-left"', 'class="lucide lucide-arrow-left flip-rtl"')
        + f'{e(translate("Back to search", locale))}</div></a>'
        f'<span class="rt-reset rt-Badge rt-r-size-2 rt-variant-soft">{e(info["kind"])}</span>'
        f'<h1 dir="auto" class="rt-Heading rt-r-size-7">{e(info["name"])}</h1>'
        f'<p dir="auto" class="rt-Text rt-r-size-3">{e(info["description"])}</p>'
        '<div class="rt-Flex rt-r-fd-row rt-r-ai-start rt-r-fw-wrap rt-r-gap-4 rx-Stack">' + "".join(facts) + "</div>"
        '<div class="rt-Flex rt-r-fd-row rt-r-ai-baseline rt-r-gap-2 rx-Stack">'
        f'<p class="rt-Text rt-r-size-6 rt-r-weight-bold">{e(info["price"])}</p>'
        f'<p data-accent-color="gray" class="rt-Text rt-r-size-2">{e(info["per_person"])}</p></div>'
        '<div data-accent-color="blue" class="rt-CalloutRoot rt-r-size-2 rt-variant-surface" style="width:100%">'
        f'<div class="rt-CalloutIcon">{_icon("info", 24)}</div>'
        f'<p class="rt-Text rt-r-size-2 rt-CalloutText">{e(info["policy"])}</p></div>'
        f'<a {link} href="{paths.WAITLIST}?service={bookable_id}">{e(translate("Full? Join the waitlist", locale))}</a>'
        "</div>"
    )


def bookable(request: PageRequest) -> dict[str, str]:
    """The bookable page (`?id=N`): its left column, or nothing when the page would show
    "not found" (no such bookable, or not for this caller)."""
    bookable_id = int_param(request.query.get("id"))
    if bookable_id is None:
        return {}
    actor, locale = visitor(request)
    try:
        view = catalog.get_bookable(bookable_id=bookable_id, actor=actor or Actor.guest(locale=locale))
    except ServiceError:
        return {}
    return {"bookable": bookable_html(bookable_summary(bookable_dict(view), locale), view.id, locale)}


# ---- the results page: ui/pages/search.result_card's markup -----------------------------

#: result cards in the search page's preview: more than a first screen holds at any width
#: (the rest of the results come with the page's state, below the fold)
SEARCH_PREVIEW_CARDS = 12


def _card_html(card: Mapping[str, str]) -> str:
    e = html.escape
    row = '<div class="rt-Flex rt-r-fd-row rt-r-ai-center rt-r-gap-1 rx-Stack">'
    facts = row + _icon("clock", 14) + f'<p class="rt-Text rt-r-size-2">{e(card["duration"])}</p></div>'
    if card["location"]:
        facts += row + _icon("map_pin", 14) + f'<p class="rt-Text rt-r-size-2">{e(card["location"])}</p></div>'
    next_free = (f'<p class="rt-Text rt-r-size-2 rt-r-weight-medium" style="color:var(--grass-11)">'
                 f'{e(card["next_free"])}</p>' if card["next_free"] else "")
    return (
        f'<a class="rt-Text rt-reset rt-Link rt-underline-none" style="color:inherit;width:100%" href="{e(card["href"])}">'
        '<div class="rt-reset rt-BaseCard rt-Card rt-r-size-1 rt-variant-surface hover-card" style="width:100%;height:100%">'
        '<div class="rt-Flex rt-r-fd-column rt-r-ai-start rt-r-gap-2 rx-Stack" style="width:100%">'
        '<div class="rt-Flex rt-r-fd-row rt-r-ai-center rt-r-gap-3 rx-Stack" style="width:100%">'
        f'<span class="rt-reset rt-Badge rt-r-size-2 rt-variant-soft">{e(card["kind"])}</span>'
        '<div class="rt-Flex" style="flex:1;justify-self:stretch;align-self:stretch"></div>'
        f'<p class="rt-Text rt-r-size-4 rt-r-weight-bold">{e(card["price"])}</p></div>'
        f'<h2 dir="auto" class="rt-Heading rt-r-size-4">{e(card["name"])}</h2>'
        f'<p data-accent-color="gray" dir="auto" class="rt-Text rt-r-size-2 clamp-2">{e(card["description"])}</p>'
        f'<div class="rt-Flex rt-r-fd-row rt-r-ai-start rt-r-fw-wrap rt-r-gap-4 rx-Stack">{facts}</div>'
        f"{next_free}</div></div></a>"
    )


def search_html(cards: list[Mapping[str, str]], locale: str) -> str:
    """The results page's grid of result cards."""
    return (f'<div class="rt-Grid rt-r-gtc-1 sm:rt-r-gtc-2 md:rt-r-gtc-3 rt-r-gap-4" style="width:100%" '
            f'lang="{html.escape(locale.replace("_", "-"))}" dir="{text_direction(locale)}">'
            + "".join(_card_html(card) for card in cards) + "</div>")


def search(request: PageRequest) -> dict[str, str]:
    """The results page: its first result cards, or nothing when the page shows no results
    (nothing found, or a search the catalog refuses: the page says why)."""
    actor, locale = visitor(request)
    guest = actor or Actor.guest(locale=locale)
    try:
        items, _ = search_state.find(guest, search_state.search_query(request.query), limit=SEARCH_PREVIEW_CARDS)
    except ServiceError:
        return {}
    if not items:
        return {}
    tz = actor.timezone if actor and actor.timezone else get_settings().default_timezone
    return {"search": search_html([search_state.result_card(item, locale, tz) for item in items], locale)}


#: page path → its filler (api/prerender.PrerenderMiddleware)
FILLERS = {paths.BOOKABLE: bookable, paths.SEARCH: search}
