"""Report Service and report endpoints against a small, fully known data set (SQLite and
PostgreSQL). Every expected number below is worked out by hand in the comments of `seed`."""
from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import zoneinfo

import pytest

from booking_app import db
from booking_app.models import (
    AuditEvent,
    AvailabilityException,
    AvailabilityRule,
    Bookable,
    Booking,
    EventSession,
    Notification,
    Payment,
    Refund,
    User,
)
from booking_app.services import reports
from booking_app.services.actors import Actor
from booking_app.services.errors import Forbidden, InvalidInput

UTC = dt.timezone.utc
_ref = itertools.count(1)


def T(day: str, hm: str = "00:00") -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T{hm}:00+00:00")


def _user(s, username: str, role: str, created: dt.datetime) -> User:
    u = User(username=username, email=f"{username}@example.com", password_hash="x", role=role,
             full_name=username.title(), created_at=created)
    s.add(u)
    s.flush()
    return u


def _booking(s, bookable: Bookable, start: dt.datetime, minutes: int, *, user: User | None, status: str,
             created: dt.datetime, quantity: int = 1, hold: dt.datetime | None = None,
             session: EventSession | None = None, cancelled_at: dt.datetime | None = None) -> Booking:
    end = start + dt.timedelta(minutes=minutes)
    b = Booking(reference=f"R{next(_ref):08d}", bookable_id=bookable.id, provider_id=bookable.provider_id,
                session_id=session.id if session else None, user_id=user.id if user else None,
                guest_name=None if user else "Guest", guest_email=None if user else "guest@example.com",
                start_at=start, end_at=end, block_start_at=start, block_end_at=end, quantity=quantity,
                status=status, hold_expires_at=hold, price_cents=1000 * quantity, currency=bookable.currency,
                created_at=created, updated_at=created, cancelled_at=cancelled_at)
    s.add(b)
    s.flush()
    return b


def _payment(s, booking: Booking, method: str, amount: int, currency: str, status: str, created: dt.datetime,
             refunded: int = 0, updated: dt.datetime | None = None) -> Payment:
    p = Payment(booking_id=booking.id, method=method, amount_cents=amount, currency=currency, status=status,
                refunded_cents=refunded, created_at=created, updated_at=updated or created)
    s.add(p)
    s.flush()
    return p


