"""One bookable, for its provider or an admin: the details form (new or existing), the
availability editor (weekly hours, closed days and special hours) and an event's sessions.

Prices are typed as amounts (services/money.py) and reminder times as hours before the
start (services/reminders.py); the catalog checks everything else and the rights."""
from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import zoneinfo

import reflex as rx

from booking_app.i18n import N_, translate
from booking_app.services import catalog, money, reminders, sessions
from booking_app.services.errors import InvalidInput, NotFound, ServiceError
from booking_app.services.validation import zone
from booking_app.services.bookable_access import can_manage
from booking_app.ui import paths
from booking_app.ui.components.payment_summary import EDITOR_ALIASES, EDITOR_FIELDS, editor_fields, editor_form
from booking_app.ui.state import fmt
from booking_app.ui.state.base import relocalized
from booking_app.ui.state.reauth import ask_reauth
from booking_app.ui.state.staff import STATUS_LABELS, WEEKDAYS, StaffState

ALL_TIMEZONES = sorted(zoneinfo.available_timezones() - {"localtime", "Factory"})
FORM_FIELDS = ("name", "description", "location", "duration_minutes", "capacity", "price", "currency", "timezone",
               "buffer_minutes", "min_notice_minutes", "max_advance_days", "cancel_cutoff_hours", "refund_percent",
               "reminder_hours", "approval_expiry_hours", *EDITOR_FIELDS)
# service field name → form field name (the price is entered as an amount, stored in cents;
# the reminders as hours before the start, stored as minutes)
FIELD_ALIASES = {"price_cents": "price", "buffer_before_minutes": "buffer_minutes",
                 "buffer_after_minutes": "buffer_minutes", "reminder_offsets": "reminder_hours", **EDITOR_ALIASES}


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
class DateException:
    date: str = ""
    closed: bool = True
    start: str = "09:00"
    end: str = "13:00"


#: a new bookable's weekly hours (editable before it is created, saved with it)
DEFAULT_HOURS = {weekday: [("09:00", "17:00")] for weekday in range(5)}


def _empty_form(timezone: str) -> dict[str, str]:
    return {"kind": "service", "name": "", "description": "", "location": "", "duration_minutes": "60",
            "capacity": "1", "price": "0.00", "currency": fmt.DEFAULT_CURRENCY, "timezone": timezone,
            "buffer_minutes": "0",
            "min_notice_minutes": "0", "max_advance_days": "365", "cancel_cutoff_hours": "0",
            "refund_percent": "100", "reminder_hours": "", "requires_approval": "", "approval_expiry_hours": "",
            **{name: "" for name in EDITOR_FIELDS}}  # deposits and fees (issue 26)


