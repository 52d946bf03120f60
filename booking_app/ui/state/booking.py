"""Customer booking pages: bookable (date + slots, or a new time for a booking) and review
& confirm. Every handler calls the catalog / availability / bookings / payments services;
the database is never touched here. Booking and paying is one service call
(payments.book_and_pay); whether a time from a URL can be booked is the availability
service's answer; whether a booking may still be moved is its cancellation quote's."""
from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from urllib.parse import urlencode

import reflex as rx

from booking_app.config import get_settings
from booking_app.i18n import Np_, translate
from booking_app.services import availability, booking_queries, bookings, catalog, guest_bookings, payments
from booking_app.services.errors import NotAvailable, ServiceError
from booking_app.services.validation import zone
from booking_app.ui import paths
from booking_app.ui.components.payment_summary import consent_text  # deposits and fees (issue 26)
from booking_app.ui.state import fmt
from booking_app.ui.state.base import AppState
from booking_app.ui.state.live_slots import LiveSlots
from booking_app.ui.state.booking_common import (
    MAX_QUANTITY_UI,
    METHOD_LABELS,
    bookable_dict,
    bookable_summary,
    booking_url,
    cutoff_note,
    parse_iso,
    quote_fields,
)
from booking_app.ui.state.manage_booking import ConfirmationState
from booking_app.ui.state.questions import QuestionsFormState
from booking_app.ui.state.series import SeriesFormState

DAYS_SHOWN = 14