def seed() -> dict:
    """Period of interest: Mon 2026-11-02 .. Sun 2026-11-08.

    Bookables: R room (UTC, cap 1, Mon–Fri 09–17, closed Wed 11-04, special Sat 11-07 10–12
    → 34 open hours); S service (Europe/Paris, Mon 09–12 + 13–17 → 7 h); E event (UTC, session
    11-05 18–20 cap 20 → 40 seat-hours; a cancelled session and one on a closed day don't count).
    """
    with db.unit_of_work() as s:
        admin = _user(s, "admin", "admin", T("2026-10-01"))
        provider = _user(s, "prov", "provider", T("2026-10-01"))
        alice = _user(s, "alice", "customer", T("2026-11-02", "10:00"))
        bob = _user(s, "bob", "customer", T("2026-11-03", "23:30"))  # 11-04 00:30 in Paris
        carol = _user(s, "carol", "customer", T("2026-10-15"))

        room = Bookable(provider_id=provider.id, kind="room", name="Room", capacity=1, currency="USD", timezone="UTC")
        svc = Bookable(provider_id=provider.id, kind="service", name="=Massage", capacity=1, currency="USD",
                       timezone="Europe/Paris")
        event = Bookable(provider_id=provider.id, kind="event", name="Concert", capacity=20, currency="EUR",
                         timezone="UTC")
        s.add_all([room, svc, event])
        s.flush()
        for wd in range(5):
            s.add(AvailabilityRule(bookable_id=room.id, weekday=wd, start_time=dt.time(9), end_time=dt.time(17)))
        s.add(AvailabilityRule(bookable_id=svc.id, weekday=0, start_time=dt.time(9), end_time=dt.time(12)))
        s.add(AvailabilityRule(bookable_id=svc.id, weekday=0, start_time=dt.time(13), end_time=dt.time(17)))
        s.add(AvailabilityException(bookable_id=room.id, date=dt.date(2026, 11, 4), closed=True))
        s.add(AvailabilityException(bookable_id=room.id, date=dt.date(2026, 11, 7), closed=False,
                                    start_time=dt.time(10), end_time=dt.time(12)))
        s.add(AvailabilityException(bookable_id=event.id, date=dt.date(2026, 11, 7), closed=True))
        s1 = EventSession(bookable_id=event.id, start_at=T("2026-11-05", "18:00"), end_at=T("2026-11-05", "20:00"), capacity=20)
        s2 = EventSession(bookable_id=event.id, start_at=T("2026-11-06", "18:00"), end_at=T("2026-11-06", "21:00"),
                          capacity=10, is_cancelled=True)
        s3 = EventSession(bookable_id=event.id, start_at=T("2026-11-07", "10:00"), end_at=T("2026-11-07", "11:00"), capacity=5)
        s4 = EventSession(bookable_id=event.id, start_at=T("2026-11-10", "18:00"), end_at=T("2026-11-10", "20:00"), capacity=20)
        s.add_all([s1, s2, s3, s4])
        s.flush()

        b1 = _booking(s, room, T("2026-11-02", "09:00"), 60, user=alice, status="confirmed", created=T("2026-11-02", "08:00"))
        b2 = _booking(s, room, T("2026-11-02", "10:00"), 120, user=alice, status="completed", created=T("2026-11-02", "08:30"))
        b3 = _booking(s, room, T("2026-11-03", "09:00"), 60, user=bob, status="cancelled", created=T("2026-11-03", "23:45"),
                      cancelled_at=T("2026-11-03", "23:59"))
        b4 = _booking(s, room, T("2026-11-05", "14:00"), 60, user=bob, status="no_show", created=T("2026-11-04", "12:00"))
        b5 = _booking(s, room, T("2026-11-06", "09:00"), 120, user=None, status="pending", created=T("2026-11-06", "08:00"),
                      hold=T("2026-11-06", "08:15"))
        b6 = _booking(s, svc, T("2026-11-02", "08:00"), 60, user=carol, status="confirmed", created=T("2026-11-01", "12:00"))
        _booking(s, svc, T("2026-11-08", "23:30"), 60, user=alice, status="confirmed", created=T("2026-11-05", "09:00"))
        b8 = _booking(s, event, s1.start_at, 120, user=alice, status="confirmed", created=T("2026-11-04", "10:00"),
                      quantity=3, session=s1)
        b9 = _booking(s, event, s1.start_at, 120, user=carol, status="completed", created=T("2026-11-04", "11:00"),
                      quantity=2, session=s1)
        _booking(s, room, T("2026-11-09", "09:00"), 60, user=carol, status="confirmed", created=T("2026-11-05", "10:00"))
        # around the end of summer time in Paris (2026-10-25 01:00 UTC)
        _booking(s, room, T("2026-10-24", "22:30"), 60, user=carol, status="confirmed", created=T("2026-10-20"))
        _booking(s, room, T("2026-10-25", "23:30"), 60, user=carol, status="cancelled", created=T("2026-10-20"))

        p1 = _payment(s, b1, "card", 5000, "USD", "succeeded", T("2026-11-02", "08:05"))
        s.add(Refund(payment_id=p1.id, amount_cents=1000, currency="USD", status="failed", created_at=T("2026-11-03")))
        p2 = _payment(s, b2, "on_site", 8000, "USD", "partially_refunded", T("2026-11-02", "09:00"), refunded=3000,
                      updated=T("2026-11-04", "12:00"))
        s.add(Refund(payment_id=p2.id, amount_cents=2000, currency="USD", status="succeeded", created_at=T("2026-11-03", "10:00")))
        p3 = _payment(s, b3, "card", 4000, "USD", "refunded", T("2026-11-03", "23:50"), refunded=4000,
                      updated=T("2026-11-04", "09:00"))
        s.add(Refund(payment_id=p3.id, amount_cents=4000, currency="USD", status="succeeded", created_at=T("2026-11-04", "09:00")))
        _payment(s, b8, "card", 6000, "EUR", "succeeded", T("2026-11-04", "10:05"))
        _payment(s, b9, "paypal", 4000, "EUR", "failed", T("2026-11-04", "11:05"))
        _payment(s, b5, "card", 3000, "USD", "pending", T("2026-11-06", "08:01"))
        p7 = _payment(s, b4, "card", 2500, "USD", "succeeded", T("2026-10-30"), refunded=500, updated=T("2026-11-05", "12:00"))
        s.add(Refund(payment_id=p7.id, amount_cents=500, currency="USD", status="succeeded", created_at=T("2026-11-05", "12:00")))

        s.add(AuditEvent(actor_id=admin.id, action="user.login", entity="user", entity_id=str(admin.id), at=T("2026-11-06", "09:00")))
        s.add(AuditEvent(actor_id=alice.id, action="user.login", entity="user", entity_id=str(alice.id), at=T("2026-11-02", "07:00")))
        s.add(AuditEvent(actor_id=bob.id, action="user.login_failed", entity="user", entity_id=str(bob.id), at=T("2026-11-07")))

        for i, status in enumerate(["failed", "failed", "sent", "pending"]):
            s.add(Notification(channel="email", to="x@example.com", template="booking_confirmed", context={},
                               dedupe_key=f"k{i}", status=status, next_attempt_at=T("2026-11-05", "14:58")))
        ids = {"admin": admin.id, "alice": alice.id, "bob": bob.id, "carol": carol.id, "provider": provider.id,
               "room": room.id, "svc": svc.id, "event": event.id, "b6": b6.id}
    return ids


