"""Customer booking pages: bookable (date + slots), review & confirm, confirmation,
My bookings, cancel. Every handler calls the catalog / availability / bookings / payments
services; the database is never touched here. Booking and paying is one service call
(payments.book_and_pay), the refund shown before a cancel is the service's quote
(payments.cancellation_quote), the figure the cancellation then refunds."""
from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from urllib.parse import urlencode

import reflex as rx

from booking_app.config import get_settings
from booking_app.i18n import N_, Np_, translate
from booking_app.integrations import ics
from booking_app.services import availability, booking_queries, bookings, catalog, guest_bookings, manage_links, payments, refunds
from booking_app.services.errors import NotAvailable, ServiceError
from booking_app.services.validation import zone
from booking_app.ui import paths as routes
from booking_app.ui.state import fmt
from booking_app.ui.state.base import AppState

DAYS_SHOWN = 14
MAX_QUANTITY_UI = 10
STATUS_LABELS = {
    "pending": N_("Awaiting payment"),
    "confirmed": N_("Confirmed"),
    "cancelled": N_("Cancelled"),
    "completed": N_("Completed"),
    "no_show": N_("No-show"),
}
PAYMENT_LABELS = {
    "none": "",
    "pending": N_("Payment pending"),
    "requires_action": N_("Payment pending"),
    "succeeded": N_("Paid"),
    "failed": N_("Payment failed"),
    "refunded": N_("Refunded"),
    "partially_refunded": N_("Partly refunded"),
}
DEFAULT_CONFIRMATION_TITLE = N_("Booking details")
CONFIRMATION_TITLES = {"confirmed": N_("Your booking is confirmed"), "pending": N_("Your booking is reserved")}
METHOD_LABELS = {"on_site": N_("Pay on site"), "card": N_("Card"), "paypal": N_("PayPal")}


