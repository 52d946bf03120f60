"""Home search box and the search results page (catalog service)."""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from urllib.parse import urlencode

import reflex as rx

from booking_app.i18n import Np_, translate
from booking_app.services import availability, catalog
from booking_app.services.errors import ServiceError
from booking_app.services.validation import zone
from booking_app.ui import paths
from booking_app.ui.state import fmt
from booking_app.ui.state.base import AppState

KINDS = ("room", "service", "event")
RESULTS_SHOWN = 50


def _clean(value: object, max_len: int = 200) -> str:
    return str(value or "").strip()[:max_len]


class SearchState(AppState):
    q: str = ""
    kind: str = ""
    location: str = ""
    date: str = ""
    items: list[dict] = []
    total: int = 0
    error: str = ""
    loaded: bool = False

    @rx.event
    def submit_home(self, form: dict):
        query = {"q": _clean(form.get("q"))}
        return rx.redirect(f"{paths.SEARCH}?{urlencode({k: v for k, v in query.items() if v})}".rstrip("?"))

    @rx.event
    def apply_filters(self, form: dict):
        query = {
            "q": _clean(form.get("q")),
            "kind": _clean(form.get("kind")) if form.get("kind") in KINDS else "",
            "location": _clean(form.get("location")),
            "date": _clean(form.get("date"), 10),
        }
        qs = urlencode({k: v for k, v in query.items() if v})
        return rx.redirect(f"{paths.SEARCH}?{qs}" if qs else paths.SEARCH)

    @rx.event
    def load(self):
        query = search_query(self.router.url.query_parameters)
        self.q, self.kind, self.location, self.date = query["q"], query["kind"], query["location"], query["date"]
        self.error = ""
        try:
            self.items, self.total = find(self._actor(), query)
        except ServiceError as exc:
            self.items, self.total = [], 0
            self.error = self._error_text(exc)
            self.loaded = True
            return
        self.loaded = True

    @rx.var
    def cards(self) -> list[dict[str, str]]:
        return [result_card(item, self.locale, self._view_tz()) for item in self.items]

    @rx.var
    def filters_open(self) -> bool:
        return bool(self.kind or self.location or self.date)

    @rx.var
    def summary(self) -> str:
        if not self.loaded or self.error:
            return ""
        return translate(Np_("{count} result", "{count} results", "count"), self.locale, count=self.total)


def search_query(params: Mapping[str, str]) -> dict[str, str]:
    """The search of a results page's URL (?q=&kind=&location=&date=), cleaned."""
    return {"q": _clean(params.get("q")), "kind": params.get("kind", "") if params.get("kind") in KINDS else "",
            "location": _clean(params.get("location")), "date": _clean(params.get("date"), 10)}


def find(actor, query: Mapping[str, str], limit: int = RESULTS_SHOWN) -> tuple[list[dict], int]:
    """The results page's bookables for `query` (search_query) as plain values, and how many
    match; ServiceError for a query the catalog refuses. The page's state and its
    server-rendered preview (ui/previews.py) show the same."""
    views, total = catalog.search_bookables(
        actor=actor, q=query["q"] or None, kind=query["kind"] or None,
        location=query["location"] or None, date=query["date"] or None, limit=limit,
        bookable_only=True,  # a bookable without hours or sessions has nothing to offer yet
    )
    items = [
        {"id": v.id, "name": v.name, "kind": v.kind, "location": v.location,
         "description": v.description, "duration_minutes": v.duration_minutes,
         "price_cents": v.price_cents, "currency": v.currency, "capacity": v.capacity,
         "next_free": _next_free(v, actor)}
        for v in views
    ]
    return items, total


def result_card(item: Mapping, locale: str, tz: str) -> dict[str, str]:
    """A result card's texts in `locale`, its next free time in `tz`."""
    return {
        "id": str(item["id"]),
        "href": f"{paths.BOOKABLE}?id={item['id']}",
        "name": item["name"],
        "kind": fmt.kind_label(item["kind"], locale),
        "kind_code": item["kind"],
        "location": item["location"],
        "description": item["description"][:160],
        "duration": fmt.duration(item["duration_minutes"], locale),
        "price": fmt.money(item["price_cents"], item["currency"], locale),
        "next_free": (translate("Next free: {when}", locale, when=fmt.when_short(
            dt.datetime.fromisoformat(item["next_free"]), tz, locale)) if item.get("next_free") else ""),
    }


def _next_free(view: catalog.BookableView, actor) -> str:
    """ISO start of the next free slot within two weeks (in the bookable's own days), or ''."""
    today = dt.datetime.now(zone(view.timezone)).date()
    try:
        found = availability.slots(bookable_id=view.id, date_from=today, date_to=today + dt.timedelta(days=13),
                                   actor=actor)
    except ServiceError:
        return ""
    return found[0].start.isoformat() if found else ""