@pytest.fixture
def data(db_url):
    ids = seed()
    ids["actor"] = Actor(id=ids["admin"], role="admin")
    return ids


R = dict(date_from="2026-11-02", date_to="2026-11-08")


def _by(rows, key):
    return {r[key] if not isinstance(key, tuple) else tuple(r[k] for k in key): r for r in rows}


# ---------------------------------------------------------------------------------------
# bookings
# ---------------------------------------------------------------------------------------

def test_bookings_by_day_utc(data):
    rep = reports.bookings(actor=data["actor"], group_by="day", **R)
    assert [r["day"] for r in rep.rows] == [f"2026-11-0{d}" for d in range(2, 9)]  # zero days included
    counts = {r["day"]: (r["bookings"], r["quantity"]) for r in rep.rows}
    assert counts == {"2026-11-02": (3, 3), "2026-11-03": (1, 1), "2026-11-04": (0, 0), "2026-11-05": (3, 6),
                      "2026-11-06": (1, 1), "2026-11-07": (0, 0), "2026-11-08": (1, 1)}
    day2 = _by(rep.rows, "day")["2026-11-02"]
    assert (day2["confirmed"], day2["completed"], day2["cancelled"]) == (2, 1, 0)
    assert rep.summary["bookings"] == 9 and rep.summary["quantity"] == 12


def test_bookings_by_day_in_a_timezone(data):
    rep = reports.bookings(actor=data["actor"], group_by="day", tz="Europe/Paris", **R)
    counts = {r["day"]: r["bookings"] for r in rep.rows}
    # the 23:30 UTC booking of 11-08 is on 11-09 in Paris: outside the period
    assert counts["2026-11-02"] == 3 and counts["2026-11-08"] == 0
    assert rep.summary["bookings"] == 8
    # without `tz` the admin's own timezone applies
    parisian = Actor(id=data["admin"], role="admin", timezone="Europe/Paris")
    assert reports.bookings(actor=parisian, group_by="day", **R).rows == rep.rows


def test_bookings_day_buckets_across_a_dst_change(data):
    paris = reports.bookings(actor=data["actor"], group_by="day", tz="Europe/Paris",
                             date_from="2026-10-24", date_to="2026-10-26")
    assert {r["day"]: r["bookings"] for r in paris.rows} == {"2026-10-24": 0, "2026-10-25": 1, "2026-10-26": 1}
    utc = reports.bookings(actor=data["actor"], group_by="day", date_from="2026-10-24", date_to="2026-10-26")
    assert {r["day"]: r["bookings"] for r in utc.rows} == {"2026-10-24": 1, "2026-10-25": 1, "2026-10-26": 0}


def test_bookings_by_status_and_service(data):
    rep = reports.bookings(actor=data["actor"], group_by="status", **R)
    assert [(r["status"], r["bookings"], r["quantity"]) for r in rep.rows] == [
        ("pending", 1, 1), ("confirmed", 4, 6), ("cancelled", 1, 1), ("completed", 2, 3), ("no_show", 1, 1)]
    rep = reports.bookings(actor=data["actor"], group_by="service", **R)
    assert [(r["service_id"], r["bookings"], r["quantity"]) for r in rep.rows] == [
        (data["room"], 5, 5), (data["svc"], 2, 2), (data["event"], 2, 5)]
    room = rep.rows[0]
    assert (room["cancelled"], room["no_show"], room["pending"], room["completed"], room["confirmed"]) == (1, 1, 1, 1, 1)