def _parse_iso(value: object) -> dt.datetime | None:
    try:
        parsed = dt.datetime.fromisoformat(str(value or "").replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _bookable_dict(v: catalog.BookableView) -> dict:
    return {"id": v.id, "name": v.name, "kind": v.kind, "description": v.description, "location": v.location,
            "duration_minutes": v.duration_minutes, "capacity": v.capacity, "price_cents": v.price_cents,
            "currency": v.currency, "timezone": v.timezone, "cancel_cutoff_hours": v.cancel_cutoff_hours,
            "refund_percent": v.refund_percent, "provider_name": v.provider_name}


def _quote_fields(quote: refunds.CancellationQuote | None) -> dict:
    """The cancellation quote's answers kept with a booking in the UI state (what the
    customer may still do and until when: the service's rule, never re-derived here)."""
    if quote is None:
        return {"may_cancel": False, "cutoff_at": "", "cutoff_passed": False, "by_manager": False}
    return {"may_cancel": quote.may_cancel, "cutoff_at": quote.cutoff_at.isoformat(),
            "cutoff_passed": quote.cutoff_passed, "by_manager": quote.by_manager}


def cutoff_note(b: dict, locale: str, tz: str) -> str:
    """Until when the customer may cancel or change an active booking (or since when they
    may not), in the viewer's zone, named. Empty for staff and for bookings that are over."""
    cutoff = _parse_iso(b.get("cutoff_at"))
    if cutoff is None or b.get("by_manager") or b.get("status") not in ("pending", "confirmed"):
        return ""
    when = fmt.when_short(cutoff, tz, locale)
    if b.get("cutoff_passed"):
        return translate("You could cancel or change this booking until {when} ({timezone}).", locale,
                         when=when, timezone=tz)
    return translate("You can cancel or change this booking until {when} ({timezone}).", locale,
                     when=when, timezone=tz)


def _bookable_summary(svc: dict, locale: str) -> dict[str, str]:
    if not svc:
        return {}
    return {
        "name": svc["name"],
        "kind": fmt.kind_label(svc["kind"], locale),
        "description": svc["description"],
        "location": svc["location"],
        "provider": svc["provider_name"],
        "duration": fmt.duration(svc["duration_minutes"], locale),
        "price": fmt.money(svc["price_cents"], svc["currency"], locale),
        "policy": fmt.refund_policy(svc["cancel_cutoff_hours"], svc["refund_percent"], locale),
        "per_person": translate("per person", locale) if svc["kind"] == "event" and svc["price_cents"] else "",
    }


class BookableState(AppState):
    """The bookable page: description, policy, a day strip / date picker and free slots."""

    svc: dict = {}
    not_found: str = ""
    slots_by_day: dict[str, list[dict]] = {}
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
        self.svc = _bookable_dict(view)
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

    def _load_moving(self) -> None:
        """The booking to move: its current time and what its cancellation quote allows."""
        token = self._manage_token or None
        try:
            v = booking_queries.get_booking(actor=self._actor(), booking_id=self.reschedule_id, manage_token=token)
            quote = payments.cancellation_quote(actor=self._actor(), booking_id=v.id, manage_token=token)
        except ServiceError as exc:
            self.error = self._error_text(exc)
            self.moving = {"start": "", "status": "", **_quote_fields(None)}
            return
        self.moving = {"start": v.start.isoformat(), "status": v.status, "href": _booking_url(v.id, self._manage_token),
                       **_quote_fields(quote)}

    @rx.var
    def current_time(self) -> str:
        """'Currently: <time>' of the booking being moved, in the viewer's zone."""
        start = _parse_iso(self.moving.get("start"))
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
        return str(self.moving.get("href", "")) or routes.MY_BOOKINGS

    def _load_days(self, first: dt.date) -> None:
        last = first + dt.timedelta(days=DAYS_SHOWN - 1)
        try:
            found = availability.slots(bookable_id=int(self.svc["id"]), date_from=first, date_to=last,
                                       actor=self._actor())
        except ServiceError as exc:
            self.error = self._error_text(exc)
            found = []
        tz = zone(self.svc["timezone"])
        by_day: dict[str, list[dict]] = {(first + dt.timedelta(days=i)).isoformat(): [] for i in range(DAYS_SHOWN)}
        for slot in found:
            key = slot.start.astimezone(tz).date().isoformat()
            by_day.setdefault(key, []).append({"start": slot.start.isoformat(), "remaining": slot.remaining})
        self.slots_by_day = by_day
        self.day = first.isoformat()
        self.selected = ""

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
        return _bookable_summary(self.svc, self.locale)

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
        start = _parse_iso(self.selected)
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
            yield rx.redirect(f"{routes.BOOK}?{query}")
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
        yield rx.redirect(_booking_url(view.id, self._manage_token) + "&moved=1")


def _online_methods() -> list[str]:
    """The online payment methods a customer may choose now (the payment service's list)."""
    return [m.method for m in payments.available_methods() if m.online]


def _booking_url(booking_id: int, token: str = "") -> str:
    query = {"id": booking_id}
    if token:
        query["token"] = token
    return f"{routes.CONFIRMATION}?{urlencode(query)}"


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
        start = _parse_iso(params.get("start"))
        self.quantity = max(1, min(fmt.int_param(params.get("qty")) or 1, MAX_QUANTITY_UI))
        if bookable_id is None or start is None:
            self.not_found = translate("Pick a time first.", self.locale)
            return
        try:
            view = catalog.get_bookable(bookable_id=bookable_id, actor=self._actor())
        except ServiceError as exc:
            self.not_found = self._error_text(exc)
            return
        self.svc = _bookable_dict(view)
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
        return _bookable_summary(self.svc, self.locale)

    @rx.var
    def when(self) -> str:
        start = _parse_iso(self.start)
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
            return routes.SEARCH
        return f"{routes.BOOKABLE}?id={self.svc['id']}"

    @rx.var
    def slots_url(self) -> str:
        """The bookable's free times from the wanted day on (today if that day has passed)."""
        start = _parse_iso(self.start)
        if not self.svc or start is None:
            return self.back_url
        tz = zone(self.svc["timezone"])
        day = max(start.astimezone(tz).date(), dt.datetime.now(tz).date())
        return f"{routes.BOOKABLE}?{urlencode({'id': self.svc['id'], 'date': day.isoformat()})}"

    @rx.var
    def sign_in_url(self) -> str:
        return f"{routes.SIGN_IN}?{urlencode({'next': str(self.router.url.path) + '?' + str(self.router.url.query)})}"

    @rx.var
    def sign_up_url(self) -> str:
        return f"{routes.SIGN_UP}?{urlencode({'next': str(self.router.url.path) + '?' + str(self.router.url.query)})}"

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
        method = self.method if self.methods else None
        ip = self._client_ip() if actor.is_guest else None
        if guest_bookings.guest_email_confirmation_required(actor):
            try:
                pending = await asyncio.to_thread(
                    guest_bookings.request_guest_booking, actor=actor, service_id=int(self.svc["id"]), start=self.start,
                    quantity=self.quantity, notes=notes, guest=guest, payment_method=method, client_ip=ip)
            except ServiceError as exc:
                self.error = self._error_text(exc)
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
                payment_method=method, client_ip=ip)
        except NotAvailable as exc:
            self.error = self._error_text(exc)
            wanted = _parse_iso(self.start)
            self.alternatives = self._nearest(wanted) if wanted else []
            self.busy = False
            return
        except ServiceError as exc:
            self.error = self._error_text(exc)
            self.busy = False
            return
        self.busy = False
        url = _booking_url(result.booking.id, result.manage_token)
        if result.payment_error is not None:
            # the booking stands but its payment did not start: the booking's page says why
            # (and offers the online methods again)
            confirmation = await self.get_state(ConfirmationState)
            confirmation._payment_notice = self._error_text(result.payment_error)
            yield rx.redirect(url + "&" + urlencode({"notice": result.payment_error.code}))
            return
        if result.checkout_url:
            yield rx.redirect(result.checkout_url)
            return
        yield rx.redirect(url)


