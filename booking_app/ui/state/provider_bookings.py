"""The bookings of my bookables (an admin's: everyone's), as a list, a week or a month.

The list has the row actions (mark paid on site, completed, no-show, cancel with a reason,
reschedule to a free time); the week shows each day's bookings over the opening hours; the
month shows per day the bookings that take time and the free time left
(services/opening_hours.py minus the bookings, ui/state/calendar_math.py).

Times are the bookables' own (where their hours are set and the move dialog offers times):
each list row in its bookable's zone with the zone's abbreviation; the week and month in one
zone for the whole view — the zone of most of the bookables shown, or the one picked when
they differ — named above the view."""
from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime as dt
from dataclasses import replace

import reflex as rx

from booking_app.i18n import N_, translate
from booking_app.services import (
    availability,
    booking_queries,
    booking_questions,
    bookings,
    catalog,
    opening_hours,
    payments,
)
from booking_app.services.errors import ServiceError
from booking_app.services.slots import is_active
from booking_app.services.validation import zone
from booking_app.ui import paths
from booking_app.services import fees  # deposits and fees (issue 26)
from booking_app.ui.components.payment_summary import row_money  # deposits and fees (issue 26)
from booking_app.ui.state import fmt
from booking_app.ui.state.calendar_math import Span, add_months, free_spans, month_grid, month_title, span_minutes
from booking_app.ui.state.base import relocalized
from booking_app.ui.state.staff import PAYMENT_LABELS, STATUS_LABELS, WEEKDAYS, StaffState, row_action

MONTH_PAGE = 200  # bookings per list_bookings call (its maximum)
MONTH_MAX_BOOKINGS = 4000  # a month grid reads at most this many bookings
MONTH_PREVIEW = 3  # bookings listed in a month cell; the rest is "+N more"
# bookings that took the bookable's time; a pending or confirmed one takes it while the
# capacity engine counts it (slots.is_active: a pending one only while its hold lasts)
TOOK_TIME = ("completed", "no_show")


def _takes_time(view: booking_queries.BookingView, now: dt.datetime) -> bool:
    return view.status in TOOK_TIME or is_active(view.status, view.hold_expires_at, now)


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
    count: int = 0  # bookings that take time (see _takes_time)
    previews: list[dict[str, str]] = dataclasses.field(default_factory=list)  # the first MONTH_PREVIEW
    more: str = ""  # "+2 more"
    state: str = ""  # "open" | "full" | "closed"; "" when no opening hours are known for the grid
    free_label: str = ""  # "Free 6 h 30 min", "Fully booked", "Closed"
    free_width: str = "0%"  # the free share of the open time (the bar under the day)


def zone_name(tz: str, at: dt.datetime | None = None) -> str:
    """"Europe/Berlin (CET)": the zone and its abbreviation at `at` (now)."""
    abbr = fmt.zone_abbr(tz, at)
    return f"{tz} ({abbr})" if abbr and abbr != tz else tz