def test_long_period_gives_the_same_answers(data):
    """A quarter (a longer day grid on SQLite, the same index paths): the same numbers."""
    q = dict(date_from="2026-10-01", date_to="2026-12-31")
    rep = reports.bookings(actor=data["actor"], group_by="status", **q)
    assert {r["status"]: r["bookings"] for r in rep.rows} == {
        "pending": 1, "confirmed": 6, "cancelled": 2, "completed": 2, "no_show": 1}
    rep = reports.bookings(actor=data["actor"], group_by="service", **q)
    assert [(r["service_id"], r["bookings"]) for r in rep.rows] == [(data["room"], 8), (data["svc"], 2), (data["event"], 2)]
    assert sum(r["bookings"] for r in reports.bookings(actor=data["actor"], group_by="day", **q).rows) == 12
    assert reports.rates(actor=data["actor"], **q).summary["cancelled"] == 2
    util = _by(reports.utilization(actor=data["actor"], now=T("2026-11-10"), **q).rows, "service_id")
    assert util[data["room"]]["booked_hours"] == 6.0 and util[data["event"]]["booked_seats"] == 5


def test_bookings_by_creation_day(data):
    rep = reports.bookings(actor=data["actor"], group_by="day", basis="created", **R)
    assert {r["day"]: r["bookings"] for r in rep.rows if r["bookings"]} == {
        "2026-11-02": 2, "2026-11-03": 1, "2026-11-04": 3, "2026-11-05": 2, "2026-11-06": 1}


def test_bookings_by_service_and_status_by_creation_time(data):
    # made in the period: b1 b2 b3 (room, 11-02/11-03), b4 (room, 11-04), b5 (room, 11-06), b8 b9
    # (event, 11-04), the svc booking of 11-05 and the room booking of 11-05 (for 11-09);
    # b6 was made on 11-01
    rep = reports.bookings(actor=data["actor"], group_by="service", basis="created", **R)
    assert [(r["service_id"], r["bookings"], r["quantity"]) for r in rep.rows] == [
        (data["room"], 6, 6), (data["event"], 2, 5), (data["svc"], 1, 1)]
    assert rep.summary == {"bookings": 9, "quantity": 12, "basis": "created"}
    rep = reports.bookings(actor=data["actor"], group_by="status", basis="created", **R)
    assert {r["status"]: r["bookings"] for r in rep.rows} == {
        "pending": 1, "confirmed": 4, "cancelled": 1, "completed": 2, "no_show": 1}


def test_bookables_without_bookings_in_the_period_are_not_listed(data):
    with db.unit_of_work() as s:
        quiet = Bookable(provider_id=data["provider"], kind="room", name="Quiet", capacity=1, currency="USD",
                         timezone="UTC")
        s.add(quiet)
        s.flush()
        _booking(s, quiet, T("2026-12-01", "10:00"), 60, user=None, status="confirmed", created=T("2026-11-20"))
        quiet_id = quiet.id
    for rep in (reports.bookings(actor=data["actor"], group_by="service", **R),
                reports.rates(actor=data["actor"], **R)):
        assert quiet_id not in {r["service_id"] for r in rep.rows}
        assert len(rep.rows) == 3
    december = reports.rates(actor=data["actor"], date_from="2026-12-01", date_to="2026-12-31")
    assert [(r["service_id"], r["bookings"]) for r in december.rows] == [(quiet_id, 1)]


#: (zone, first day, last day): periods around offset changes — Paris (1 h at 01:00 UTC),
#: Havana (at local midnight: 00:00 does not exist in March and happens twice in
#: November), Lord Howe (a 30-minute change) — and a fixed +05:30 zone
ZONE_PERIODS = [
    ("Europe/Paris", "2026-03-28", "2026-03-30"), ("Europe/Paris", "2026-10-24", "2026-10-26"),
    ("America/Havana", "2026-03-07", "2026-03-09"), ("America/Havana", "2026-10-31", "2026-11-02"),
    ("Australia/Lord_Howe", "2026-04-04", "2026-04-06"), ("Asia/Kolkata", "2026-06-01", "2026-06-02"),
]