def _raw(v: booking_queries.BookingView) -> dict:
    """A booking as plain JSON-able values for the UI state."""
    return {"id": v.id, "reference": v.reference, "service_id": v.service_id, "service_name": v.service_name,
            "service_kind": v.service_kind, "start": v.start.isoformat(), "end": v.end.isoformat(),
            "status": v.status, "payment_status": v.payment_status, "price_cents": v.price_cents,
            "currency": v.currency, "quantity": v.quantity, "is_guest": v.user_id is None}


def _booking_card(b: dict, locale: str, tz: str, token: str = "") -> dict[str, str]:
    start = dt.datetime.fromisoformat(b["start"])
    end = dt.datetime.fromisoformat(b["end"])
    status = b["status"]
    payment = PAYMENT_LABELS.get(b["payment_status"], "")
    if status == "confirmed" and b["payment_status"] in ("pending", "requires_action"):
        payment = METHOD_LABELS["on_site"]  # a confirmed booking with an open payment is paid at the venue
    reschedule_query = {"id": b["service_id"], "reschedule": b["id"], **({"token": token} if token else {})}
    return {
        "id": str(b["id"]),
        "reference": b["reference"],
        "service": b["service_name"],
        "service_id": str(b["service_id"]),
        "kind": fmt.kind_label(b["service_kind"], locale),
        "when": translate("{date}, {start}–{end}", locale, date=fmt.date_(start, locale, "full", tz),
                          start=fmt.time_(start, tz, locale), end=fmt.time_(end, tz, locale)),
        "short_when": fmt.when_short(start, tz, locale),
        "status": status,
        "status_label": translate(STATUS_LABELS.get(status, status), locale),
        "status_color": fmt.STATUS_COLORS.get(status, "gray"),
        "payment": translate(payment, locale) if payment else "",
        "price": fmt.money(int(b["price_cents"]), b["currency"], locale),
        "quantity": str(b["quantity"]),
        "seats": translate(Np_("{count} place", "{count} places", "count"), locale, count=int(b["quantity"]))
        if int(b["quantity"]) > 1 else "",
        "href": _booking_url(int(b["id"]), token),
        # cancel / change time: only what the cancellation quote allows (the cut-off is the service's)
        "active": "1" if b.get("may_cancel") and start > dt.datetime.now(dt.timezone.utc) else "",
        # add to calendar: only while the booking is still going to happen
        "calendar": "1" if status in ("pending", "confirmed") else "",
        "cutoff_note": cutoff_note(b, locale, tz),
        "reschedule_href": f"{routes.BOOKABLE}?{urlencode(reschedule_query)}",
    }