@relocalized(paths.PROVIDER_BOOKABLE)
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
        return reminders.reminder_hours_text(catalog.default_reminder_offsets())

    @rx.var(cache=True)
    def reminder_hint(self) -> str:
        return translate("Separate several times with commas, e.g. 24, 2. Leave empty to use the defaults: {hours}.",
                         self.locale, hours=self.reminder_defaults or "–")

    @rx.event
    def load(self):
        params = self.router.url.query_parameters
        self.errors, self.form_error, self.saved, self.not_found = {}, "", "", ""
        self.hours_error = self.hours_saved = self.session_error = ""
        self.outside = []
        self.saving = self.hours_saving = self.session_saving = False
        raw_id = params.get("id", "")
        path = paths.PROVIDER_BOOKABLE + (f"?id={raw_id}" if raw_id else "")
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
            self.form = _empty_form(self._new_zone(actor))
            self.days = self._day_rows({d: [TimeRange(a, b) for a, b in r] for d, r in DEFAULT_HOURS.items()})
            self.exceptions, self.sessions = [], []
            return
        bid = fmt.int_param(raw_id)
        try:
            if bid is None:
                raise NotFound(N_("This service does not exist."))
            view = catalog.get_bookable(bookable_id=bid, actor=actor)
            if not can_manage(actor, view):
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
            "price": money.format_price(view.price_cents, view.currency), "currency": view.currency,
            "timezone": view.timezone, "buffer_minutes": str(view.buffer_minutes),
            "min_notice_minutes": str(view.min_notice_minutes), "max_advance_days": str(view.max_advance_days),
            "cancel_cutoff_hours": str(view.cancel_cutoff_hours), "refund_percent": str(view.refund_percent),
            "reminder_hours": reminders.reminder_hours_text(view.reminder_offsets),
            # approval (issue 24): the toggle ("1" when on) and the request's hours ("": the default)
            "requires_approval": "1" if view.requires_approval else "",
            "approval_expiry_hours": str(view.approval_expiry_hours or ""),
            **editor_form(view),  # deposits and fees (issue 26)
        }
        self._set_hours(avail)
        if params.get("created") == "1":
            self.saved = translate("“{name}” is created. Customers can book it inside its opening hours.",
                                   self.locale, name=view.name)
        elif params.get("created") == "2":
            self.saved = translate("“{name}” is created.", self.locale, name=view.name)
            self.hours_error = translate("Its opening hours could not be saved: check them and save them again.",
                                         self.locale)
        self.session_capacity = str(view.capacity)
        self.session_date = (dt.datetime.now(zone(view.timezone)).date() + dt.timedelta(days=7)).isoformat()
        self._load_sessions(actor)

    def _new_zone(self, actor) -> str:
        """A new bookable's zone: the provider's own (their profile's, unless it was left at
        UTC), else that of their latest bookable, else the browser's, else UTC."""
        if self.timezone and self.timezone != "UTC":
            return self.timezone
        try:
            views, _total = catalog.search_bookables(actor=actor, provider_id=actor.id, include_inactive=True,
                                                     limit=catalog.MAX_PAGE)
        except ServiceError:
            views = []
        latest = max(views, key=lambda v: v.id, default=None)
        return (latest.timezone if latest else None) or self._valid_browser_tz() or self.timezone or "UTC"

    def _day_rows(self, ranges: dict[int, list[TimeRange]]) -> list[DayHours]:
        return [DayHours(weekday=i, label=translate(WEEKDAYS[i], self.locale), ranges=list(ranges.get(i, [])))
                for i in range(7)]

    def _refresh_rows(self, actor) -> None:
        """The language switch: weekday names, the title of a new one, sessions' dates."""
        self.days = [DayHours(weekday=d.weekday, label=translate(WEEKDAYS[d.weekday], self.locale),
                              ranges=d.ranges) for d in self.days]
        if not self.bookable_id:
            self.title = translate("New bookable", self.locale)
        else:
            self._load_sessions(actor)

    # ---- details -------------------------------------------------------------------------
    @rx.event
    def set_kind(self, value: str):
        if value in catalog.KINDS:
            self.kind = value
            self.form = {**self.form, "kind": value}

    @rx.event
    async def save(self, data: dict):
        if self.saving:
            return
        self.saving = True
        self.errors, self.form_error, self.saved = {}, "", ""
        yield
        values = {k: str(data.get(k, "") or "").strip() for k in FORM_FIELDS}
        self.form = {**self.form, **values}
        actor = self._actor()
        try:
            fields: dict = {k: values[k] for k in FORM_FIELDS if k not in ("price", "reminder_hours", *EDITOR_FIELDS)}
            fields.update(editor_fields(values, values["currency"]))  # deposits and fees (issue 26)
            fields["price_cents"] = money.parse_price(values["price"], values["currency"] or "EUR")
            fields["reminder_offsets"] = reminders.reminder_offsets_from_hours(values["reminder_hours"])
            fields["requires_approval"] = bool(data.get("requires_approval"))  # (a checkbox: absent when off)
            self.form = {**self.form, "requires_approval": "1" if fields["requires_approval"] else ""}
            if self.bookable_id:
                view = await asyncio.to_thread(catalog.update_bookable, actor=actor, bookable_id=self.bookable_id,
                                               **fields)
            else:
                kind = str(data.get("kind", self.kind) or self.kind)
                view = await asyncio.to_thread(catalog.create_bookable, actor=actor, kind=kind, **fields)
                created = "1"
                if kind != "event":  # the hours set on the new form (events are booked by sessions)
                    weekly = [{"weekday": d.weekday, "start": r.start, "end": r.end}
                              for d in self.days for r in d.ranges]
                    try:
                        await asyncio.to_thread(catalog.set_availability, actor=actor, bookable_id=view.id,
                                                weekly=weekly, exceptions=[])
                    except ServiceError:
                        created = "2"
        except InvalidInput as exc:
            name = FIELD_ALIASES.get(exc.field or "", exc.field or "")
            if name in FORM_FIELDS or name == "kind":
                self.errors = {name: self._error_text(exc)}
                self.form_error = translate("Please correct the marked field.", self.locale)
            else:
                self.form_error = self._error_text(exc)
            self.saving = False
            return
        except sessions.ReauthRequired:  # a new price: the password or a code first, then save again
            await ask_reauth(self)
            self.saving = False
            return
        except ServiceError as exc:
            self.form_error = self._error_text(exc)
            self.saving = False
            return
        self.saving = False
        if not self.bookable_id:
            yield rx.redirect(f"{paths.PROVIDER_BOOKABLE}?id={view.id}&created={created}")
            return
        self.title = view.name
        self.form["price"] = money.format_price(view.price_cents, view.currency)
        self.form["reminder_hours"] = reminders.reminder_hours_text(view.reminder_offsets)
        self.saved = translate("Your changes are saved.", self.locale)

    # ---- availability --------------------------------------------------------------------
    def _set_hours(self, avail: catalog.AvailabilityView) -> None:
        ranges: dict[int, list[TimeRange]] = {}
        for r in avail.weekly:
            ranges.setdefault(r.weekday, []).append(TimeRange(start=r.start, end=r.end))
        self.days = self._day_rows(ranges)
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
        tz = zone(self.form.get("timezone", "UTC"))
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
        self.hours_error = self.hours_saved = self.saved = ""  # one confirmation at a time
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
                                               date_from=dt.datetime.now(zone(tz)).date())
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
        tz = zone(self.form.get("timezone", "UTC"))
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
