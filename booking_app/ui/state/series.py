"""Recurring series in the customer pages (issue 24, point 3): the "Repeat" part of the
review form (rule, preview of each date free or taken, booking the series when the form is
confirmed) and the series card of a booking's page (its dates; cancel this one and the
following, or all). Every rule is services/series.py's; nothing is re-derived here."""
from __future__ import annotations

import asyncio
from typing import Any

import reflex as rx

from booking_app.i18n import N_, translate
from booking_app.services import series, series_payments
from booking_app.services.actors import Actor
from booking_app.services.errors import ServiceError
from booking_app.services.manage_links import booking_manage_token
from booking_app.ui.state import fmt
from booking_app.ui.state.base import AppState
from booking_app.ui.state.booking_common import booking_url, parse_iso
from booking_app.ui.state.staff import STATUS_LABELS

FREE, TAKEN = N_("Available"), N_("Taken")


class SeriesFormState(AppState):
    """The review form's "Repeat this booking" part."""

    enabled: bool = False
    frequency: str = "weekly"
    interval: str = "1"
    count: str = "4"
    mode: str = "all_or_nothing"
    by: str = "date"
    occurrences: list[dict[str, str]] = []
    error: str = ""
    preview_busy: bool = False

    @rx.event
    def reset_form(self):
        self.enabled, self.frequency, self.interval, self.count = False, "weekly", "1", "4"
        self.mode, self.by, self.occurrences, self.error, self.preview_busy = "all_or_nothing", "date", [], "", False

    @rx.event
    def set_enabled(self, value: bool):
        self.enabled = bool(value)
        self.occurrences, self.error = [], ""

    @rx.event
    def set_rule(self, name: str, value: str):
        if name in ("frequency", "interval", "count", "mode", "by"):
            setattr(self, name, str(value)[:40])
            self.occurrences = []

    def _rule(self) -> dict[str, Any]:
        return {"frequency": self.frequency, "interval": self.interval, "count": self.count, "mode": self.mode,
                "by": self.by}

    @rx.event
    async def preview(self, service_id: Any, start: str, quantity: Any):
        """Each date of the series, free or taken (or why it is no slot), in the viewer's zone."""
        self.preview_busy, self.error = True, ""
        yield
        wanted = parse_iso(start)
        try:
            found = await asyncio.to_thread(series.preview, actor=self._actor(), service_id=fmt.int_param(service_id),
                                            start=wanted or start, recurrence_rule=self._rule(), quantity=quantity)
        except ServiceError as exc:
            self.error, self.occurrences = self._error_text(exc), []
        else:
            tz = self._view_tz()
            self.occurrences = [{
                "when": fmt.when_short(o.start, tz, self.locale),
                "status": translate(FREE if o.available else (TAKEN if o.reason == series.TAKEN
                                                              else (o.message or TAKEN)), self.locale),
                "free": "1" if o.available else "",
            } for o in found]
        self.preview_busy = False

    async def book(self, *, actor: Actor, service_id: int, start: str, quantity: int, notes: str,
                   guest: dict | None, method: str | None, ip: str | None,
                   answers: dict | None = None, discount_code: str | None = None) -> str | None:
        """Called by the review form's confirm when "Repeat" is on: book the series → the
        first booking's page (paid online: the series' one Checkout page), or None with
        `error` set."""
        self.error = ""
        try:
            paid = await asyncio.to_thread(series_payments.book_series_and_pay, actor=actor, service_id=service_id,
                                           start=parse_iso(start) or start, recurrence_rule=self._rule(),
                                           quantity=quantity, notes=notes, guest=guest, payment_method=method,
                                           client_ip=ip, answers=answers, discount_code=discount_code)
        except ServiceError as exc:
            self.error = self._error_text(exc)
            return None
        if paid.checkout_url:
            return paid.checkout_url
        first = paid.booked.bookings[0]
        token = booking_manage_token(first.id, first.link_version) if actor.is_guest else ""
        return booking_url(first.id, token)


class SeriesManageState(AppState):
    """The series card of a booking's page."""

    series_id: int = 0
    booking_id: int = 0
    rows: list[dict[str, str]] = []
    confirming: str = ""  # "following" | "all"
    error: str = ""
    notice: str = ""
    busy: bool = False
    _token: str = ""

    @rx.event
    def load(self):
        params = self.router.url.query_parameters
        self.series_id, self.rows, self.confirming, self.error, self.notice, self.busy = 0, [], "", "", "", False
        self.booking_id = fmt.int_param(params.get("id")) or 0
        self._token = str(params.get("token", ""))[:100]
        try:
            view = series.series_of_booking(actor=self._actor(), booking_id=self.booking_id,
                                            manage_token=self._token or None)
        except ServiceError as exc:
            self.error = self._error_text(exc)
            return
        if view is not None:
            self._show(view)

    def _show(self, view: series.SeriesView) -> None:
        tz = self._view_tz()
        self.series_id = view.id
        self.rows = [{
            "id": str(b.id), "when": fmt.when_short(b.start, tz, self.locale),
            "status": translate(STATUS_LABELS.get(b.status, b.status), self.locale),
            "color": fmt.STATUS_COLORS.get(b.status, "gray"),
            # a guest's link of one date manages the series (services/series.py): each date's own link
            "href": booking_url(b.id, booking_manage_token(b.id, b.link_version) if self._token else ""),
            "current": "1" if b.id == self.booking_id else "",
        } for b in view.bookings]

    @rx.event
    def ask(self, which: str):
        self.confirming = which if which in ("following", "all") else ""

    @rx.event
    def keep(self):
        self.confirming = ""

    @rx.event
    async def cancel(self):
        if self.busy or not self.series_id or not self.confirming:
            return
        self.busy, self.error = True, ""
        yield
        # (the page's booking now: a link of the card may have moved to another date)
        self.booking_id = fmt.int_param(self.router.url.query_parameters.get("id")) or self.booking_id
        try:
            done = await asyncio.to_thread(
                series.cancel_series, actor=self._actor(), series_id=self.series_id,
                from_booking_id=self.booking_id if self.confirming == "following" else None,
                manage_token=self._token or None)
        except ServiceError as exc:
            self.error, self.busy = self._error_text(exc), False
            return
        self.busy, self.confirming = False, ""
        if done.kept:
            self.error = done.kept[0][1].translated(self.locale)
        self._show(done.series)
        yield rx.redirect(booking_url(self.booking_id, self._token))  # the booking's own card follows