def _ics_for(v: booking_queries.BookingView, locale: str) -> bytes:
    settings = get_settings()
    event = ics.IcsEvent(
        uid=ics.booking_uid(v.reference, settings.public_url),
        start=v.start, end=v.end, summary=v.service_name, sequence=v.sequence,
        status=ics.STATUS_CANCELLED if v.status == "cancelled" else ics.STATUS_CONFIRMED,
        description=translate("Booking reference: {reference}", locale, reference=v.reference),
    )
    return ics.invitation(event, method=ics.METHOD_PUBLISH)


def refund_preview_text(quote: refunds.CancellationQuote, start: dt.datetime, locale: str) -> str:
    """The sentence shown before a cancel: exactly the quote's refund, or why there is none."""
    if quote.cutoff_passed:
        if dt.datetime.now(dt.timezone.utc) >= start:
            return translate("This booking has already started.", locale)
        return translate(Np_("Bookings can no longer be cancelled less than {hours} hour before the start.",
                             "Bookings can no longer be cancelled less than {hours} hours before the start.",
                             "hours"), locale, hours=quote.cutoff_hours)
    if quote.paid_cents <= 0:
        return translate("Nothing has been paid, so there is nothing to refund.", locale)
    if quote.amount_cents <= 0:
        return translate("The policy of this booking gives no refund.", locale)
    return translate("You get {amount} back.", locale, amount=fmt.money(quote.amount_cents, quote.currency, locale))


class ManageState(AppState):
    """Shared by the confirmation page and My bookings: .ics download and cancel (with the
    refund the policy gives shown before confirming)."""

    cancel_id: int = 0
    cancel_text: str = ""
    cancel_open: bool = False
    cancel_error: str = ""
    cancel_busy: bool = False
    # the quote lets this actor cancel now (else the dialog says why and offers no "Yes, cancel")
    cancel_allowed: bool = False
    _token: str = ""

    def _with_quote(self, v: booking_queries.BookingView, token: str = "") -> dict:
        """The booking for the UI state with what its cancellation quote allows now."""
        try:
            quote = payments.cancellation_quote(actor=self._actor(), booking_id=v.id, manage_token=token or None)
        except ServiceError:
            quote = None
        return {**_raw(v), **_quote_fields(quote)}

    def _refund_preview(self, v: booking_queries.BookingView) -> str:
        """What cancelling refunds now: the service's quote, the rule the cancellation applies."""
        try:
            quote = payments.cancellation_quote(actor=self._actor(), booking_id=v.id,
                                                manage_token=self._token or None)
        except ServiceError:
            self.cancel_allowed = False
            return ""
        self.cancel_allowed = quote.may_cancel
        return refund_preview_text(quote, v.start, self.locale)

    @rx.event
    def ask_cancel(self, booking_id: str):
        self._open_cancel(booking_id)

    def _open_cancel(self, booking_id: str) -> None:
        """Load the refund preview of `booking_id` and open its cancel dialog."""
        self.cancel_error = ""
        bid = fmt.int_param(booking_id)
        if bid is None:
            return
        self._token = str(self.router.url.query_parameters.get("token", ""))[:100]
        try:
            v = booking_queries.get_booking(actor=self._actor(), booking_id=bid, manage_token=self._token or None)
        except ServiceError as exc:
            self.cancel_error = self._error_text(exc)
            return
        self.cancel_id = bid
        self.cancel_text = translate("Cancel {service} on {when}?", self.locale, service=v.service_name,
                                     when=fmt.when_short(v.start, self._view_tz(), self.locale)) \
            + " " + self._refund_preview(v)
        self.cancel_open = True

    @rx.event
    def set_cancel_open(self, value: bool):
        """Close requests of the dialog (Esc, Keep it); it opens through ask_cancel."""
        if not value:
            self.cancel_open = False
            self.cancel_busy = False

    @rx.event
    def cancel_open_change(self, booking_id: str, value: bool):
        """A booking's cancel dialog asks to open (its trigger button) or close (Esc, Keep
        it): opening loads the refund preview first, then shows the dialog."""
        if value:
            self._open_cancel(booking_id)
        else:
            self.cancel_open = False
            self.cancel_busy = False

    @rx.event
    async def confirm_cancel(self):
        if self.cancel_busy or not self.cancel_id or not self.cancel_allowed:
            return
        self.cancel_busy = True
        yield
        try:
            await asyncio.to_thread(payments.cancel_and_refund, actor=self._actor(), booking_id=self.cancel_id,
                                    manage_token=self._token or None)
        except ServiceError as exc:
            self.cancel_error = self._error_text(exc)
            self.cancel_busy = False
            self.cancel_open = False
            return
        self.cancel_busy = False
        self.cancel_open = False
        yield rx.redirect(str(self.router.url.path) + ("?" + str(self.router.url.query) if self.router.url.query else ""))

    @rx.event
    def download_ics(self, booking_id: str):
        bid = fmt.int_param(booking_id)
        if bid is None:
            return
        token = str(self.router.url.query_parameters.get("token", ""))[:100]
        try:
            v = booking_queries.get_booking(actor=self._actor(), booking_id=bid, manage_token=token or None)
        except ServiceError as exc:
            self.cancel_error = self._error_text(exc)
            return
        return rx.download(data=_ics_for(v, self.locale), filename=f"booking-{v.reference}.ics")