def _offset_changes(zone: zoneinfo.ZoneInfo, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """The instants (to the second) where the zone's UTC offset changes in [start, end)."""
    found, t = [], start
    while t < end:
        nxt = t + dt.timedelta(minutes=15)
        if t.astimezone(zone).utcoffset() != nxt.astimezone(zone).utcoffset():
            lo, hi = t, nxt
            while hi - lo > dt.timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                lo, hi = (mid, hi) if mid.astimezone(zone).utcoffset() == lo.astimezone(zone).utcoffset() else (lo, mid)
            found.append(hi)
        t = nxt
    return found


def test_day_buckets_are_local_dates_in_any_zone(db_url):
    """Bookings one second either side of every local midnight (both, where midnight
    happens twice) and of every offset change land on the local date Python's zoneinfo
    gives them — by start and by creation time, and in the users report."""
    instants: set[dt.datetime] = set()
    for tz, first, last in ZONE_PERIODS:
        zone = zoneinfo.ZoneInfo(tz)
        lo, hi = dt.date.fromisoformat(first) - dt.timedelta(days=1), dt.date.fromisoformat(last) + dt.timedelta(days=2)
        day = lo
        while day <= hi:
            for fold in (0, 1):
                midnight = dt.datetime.combine(day, dt.time(0), tzinfo=zone).replace(fold=fold).astimezone(UTC)
                instants.update(midnight + dt.timedelta(seconds=k) for k in (-1, 0, 1))
            day += dt.timedelta(days=1)
        start, end = (dt.datetime.combine(d, dt.time(0), tzinfo=UTC) for d in (lo, hi))
        changes = _offset_changes(zone, start, end)
        assert changes or tz == "Asia/Kolkata", tz  # each period really has its offset change
        instants.update(c + dt.timedelta(seconds=k) for c in changes for k in (-1, 0, 1))
    with db.unit_of_work() as s:
        provider = _user(s, "prov", "provider", T("2026-01-01"))
        customer = _user(s, "cust", "customer", T("2026-01-01"))
        admin = _user(s, "admin", "admin", T("2026-01-01"))
        room = Bookable(provider_id=provider.id, kind="room", name="Room", capacity=1, currency="USD", timezone="UTC")
        s.add(room)
        s.flush()
        for when in sorted(instants):
            _booking(s, room, when, 30, user=customer, status="confirmed", created=when)
        admin_id = admin.id
    actor = Actor(id=admin_id, role="admin")
    for tz, first, last in ZONE_PERIODS:
        zone = zoneinfo.ZoneInfo(tz)
        days = [dt.date.fromisoformat(first) + dt.timedelta(days=i)
                for i in range((dt.date.fromisoformat(last) - dt.date.fromisoformat(first)).days + 1)]
        expected = {d.isoformat(): sum(1 for i in instants if i.astimezone(zone).date() == d) for d in days}
        assert all(expected.values())
        for basis in ("start", "created"):
            rep = reports.bookings(actor=actor, group_by="day", basis=basis, tz=tz, date_from=first, date_to=last)
            assert {r["day"]: r["bookings"] for r in rep.rows} == expected, (tz, basis)
        users = reports.users(actor=actor, tz=tz, date_from=first, date_to=last)
        assert {r["day"]: r["bookings"] for r in users.rows} == expected, tz
        assert {r["day"]: r["active_users"] for r in users.rows} == {d: 1 for d in expected}, tz


# ---------------------------------------------------------------------------------------
# revenue
# ---------------------------------------------------------------------------------------

def test_revenue_by_day_nets_refunds(data):
    rep = reports.revenue(actor=data["actor"], group_by="day", **R)
    got = {(r["day"], r["currency"]): (r["payments"], r["gross_cents"], r["refunds_cents"], r["net_cents"]) for r in rep.rows}
    assert got == {
        ("2026-11-02", "USD"): (2, 13000, 0, 13000),
        ("2026-11-03", "USD"): (1, 4000, 2000, 2000),
        ("2026-11-04", "EUR"): (1, 6000, 0, 6000),
        # refund row of P3 (4000) + 1000 refunded on P2 without a refund row (dated by updated_at)
        ("2026-11-04", "USD"): (0, 0, 5000, -5000),
        ("2026-11-05", "USD"): (0, 0, 500, -500),  # refund of a payment made before the period
    }
    assert rep.summary["totals"] == [
        {"currency": "EUR", "payments": 1, "gross_cents": 6000, "refunds_cents": 0, "net_cents": 6000, "fees_cents": 0},
        {"currency": "USD", "payments": 3, "gross_cents": 17000, "refunds_cents": 7500, "net_cents": 9500,
         "fees_cents": 0},
    ]


def test_revenue_by_day_in_a_timezone(data):
    rep = reports.revenue(actor=data["actor"], group_by="day", tz="Europe/Paris", **R)
    got = {(r["day"], r["currency"]): (r["gross_cents"], r["refunds_cents"]) for r in rep.rows}
    assert got[("2026-11-03", "USD")] == (0, 2000)
    assert got[("2026-11-04", "USD")] == (4000, 5000)  # P3 paid 23:50 UTC = 00:50 in Paris


def test_revenue_by_method_and_service(data):
    rep = reports.revenue(actor=data["actor"], group_by="method", **R)
    assert [(r["method"], r["currency"], r["gross_cents"], r["refunds_cents"], r["net_cents"]) for r in rep.rows] == [
        ("card", "EUR", 6000, 0, 6000), ("card", "USD", 9000, 4500, 4500), ("on_site", "USD", 8000, 3000, 5000)]
    rep = reports.revenue(actor=data["actor"], group_by="service", **R)
    assert [(r["service_id"], r["currency"], r["gross_cents"], r["refunds_cents"]) for r in rep.rows] == [
        (data["room"], "USD", 17000, 7500), (data["event"], "EUR", 6000, 0)]


# ---------------------------------------------------------------------------------------
# users, utilization, rates
# ---------------------------------------------------------------------------------------

def test_users_report(data):
    rep = reports.users(actor=data["actor"], **R)
    rows = _by(rep.rows, "day")
    assert {d: r["registrations"] for d, r in rows.items() if r["registrations"]} == {"2026-11-02": 1, "2026-11-03": 1}
    assert {d: r["active_users"] for d, r in rows.items()} == {
        "2026-11-02": 1, "2026-11-03": 1, "2026-11-04": 3, "2026-11-05": 2, "2026-11-06": 1,
        "2026-11-07": 0, "2026-11-08": 0}
    assert sum(r["bookings"] for r in rep.rows) == 9
    sm = rep.summary
    assert (sm["registrations"], sm["active_users"], sm["bookings"], sm["guest_bookings"]) == (2, 4, 9, 1)
    assert sm["customers_with_bookings"] == 3 and sm["bookings_per_user"] == 2.67
    assert sm["users_total"] == 5
    assert [(c["username"], c["bookings"], c["quantity"]) for c in sm["top_customers"]] == [
        ("alice", 4, 6), ("bob", 2, 2), ("carol", 2, 3)]
    paris = reports.users(actor=data["actor"], tz="Europe/Paris", top=1, **R)
    assert _by(paris.rows, "day")["2026-11-04"]["registrations"] == 1  # bob, 00:30 in Paris
    assert [c["username"] for c in paris.summary["top_customers"]] == ["alice"]


def test_utilization(data):
    rep = reports.utilization(actor=data["actor"], now=T("2026-11-10"), **R)
    rows = _by(rep.rows, "service_id")
    room, svc, event = rows[data["room"]], rows[data["svc"]], rows[data["event"]]
    # room: 5 weekdays × 8 h − closed Wed + 2 special hours on Sat; booked 1 + 2 + 1 (no-show) h
    assert (room["available_hours"], room["booked_hours"], room["utilization"]) == (34.0, 4.0, round(4 / 34, 4))
    # service in Paris: one Monday of 7 h; the 11-09 00:30 (Paris) booking is outside
    assert (svc["available_hours"], svc["booked_hours"], svc["bookings"]) == (7.0, 1.0, 1)
    # event: one 2 h session of 20 seats; 5 seats booked for 2 h
    assert (event["available_hours"], event["booked_hours"], event["available_seats"], event["booked_seats"]) == (
        40.0, 10.0, 20, 5)
    assert event["utilization"] == 0.25
    assert rep.summary == {"available_hours": 81.0, "booked_hours": 15.0, "utilization": round(15 / 81, 4)}


def test_unexpired_hold_counts_as_booked(data):
    rep = reports.utilization(actor=data["actor"], now=T("2026-11-06", "08:10"), **R)
    assert _by(rep.rows, "service_id")[data["room"]]["booked_hours"] == 6.0


def test_cancellation_and_no_show_rates(data):
    rep = reports.rates(actor=data["actor"], **R)
    room = _by(rep.rows, "service_id")[data["room"]]
    assert (room["bookings"], room["cancellation_rate"], room["no_show_rate"]) == (5, 0.2, 0.5)
    assert _by(rep.rows, "service_id")[data["event"]]["no_show_rate"] == 0.0
    assert _by(rep.rows, "service_id")[data["svc"]]["no_show_rate"] is None
    assert rep.summary == {"bookings": 9, "cancelled": 1, "no_show": 1, "completed": 2,
                           "cancellation_rate": 0.1111, "no_show_rate": 0.3333}


def test_dashboard_counts_cancellations_of_the_day(data):
    snap = reports.dashboard_snapshot(actor=data["actor"], now=T("2026-11-03", "23:59"))
    assert snap["bookings_today"]["cancelled"] == 1  # b3, cancelled at 23:59 UTC
    paris = reports.dashboard_snapshot(actor=data["actor"], now=T("2026-11-03", "23:59"), tz="Europe/Paris")
    assert paris["date"] == "2026-11-04" and paris["bookings_today"]["cancelled"] == 1  # 00:59 in Paris
    assert reports.dashboard_snapshot(actor=data["actor"], now=T("2026-11-04", "23:00"))["bookings_today"][
        "cancelled"] == 0


def test_dashboard_snapshot(data):
    snap = reports.dashboard_snapshot(actor=data["actor"], now=T("2026-11-05", "15:00"))
    assert snap["date"] == "2026-11-05"
    assert snap["bookings_today"] == {"created": 2, "scheduled": 3, "seats": 6, "cancelled": 0}
    assert snap["revenue_today"] == [{"currency": "USD", "payments": 0, "gross_cents": 0, "refunds_cents": 500,
                                      "net_cents": -500}]
    # room Thursday 8 h (1 h no-show booked) + event session 40 seat-h (10 booked)
    assert snap["occupancy_today"] == {"available_hours": 48.0, "booked_hours": 11.0, "rate": round(11 / 48, 4)}
    assert snap["pending_payments"]["count"] == 1
    assert snap["pending_payments"]["by_currency"] == [{"currency": "USD", "count": 1, "amount_cents": 3000}]
    assert snap["pending_payments"]["bookings_on_hold"] == 1
    assert snap["notifications"] == {"failed": 2, "pending": 1}
    system = snap["system"]
    assert system["job_lag_seconds"] == {"outbox_relay": 120.0, "hold_expiry": 0.0}
    assert system["db_pool"]["size"] >= 0 and "requests_per_second" in system and "p95_ms" in system
    later = reports.dashboard_snapshot(actor=data["actor"], now=T("2026-11-06", "09:15"))
    assert later["system"]["job_lag_seconds"]["hold_expiry"] == 3600.0
    assert later["pending_payments"]["bookings_on_hold"] == 0


# ---------------------------------------------------------------------------------------
# validation and permissions
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, field", [
    (dict(date_from="2026-11-09", date_to="2026-11-08"), "from"),
    (dict(date_from="2025-01-01", date_to="2026-01-02"), "to"),
    (dict(date_from="2026-13-01", date_to="2026-11-08"), "from"),
    (dict(date_from=None, date_to="2026-11-08"), "from"),
    (dict(date_from="0001-01-01", date_to="0001-01-02"), "from"),
    (dict(date_from="9999-12-30", date_to="9999-12-31"), "from"),
    (dict(date_from="2026-11-01", date_to="2026-11-08", tz="Mars/Olympus"), "tz"),
    (dict(date_from="2026-11-01", date_to="2026-11-08", group_by="week"), "group_by"),
])
def test_invalid_input(sqlite_db, kwargs, field):
    with pytest.raises(InvalidInput) as exc:
        reports.bookings(actor=Actor(id=1, role="admin"), **kwargs)
    assert exc.value.field == field


