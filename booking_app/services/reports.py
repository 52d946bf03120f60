"""Report Service: bookings, revenue, users, utilization, cancellation/no-show rates and
the live dashboard, computed with SQL aggregates on PostgreSQL and SQLite (never by reading
the rows into Python). Periods and the per-day / per-bookable SQL: services/report_sql.py;
speed figures: docs/performance.md ("Reports").

What counts
    - bookings: by `start_at` (the day the booking takes place) or, with basis="created",
      by `created_at` (the day it was made).
    - revenue: payments in status succeeded / partially_refunded / refunded count as paid,
      dated by the payment's `created_at`. Refunds are the succeeded `Refund` rows dated by
      their own `created_at`; when a payment's `refunded_cents` is larger than its refund
      rows (a refund recorded without a row) the difference counts, dated by the payment's
      `updated_at`. Net = gross − refunds, per currency (never mixed).
    - active users: users who made a booking or signed in (AuditEvent `LOGIN_ACTIONS`).
    - utilization: per bookable, in the bookable's own timezone: available seat-hours =
      weekly hours (AvailabilityRule) of each date, replaced by the special hours of an
      AvailabilityException or zero on a closed date, × capacity; for events the sessions'
      hours × session capacity (cancelled sessions and sessions on closed dates excluded).
      Booked seat-hours = duration × quantity of bookings that hold capacity (confirmed,
      completed, no_show, and pending whose hold has not expired). Hours are wall-clock.
    - rates: cancellation rate = cancelled / all bookings; no-show rate =
      no_show / (completed + no_show), i.e. among bookings with a recorded outcome.

Every function requires an admin actor (Forbidden otherwise) and returns plain data.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Float,
    and_,
    case,
    cast,
    distinct,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

from booking_app import db
from booking_app.i18n import N_
from booking_app.services import fees  # deposits and fees (issue 26): the fees column of revenue
from booking_app.models.booking import HELD_STATUSES
from booking_app.models import (
    AuditEvent,
    AvailabilityException,
    AvailabilityRule,
    Bookable,
    BookableKind,
    Booking,
    BookingStatus,
    EventSession,
    Notification,
    NotificationStatus,
    Payment,
    PaymentStatus,
    Refund,
    User,
    utcnow,
)
from booking_app.services import audit, metrics, validation
from booking_app.services import waitlist_views  # waitlist figures (issue 24)
from booking_app.services.actors import Actor, require_admin
from booking_app.services.errors import InvalidInput
from booking_app.services.report_sql import (
    BOOKING_STATUSES,
    MAX_RANGE_DAYS,
    Period,
    as_int,
    day_grid,
    day_str,
    local_day,
    make_period,
    per_bookable,
    per_day,
    plain,
    ratio,
    seconds_between,
    status_sums,
    valid_zone_name,
    value_at,
)

TOP_CUSTOMERS_LIMIT = 10

#: Payment statuses that mean money was received (possibly refunded later).
PAID_STATUSES = (
    PaymentStatus.succeeded.value,
    PaymentStatus.partially_refunded.value,
    PaymentStatus.refunded.value,
)
PENDING_PAYMENT_STATUSES = (PaymentStatus.pending.value, PaymentStatus.requires_action.value)
REFUND_SUCCEEDED = "succeeded"
#: Audit actions written on a successful sign-in (services/accounts.py / auth).
LOGIN_ACTIONS = ("user.login",)

BOOKING_GROUPS = ("day", "service", "status")
REVENUE_GROUPS = ("day", "service", "method")
BOOKING_BASES = ("start", "created")



# ---------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Report:
    """One report: `rows` (a list of flat dicts with the keys in `columns`) and a `summary`."""

    name: str
    date_from: dt.date
    date_to: dt.date
    tz: str
    group_by: str | None
    columns: tuple[str, ...]
    rows: list[dict[str, Any]]
    summary: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "report": self.name,
            "from": self.date_from.isoformat(),
            "to": self.date_to.isoformat(),
            "tz": self.tz,
            "group_by": self.group_by,
            "columns": list(self.columns),
            "rows": self.rows,
            "summary": self.summary,
        }


def to_csv(report: Report) -> str:
    """The rows as CSV with a header row (spreadsheet formula injection neutralised)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(report.columns)
    for row in report.rows:
        writer.writerow([_csv_cell(row.get(col)) for col in report.columns])
    return buf.getvalue()