@relocalized(paths.PROVIDER_BOOKINGS)
class ProviderBookingsState(StaffState):
    status: str = ""
    zone: str = ""  # the week and month views' zone (see the module docstring)
    zone_choice: str = ""  # the one picked, when the bookables' zones differ
    zone_label: str = ""  # "Times in Europe/Berlin (CET)"
    zone_options: list[dict[str, str]] = []  # {"value", "label"}; empty when all share one zone
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
        self.error = self.message = ""
        self.busy_id = 0
        self.cancel_open = self.resched_open = False
        actor, redirect = self._staff_actor(paths.PROVIDER_BOOKINGS)
        if redirect:
            return redirect
        if actor is None:
            return
        self._pick_zone(actor)
        if not self.date_from:
            today = dt.datetime.now(zone(self._view_tz())).date()
            self.date_from = (today - dt.timedelta(days=7)).isoformat()
            self.date_to = (today + dt.timedelta(days=60)).isoformat()
        if not self.week_from:
            today = dt.datetime.now(zone(self._view_tz())).date()
            self.week_from = (today - dt.timedelta(days=today.weekday())).isoformat()
        if not self.month_from:
            self.month_from = dt.datetime.now(zone(self._view_tz())).date().replace(day=1).isoformat()
        self._fetch(actor)

    def _view_tz(self) -> str:
        """The calendar's zone (the bookables'), else the viewer's."""
        return self.zone or super()._view_tz()

    def _pick_zone(self, actor) -> None:
        """The zone of the bookables shown: the most common one (the picked one if offered)."""
        try:
            views, _total = catalog.search_bookables(actor=actor, provider_id=None if actor.is_admin else actor.id,
                                                     include_inactive=True, limit=opening_hours.MAX_BOOKABLES)
        except ServiceError:
            views = []
        counts = collections.Counter(v.timezone for v in views)
        zones = [z for z, _n in counts.most_common()]
        self.zone = self.zone_choice if self.zone_choice in zones else (zones[0] if zones else "")
        self.zone_options = ([{"value": z, "label": zone_name(z)} for z in sorted(zones)] if len(zones) > 1 else [])
        self.zone_label = translate("Times in {zone}", self.locale, zone=zone_name(self._view_tz()))

    @rx.event
    def set_zone(self, value: str):
        if any(o["value"] == value for o in self.zone_options):
            self.zone_choice = self.zone = str(value)
            self.zone_label = translate("Times in {zone}", self.locale, zone=zone_name(self.zone))
            self.error = self.message = ""
            self._fetch(self._actor())

    def _refresh_rows(self, actor) -> None:
        self.zone_label = translate("Times in {zone}", self.locale, zone=zone_name(self._view_tz()))
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
        try:
            first = dt.date.fromisoformat(self.week_from)
        except ValueError:
            first = dt.datetime.now(zone(self._view_tz())).date()
        first -= dt.timedelta(days=first.weekday())
        self.week_from = first.isoformat()
        last = first + dt.timedelta(days=6)
        tz, loc = self._view_tz(), self.locale
        try:
            views, _total = booking_queries.list_bookings(actor=replace(actor, timezone=tz), scope="provider",
                                                   date_from=first, date_to=last, limit=200)
        except ServiceError as exc:
            self.error = self._error_text(exc)
            self.week = []
            return
        today = dt.datetime.now(zone(tz)).date()
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
            hours = opening_hours.provider_open_hours(actor=actor, provider_id=actor.id, date_from=first,
                                                      date_to=last, tz=tz)
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
        lo = dt.datetime.combine(day, dt.time(0), tzinfo=zone(tz)).astimezone(utc)
        length = (dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=zone(tz)).astimezone(utc)
                  - lo).total_seconds()
        bands = [{"start": f"{100 * (a.astimezone(utc) - lo).total_seconds() / length:.2f}%",
                  "width": f"{100 * (b.astimezone(utc) - a.astimezone(utc)).total_seconds() / length:.2f}%"} for a, b in ranges]
        spans = ", ".join(f"{fmt.time_(a, tz, self.locale)}–{fmt.time_(b, tz, self.locale)}" for a, b in ranges)
        return {"open_label": translate("Open {hours}", self.locale, hours=spans), "bands": bands}

    # ---- month calendar -------------------------------------------------------------------
    def _month_bookings(self, actor, first: dt.date, last: dt.date, tz: str) -> tuple[list, bool]:
        """Every booking starting between `first` and `last` (local dates of `tz`), page by
        page; True when there were more than MONTH_MAX_BOOKINGS."""
        found: list = []
        while True:
            page, total = booking_queries.list_bookings(actor=replace(actor, timezone=tz), scope="provider",
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
        today = dt.datetime.now(zone(tz)).date()
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
            hours = opening_hours.provider_open_hours(actor=actor, provider_id=actor.id, date_from=first,
                                                      date_to=last, tz=tz)
        except ServiceError:
            hours = {}
        now = dt.datetime.now(dt.timezone.utc)
        per_day: dict[dt.date, list] = {d: [] for d in dates}
        busy: dict[dt.date, list[Span]] = {d: [] for d in dates}
        for v in views:
            if not _takes_time(v, now):
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
        today = dt.datetime.now(zone(self._view_tz())).date().replace(day=1)
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
            first = dt.datetime.now(zone(self._view_tz())).date()
        if int(weeks) == 0:
            first = dt.datetime.now(zone(self._view_tz())).date()
        else:
            first += dt.timedelta(weeks=max(-520, min(520, int(weeks))))
        self.week_from = first.isoformat()
        self._fetch(self._actor())

    def _fetch_list(self, actor) -> None:
        try:
            # dates are read in the viewer's timezone
            views, total = booking_queries.list_bookings(
                actor=replace(actor, timezone=self._view_tz()), scope="provider", status=self.status or None,
                date_from=self.date_from or None, date_to=self.date_to or None, limit=200)
        except ServiceError as exc:
            self.error = self._error_text(exc)
            self.rows, self.total = [], 0
            return
        now = dt.datetime.now(dt.timezone.utc)
        loc = self.locale
        rows = []
        fee_views = fees.fees_by_booking([v.id for v in views if v.fees_cents])  # (issue 26; none: no query)
        for v in views:
            active = v.status in ("pending", "confirmed")
            customer = v.customer_name or (translate("Account #{id}", self.locale, id=v.user_id) if v.user_id else "")
            rows.append({
                "id": str(v.id), "reference": v.reference, "service": v.service_name,
                "service_id": str(v.service_id), "tz": v.timezone,
                "local_date": fmt.local(v.start, v.timezone).date().isoformat(),
                # in the bookable's own zone, named: what its hours and the move dialog use
                "when": f"{fmt.date_(v.start, loc, 'medium', v.timezone)} {fmt.time_(v.start, v.timezone, loc)} "
                        f"{fmt.zone_abbr(v.timezone, v.start)}",
                "zone": zone_name(v.timezone, v.start),
                "customer": customer, "contact": v.customer_email or "", "seats": str(v.quantity),
                "status": v.status, "status_label": translate(STATUS_LABELS.get(v.status, v.status), self.locale),
                "status_color": fmt.STATUS_COLORS.get(v.status, "gray"),
                "payment": v.payment_status, "payment_label": translate(PAYMENT_LABELS.get(v.payment_status,
                                                                                      v.payment_status), self.locale),
                "price": fmt.booking_price(v.price_cents, v.currency, loc, v.discount_cents),
                "notes": v.notes or "",
                "answers": booking_questions.answers_text(v.answers, loc),  # (issue 24: booking questions)
                "money": row_money(v, fee_views.get(v.id, []), loc),  # (issue 26: balance, fees)
                "can_pay": "1" if active and (v.payment_status == "pending" or (
                    v.balance_due_cents and v.payment_status == "succeeded")) else "",
                "can_finish": "1" if v.status == "confirmed" and v.start <= now else "",
                "can_cancel": "1" if active else "",
                # (issue 26) a declined fee the provider may charge again: its id
                "retry_fee": next((str(f.id) for f in fee_views.get(v.id, []) if fees.offers_retry(f)), ""),
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
        # (issue 26: payments.mark_no_show also charges the bookable's no-show fee)
        async for update in self._act(booking_id, payments.mark_no_show, N_("The booking is marked as a no-show.")):
            yield update

    @rx.event
    async def charge_fee_again(self, booking_id: str, fee_id: str):
        """A declined fee charged again to the saved card (fees.charge_again, as the API)."""
        fid = fmt.int_param(fee_id)
        if fid is None:
            return
        async for update in row_action(self, booking_id, lambda actor, _bid: fees.charge_again(actor=actor, fee_id=fid),
                                        lambda view: translate(fees.RETRY_OUTCOMES.get(view.status, ""), self.locale)):
            yield update

    @rx.event
    def cancel_open_change(self, booking_id: str, value: bool):
        """A row's cancel dialog asks to open (its trigger button) or close (Esc, Keep the
        booking): the dialog is the row's own, so Radix gives focus back to its button."""
        if value:
            self._open_cancel(booking_id)
        else:
            self.cancel_open = False

    def _open_cancel(self, booking_id: str) -> None:
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
    def resched_open_change(self, booking_id: str, value: bool):
        """A row's move dialog asks to open (its trigger button) or close (Esc, Keep the
        time), like the cancel dialog."""
        if value:
            self._open_reschedule(booking_id)
        else:
            self.resched_open = False

    def _open_reschedule(self, booking_id: str) -> None:
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