def test_range_of_366_days_is_accepted(sqlite_db):
    q = dict(actor=Actor(id=1, role="admin"), date_from="2024-01-01", date_to="2024-12-31", tz="Europe/Paris")
    assert reports.revenue(**q).rows == []
    rep = reports.bookings(**q)
    assert len(rep.rows) == 366 and rep.rows[-1] == {"day": "2024-12-31", "bookings": 0, "quantity": 0,
                                                     **{st: 0 for st in reports.BOOKING_STATUSES}}
    assert len(reports.users(**q).rows) == 366


@pytest.mark.parametrize("role", ["customer", "provider", "guest"])
def test_non_admins_are_forbidden(sqlite_db, role):
    actor = Actor.guest() if role == "guest" else Actor(id=5, role=role)
    for fn in (reports.bookings, reports.revenue, reports.users, reports.utilization, reports.rates):
        with pytest.raises(Forbidden):
            fn(actor=actor, **R)
    with pytest.raises(Forbidden):
        reports.dashboard_snapshot(actor=actor)


def test_csv_neutralises_formulas(sqlite_db):
    rep = reports.Report("x", dt.date(2026, 1, 1), dt.date(2026, 1, 1), "UTC", None, ("name", "n"),
                         [{"name": "=HYPERLINK(1)", "n": -5}, {"name": "ok", "n": None}])
    assert reports.to_csv(rep) == "name,n\r\n'=HYPERLINK(1),-5\r\nok,\r\n"