def export_csv(*, actor: Actor, report: Report) -> str:
    """`report` as CSV for `actor` to download; the export is audited (who took which data)."""
    require_admin(actor, ADMINS_ONLY)
    audit.record_now(actor_id=actor.id, action="report.exported", entity="report", entity_id=report.name,
                     data={"group_by": report.group_by, "from": report.date_from.isoformat(),
                           "to": report.date_to.isoformat()})
    return to_csv(report)


_csv_cell = audit.csv_cell  # one rule for every CSV the admin downloads


def _no_jit(s: Session) -> None:
    """PostgreSQL: no JIT compilation in this transaction (short aggregates over at most a
    year of rows, where compiling costs more than it saves; see docs/performance.md)."""
    if db.is_postgres(s):
        s.execute(text("SET LOCAL jit = off"))


ADMINS_ONLY = N_("Only administrators can see reports.")


# ---------------------------------------------------------------------------------------
# Bookings
# ---------------------------------------------------------------------------------------

def bookings(*, actor: Actor, date_from: dt.date | str | None, date_to: dt.date | str | None,
             group_by: str = "day", tz: str | None = None, basis: str = "start") -> Report:
    """Bookings per day, per bookable or per status: counts, seats (quantity) and counts by status."""
    require_admin(actor, ADMINS_ONLY)
    period = make_period(date_from, date_to, tz or actor.timezone)
    if group_by not in BOOKING_GROUPS:
        raise InvalidInput(N_("Unknown grouping {value}."), field="group_by", value=group_by)
    if basis not in BOOKING_BASES:
        raise InvalidInput(N_("Unknown grouping {value}."), field="basis", value=basis)
    ts = Booking.start_at if basis == "start" else Booking.created_at
    count = func.count(Booking.id).label("bookings")
    quantity = func.coalesce(func.sum(Booking.quantity), 0).label("quantity")
    with db.read_session(transaction=True) as s:  # (one transaction: SET LOCAL)
        _no_jit(s)
        if group_by == "day":
            # per day through the covering index on `ts` (start_at or created_at)
            found = per_day(s, period, ts, [count, quantity, *status_sums()])
            rows = []
            for d in period.days:  # every day of the period, zeros included (charts)
                v = found.get(d.isoformat()) or []
                rows.append({"day": d.isoformat(), "bookings": as_int(value_at(v, 0)), "quantity": as_int(value_at(v, 1)),
                             **{st: as_int(value_at(v, 2 + i)) for i, st in enumerate(BOOKING_STATUSES)}})
            columns = ("day", "bookings", "quantity", *BOOKING_STATUSES)
        elif group_by == "service":
            rows = []
            for bid, name, kind, v in per_bookable(s, period, ts, [count, quantity, *status_sums()]):
                if as_int(v[0]):
                    rows.append({"service_id": bid, "service_name": name, "kind": kind, "bookings": as_int(v[0]),
                                 "quantity": as_int(v[1]),
                                 **{st: as_int(v[2 + i]) for i, st in enumerate(BOOKING_STATUSES)}})
            rows.sort(key=lambda r: (-r["bookings"], r["service_id"]))
            columns = ("service_id", "service_name", "kind", "bookings", "quantity", *BOOKING_STATUSES)
        else:
            status = plain(s, Booking.status).label("status")
            stmt = (select(status, count, quantity).where(period.within(ts)).group_by(status))
            found = {r.status: r for r in s.execute(stmt)}
            order = list(BOOKING_STATUSES) + sorted(set(found) - set(BOOKING_STATUSES))
            rows = [{"status": st, "bookings": as_int(found[st].bookings), "quantity": as_int(found[st].quantity)}
                    for st in order if st in found]
            columns = ("status", "bookings", "quantity")
    total = sum(r["bookings"] for r in rows)
    summary = {"bookings": total, "quantity": sum(r["quantity"] for r in rows), "basis": basis}
    return Report("bookings", period.date_from, period.date_to, period.tz, group_by, columns, rows, summary)


# ---------------------------------------------------------------------------------------
# Revenue
# ---------------------------------------------------------------------------------------