class ConfirmationState(ManageState):
    booking: dict = {}
    # the booking's bookable, for its location and cancellation policy
    svc: dict = {}
    # the booking was just moved (reschedule comes here with moved=1)
    moved: bool = False
    not_found: str = ""
    # the page was opened with a manage link that is wrong, re-issued or expired
    link_refused: bool = False
    # staff re-issued the guest's link
    link_notice: str = ""
    # why the payment chosen when booking did not start (set by BookState before it comes here)
    _payment_notice: str = ""

    @rx.event
    def load(self):
        params = self.router.url.query_parameters
        self.booking, self.not_found, self.cancel_error = {}, "", ""
        self.svc = {}
        self.moved = False
        self.cancel_open = False
        self.link_refused = False
        self.link_notice = ""
        bid = fmt.int_param(params.get("id"))
        token = str(params.get("token", ""))[:100]
        if bid is None:
            self.not_found = translate("This booking does not exist.", self.locale)
            return
        try:
            v = booking_queries.get_booking(actor=self._actor(), booking_id=bid, manage_token=token or None)
        except ServiceError as exc:
            self.not_found = self._error_text(exc)
            self.link_refused = bool(token)
            return
        self.booking = {**self._with_quote(v, token), "token": token}
        self.moved = params.get("moved") == "1" and v.status in ("pending", "confirmed")
        try:
            self.svc = _bookable_dict(catalog.get_bookable(bookable_id=v.service_id, actor=self._actor()))
        except ServiceError:
            self.svc = {}  # (a bookable taken offline: the booking's own facts still show)
        if params.get("notice"):
            # the booking was made but its payment did not start: say why, offer to retry
            self.cancel_error = self._payment_notice or translate(
                "The payment could not be started. Please try again later or choose another payment method.",
                self.locale)
        self._payment_notice = ""

    @rx.var
    def card(self) -> dict[str, str]:
        b = self.booking
        if not b:
            return {}
        out = _booking_card(b, self.locale, self._view_tz(), b.get("token", ""))
        title = CONFIRMATION_TITLES.get(b["status"], DEFAULT_CONFIRMATION_TITLE)
        out["title"] = translate(title, self.locale)
        summary = _bookable_summary(self.svc, self.locale)
        out["location"] = summary.get("location", "")
        out["policy"] = summary.get("policy", "")
        out["moved"] = translate("Your booking was moved to {when}.", self.locale, when=out["short_when"]) \
            if self.moved else ""
        return out


    @rx.var
    def pay_options(self) -> list[dict[str, str]]:
        b = self.booking
        if not b or b["status"] != "pending" or b["payment_status"] == "succeeded":
            return []
        return [{"value": m, "label": translate(METHOD_LABELS.get(m, m), self.locale)}
                for m in _online_methods()]

    @rx.event
    async def pay(self, method: str):
        b = self.booking
        if self.cancel_busy or not b or method not in _online_methods():
            return
        self.cancel_busy = True
        self.cancel_error = ""
        yield
        try:
            payment = await asyncio.to_thread(payments.process, actor=self._actor(), booking_id=int(b["id"]),
                                              method=method, manage_token=b.get("token") or None)
        except ServiceError as exc:
            self.cancel_error = self._error_text(exc)
            self.cancel_busy = False
            return
        self.cancel_busy = False
        if payment.checkout_url:
            yield rx.redirect(payment.checkout_url)

    @rx.event
    async def reissue_link(self):
        """Staff: revoke this guest booking's manage link and email the guest a new one."""
        b = self.booking
        if self.cancel_busy or not b:
            return
        self.cancel_busy = True
        self.cancel_error, self.link_notice = "", ""
        yield
        try:
            await asyncio.to_thread(guest_bookings.reissue_manage_link, actor=self._actor(), booking_id=int(b["id"]))
        except ServiceError as exc:
            self.cancel_error = self._error_text(exc)
        else:
            self.link_notice = translate("A new link is on its way to the guest. Earlier links no longer work.",
                                         self.locale)
        self.cancel_busy = False