class BookableState(LiveSlots, AppState):
    """The bookable page: description, policy, a day strip / date picker and free slots."""

    svc: dict = {}
    not_found: str = ""
    slots_by_day: dict[str, list[dict]] = {}
    full_by_day: dict[str, list[str]] = {}  # waitlist (issue 24): each day's full starts
    day: str = ""
    selected: str = ""
    quantity: int = 1
    error: str = ""
    busy: bool = False
    reschedule_id: int = 0
    # the booking being moved (its start, its quote's answers): "Currently: …", and whether
    # the customer may still change it
    moving: dict = {}
    _manage_token: str = ""

    @rx.event
    def load(self):
        params = self.router.url.query_parameters
        self.svc, self.slots_by_day, self.selected, self.error, self.not_found = {}, {}, "", "", ""
        self.quantity = 1
        self.busy = False
        self.moving = {}
        self.reschedule_id = fmt.int_param(params.get("reschedule")) or 0
        self._manage_token = str(params.get("token", ""))[:100]
        bookable_id = fmt.int_param(params.get("id"))
        if bookable_id is None:
            self.not_found = translate("This service does not exist.", self.locale)
            return
        try:
            view = catalog.get_bookable(bookable_id=bookable_id, actor=self._actor())
        except ServiceError as exc:
            self.not_found = self._error_text(exc)
            return
        if self.reschedule_id:
            self._load_moving()
        self.svc = bookable_dict(view)
        today = dt.datetime.now(zone(view.timezone)).date()
        requested = params.get("date", "")
        try:
            wanted = dt.date.fromisoformat(requested) if requested else None
        except ValueError:
            wanted = None
        first = wanted if wanted and wanted >= today else today
        self._load_days(first)
        if not self.day or not self.slots_by_day.get(self.day):
            # jump to the first day with free slots
            for key in sorted(self.slots_by_day):
                if self.slots_by_day[key]:
                    self.day = key
                    break
        return self._live_start()  # the slot list stays fresh while the page is open (live_slots.py)

    def _load_moving(self) -> None:
        """The booking to move: its current time and what its cancellation quote allows."""
        token = self._manage_token or None
        try:
            v = booking_queries.get_booking(actor=self._actor(), booking_id=self.reschedule_id, manage_token=token)
            quote = payments.cancellation_quote(actor=self._actor(), booking_id=v.id, manage_token=token)
        except ServiceError as exc:
            self.error = self._error_text(exc)
            self.moving = {"start": "", "status": "", **quote_fields(None)}
            return
        self.moving = {"start": v.start.isoformat(), "status": v.status, "href": booking_url(v.id, self._manage_token),
                       **quote_fields(quote)}

    @rx.var
    def current_time(self) -> str:
        """'Currently: <time>' of the booking being moved, in the viewer's zone."""
        start = parse_iso(self.moving.get("start"))
        if start is None:
            return ""
        return translate("Currently: {when}", self.locale, when=fmt.when_short(start, self._view_tz(), self.locale))

    @rx.var
    def may_move(self) -> bool:
        """Offer 'Move my booking here' only while the service's quote lets the customer change it."""
        return not self.reschedule_id or bool(self.moving.get("may_cancel"))

    @rx.var
    def move_note(self) -> str:
        if not self.reschedule_id or not self.moving:
            return ""
        return cutoff_note(self.moving, self.locale, self._view_tz())

    @rx.var
    def booking_href(self) -> str:
        return str(self.moving.get("href", "")) or paths.MY_BOOKINGS

    def _load_days(self, first: dt.date) -> None:
        last = first + dt.timedelta(days=DAYS_SHOWN - 1)
        try:
            found = availability.slots(bookable_id=int(self.svc["id"]), date_from=first, date_to=last,
                                       actor=self._actor(), include_full=True)
        except ServiceError as exc:
            self.error = self._error_text(exc)
            found = []
        tz = zone(self.svc["timezone"])
        by_day: dict[str, list[dict]] = {(first + dt.timedelta(days=i)).isoformat(): [] for i in range(DAYS_SHOWN)}
        full: dict[str, list[str]] = {}
        for slot in found:
            key = slot.start.astimezone(tz).date().isoformat()
            if slot.remaining <= 0:  # full: offered as "join the waitlist" (day_full_slots)
                full.setdefault(key, []).append(slot.start.isoformat())
                continue
            by_day.setdefault(key, []).append({"start": slot.start.isoformat(), "remaining": slot.remaining})
        self.slots_by_day, self.full_by_day = by_day, full
        self.day = first.isoformat()
        self.selected = ""

    def _review_url(self, query: str) -> str:
        """The review page for the picked time (the booking widget has its own: ui/state/embed.py)."""
        return f"{paths.BOOK}?{query}"

    @rx.event
    def pick_day(self, day: str):
        if day in self.slots_by_day:
            self.day = day
            self.selected = ""

    @rx.event
    def pick_date(self, value: str):
        try:
            chosen = dt.date.fromisoformat(str(value))
        except ValueError:
            return
        if not self.svc:
            return
        if chosen.isoformat() in self.slots_by_day:
            self.pick_day(chosen.isoformat())
            return
        self.error = ""
        self._load_days(chosen)

    @rx.event
    def pick_slot(self, start: str):
        self.selected = start
        self.quantity = max(1, min(self.quantity, self.max_quantity or 1))

    @rx.event
    def set_quantity(self, value: str):
        qty = fmt.int_param(value) or 1
        self.quantity = max(1, min(qty, self.max_quantity or 1))

    @rx.var
    def info(self) -> dict[str, str]:
        return bookable_summary(self.svc, self.locale)

    @rx.var
    def is_event(self) -> bool:
        return bool(self.svc) and self.svc.get("kind") == "event"

    @rx.var
    def days(self) -> list[dict[str, str]]:
        out = []
        locale = self.locale
        for key in sorted(self.slots_by_day):
            day = dt.date.fromisoformat(key)
            count = len(self.slots_by_day[key])
            out.append({"key": key, "weekday": fmt.date_(day, locale, "EEE"), "label": fmt.date_(day, locale, "d MMM"),
                        "count": str(count), "free": "1" if count else ""})
        return out

    @rx.var
    def day_title(self) -> str:
        if not self.day:
            return ""
        return fmt.date_(dt.date.fromisoformat(self.day), self.locale, "full")

    @rx.var
    def day_slots(self) -> list[dict[str, str]]:
        tz = self._view_tz()
        out = []
        for slot in self.slots_by_day.get(self.day, []):
            start = dt.datetime.fromisoformat(slot["start"])
            seats = ""
            if self.svc.get("kind") == "event" or int(self.svc.get("capacity", 1)) > 1:
                seats = fmt.seats_left(slot["remaining"], self.locale)
            out.append({"start": slot["start"], "time": fmt.time_(start, tz, self.locale), "seats": seats})
        return out

    @rx.var
    def day_full_slots(self) -> list[dict[str, str]]:
        """The day's full times, each with its waitlist link (issue 24); none while moving a booking."""
        if self.reschedule_id or not self.svc:
            return []
        tz, free = self._view_tz(), {x["start"] for x in self.slots_by_day.get(self.day, [])}  # (freed live)
        return [{"start": s, "time": fmt.time_(dt.datetime.fromisoformat(s), tz, self.locale),
                 "href": f"{paths.WAITLIST}?{urlencode({'service': self.svc['id'], 'start': s})}"}
                for s in self.full_by_day.get(self.day, []) if s not in free]

    @rx.var
    def tz_note(self) -> str:
        return translate("Times are shown in {timezone}.", self.locale, timezone=self._view_tz())

    @rx.var
    def max_quantity(self) -> int:
        for slot in self.slots_by_day.get(self.day, []):
            if slot["start"] == self.selected:
                cap = int(slot["remaining"]) if self.svc.get("kind") == "event" else 1
                return max(1, min(cap, MAX_QUANTITY_UI))
        return 1

    @rx.var
    def quantity_options(self) -> list[str]:
        return [str(i) for i in range(1, self.max_quantity + 1)]

    @rx.var
    def selected_label(self) -> str:
        start = parse_iso(self.selected)
        if start is None or not self.svc:
            return ""
        total = int(self.svc["price_cents"]) * max(1, self.quantity)
        when = fmt.when_short(start, self._view_tz(), self.locale)
        return translate("{when} · {price}", self.locale, when=when,
                         price=fmt.money(total, self.svc["currency"], self.locale))

    @rx.event
    async def continue_booking(self):
        if not self.selected or not self.svc:
            return
        if not self.reschedule_id:
            query = urlencode({"id": self.svc["id"], "start": self.selected, "qty": self.quantity})
            yield rx.redirect(self._review_url(query))
            return
        if self.busy or not self.may_move:
            return
        self.busy = True
        self.error = ""
        yield
        try:
            view = await asyncio.to_thread(
                bookings.reschedule, actor=self._actor(), booking_id=self.reschedule_id, start=self.selected,
                manage_token=self._manage_token or None)
        except ServiceError as exc:
            self.error = self._error_text(exc)
            self.busy = False
            if isinstance(exc, NotAvailable):
                self._load_days(dt.date.fromisoformat(self.day))
            return
        self.busy = False
        yield rx.redirect(booking_url(view.id, self._manage_token) + "&moved=1")



