"""Provider pages: my bookables (create / edit / deactivate), the availability editor
(weekly hours, closed days and special hours, event sessions) and the bookings of my
bookables (mark paid on site, completed, no-show, cancel with a reason).

Every handler calls the catalog / bookings / payments services with the signed-in
user's Actor; the services check the rights. Nothing here touches the database.
Admins see every provider's bookables and bookings (the catalog overview)."""
from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import re
import zoneinfo
from decimal import Decimal, InvalidOperation
from urllib.parse import urlencode

import reflex as rx
from babel.dates import format_skeleton
from babel.numbers import get_currency_precision

from booking_app.i18n import N_, babel_locale, translate
from booking_app.services import bookings, catalog, payments
from booking_app.services.errors import InvalidInput, NotFound, ServiceError
from booking_app.ui.state import fmt
from booking_app.ui.state.base import AppState

WEEKDAYS = (N_("Monday"), N_("Tuesday"), N_("Wednesday"), N_("Thursday"), N_("Friday"), N_("Saturday"),
            N_("Sunday"))
STATUS_LABELS = {
    "pending": N_("Pending"),
    "confirmed": N_("Confirmed"),
    "cancelled": N_("Cancelled"),
    "completed": N_("Completed"),
    "no_show": N_("No-show"),
}
PAYMENT_LABELS = {
    "none": N_("No payment"),
    "pending": N_("To pay"),
    "requires_action": N_("Awaiting customer"),
    "succeeded": N_("Paid"),
    "failed": N_("Failed"),
    "cancelled": N_("Cancelled"),
    "refunded": N_("Refunded"),
    "partially_refunded": N_("Partly refunded"),
}
ALL_TIMEZONES = sorted(zoneinfo.available_timezones() - {"localtime", "Factory"})
FORM_FIELDS = ("name", "description", "location", "duration_minutes", "capacity", "price", "currency", "timezone",
               "buffer_minutes", "min_notice_minutes", "max_advance_days", "cancel_cutoff_hours", "refund_percent",
               "reminder_hours")
# service field name → form field name (the price is entered as an amount, stored in cents;
# the reminders as hours before the start, stored as minutes)
FIELD_ALIASES = {"price_cents": "price", "buffer_before_minutes": "buffer_minutes",
                 "buffer_after_minutes": "buffer_minutes", "reminder_offsets": "reminder_hours"}
PAGE_SIZE = 100
MONTH_PAGE = 200  # bookings per list_bookings call (its maximum)
MONTH_MAX_BOOKINGS = 4000  # a month grid reads at most this many bookings
MONTH_PREVIEW = 3  # bookings listed in a month cell; the rest is "+N more"
# bookings that take the bookable's time (a pending one only while its hold lasts)
TAKES_TIME = ("pending", "confirmed", "completed", "no_show")


def sign_in_redirect(path: str) -> rx.event.EventSpec:
    from booking_app.ui import routes

    return rx.redirect(f"{routes.SIGN_IN}?{urlencode({'next': path})}")


async def row_action(state, row_id: str, call, done):
    """A button on one row of a list (a bookable, a booking): mark that row busy (one at a
    time), run `call(actor, id)` off the event loop, show `done(result)` or the service's
    error, then reload the list. The state has `busy_id`, `error`, `message`, `_fetch`."""
    rid = fmt.int_param(row_id)
    if rid is None or state.busy_id:
        return
    state.busy_id = rid
    state.error = state.message = ""
    yield
    actor = state._actor()
    try:
        state.message = done(await asyncio.to_thread(call, actor, rid))
    except ServiceError as exc:
        state.error = state._error_text(exc)
    state.busy_id = 0
    state._fetch(actor)


def _tz(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def _open_hours(actor, first: dt.date, last: dt.date, view_tz: str) -> dict[dt.date, list[tuple[dt.datetime, dt.datetime]]]:
    """The opening hours of the actor's own room/service bookables (weekly hours and date
    exceptions, each in its bookable's timezone), merged per local date of `view_tz`:
    date → sorted, non-overlapping (start, end) in `view_tz`. Events have sessions, not hours."""
    from booking_app.services import availability

    tz = _tz(view_tz)
    views, _total = catalog.search_bookables(actor=actor, provider_id=actor.id, limit=50)
    spans: list[tuple[dt.datetime, dt.datetime]] = []
    for v in views:
        if v.kind == "event":
            continue
        av = catalog.get_availability(bookable_id=v.id, actor=actor)
        rules: dict[int, list[tuple[dt.time, dt.time]]] = {}
        for r in av.weekly:
            rules.setdefault(r.weekday, []).append((dt.time.fromisoformat(r.start), dt.time.fromisoformat(r.end)))
        excs: dict[dt.date, list[tuple[bool, dt.time | None, dt.time | None]]] = {}
        for e in av.exceptions:
            excs.setdefault(e.date, []).append((e.closed, dt.time.fromisoformat(e.start) if e.start else None,
                                                dt.time.fromisoformat(e.end) if e.end else None))
        btz = _tz(v.timezone)
        day = first - dt.timedelta(days=1)  # a day either side: timezones shift hours across midnight
        while day <= last + dt.timedelta(days=1):
            spans += availability.open_ranges(day, btz, rules, excs)
            day += dt.timedelta(days=1)
    out: dict[dt.date, list[tuple[dt.datetime, dt.datetime]]] = {}
    day = first
    while day <= last:
        lo = dt.datetime.combine(day, dt.time(0), tzinfo=tz)
        hi = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=tz)
        merged: list[list[dt.datetime]] = []
        for a, b in sorted((max(a.astimezone(tz), lo), min(b.astimezone(tz), hi)) for a, b in spans):
            if b <= a:
                continue
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        out[day] = [(a, b) for a, b in merged]
        day += dt.timedelta(days=1)
    return out


Span = tuple[dt.datetime, dt.datetime]