class MyBookingsState(ManageState):
    upcoming: list[dict] = []
    past: list[dict] = []
    error: str = ""
    loaded: bool = False

    @rx.event
    def load(self):
        self.error, self.cancel_error = "", ""
        self.cancel_open = False
        actor = self._actor()
        if actor.is_guest:
            return rx.redirect(f"{routes.SIGN_IN}?{urlencode({'next': routes.MY_BOOKINGS})}")
        try:
            items, _total = booking_queries.list_bookings(actor=actor, scope="mine", limit=200)
        except ServiceError as exc:
            self.error = self._error_text(exc)
            return
        now = dt.datetime.now(dt.timezone.utc)
        upcoming, past = [], []
        for v in items:
            if v.end >= now and v.status in ("pending", "confirmed"):
                upcoming.append(self._with_quote(v))
            else:
                past.append({**_raw(v), **_quote_fields(None)})
        self.upcoming = upcoming
        self.past = list(reversed(past))
        self.loaded = True

    def _cards(self, raws: list[dict]) -> list[dict[str, str]]:
        return [_booking_card(b, self.locale, self._view_tz()) for b in raws]

    @rx.var
    def upcoming_cards(self) -> list[dict[str, str]]:
        return self._cards(self.upcoming)

    @rx.var
    def past_cards(self) -> list[dict[str, str]]:
        return self._cards(self.past)


class ConfirmEmailState(AppState):
    """The page a guest's confirmation link opens (GUEST_EMAIL_CONFIRMATION): books the
    request now and goes on to the booking's page, or says why it can't."""

    error: str = ""
    service_href: str = ""

    @rx.event
    async def load(self):
        self.error, self.service_href = "", ""
        token = str(self.router.url.query_parameters.get("token", ""))[:100]
        try:
            view = await asyncio.to_thread(bookings.confirm_guest_request, token=token or None)
        except NotAvailable as exc:
            self.error = self._error_text(exc)
            return
        except ServiceError as exc:
            self.error = self._error_text(exc)
            return
        yield rx.redirect(_booking_url(view.id, manage_links.booking_manage_token(view.id, view.link_version)))


class ManageLinkState(AppState):
    """A guest asks for a new manage link by email address + booking reference (the old
    link stops working). The answer never says whether they matched."""

    sent: str = ""
    error: str = ""
    busy: bool = False

    @rx.event
    def load(self):
        self.sent, self.error, self.busy = "", "", False

    @rx.event
    async def submit(self, form: dict):
        if self.busy:
            return
        self.busy = True
        self.error = ""
        yield
        try:
            await asyncio.to_thread(guest_bookings.request_manage_link, email=str(form.get("email", "")).strip(),
                                    reference=str(form.get("reference", "")).strip(), client_ip=self._client_ip())
        except ServiceError as exc:
            self.error = self._error_text(exc)
            self.busy = False
            return
        self.sent = translate("If the email address and the reference match a booking, we have emailed a new link "
                              "to it. Earlier links no longer work.", self.locale)
        self.busy = False