def money_lines(s: Session, period: Period) -> list:
    """The money movements of the period, as three row sources with the same columns
    (booking_id, method, currency, gross, refund, n, ts = the time that dates the movement):
    paid payments (+gross), refund rows (+refund) and refunds recorded on a payment without
    a Refund row (+the difference, dated by the payment's last change).

    Each reads through its own index: paid payments by `created_at` (covering), refund rows
    from the refunds table (small), and the partial index of refunded payments
    (`refunded_cents > 0`, written literally so that the planner can match it) with the
    recorded refunds summed per payment (covering)."""
    paid = plain(s, Payment.status).in_(PAID_STATUSES)
    recorded_cents = (select(func.coalesce(func.sum(Refund.amount_cents), 0))
                      .where(Refund.payment_id == Payment.id, Refund.status == REFUND_SUCCEEDED)
                      .scalar_subquery())
    gross = select(
        Payment.booking_id.label("booking_id"), Payment.method.label("method"), Payment.currency.label("currency"),
        Payment.amount_cents.label("gross"), literal(0).label("refund"), literal(1).label("n"),
        Payment.created_at.label("ts"),
    ).where(paid, period.within(Payment.created_at))
    refunds = select(
        Payment.booking_id.label("booking_id"), Payment.method.label("method"), Payment.currency.label("currency"),
        literal(0).label("gross"), Refund.amount_cents.label("refund"), literal(0).label("n"),
        Refund.created_at.label("ts"),
    ).join(Payment, Payment.id == Refund.payment_id).where(
        paid, Refund.status == REFUND_SUCCEEDED, period.within(Refund.created_at))
    missing = (select(Payment.booking_id, Payment.method, Payment.currency, Payment.updated_at,
                      (Payment.refunded_cents - recorded_cents).label("cents"))
               .where(paid, Payment.refunded_cents > literal_column("0"), period.within(Payment.updated_at))
               .subquery("missing"))
    unrecorded = select(
        missing.c.booking_id.label("booking_id"), missing.c.method.label("method"),
        missing.c.currency.label("currency"), literal(0).label("gross"), missing.c.cents.label("refund"),
        literal(0).label("n"), missing.c.updated_at.label("ts"),
    ).where(missing.c.cents > 0)
    return [gross, refunds, unrecorded]


def _revenue_rows(s: Session, period: Period, group_by: str | None) -> list[dict[str, Any]]:
    merged: dict[tuple, list[int]] = {}  # (key…, currency) → [payments, gross, refunds]
    lines = money_lines(s, period)
    # PostgreSQL hashes one UNION ALL of the three in one pass; on SQLite each is grouped
    # on its own (its GROUP BY of a union first copies the union into a temporary table)
    sources = ([union_all(*lines).subquery("money")] if db.is_postgres(s)
               else [line.subquery(name) for line, name in zip(lines, ("paid", "refunded", "unrecorded"))])
    for m in sources:
        if group_by == "day":
            keys = [local_day(s, m.c.ts, period).label("day")]
        elif group_by == "service":
            keys = [Booking.bookable_id]
        elif group_by == "method":
            keys = [m.c.method]
        else:
            keys = []
        stmt = select(*keys, m.c.currency, func.sum(m.c.n), func.sum(m.c.gross), func.sum(m.c.refund))
        if group_by == "service":
            stmt = stmt.join(Booking, Booking.id == m.c.booking_id)
        for r in s.execute(stmt.group_by(*keys, m.c.currency)):
            key = tuple(day_str(v) if group_by == "day" and i == 0 else v for i, v in enumerate(r[:len(keys) + 1]))
            acc = merged.setdefault(key, [0, 0, 0])
            for i, v in enumerate(r[len(keys) + 1:]):
                acc[i] += as_int(v)

    def money(currency: str, n: int, gross: int, refunds: int) -> dict[str, Any]:
        return {"currency": currency, "payments": n, "gross_cents": gross, "refunds_cents": refunds,
                "net_cents": gross - refunds}

    if group_by == "day":
        return [{"day": k[0], **money(k[1], *v)} for k, v in sorted(merged.items())]
    if group_by == "service":
        ids = sorted({k[0] for k in merged})
        names = dict(s.execute(select(Bookable.id, Bookable.name).where(Bookable.id.in_(ids))).all()) if ids else {}
        ranked = sorted(merged.items(), key=lambda kv: (-kv[1][1], kv[0][0], kv[0][1]))
        return [{"service_id": k[0], "service_name": names.get(k[0]), **money(k[1], *v)} for k, v in ranked]
    if group_by == "method":
        return [{"method": k[0], **money(k[1], *v)} for k, v in sorted(merged.items())]
    return [money(k[0], *v) for k, v in sorted(merged.items())]