class BookState(AppState):
    """Review → (guest details) → confirm. One idempotency key per review: a double click
    or a retry never books twice."""

    svc: dict = {}
    start: str = ""
    quantity: int = 1
    error: str = ""
    not_found: str = ""
    busy: bool = False
    alternatives: list[str] = []
    methods: list[str] = []
    method: str = "on_site"
    # GUEST_EMAIL_CONFIRMATION: the guest's request was recorded and the link emailed
    email_sent: str = ""
    # the time from the URL can't be booked (it has passed, or is not free): no Confirm button
    unavailable: str = ""
    _idem: str = ""

    @rx.event
    def load(self):
        params = self.router.url.query_parameters
        self.svc, self.error, self.not_found, self.alternatives = {}, "", "", []
        self.email_sent = ""
        self.unavailable = ""
        self.busy = False
        self._idem = uuid.uuid4().hex
        bookable_id = fmt.int_param(params.get("id"))
        start = parse_iso(params.get("start"))
        self.quantity = max(1, min(fmt.int_param(params.get("qty")) or 1, MAX_QUANTITY_UI))
        if bookable_id is None or start is None:
            self.not_found = translate("Pick a time first.", self.locale)
            return
        try:
            view = catalog.get_bookable(bookable_id=bookable_id, actor=self._actor())
        except ServiceError as exc:
            self.not_found = self._error_text(exc)
            return
        self.svc = bookable_dict(view)
        self.start = start.astimezone(dt.timezone.utc).isoformat()
        options = [m.method for m in payments.available_methods()]
        self.methods = options if view.price_cents else []
        self.method = options[0] if options else "on_site"
        if not self._bookable_now(start):
            if start <= dt.datetime.now(dt.timezone.utc):
                self.unavailable = translate("This time has passed. Pick another time.", self.locale)
            else:
                self.unavailable = translate("This time is not free any more. Pick another time.", self.locale)
                self.alternatives = self._nearest(start)

    def _bookable_now(self, start: dt.datetime) -> bool:
        """Whether `start` is one of the bookable's free slots now (the availability service
        decides: opening hours, notice, window, seats)."""
        day = start.astimezone(zone(self.svc["timezone"])).date()
        try:
            found = availability.slots(bookable_id=int(self.svc["id"]), date_from=day, date_to=day,
                                       actor=self._actor())
        except ServiceError:
            return False
        return any(s.start == start for s in found)

    @rx.event
    def set_method(self, value: str):
        if value in self.methods:
            self.method = value

    @rx.var
    def info(self) -> dict[str, str]:
        return bookable_summary(self.svc, self.locale)

    @rx.var
    def when(self) -> str:
        start = parse_iso(self.start)
        if start is None or not self.svc:
            return ""
        end = start + dt.timedelta(minutes=int(self.svc["duration_minutes"]))
        tz = self._view_tz()
        return translate("{date}, {start}–{end}", self.locale, date=fmt.date_(start, self.locale, "full", tz),
                         start=fmt.time_(start, tz, self.locale), end=fmt.time_(end, tz, self.locale))

    @rx.var
    def total(self) -> str:
        if not self.svc:
            return ""
        return fmt.money(int(self.svc["price_cents"]) * self.quantity, self.svc["currency"], self.locale)

    @rx.var
    def payment_consent(self) -> str:
        """The deposit taken now and the consent to save the card for a fee (issue 26)."""
        if not self.svc:
            return ""
        svc = {**self.svc, "price_cents": int(self.svc["price_cents"]) * self.quantity}
        return consent_text(svc, self.locale, online=self.method != "on_site",
                            saves_card=any(m.online for m in payments.available_methods()))

    @rx.var
    def method_options(self) -> list[dict[str, str]]:
        return [{"value": m, "label": translate(METHOD_LABELS.get(m, m), self.locale)} for m in self.methods]

    @rx.var
    def alternative_slots(self) -> list[dict[str, str]]:
        tz = self._view_tz()
        return [{"start": s, "label": fmt.when_short(dt.datetime.fromisoformat(s), tz, self.locale)}
                for s in self.alternatives]

    @rx.var
    def back_url(self) -> str:
        if not self.svc:
            return paths.SEARCH
        return f"{paths.BOOKABLE}?id={self.svc['id']}"

    @rx.var
    def slots_url(self) -> str:
        """The bookable's free times from the wanted day on (today if that day has passed)."""
        start = parse_iso(self.start)
        if not self.svc or start is None:
            return self.back_url
        tz = zone(self.svc["timezone"])
        day = max(start.astimezone(tz).date(), dt.datetime.now(tz).date())
        return f"{paths.BOOKABLE}?{urlencode({'id': self.svc['id'], 'date': day.isoformat()})}"

    @rx.var
    def sign_in_url(self) -> str:
        return f"{paths.SIGN_IN}?{urlencode({'next': str(self.router.url.path) + '?' + str(self.router.url.query)})}"

    @rx.var
    def sign_up_url(self) -> str:
        return f"{paths.SIGN_UP}?{urlencode({'next': str(self.router.url.path) + '?' + str(self.router.url.query)})}"

    def _nearest(self, wanted: dt.datetime) -> list[str]:
        tz = zone(self.svc["timezone"])
        day = wanted.astimezone(tz).date()
        try:
            found = availability.slots(bookable_id=int(self.svc["id"]), date_from=day - dt.timedelta(days=1),
                                       date_to=day + dt.timedelta(days=6), actor=self._actor())
        except ServiceError:
            return []
        fitting = [s for s in found if s.remaining >= self.quantity and s.start != wanted]
        fitting.sort(key=lambda s: abs((s.start - wanted).total_seconds()))
        return [s.start.isoformat() for s in sorted(fitting[:6], key=lambda s: s.start)]

    @rx.event
    def choose_alternative(self, start: str):
        if start in self.alternatives:
            self.start = start
            self.alternatives = []
            self.error = ""
            self.unavailable = ""
            self._idem = uuid.uuid4().hex

    @rx.event
    async def confirm(self, form: dict):
        if self.busy or not self.svc or self.unavailable:
            return
        self.busy = True
        self.error = ""
        self.alternatives = []
        yield
        actor = self._actor()
        guest = None
        if actor.is_guest:
            guest = {"name": str(form.get("guest_name", "")).strip(), "email": str(form.get("guest_email", "")).strip(),
                     "phone": str(form.get("guest_phone", "")).strip() or None}
        notes = str(form.get("notes", ""))[:2000]
        questions = await self.get_state(QuestionsFormState)  # issue 24: booking questions
        answers = questions.answers(form)
        method = self.method if self.methods else None
        ip = self._client_ip() if actor.is_guest else None
        series_form = await self.get_state(SeriesFormState)  # issue 24: recurring series
        if series_form.enabled:
            url = await series_form.book(actor=actor, service_id=int(self.svc["id"]), start=self.start,
                                         quantity=self.quantity, notes=notes, guest=guest, method=method, ip=ip,
                                         answers=answers,
                                         discount_code=str(form.get("discount_code") or "").strip()[:64] or None)
            self.busy = False
            if url:
                yield rx.redirect(url)
            return
        if guest_bookings.guest_email_confirmation_required(actor):
            try:
                pending = await asyncio.to_thread(
                    guest_bookings.request_guest_booking, actor=actor, service_id=int(self.svc["id"]), start=self.start,
                    quantity=self.quantity, notes=notes, guest=guest, payment_method=method, client_ip=ip,
                    answers=answers, discount_code=str(form.get("discount_code") or "").strip()[:64] or None)
            except ServiceError as exc:
                self.error = "" if questions.show_error(exc) else self._error_text(exc)
                self.busy = False
                return
            minutes = get_settings().guest_confirmation_minutes
            self.email_sent = translate(
                Np_("We emailed a link to {email}. Open it within {minutes} minute to book: nothing is reserved "
                    "until then.",
                    "We emailed a link to {email}. Open it within {minutes} minutes to book: nothing is reserved "
                    "until then.", "minutes"), self.locale, email=pending.email, minutes=minutes)
            self.busy = False
            return
        try:
            result = await asyncio.to_thread(
                payments.book_and_pay, actor=actor, service_id=int(self.svc["id"]), start=self.start,
                quantity=self.quantity, notes=notes, guest=guest, idempotency_key=self._idem,
                payment_method=method, client_ip=ip, answers=answers,
                discount_code=str(form.get("discount_code") or "").strip()[:64] or None)  # (checked by the service)
        except NotAvailable as exc:
            self.error = self._error_text(exc)
            wanted = parse_iso(self.start)
            self.alternatives = self._nearest(wanted) if wanted else []
            self.busy = False
            return
        except ServiceError as exc:
            self.error = "" if questions.show_error(exc) else self._error_text(exc)
            self.busy = False
            return
        self.busy = False
        url = self._booking_page(result.booking.id, result.manage_token)
        if result.payment_error is not None:
            # the booking stands but its payment did not start: the booking's page says why
            # (and offers the online methods again)
            confirmation = await self.get_state(ConfirmationState)
            confirmation._payment_notice = self._error_text(result.payment_error)
            yield rx.redirect(url + "&" + urlencode({"notice": result.payment_error.code}))
            return
        if result.checkout_url:
            yield self._to_checkout(result.checkout_url, url)
            return
        yield rx.redirect(url)

    def _booking_page(self, booking_id: int, token: str | None) -> str:
        """The new booking's page (the booking widget has its own: ui/state/embed.py)."""
        return booking_url(booking_id, token)

    def _to_checkout(self, checkout_url: str, booking_page: str):
        """Off to Stripe Checkout (the booking widget opens it in a new tab instead)."""
        return rx.redirect(checkout_url)