def add_months(day: dt.date, months: int) -> dt.date:
    """The first day of the month `months` months after `day`'s month (before, if negative);
    ValueError beyond the years 1–9999."""
    index = day.year * 12 + day.month - 1 + int(months)
    year, month = divmod(index, 12)
    return dt.date(year, month + 1, 1)


def month_grid(month: dt.date) -> list[dt.date]:
    """The dates of the whole weeks (Monday–Sunday) that cover `month`'s month, in order:
    4, 5 or 6 weeks of 7 days, with the adjacent months' days that complete them (the
    calendar's very last week stops at 31 December 9999)."""
    first = month.replace(day=1)
    try:
        last = add_months(first, 1) - dt.timedelta(days=1)
    except ValueError:  # December 9999
        last = dt.date.max
    start = first - dt.timedelta(days=first.weekday())  # 1 January of year 1 is a Monday
    days = (last - start).days + 1 + min(6 - last.weekday(), (dt.date.max - last).days)
    return [start + dt.timedelta(days=i) for i in range(days)]


def span_minutes(spans: list[Span]) -> int:
    """The length of `spans` in whole minutes, on the clock (a 23- or 25-hour DST day counts
    as such: aware datetimes of one zone are compared in UTC, not by their wall time)."""
    utc = dt.timezone.utc
    return int(sum((b.astimezone(utc) - a.astimezone(utc)).total_seconds() for a, b in spans) // 60)


def free_spans(open_spans: list[Span], busy: list[Span]) -> list[Span]:
    """`open_spans` (sorted, not overlapping) minus every `busy` span (any order, may
    overlap or reach outside): the free spans, in the open spans' timezone."""
    utc = dt.timezone.utc
    # in UTC: aware datetimes of one zone compare by wall time, which a DST fold repeats
    taken = sorted(span for span in ((a.astimezone(utc), b.astimezone(utc)) for a, b in busy) if span[1] > span[0])
    out: list[Span] = []
    for a, b in open_spans:
        tz = a.tzinfo
        cursor, end = a.astimezone(utc), b.astimezone(utc)
        for x, y in taken:
            if y <= cursor:
                continue
            if x >= end:
                break
            if x > cursor:
                out.append((cursor.astimezone(tz), x.astimezone(tz)))
            cursor = max(cursor, y)
            if cursor >= end:
                break
        if cursor < end:
            out.append((cursor.astimezone(tz), end.astimezone(tz)))
    return out


def month_title(month: dt.date, locale: str) -> str:
    """"December 2025" in the locale's own order and words (first letter capitalised)."""
    text = format_skeleton("yMMMM", month, locale=babel_locale(locale))
    return text[:1].upper() + text[1:]


def price_to_cents(text: str, currency: str) -> int:
    """"12.50" → 1250 (the currency's minor units); InvalidInput on the `price` field."""
    raw = (text or "").strip().replace(",", ".")
    if not raw:
        return 0
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        raise InvalidInput(N_("Enter a price like 12.50."), field="price") from None
    digits = get_currency_precision(currency.upper()) if len(currency.strip()) == 3 else 2
    if not amount.is_finite() or amount < 0 or amount != amount.quantize(Decimal(1).scaleb(-digits)):
        raise InvalidInput(N_("Enter a price like 12.50."), field="price")
    return int(amount.scaleb(digits))


def cents_to_price(cents: int, currency: str) -> str:
    try:
        digits = get_currency_precision(currency.upper())
    except Exception:
        digits = 2
    return str((Decimal(int(cents)).scaleb(-digits)).quantize(Decimal(1).scaleb(-digits))) if digits else str(cents)


_HOURS_RE = re.compile(r"^(\d{1,5}(\.\d{0,3})?|\.\d{1,3})$")


def hours_to_offsets(text: str) -> list[int]:
    """"24, 2" → [1440, 120] (hours before the start → minutes; also "0.5" = 30 minutes).
    Empty = [] (the defaults). InvalidInput on the `reminder_hours` field."""
    parts = [p for p in re.split(r"[,;\u060c\s]+", (text or "").strip()) if p]
    max_hours = catalog.MAX_REMINDER_OFFSET_MINUTES // 60
    bad = InvalidInput(N_("Enter hours before the start, separated by commas (e.g. 24, 2), each at most {max}."),
                       field="reminder_hours", max=max_hours)
    if len(parts) > 50:
        raise bad
    minutes = []
    for part in parts:
        if not _HOURS_RE.match(part):
            raise bad
        value = int((Decimal(part) * 60).to_integral_value())
        if not 1 <= value <= catalog.MAX_REMINDER_OFFSET_MINUTES:
            raise bad
        minutes.append(value)
    return minutes


def offsets_to_hours(minutes: list[int]) -> str:
    """[1440, 120] → "24, 2" (15 minutes → "0.25"; hours_to_offsets reads it back exactly)."""
    out = []
    for m in minutes:
        hours = (Decimal(int(m)) / 60).quantize(Decimal("0.01"))
        out.append(str(hours.to_integral_value()) if hours == hours.to_integral_value() else
                   str(hours.normalize()))
    return ", ".join(out)


@dataclasses.dataclass
class TimeRange:
    start: str = "09:00"
    end: str = "17:00"


@dataclasses.dataclass
class DayHours:
    weekday: int = 0
    label: str = ""
    ranges: list[TimeRange] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class WeekDay:
    key: str = ""
    weekday: str = ""
    label: str = ""
    today: bool = False
    cards: list[dict[str, str]] = dataclasses.field(default_factory=list)
    open_label: str = ""  # "Open 09:00–17:00" (the viewer's own services' hours), "" without hours
    bands: list[dict[str, str]] = dataclasses.field(default_factory=list)  # {"start": "37.5%", "width": "…%"}


@dataclasses.dataclass
class MonthDay:
    key: str = ""  # ISO date
    number: str = ""  # the day of the month, in the locale's digits
    label: str = ""  # what a screen reader says: date, bookings, free time
    in_month: bool = True
    today: bool = False
    count: int = 0  # bookings that take time (see TAKES_TIME)
    previews: list[dict[str, str]] = dataclasses.field(default_factory=list)  # the first MONTH_PREVIEW
    more: str = ""  # "+2 more"
    state: str = ""  # "open" | "full" | "closed"; "" when no opening hours are known for the grid
    free_label: str = ""  # "Free 6 h 30 min", "Fully booked", "Closed"
    free_width: str = "0%"  # the free share of the open time (the bar under the day)


@dataclasses.dataclass
class DateException:
    date: str = ""
    closed: bool = True
    start: str = "09:00"
    end: str = "13:00"


class StaffState(AppState):
    """Shared by the provider and admin pages: who may be here."""

    denied: str = ""

    def _staff_actor(self, path: str, *, admin_only: bool = False):
        """(actor, redirect): the signed-in provider/admin, or a redirect / a denial message."""
        actor = self._actor()
        if actor.is_guest:
            return None, sign_in_redirect(path)
        allowed = actor.is_admin or (actor.is_provider and not admin_only)
        if not allowed:
            msgid = (N_("This page is for administrators only.") if admin_only
                     else N_("This page is for providers and administrators."))
            self.denied = translate(msgid, self.locale)
            return None, None
        self.denied = ""
        return actor, None


# ---------------------------------------------------------------------------------------
# My bookables
# ---------------------------------------------------------------------------------------

class ProviderBookablesState(StaffState):
    items: list[dict[str, str]] = []
    total: int = 0
    show_inactive: bool = True
    error: str = ""
    message: str = ""
    busy_id: int = 0
    is_admin_view: bool = False

    @rx.event
    def load(self):
        from booking_app.ui import routes

        self.error = ""
        self.busy_id = 0
        actor, redirect = self._staff_actor(routes.PROVIDER)
        if redirect:
            return redirect
        if actor is None:
            return
        self.is_admin_view = actor.is_admin
        self._fetch(actor)

    def _fetch(self, actor) -> None:
        try:
            views, total = catalog.search_bookables(
                actor=actor, provider_id=None if actor.is_admin else actor.id,
                include_inactive=self.show_inactive, limit=PAGE_SIZE)
        except ServiceError as exc:
            self.error = self._error_text(exc)
            return
        loc = self.locale
        self.total = total
        self.items = [{
            "id": str(v.id), "name": v.name, "kind": fmt.kind_label(v.kind, loc), "location": v.location,
            "provider": v.provider_name, "duration": fmt.duration(v.duration_minutes, loc),
            "capacity": str(v.capacity), "price": fmt.money(v.price_cents, v.currency, loc),
            "active": "1" if v.is_active else "",
            "status": translate("Active", self.locale) if v.is_active else translate("Inactive", self.locale),
        } for v in views]

    @rx.event
    def toggle_inactive(self, value: bool):
        self.show_inactive = bool(value)
        actor = self._actor()
        if not actor.is_guest:
            self._fetch(actor)

    async def _set_active(self, bookable_id: str, fn, done_msgid: str, **kwargs):
        async for update in row_action(self, bookable_id, lambda actor, bid: fn(actor=actor, bookable_id=bid, **kwargs),
                                        lambda view: translate(done_msgid, self.locale, name=view.name)):
            yield update

    @rx.event
    async def deactivate(self, bookable_id: str):
        async for update in self._set_active(bookable_id, catalog.deactivate,
                                             N_("“{name}” is no longer bookable.")):
            yield update

    @rx.event
    async def reactivate(self, bookable_id: str):
        async for update in self._set_active(bookable_id, catalog.update_bookable,
                                             N_("“{name}” can be booked again."), is_active=True):
            yield update


# ---------------------------------------------------------------------------------------
# One bookable: details form, availability editor, event sessions
# ---------------------------------------------------------------------------------------

def _empty_form(timezone: str) -> dict[str, str]:
    return {"kind": "service", "name": "", "description": "", "location": "", "duration_minutes": "60",
            "capacity": "1", "price": "0.00", "currency": "EUR", "timezone": timezone, "buffer_minutes": "0",
            "min_notice_minutes": "0", "max_advance_days": "365", "cancel_cutoff_hours": "0",
            "refund_percent": "100", "reminder_hours": ""}


class BookableEditorState(StaffState):
    bookable_id: int = 0
    kind: str = "service"
    title: str = ""
    is_active: bool = True
    form: dict[str, str] = {}
    form_key: int = 0
    errors: dict[str, str] = {}
    form_error: str = ""
    saved: str = ""
    saving: bool = False
    not_found: str = ""
    # availability
    days: list[DayHours] = []
    exceptions: list[DateException] = []
    hours_error: str = ""
    hours_saved: str = ""
    hours_saving: bool = False
    outside: list[dict[str, str]] = []
    # event sessions
    sessions: list[dict[str, str]] = []
    session_date: str = ""
    session_time: str = "18:00"
    session_capacity: str = ""
    session_error: str = ""
    session_saving: bool = False

    @rx.var(cache=True)
    def timezones(self) -> list[str]:
        return ALL_TIMEZONES

    @rx.var(cache=True)
    def is_new(self) -> bool:
        return self.bookable_id == 0

    @rx.var(cache=True)
    def is_event(self) -> bool:
        return self.kind == "event"

    @rx.var(cache=True)
    def reminder_defaults(self) -> str:
        """The site's default reminder times in hours (what an empty field means)."""
        return offsets_to_hours(catalog.default_reminder_offsets())

    @rx.var(cache=True)
    def reminder_hint(self) -> str:
        return translate("Separate several times with commas, e.g. 24, 2. Leave empty to use the defaults: {hours}.",
                         self.locale, hours=self.reminder_defaults or "–")

    @rx.event
    def load(self):
        from booking_app.ui import routes

        params = self.router.url.query_parameters
        self.errors, self.form_error, self.saved, self.not_found = {}, "", "", ""
        self.hours_error = self.hours_saved = self.session_error = ""
        self.outside = []
        self.saving = self.hours_saving = self.session_saving = False
        raw_id = params.get("id", "")
        path = routes.PROVIDER_BOOKABLE + (f"?id={raw_id}" if raw_id else "")
        actor, redirect = self._staff_actor(path)
        if redirect:
            return redirect
        if actor is None:
            return
        self.form_key += 1
        if not raw_id:
            self.bookable_id = 0
            self.kind = "service"
            self.is_active = True
            self.title = translate("New bookable", self.locale)
            self.form = _empty_form(self.timezone or "UTC")
            self.days, self.exceptions, self.sessions = [], [], []
            return
        bid = fmt.int_param(raw_id)
        try:
            if bid is None:
                raise NotFound(N_("This service does not exist."))
            view = catalog.get_bookable(bookable_id=bid, actor=actor)
            if not catalog.can_manage(actor, _Owner(view.provider_id)):
                raise NotFound(N_("This service does not exist."))
            avail = catalog.get_availability(bookable_id=bid, actor=actor)
        except ServiceError as exc:
            self.not_found = self._error_text(exc)
            self.bookable_id = 0
            return
        self.bookable_id = view.id
        self.kind = view.kind
        self.is_active = view.is_active
        self.title = view.name
        self.form = {
            "kind": view.kind, "name": view.name, "description": view.description, "location": view.location,
            "duration_minutes": str(view.duration_minutes), "capacity": str(view.capacity),
            "price": cents_to_price(view.price_cents, view.currency), "currency": view.currency,
            "timezone": view.timezone, "buffer_minutes": str(view.buffer_minutes),
            "min_notice_minutes": str(view.min_notice_minutes), "max_advance_days": str(view.max_advance_days),
            "cancel_cutoff_hours": str(view.cancel_cutoff_hours), "refund_percent": str(view.refund_percent),
            "reminder_hours": offsets_to_hours(view.reminder_offsets),
        }
        self._set_hours(avail)
        self.session_capacity = str(view.capacity)
        self.session_date = (dt.datetime.now(_tz(view.timezone)).date() + dt.timedelta(days=7)).isoformat()
        self._load_sessions(actor)

    # ---- details -------------------------------------------------------------------------
    @rx.event
    def set_kind(self, value: str):
        if value in catalog.KINDS:
            self.kind = value
            self.form = {**self.form, "kind": value}

    @rx.event
    async def save(self, data: dict):
        from booking_app.ui import routes

        if self.saving:
            return
        self.saving = True
        self.errors, self.form_error, self.saved = {}, "", ""
        yield
        values = {k: str(data.get(k, "") or "").strip() for k in FORM_FIELDS}
        self.form = {**self.form, **values}
        actor = self._actor()
        try:
            fields: dict = {k: values[k] for k in FORM_FIELDS if k not in ("price", "reminder_hours")}
            fields["price_cents"] = price_to_cents(values["price"], values["currency"] or "EUR")
            fields["reminder_offsets"] = hours_to_offsets(values["reminder_hours"])
            if self.bookable_id:
                view = await asyncio.to_thread(catalog.update_bookable, actor=actor, bookable_id=self.bookable_id,
                                               **fields)
            else:
                kind = str(data.get("kind", self.kind) or self.kind)
                view = await asyncio.to_thread(catalog.create_bookable, actor=actor, kind=kind, **fields)
        except InvalidInput as exc:
            name = FIELD_ALIASES.get(exc.field or "", exc.field or "")
            if name in FORM_FIELDS or name == "kind":
                self.errors = {name: self._error_text(exc)}
                self.form_error = translate("Please correct the marked field.", self.locale)
            else:
                self.form_error = self._error_text(exc)
            self.saving = False
            return
        except ServiceError as exc:
            self.form_error = self._error_text(exc)
            self.saving = False
            return
        self.saving = False
        if not self.bookable_id:
            yield rx.redirect(f"{routes.PROVIDER_BOOKABLE}?id={view.id}&created=1")
            return
        self.title = view.name
        self.form["price"] = cents_to_price(view.price_cents, view.currency)
        self.form["reminder_hours"] = offsets_to_hours(view.reminder_offsets)
        self.saved = translate("Your changes are saved.", self.locale)

    # ---- availability --------------------------------------------------------------------
    def _set_hours(self, avail: catalog.AvailabilityView) -> None:
        days = [DayHours(weekday=i, label=translate(WEEKDAYS[i], self.locale), ranges=[]) for i in range(7)]
        for r in avail.weekly:
            days[r.weekday].ranges.append(TimeRange(start=r.start, end=r.end))
        self.days = days
        self.exceptions = [DateException(date=e.date.isoformat(), closed=e.closed, start=e.start or "09:00",
                                         end=e.end or "13:00") for e in avail.exceptions]

    @rx.event
    def add_range(self, weekday: int):
        days = list(self.days)
        day = days[int(weekday)]
        last_end = day.ranges[-1].end if day.ranges else ""
        start, end = "09:00", "17:00"
        if last_end and last_end <= "21:00":  # the next range starts an hour after the last one
            h = int(last_end[:2]) + 1
            start, end = f"{h:02d}:00", f"{min(h + 2, 23):02d}:00"
        day.ranges = [*day.ranges, TimeRange(start=start, end=end)]
        self.days = days
        self.hours_saved = ""

    @rx.event
    def remove_range(self, weekday: int, index: int):
        days = list(self.days)
        day = days[int(weekday)]
        day.ranges = [r for i, r in enumerate(day.ranges) if i != int(index)]
        self.days = days
        self.hours_saved = ""

    @rx.event
    def set_range(self, weekday: int, index: int, which: str, value: str):
        days = list(self.days)
        rng = days[int(weekday)].ranges[int(index)]
        if which == "start":
            rng.start = str(value)[:5]
        else:
            rng.end = str(value)[:5]
        self.days = days
        self.hours_saved = ""

    @rx.event
    def copy_to_weekdays(self, weekday: int):
        """Copy one day's hours to Monday–Friday."""
        days = list(self.days)
        src = days[int(weekday)].ranges
        for i in range(5):
            days[i].ranges = [TimeRange(start=r.start, end=r.end) for r in src]
        self.days = days
        self.hours_saved = ""

    @rx.event
    def add_exception(self):
        tz = _tz(self.form.get("timezone", "UTC"))
        day = (dt.datetime.now(tz).date() + dt.timedelta(days=1)).isoformat()
        self.exceptions = [*self.exceptions, DateException(date=day, closed=True)]
        self.hours_saved = ""

    @rx.event
    def remove_exception(self, index: int):
        self.exceptions = [e for i, e in enumerate(self.exceptions) if i != int(index)]
        self.hours_saved = ""

    @rx.event
    def set_exception(self, index: int, which: str, value):
        rows = list(self.exceptions)
        row = rows[int(index)]
        if which == "closed":
            row.closed = str(value) == "closed"
        elif which in ("date", "start", "end"):
            setattr(row, which, str(value)[:10 if which == "date" else 5])
        self.exceptions = rows
        self.hours_saved = ""

    @rx.event
    async def save_hours(self):
        if self.hours_saving or not self.bookable_id:
            return
        self.hours_saving = True
        self.hours_error = self.hours_saved = ""
        self.outside = []
        yield
        weekly = [{"weekday": d.weekday, "start": r.start, "end": r.end} for d in self.days for r in d.ranges]
        excs = [{"date": e.date, "closed": True} if e.closed else {"date": e.date, "start": e.start, "end": e.end}
                for e in self.exceptions]
        actor = self._actor()
        try:
            view = await asyncio.to_thread(catalog.set_availability, actor=actor, bookable_id=self.bookable_id,
                                           weekly=weekly, exceptions=excs)
        except ServiceError as exc:
            self.hours_error = self._hours_error_text(exc)
            self.hours_saving = False
            return
        self._set_hours(view)
        tz = self.form.get("timezone", "UTC")
        self.outside = [{"reference": o.reference, "when": fmt.datetime_(o.start, tz, self.locale, "medium"),
                         "status": translate(STATUS_LABELS.get(o.status, o.status), self.locale),
                         "seats": str(o.quantity)}
                        for o in view.outside_bookings]
        self.hours_saved = translate("The opening hours are saved.", self.locale)
        self.hours_saving = False

    def _hours_error_text(self, exc: ServiceError) -> str:
        text = self._error_text(exc)
        field = exc.field or ""
        if field.startswith("weekly[") and "]" in field:
            flat = [(d.weekday, r) for d in self.days for r in d.ranges]
            try:
                wd = flat[int(field[7:field.index("]")])][0]
                return f"{translate(WEEKDAYS[wd], self.locale)}: {text}"
            except (ValueError, IndexError):
                return text
        if field.startswith("exceptions[") and "]" in field:
            try:
                row = self.exceptions[int(field[11:field.index("]")])]
                return f"{row.date}: {text}"
            except (ValueError, IndexError):
                return text
        return text

    # ---- event sessions ------------------------------------------------------------------
    def _load_sessions(self, actor) -> None:
        if self.kind != "event" or not self.bookable_id:
            self.sessions = []
            return
        tz = self.form.get("timezone", "UTC")
        try:
            rows = catalog.list_event_sessions(bookable_id=self.bookable_id, actor=actor,
                                               date_from=dt.datetime.now(_tz(tz)).date())
        except ServiceError as exc:
            self.session_error = self._error_text(exc)
            return
        self.sessions = [{"id": str(r.id),
                          "when": f"{fmt.date_(r.start, self.locale, 'medium', tz)} · "
                                  f"{fmt.time_(r.start, tz, self.locale)}–{fmt.time_(r.end, tz, self.locale)}",
                          "capacity": str(r.capacity)} for r in rows]

    @rx.event
    def set_session_date(self, value: str):
        self.session_date = str(value)[:10]

    @rx.event
    def set_session_time(self, value: str):
        self.session_time = str(value)[:5]

    @rx.event
    def set_session_capacity(self, value: str):
        self.session_capacity = str(value)[:7]

    @rx.event
    async def add_session(self):
        if self.session_saving or not self.bookable_id:
            return
        self.session_saving = True
        self.session_error = ""
        yield
        actor = self._actor()
        tz = _tz(self.form.get("timezone", "UTC"))
        try:
            try:
                day = dt.date.fromisoformat(self.session_date)
                t = dt.time.fromisoformat(self.session_time)
            except ValueError:
                raise InvalidInput(N_("Pick a date and a time."), field="start") from None
            start = dt.datetime.combine(day, t, tzinfo=tz)
            cap = self.session_capacity.strip() or None
            await asyncio.to_thread(catalog.add_event_session, actor=actor, bookable_id=self.bookable_id,
                                    start=start, capacity=cap)
        except ServiceError as exc:
            self.session_error = self._error_text(exc)
            self.session_saving = False
            return
        self._load_sessions(actor)
        self.session_saving = False


@dataclasses.dataclass(frozen=True)
class _Owner:
    """Just enough of a Bookable for catalog.can_manage()."""

    provider_id: int


# ---------------------------------------------------------------------------------------
# Bookings of my bookables
# ---------------------------------------------------------------------------------------

class ProviderBookingsState(StaffState):
    status: str = ""
    date_from: str = ""
    date_to: str = ""
    rows: list[dict[str, str]] = []
    total: int = 0
    error: str = ""
    message: str = ""
    busy_id: int = 0
    loading: bool = False
    cancel_id: int = 0
    cancel_open: bool = False
    cancel_text: str = ""
    cancel_error: str = ""
    resched_id: int = 0
    resched_open: bool = False
    resched_text: str = ""
    resched_date: str = ""
    resched_slots: list[dict[str, str]] = []
    resched_choice: str = ""
    resched_error: str = ""
    mode: str = "list"  # list | week | month
    week_from: str = ""
    week_title: str = ""
    week: list[WeekDay] = []
    month_from: str = ""  # ISO date of the month's first day
    month_title: str = ""
    month_weekdays: list[dict[str, str]] = []  # {"short": "Mo", "long": "Mon"}, Monday first
    month: list[MonthDay] = []
    month_note: str = ""

    @rx.event
    def load(self):
        from booking_app.ui import routes

        self.error = self.message = ""
        self.busy_id = 0
        self.cancel_open = self.resched_open = False
        actor, redirect = self._staff_actor(routes.PROVIDER_BOOKINGS)
        if redirect:
            return redirect
        if actor is None:
            return
        if not self.date_from:
            today = dt.datetime.now(_tz(self._view_tz())).date()
            self.date_from = (today - dt.timedelta(days=7)).isoformat()
            self.date_to = (today + dt.timedelta(days=60)).isoformat()
        if not self.week_from:
            today = dt.datetime.now(_tz(self._view_tz())).date()
            self.week_from = (today - dt.timedelta(days=today.weekday())).isoformat()
        if not self.month_from:
            self.month_from = dt.datetime.now(_tz(self._view_tz())).date().replace(day=1).isoformat()
        self._fetch(actor)

    def _fetch(self, actor) -> None:
        if self.mode == "week":
            self._fetch_week(actor)
        elif self.mode == "month":
            self._fetch_month(actor)
        else:
            self._fetch_list(actor)

    def _fetch_week(self, actor) -> None:
        """The week calendar: Monday–Sunday of `week_from`, every booking (all statuses)."""
        from dataclasses import replace

        try:
            first = dt.date.fromisoformat(self.week_from)
        except ValueError:
            first = dt.datetime.now(_tz(self._view_tz())).date()
        first -= dt.timedelta(days=first.weekday())
        self.week_from = first.isoformat()
        last = first + dt.timedelta(days=6)
        tz, loc = self._view_tz(), self.locale
        try:
            views, _total = bookings.list_bookings(actor=replace(actor, timezone=tz), scope="provider",
                                                   date_from=first, date_to=last, limit=200)
        except ServiceError as exc:
            self.error = self._error_text(exc)
            self.week = []
            return
        today = dt.datetime.now(_tz(tz)).date()
        days = {first + dt.timedelta(days=i): [] for i in range(7)}
        for v in views:
            day = fmt.local(v.start, tz).date()
            if day in days:
                days[day].append({
                    "time": f"{fmt.time_(v.start, tz, loc)}–{fmt.time_(v.end, tz, loc)}", "service": v.service_name,
                    "customer": v.customer_name or (translate("Account #{id}", self.locale, id=v.user_id)
                                                    if v.user_id else ""),
                    "status_label": translate(STATUS_LABELS.get(v.status, v.status), self.locale),
                    "status_color": fmt.STATUS_COLORS.get(v.status, "gray"), "reference": v.reference,
                    "seats": str(v.quantity),
                })
        try:
            hours = _open_hours(actor, first, last, tz)
        except ServiceError:
            hours = {}
        self.week = [WeekDay(key=d.isoformat(), weekday=translate(WEEKDAYS[d.weekday()], self.locale),
                             label=fmt.date_(d, loc, "medium"), today=d == today, cards=items,
                             **self._day_hours(d, hours.get(d, []), tz))
                     for d, items in days.items()]
        self.week_title = f"{fmt.date_(first, loc, 'medium')} – {fmt.date_(last, loc, 'medium')}"

    def _day_hours(self, day: dt.date, ranges: list[tuple[dt.datetime, dt.datetime]], tz: str) -> dict:
        """The open-hours band of one day: label and positions (share of the day, in %)."""
        if not ranges:
            return {"open_label": "", "bands": []}
        utc = dt.timezone.utc
        lo = dt.datetime.combine(day, dt.time(0), tzinfo=_tz(tz)).astimezone(utc)
        length = (dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=_tz(tz)).astimezone(utc)
                  - lo).total_seconds()
        bands = [{"start": f"{100 * (a.astimezone(utc) - lo).total_seconds() / length:.2f}%",
                  "width": f"{100 * (b.astimezone(utc) - a.astimezone(utc)).total_seconds() / length:.2f}%"} for a, b in ranges]
        spans = ", ".join(f"{fmt.time_(a, tz, self.locale)}–{fmt.time_(b, tz, self.locale)}" for a, b in ranges)
        return {"open_label": translate("Open {hours}", self.locale, hours=spans), "bands": bands}

    # ---- month calendar -------------------------------------------------------------------
    def _month_bookings(self, actor, first: dt.date, last: dt.date, tz: str) -> tuple[list, bool]:
        """Every booking starting between `first` and `last` (local dates of `tz`), page by
        page; True when there were more than MONTH_MAX_BOOKINGS."""
        from dataclasses import replace

        found: list = []
        while True:
            page, total = bookings.list_bookings(actor=replace(actor, timezone=tz), scope="provider",
                                                 date_from=first, date_to=last, limit=MONTH_PAGE,
                                                 offset=len(found))
            found += page
            if not page or len(found) >= total:
                return found, False
            if len(found) >= MONTH_MAX_BOOKINGS:
                return found, True

    def _fetch_month(self, actor) -> None:
        """The month calendar: whole weeks around the month of `month_from`; per day the
        bookings that take time (count, the first few) and the free time (opening hours of
        the viewer's own rooms and services minus the time booked)."""
        tz, loc = self._view_tz(), self.locale
        zone = _tz(tz)
        today = dt.datetime.now(zone).date()
        try:
            month = dt.date.fromisoformat(self.month_from).replace(day=1)
        except ValueError:
            month = today.replace(day=1)
        self.month_from = month.isoformat()
        dates = month_grid(month)
        first, last = dates[0], dates[-1]
        self.month_title = month_title(month, loc)
        self.month_weekdays = [{"short": fmt.date_(d, loc, "EEEEEE"), "long": fmt.date_(d, loc, "EEE")}
                               for d in dates[:7]]
        self.month_note = ""
        try:
            views, truncated = self._month_bookings(actor, first, last, tz)
        except ServiceError as exc:
            self.error = self._error_text(exc)
            self.month = []
            return
        try:
            hours = _open_hours(actor, first, last, tz)
        except ServiceError:
            hours = {}
        now = dt.datetime.now(dt.timezone.utc)
        per_day: dict[dt.date, list] = {d: [] for d in dates}
        busy: dict[dt.date, list[Span]] = {d: [] for d in dates}
        for v in views:
            if v.status not in TAKES_TIME or (v.status == "pending" and v.hold_expires_at is not None
                                              and v.hold_expires_at <= now):
                continue
            day = fmt.local(v.start, tz).date()
            if day in per_day:
                per_day[day].append(v)
            # the time it takes, on every local date it touches (it may run past midnight)
            touched = day
            while touched <= fmt.local(v.end, tz).date() and touched <= last:
                if touched in busy:
                    busy[touched].append((v.start, v.end))
                touched += dt.timedelta(days=1)
        known = any(hours.get(d) for d in dates)
        if truncated:
            self.month_note = translate("Only the first {count} bookings are counted.", loc, count=len(views))
        elif not known:
            self.month_note = translate("No opening hours on these dates, so free time is not shown.", loc)
        out = []
        for d in dates:
            items = per_day[d]
            opened = hours.get(d, [])
            free = span_minutes(free_spans(opened, busy[d]))
            total = span_minutes(opened)
            if not known:
                state, free_label = "", ""
            elif not opened:
                state, free_label = "closed", translate("Closed", loc)
            elif free <= 0:
                state, free_label = "full", translate("Fully booked", loc)
            else:
                state, free_label = "open", translate("Free {duration}", loc, duration=fmt.duration(free, loc))
            count_text = translate("Bookings: {count}", loc, count=len(items))
            out.append(MonthDay(
                key=d.isoformat(), number=fmt.date_(d, loc, "d"),
                label=". ".join(x for x in (fmt.date_(d, loc, "full"), count_text, free_label) if x),
                in_month=d.month == month.month, today=d == today, count=len(items),
                previews=[{"time": fmt.time_(v.start, tz, loc), "reference": v.reference,
                           "text": " · ".join(x for x in (v.service_name, v.customer_name or "") if x),
                           "color": fmt.STATUS_COLORS.get(v.status, "gray")} for v in items[:MONTH_PREVIEW]],
                more=(fmt.more_count(len(items) - MONTH_PREVIEW, loc)
                      if len(items) > MONTH_PREVIEW else ""),
                state=state, free_label=free_label,
                free_width=f"{100 * free / total:.1f}%" if total else "0%",
            ))
        self.month = out

    @rx.event
    def shift_month(self, months: int):
        today = dt.datetime.now(_tz(self._view_tz())).date().replace(day=1)
        try:
            current = dt.date.fromisoformat(self.month_from).replace(day=1)
        except ValueError:
            current = today
        step = int(months)
        try:
            self.month_from = (today if step == 0 else add_months(current, max(-1200, min(1200, step)))).isoformat()
        except ValueError:  # beyond the calendar's years: stay
            return
        self.error = self.message = ""
        self._fetch(self._actor())

    @rx.event
    def open_day(self, key: str):
        """A day of the month calendar → the week calendar of its week."""
        try:
            day = dt.date.fromisoformat(str(key))
        except ValueError:
            return
        self.week_from = (day - dt.timedelta(days=day.weekday())).isoformat()
        self.mode = "week"
        self.error = self.message = ""
        self._fetch(self._actor())

    @rx.event
    def set_mode(self, mode: str):
        if mode in ("list", "week", "month"):
            self.mode = mode
            self.error = self.message = ""
            self._fetch(self._actor())

    @rx.event
    def shift_week(self, weeks: int):
        try:
            first = dt.date.fromisoformat(self.week_from)
        except ValueError:
            first = dt.datetime.now(_tz(self._view_tz())).date()
        if int(weeks) == 0:
            first = dt.datetime.now(_tz(self._view_tz())).date()
        else:
            first += dt.timedelta(weeks=max(-520, min(520, int(weeks))))
        self.week_from = first.isoformat()
        self._fetch(self._actor())

    def _fetch_list(self, actor) -> None:
        from dataclasses import replace

        try:
            # dates are read in the viewer's timezone
            views, total = bookings.list_bookings(
                actor=replace(actor, timezone=self._view_tz()), scope="provider", status=self.status or None,
                date_from=self.date_from or None, date_to=self.date_to or None, limit=200)
        except ServiceError as exc:
            self.error = self._error_text(exc)
            self.rows, self.total = [], 0
            return
        now = dt.datetime.now(dt.timezone.utc)
        loc, tz = self.locale, self._view_tz()
        rows = []
        for v in views:
            active = v.status in ("pending", "confirmed")
            customer = v.customer_name or (translate("Account #{id}", self.locale, id=v.user_id) if v.user_id else "")
            rows.append({
                "id": str(v.id), "reference": v.reference, "service": v.service_name,
                "service_id": str(v.service_id), "tz": v.timezone,
                "local_date": fmt.local(v.start, v.timezone).date().isoformat(),
                "when": f"{fmt.date_(v.start, loc, 'medium', tz)} {fmt.time_(v.start, tz, loc)}",
                "customer": customer, "contact": v.customer_email or "", "seats": str(v.quantity),
                "status": v.status, "status_label": translate(STATUS_LABELS.get(v.status, v.status), self.locale),
                "status_color": fmt.STATUS_COLORS.get(v.status, "gray"),
                "payment": v.payment_status, "payment_label": translate(PAYMENT_LABELS.get(v.payment_status,
                                                                                      v.payment_status), self.locale),
                "price": fmt.money(v.price_cents * 1, v.currency, loc),
                "notes": v.notes or "",
                "can_pay": "1" if active and v.payment_status == "pending" else "",
                "can_finish": "1" if v.status == "confirmed" and v.start <= now else "",
                "can_cancel": "1" if active else "",
            })
        self.rows, self.total = rows, total

    @rx.event
    def set_status(self, value: str):
        self.status = value if value in STATUS_LABELS else ""

    @rx.event
    def set_date_from(self, value: str):
        self.date_from = str(value or "")[:10]

    @rx.event
    def set_date_to(self, value: str):
        self.date_to = str(value or "")[:10]

    @rx.event
    def apply_filters(self, data: dict):
        self.status = str(data.get("status", self.status) or "")
        if self.status not in ("", *STATUS_LABELS):
            self.status = ""
        self.date_from = str(data.get("date_from", self.date_from) or "")[:10]
        self.date_to = str(data.get("date_to", self.date_to) or "")[:10]
        self.error = self.message = ""
        self._fetch(self._actor())

    @rx.event
    def clear_filters(self):
        self.status = ""
        self.date_from = self.date_to = ""
        self.error = self.message = ""
        self._fetch(self._actor())

    async def _act(self, booking_id: str, fn, done_msgid: str, **kwargs):
        async for update in row_action(self, booking_id, lambda actor, bid: fn(actor=actor, booking_id=bid, **kwargs),
                                        lambda _result: translate(done_msgid, self.locale)):
            yield update

    @rx.event
    async def mark_paid(self, booking_id: str):
        async for update in self._act(booking_id, payments.mark_paid, N_("The payment is recorded as received.")):
            yield update

    @rx.event
    async def complete(self, booking_id: str):
        async for update in self._act(booking_id, bookings.complete, N_("The booking is marked completed.")):
            yield update

    @rx.event
    async def no_show(self, booking_id: str):
        async for update in self._act(booking_id, bookings.mark_no_show, N_("The booking is marked as a no-show.")):
            yield update

    @rx.event
    def ask_cancel(self, booking_id: str):
        bid = fmt.int_param(booking_id)
        row = next((r for r in self.rows if r["id"] == str(bid)), None)
        if row is None:
            return
        self.cancel_id = bid or 0
        self.cancel_error = ""
        self.cancel_text = translate("Cancel {service} on {when} ({reference})? The customer is told and gets "
                                   "back what was paid.", self.locale, service=row["service"], when=row["when"],
                                   reference=row["reference"])
        self.cancel_open = True

    @rx.event
    def set_cancel_open(self, value: bool):
        self.cancel_open = bool(value)

    @rx.event
    async def confirm_cancel(self, data: dict):
        if self.busy_id or not self.cancel_id:
            return
        reason = str(data.get("reason", "") or "").strip()
        self.busy_id = self.cancel_id
        self.cancel_error = ""
        yield
        actor = self._actor()
        try:
            await asyncio.to_thread(payments.cancel_and_refund, actor=actor, booking_id=self.cancel_id, reason=reason or None)
        except ServiceError as exc:
            self.cancel_error = self._error_text(exc)
            self.busy_id = 0
            return
        self.busy_id = 0
        self.cancel_open = False
        self.cancel_id = 0
        self.message = translate("The booking is cancelled and the customer is told.", self.locale)
        self._fetch(actor)

    # ---- reschedule: pick a free time of the same bookable ---------------------------------
    def _resched_row(self) -> dict[str, str] | None:
        return next((r for r in self.rows if r["id"] == str(self.resched_id)), None)

    def _load_resched_slots(self) -> None:
        from booking_app.services import availability

        row = self._resched_row()
        self.resched_slots, self.resched_choice = [], ""
        if row is None:
            return
        try:
            found = availability.slots(bookable_id=int(row["service_id"]), date_from=self.resched_date,
                                       date_to=self.resched_date, actor=self._actor())
        except ServiceError as exc:
            self.resched_error = self._error_text(exc)
            return
        tz, loc = row["tz"], self.locale
        self.resched_slots = [{"value": x.start.isoformat(),
                               "label": f"{fmt.time_(x.start, tz, loc)}–{fmt.time_(x.end, tz, loc)}"}
                              for x in found]
        if self.resched_slots:
            self.resched_choice = self.resched_slots[0]["value"]

    @rx.event
    def ask_reschedule(self, booking_id: str):
        bid = fmt.int_param(booking_id)
        self.resched_id = bid or 0
        row = self._resched_row()
        if row is None:
            return
        self.resched_error = ""
        self.resched_text = translate("Move {service} of {when} ({reference}) to another free time. The customer is "
                                    "told.", self.locale, service=row["service"], when=row["when"],
                                    reference=row["reference"])
        self.resched_date = row["local_date"]
        self._load_resched_slots()
        self.resched_open = True

    @rx.event
    def set_resched_open(self, value: bool):
        self.resched_open = bool(value)

    @rx.event
    def set_resched_date(self, value: str):
        self.resched_date = str(value)[:10]
        self.resched_error = ""
        self._load_resched_slots()

    @rx.event
    def set_resched_choice(self, value: str):
        if any(x["value"] == value for x in self.resched_slots):
            self.resched_choice = value

    @rx.event
    async def confirm_reschedule(self):
        if self.busy_id or not self.resched_id:
            return
        if not self.resched_choice:
            self.resched_error = translate("Pick a new time.", self.locale)
            return
        self.busy_id = self.resched_id
        self.resched_error = ""
        yield
        actor = self._actor()
        try:
            await asyncio.to_thread(bookings.reschedule, actor=actor, booking_id=self.resched_id,
                                    start=self.resched_choice)
        except ServiceError as exc:
            self.resched_error = self._error_text(exc)
            self.busy_id = 0
            self._load_resched_slots()
            return
        self.busy_id = 0
        self.resched_open = False
        self.resched_id = 0
        self.message = translate("The booking is moved and the customer is told.", self.locale)
        self._fetch(actor)