def _totals_by_currency(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    totals: dict[str, dict[str, int]] = defaultdict(lambda: {"payments": 0, "gross_cents": 0, "refunds_cents": 0, "net_cents": 0})
    for r in rows:
        t = totals[r["currency"]]
        for k in t:
            t[k] += r[k]
    return [{"currency": c, **totals[c]} for c in sorted(totals)]


def revenue(*, actor: Actor, date_from: dt.date | str | None, date_to: dt.date | str | None,
            group_by: str = "day", tz: str | None = None) -> Report:
    """Gross, refunds and net per day / bookable / payment method, per currency."""
    require_admin(actor, ADMINS_ONLY)
    period = make_period(date_from, date_to, tz or actor.timezone)
    if group_by not in REVENUE_GROUPS:
        raise InvalidInput(N_("Unknown grouping {value}."), field="group_by", value=group_by)
    with db.read_session(transaction=True) as s:  # (one transaction: SET LOCAL)
        _no_jit(s)
        rows = _revenue_rows(s, period, group_by)
        key = {"day": ("day",), "service": ("service_id", "service_name"), "method": ("method",)}[group_by]
        rows = fees.add_fee_column(s, rows, fees.revenue_fees(s, period, group_by), key)  # (issue 26: fees)
    columns = (*key, "currency", "payments", "gross_cents", "refunds_cents", "net_cents", "fees_cents")
    totals = _totals_by_currency(rows)
    for t in totals:  # (issue 26: the fees collected, per currency)
        t["fees_cents"] = sum(r["fees_cents"] for r in rows if r["currency"] == t["currency"])
    return Report("revenue", period.date_from, period.date_to, period.tz, group_by, columns, rows,
                  {"totals": totals})


# ---------------------------------------------------------------------------------------
# Users
# ---------------------------------------------------------------------------------------

def _activity(period: Period):
    """Every booking made (booking = 1; guests have user_id NULL) and every sign-in
    (booking = 0) in the period, with its user: each branch a range scan of a covering
    index (bookings by created_at, audit events by action and time)."""
    return union_all(
        select(Booking.user_id.label("user_id"), literal(1).label("booking"), Booking.quantity.label("quantity"))
        .where(period.within(Booking.created_at)),
        select(AuditEvent.actor_id, literal(0), literal(0))
        .where(AuditEvent.action.in_(LOGIN_ACTIONS), AuditEvent.actor_id.is_not(None), period.within(AuditEvent.at)),
    ).subquery("activity")


def _daily_activity(s: Session, period: Period) -> dict[str, tuple[int, int]]:
    """{local day: (distinct active users, bookings made)}: the users of each day's bookings
    and sign-ins, counted once, and the bookings made that day."""
    if db.is_postgres(s):
        act = union_all(
            select(Booking.user_id.label("user_id"), literal(1).label("booking"),
                   local_day(s, Booking.created_at, period).label("day"))
            .where(period.within(Booking.created_at)),
            select(AuditEvent.actor_id, literal(0), local_day(s, AuditEvent.at, period))
            .where(AuditEvent.action.in_(LOGIN_ACTIONS), AuditEvent.actor_id.is_not(None),
                   period.within(AuditEvent.at)),
        ).subquery("activity")
        stmt = (select(act.c.day, func.count(distinct(act.c.user_id)).label("active"),
                       func.sum(act.c.booking).label("made")).group_by(act.c.day))
        return {day_str(r.day): (as_int(r.active), as_int(r.made)) for r in s.execute(stmt)}
    grid = day_grid(s, period)
    users_of_day = union_all(
        select(Booking.user_id.label("user_id"))
        .where(Booking.created_at >= grid.c.lo, Booking.created_at < grid.c.hi).correlate(grid),
        select(AuditEvent.actor_id)
        .where(AuditEvent.action.in_(LOGIN_ACTIONS), AuditEvent.at >= grid.c.lo, AuditEvent.at < grid.c.hi)
        .correlate(grid),
    ).subquery("users_of_day")
    active = select(func.count(distinct(users_of_day.c.user_id))).scalar_subquery()
    made = (select(func.count(Booking.id))
            .where(Booking.created_at >= grid.c.lo, Booking.created_at < grid.c.hi).scalar_subquery())
    return {r.day: (as_int(r.active), as_int(r.made))
            for r in s.execute(select(grid.c.day, active.label("active"), made.label("made")))}


def users(*, actor: Actor, date_from: dt.date | str | None, date_to: dt.date | str | None,
          tz: str | None = None, top: int = TOP_CUSTOMERS_LIMIT) -> Report:
    """Per day: registrations, active users (booked or signed in), bookings made.
    Summary: totals, bookings per customer and the top customers by bookings made."""
    require_admin(actor, ADMINS_ONLY)
    period = make_period(date_from, date_to, tz or actor.timezone)
    if not isinstance(top, int) or isinstance(top, bool) or not 1 <= top <= 100:
        raise InvalidInput(N_("Enter a number between {min} and {max}."), field="top", min=1, max=100)
    with db.read_session(transaction=True) as s:  # (one transaction: SET LOCAL)
        _no_jit(s)
        reg_day = local_day(s, User.created_at, period).label("day")
        registrations = {day_str(r.day): as_int(r.n) for r in s.execute(
            select(reg_day, func.count(User.id).label("n")).where(period.within(User.created_at)).group_by(reg_day))}
        daily = _daily_activity(s, period)
        # one pass per user; window aggregates give the totals along with the top rows
        act = _activity(period)
        per_user = (select(act.c.user_id, func.sum(act.c.booking).label("bookings"),
                           func.sum(act.c.quantity).label("quantity"))
                    .where(act.c.user_id.is_not(None)).group_by(act.c.user_id).subquery("per_user"))
        ranked = s.execute(
            select(per_user.c.user_id, per_user.c.bookings, per_user.c.quantity,
                   func.count().over().label("active_total"),
                   func.sum(case((per_user.c.bookings > 0, 1), else_=0)).over().label("customers"),
                   func.sum(per_user.c.bookings).over().label("customer_bookings"))
            .order_by(per_user.c.bookings.desc(), per_user.c.user_id).limit(top)).all()
        top_ids = [r.user_id for r in ranked if as_int(r.bookings) > 0]
        names = {u.id: u for u in s.execute(
            select(User.id, User.username, User.full_name, User.email).where(User.id.in_(top_ids)))} if top_ids else {}
        total_users = as_int(s.execute(select(func.count(User.id)).where(User.created_at < period.end_utc)).scalar())
    rows = []
    for d in period.days:
        active, made = daily.get(d.isoformat(), (0, 0))
        rows.append({"day": d.isoformat(), "registrations": registrations.get(d.isoformat(), 0),
                     "active_users": active, "bookings": made})
    bookings_made = sum(r["bookings"] for r in rows)
    active_total = as_int(ranked[0].active_total) if ranked else 0
    customers = as_int(ranked[0].customers) if ranked else 0
    customer_bookings = as_int(ranked[0].customer_bookings) if ranked else 0
    summary = {
        "registrations": sum(registrations.values()),
        "active_users": active_total,
        "users_total": total_users,
        "bookings": bookings_made,
        "guest_bookings": bookings_made - customer_bookings,
        "customers_with_bookings": customers,
        "bookings_per_user": ratio(customer_bookings, customers, 2),
        "top_customers": [{"user_id": r.user_id, "username": names[r.user_id].username,
                           "full_name": names[r.user_id].full_name, "email": names[r.user_id].email,
                           "bookings": as_int(r.bookings), "quantity": as_int(r.quantity)}
                          for r in ranked if r.user_id in names],
    }
    return Report("users", period.date_from, period.date_to, period.tz, "day",
                  ("day", "registrations", "active_users", "bookings"), rows, summary)


# ---------------------------------------------------------------------------------------
# Utilization
# ---------------------------------------------------------------------------------------

def _holds_capacity(now: dt.datetime) -> ColumnElement[bool]:
    status = Booking.status
    return or_(
        status.in_((BookingStatus.confirmed.value, BookingStatus.completed.value, BookingStatus.no_show.value)),
        and_(status.in_(HELD_STATUSES),
             or_(Booking.hold_expires_at.is_(None), Booking.hold_expires_at > now)),
    )


def _hours(start: dt.time, end: dt.time) -> float:
    return (dt.datetime.combine(dt.date.min, end) - dt.datetime.combine(dt.date.min, start)).total_seconds() / 3600


def _utilization_rows(s: Session, period: Period, now: dt.datetime) -> list[dict[str, Any]]:
    catalog = {r.id: r for r in s.execute(
        select(Bookable.id, Bookable.name, Bookable.kind, Bookable.capacity, Bookable.timezone, Bookable.is_active))}
    if not catalog:
        return []
    by_tz: dict[str, list[int]] = defaultdict(list)  # effective zone → bookables
    for b in catalog.values():
        by_tz[b.timezone if valid_zone_name(b.timezone) else "UTC"].append(b.id)

    # booked seat-hours per bookable, each over its period in its own zone. SQLite: for
    # each zone, one range scan per bookable of the covering (bookable, start) index.
    # PostgreSQL: one pass over the bookings of all zones (a query per zone would visit
    # the table's pages once per zone).
    dur = seconds_between(s, Booking.start_at, Booking.end_at)
    bookable = Booking.bookable_id.label("bookable_id")
    measures = (bookable, func.sum(cast(dur, Float) * Booking.quantity).label("seat_seconds"),
                func.sum(Booking.quantity).label("seats"), func.count(Booking.id).label("n"))
    chunks = [(tz, ids[i:i + 500]) for tz, ids in by_tz.items() for i in range(0, len(ids), 500)]
    own_period = [and_(Booking.bookable_id.in_(ids), period.in_zone(tz).within(Booking.start_at))
                  for tz, ids in chunks]
    queries = [select(*measures).where(where, _holds_capacity(now)).group_by(Booking.bookable_id)
               for where in ([or_(*own_period)] if db.is_postgres(s) else own_period)]
    booked: dict[int, tuple[float, int, int]] = {}
    for query in queries:
        for r in s.execute(query):
            booked[r.bookable_id] = (float(r.seat_seconds or 0), as_int(r.seats), as_int(r.n))
    sessions: dict[int, dict[str, tuple[float, int]]] = defaultdict(dict)
    for tz, ids in by_tz.items():
        local = period.in_zone(tz)
        event_ids = [i for i in ids if catalog[i].kind == BookableKind.event.value]
        if event_ids:
            sday = local_day(s, EventSession.start_at, local).label("day")
            sdur = seconds_between(s, EventSession.start_at, EventSession.end_at)
            for r in s.execute(
                select(EventSession.bookable_id, sday,
                       func.sum(cast(sdur, Float) * EventSession.capacity).label("seat_seconds"),
                       func.sum(EventSession.capacity).label("seats"))
                .where(EventSession.bookable_id.in_(event_ids), EventSession.is_cancelled.is_(False),
                       local.within(EventSession.start_at))
                .group_by(EventSession.bookable_id, sday)
            ):
                sessions[r.bookable_id][day_str(r.day)] = (float(r.seat_seconds or 0), as_int(r.seats))

    ids = list(catalog)
    weekly: dict[int, list[float]] = defaultdict(lambda: [0.0] * 7)
    for rule in s.execute(select(AvailabilityRule.bookable_id, AvailabilityRule.weekday, AvailabilityRule.start_time,
                                 AvailabilityRule.end_time).where(AvailabilityRule.bookable_id.in_(ids))):
        weekly[rule.bookable_id][rule.weekday] += _hours(rule.start_time, rule.end_time)
    exceptions: dict[int, dict[dt.date, list]] = defaultdict(lambda: defaultdict(list))
    for e in s.execute(select(AvailabilityException.bookable_id, AvailabilityException.date, AvailabilityException.closed,
                              AvailabilityException.start_time, AvailabilityException.end_time)
                       .where(AvailabilityException.bookable_id.in_(ids),
                              AvailabilityException.date >= period.date_from, AvailabilityException.date <= period.date_to)):
        exceptions[e.bookable_id][e.date].append(e)

    weekday_counts = [0] * 7
    for d in period.days:
        weekday_counts[d.weekday()] += 1

    rows = []
    for bid, b in catalog.items():
        exc = exceptions.get(bid, {})
        closed_days = {d for d, items in exc.items() if any(x.closed for x in items)}
        if b.kind == BookableKind.event.value:
            open_days = {k: v for k, v in sessions.get(bid, {}).items() if dt.date.fromisoformat(k) not in closed_days}
            available_seconds = sum(v[0] for v in open_days.values())
            available_seats = sum(v[1] for v in open_days.values())
            open_hours = None
        else:
            week = weekly.get(bid, [0.0] * 7)
            open_hours = sum(week[i] * weekday_counts[i] for i in range(7))
            for d, items in exc.items():
                open_hours -= week[d.weekday()]
                if d not in closed_days:
                    open_hours += sum(_hours(x.start_time, x.end_time) for x in items
                                      if x.start_time is not None and x.end_time is not None and x.start_time < x.end_time)
            available_seconds = open_hours * 3600 * b.capacity
            available_seats = None
        seat_seconds, seats, n = booked.get(bid, (0.0, 0, 0))
        if not b.is_active and not n and not available_seconds:
            continue
        rows.append({
            "service_id": bid, "service_name": b.name, "kind": b.kind, "capacity": b.capacity,
            "timezone": b.timezone, "open_hours": None if open_hours is None else round(open_hours, 2),
            "available_hours": round(available_seconds / 3600, 2), "booked_hours": round(seat_seconds / 3600, 2),
            "utilization": ratio(seat_seconds, available_seconds),
            "bookings": n, "booked_seats": seats, "available_seats": available_seats,
        })
    rows.sort(key=lambda r: (-(r["utilization"] or 0), r["service_id"]))
    return rows


UTILIZATION_COLUMNS = ("service_id", "service_name", "kind", "capacity", "timezone", "open_hours", "available_hours",
                       "booked_hours", "utilization", "bookings", "booked_seats", "available_seats")


def utilization(*, actor: Actor, date_from: dt.date | str | None, date_to: dt.date | str | None,
                tz: str | None = None, now: dt.datetime | None = None) -> Report:
    """Booked vs available seat-hours per bookable. The dates are read in each bookable's
    own timezone (where its opening hours live); `tz` only labels the report."""
    require_admin(actor, ADMINS_ONLY)
    period = make_period(date_from, date_to, tz or actor.timezone)
    now = now or utcnow()
    with db.read_session(transaction=True) as s:  # (one transaction: SET LOCAL)
        _no_jit(s)
        rows = _utilization_rows(s, period, now)
    available = sum(r["available_hours"] for r in rows)
    booked = sum(r["booked_hours"] for r in rows)
    summary = {"available_hours": round(available, 2), "booked_hours": round(booked, 2),
               "utilization": ratio(booked, available)}
    return Report("utilization", period.date_from, period.date_to, period.tz, "service", UTILIZATION_COLUMNS, rows, summary)


# ---------------------------------------------------------------------------------------
# Cancellation and no-show rates
# ---------------------------------------------------------------------------------------

def rates(*, actor: Actor, date_from: dt.date | str | None, date_to: dt.date | str | None,
          tz: str | None = None) -> Report:
    """Cancellation and no-show rates per bookable (bookings taking place in the period)."""
    require_admin(actor, ADMINS_ONLY)
    period = make_period(date_from, date_to, tz or actor.timezone)
    count = func.count(Booking.id).label("bookings")
    sums = [func.sum(case((Booking.status == s_, 1), else_=0)).label(s_) for s_ in
            (BookingStatus.cancelled.value, BookingStatus.no_show.value, BookingStatus.completed.value)]
    with db.read_session(transaction=True) as s:  # (one transaction: SET LOCAL)
        _no_jit(s)
        result = [r for r in per_bookable(s, period, Booking.start_at, [count, *sums]) if as_int(r[3][0])]

    def rate_row(total: int, cancelled: int, no_show: int, completed: int) -> dict[str, Any]:
        return {"bookings": total, "cancelled": cancelled, "no_show": no_show, "completed": completed,
                "cancellation_rate": ratio(cancelled, total), "no_show_rate": ratio(no_show, completed + no_show)}

    rows = [{"service_id": bid, "service_name": name, "kind": kind, **rate_row(*(as_int(x) for x in v[:4]))}
            for bid, name, kind, v in result]
    rows.sort(key=lambda r: (-r["bookings"], r["service_id"]))
    summary = rate_row(sum(r["bookings"] for r in rows), sum(r["cancelled"] for r in rows),
                       sum(r["no_show"] for r in rows), sum(r["completed"] for r in rows))
    columns = ("service_id", "service_name", "kind", "bookings", "cancelled", "no_show", "completed",
               "cancellation_rate", "no_show_rate")
    return Report("rates", period.date_from, period.date_to, period.tz, "service", columns, rows, summary)


def waitlist(*, actor: Actor, date_from: dt.date | str | None, date_to: dt.date | str | None,
             tz: str | None = None) -> Report:
    """Waitlist figures of the entries that joined in the period (issue 24): joined, offered,
    accepted, lapsed, declined, conversion (accepted / offered)."""
    require_admin(actor, ADMINS_ONLY)
    period = make_period(date_from, date_to, tz or actor.timezone)
    with db.read_session() as s:
        f = waitlist_views.figures(s, period.start_utc, period.end_utc)
    row = {"joined": f.joined, "offered": f.offered, "accepted": f.accepted, "lapsed": f.lapsed,
           "declined": f.declined, "conversion": f.conversion}
    return Report("waitlist", period.date_from, period.date_to, period.tz, None, tuple(row), [row], dict(row))


# ---------------------------------------------------------------------------------------
# Live dashboard
# ---------------------------------------------------------------------------------------

def dashboard_snapshot(*, actor: Actor, now: dt.datetime | None = None, tz: str | None = None) -> dict[str, Any]:
    """Today's figures (in `tz`) plus the system metrics (of every app process when
    REDIS_URL is set, else of this one); cheap enough to poll."""
    require_admin(actor, ADMINS_ONLY)
    now = now or utcnow()
    if now.tzinfo is None:
        raise InvalidInput(N_("The input is not valid."), field="now")
    tz = tz or actor.timezone or "UTC"
    today = now.astimezone(zoneinfo.ZoneInfo(validation.timezone(tz, field="tz") or "UTC")).date()
    period = make_period(today, today, tz)
    with db.read_session(transaction=True) as s:  # (one transaction: SET LOCAL)
        _no_jit(s)
        created_today = as_int(s.execute(select(func.count(Booking.id)).where(period.within(Booking.created_at))).scalar())
        sched = s.execute(
            select(func.count(Booking.id).label("n"), func.coalesce(func.sum(Booking.quantity), 0).label("q"))
            .where(period.within(Booking.start_at), Booking.status != BookingStatus.cancelled.value)).one()
        cancelled_today = as_int(s.execute(select(func.count(Booking.id)).where(  # partial cancelled_at index
            plain(s, Booking.status) == BookingStatus.cancelled.value, period.within(Booking.cancelled_at))).scalar())
        revenue_today = _revenue_rows(s, period, None)
        pending = s.execute(
            select(Payment.currency, func.count(Payment.id).label("n"), func.sum(Payment.amount_cents).label("amount"))
            .where(Payment.status.in_(PENDING_PAYMENT_STATUSES)).group_by(Payment.currency)
            .order_by(Payment.currency)).all()
        held = as_int(s.execute(select(func.count(Booking.id)).where(
            Booking.status.in_(HELD_STATUSES),  # type: ignore[attr-defined]
            or_(Booking.hold_expires_at.is_(None), Booking.hold_expires_at > now))).scalar())
        notif = {r.status: as_int(r.n) for r in s.execute(
            select(Notification.status, func.count(Notification.id).label("n"))
            .where(Notification.status.in_((NotificationStatus.failed.value, NotificationStatus.pending.value)))
            .group_by(Notification.status))}
        occupancy_rows = _utilization_rows(s, period, now)
    available = sum(r["available_hours"] for r in occupancy_rows)
    booked = sum(r["booked_hours"] for r in occupancy_rows)
    return {
        "generated_at": now.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z"),
        "date": today.isoformat(),
        "tz": tz,
        "bookings_today": {"created": created_today, "scheduled": as_int(sched.n), "seats": as_int(sched.q),
                           "cancelled": cancelled_today},
        "revenue_today": revenue_today,
        "occupancy_today": {"available_hours": round(available, 2), "booked_hours": round(booked, 2),
                            "rate": ratio(booked, available)},
        "pending_payments": {"count": sum(as_int(r.n) for r in pending),
                             "by_currency": [{"currency": r.currency, "count": as_int(r.n), "amount_cents": as_int(r.amount)}
                                             for r in pending],
                             "bookings_on_hold": held},
        "notifications": {"failed": notif.get(NotificationStatus.failed.value, 0),
                          "pending": notif.get(NotificationStatus.pending.value, 0)},
        "system": metrics.system_snapshot(now),
    }


__all__ = [
    "BOOKING_GROUPS", "LOGIN_ACTIONS", "MAX_RANGE_DAYS", "PAID_STATUSES", "REVENUE_GROUPS", "Period", "Report",
    "bookings", "dashboard_snapshot", "export_csv", "make_period", "rates", "revenue", "to_csv", "users", "utilization",
]