# ---------------------------------------------------------------------------------------
# REST
# ---------------------------------------------------------------------------------------

def _token(user_id: int) -> dict[str, str]:
    from booking_app.services import auth

    with db.unit_of_work() as s:
        token, _ = auth.issue_token(s, user_id=user_id)
    return {"Authorization": f"Bearer {token}"}


def test_rest_reports(client):
    ids = seed()
    admin = _token(ids["admin"])
    q = "from=2026-11-02&to=2026-11-08"
    r = client.get(f"/api/reports/bookings?{q}&group_by=status", headers=admin)
    assert r.status_code == 200, r.text
    assert {row["status"]: row["bookings"] for row in r.json()["rows"]} == {
        "pending": 1, "confirmed": 4, "cancelled": 1, "completed": 2, "no_show": 1}
    r = client.get(f"/api/reports/revenue?{q}&group_by=method", headers=admin)
    assert [row["net_cents"] for row in r.json()["rows"]] == [6000, 4500, 5000]
    r = client.get(f"/api/reports/users?{q}", headers=admin)
    assert r.json()["summary"]["active_users"] == 4
    r = client.get(f"/api/reports/utilization?{q}&tz=Europe/Paris", headers=admin)
    assert r.status_code == 200 and len(r.json()["rows"]) == 3
    r = client.get(f"/api/reports/rates?{q}", headers=admin)
    assert r.json()["summary"]["cancelled"] == 1
    r = client.get("/api/reports/dashboard", headers=admin)
    assert r.status_code == 200 and "system" in r.json()

    r = client.get(f"/api/reports/revenue?{q}&group_by=service&format=csv", headers=admin)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    table = list(csv.reader(io.StringIO(r.text)))
    assert table[0] == ["service_id", "service_name", "currency", "payments", "gross_cents", "refunds_cents", "net_cents",
                        "fees_cents"]
    assert table[1] == [str(ids["room"]), "Room", "USD", "3", "17000", "7500", "9500", "0"]
    r = client.get(f"/api/reports/bookings?{q}&group_by=service&format=csv", headers=admin)
    assert list(csv.reader(io.StringIO(r.text)))[2][1] == "'=Massage"  # formula neutralised


def test_rest_permissions_and_validation(client):
    ids = seed()
    q = "from=2026-11-02&to=2026-11-08"
    for path in ("bookings", "revenue", "users", "utilization", "rates", "dashboard"):
        assert client.get(f"/api/reports/{path}?{q}").status_code == 401
        r = client.get(f"/api/reports/{path}?{q}", headers=_token(ids["alice"]))
        assert r.status_code == 403 and r.headers["content-type"].startswith("application/problem+json")
        assert client.get(f"/api/reports/{path}?{q}", headers=_token(ids["provider"])).status_code == 403
    admin = _token(ids["admin"])
    for bad in ("from=2026-11-09&to=2026-11-08", "from=2024-01-01&to=2026-01-01", "from=x&to=2026-01-01",
                "to=2026-01-01", f"{q}&group_by=week", f"{q}&format=xml", f"{q}&tz=Nowhere/City"):
        r = client.get(f"/api/reports/bookings?{bad}", headers=admin)
        assert r.status_code == 422, (bad, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
