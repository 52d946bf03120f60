"""The live dashboard's chart series (services/dashboard.py) against hand-computed data on
SQLite and PostgreSQL, and the per-minute request history of several processes merged over
the real Redis (services/request_stats.py)."""
from __future__ import annotations

import datetime as dt
import itertools
import os
import uuid

import pytest

from booking_app import db
from booking_app.models import Bookable, Booking, Notification, Payment, Refund, User
from booking_app.services import dashboard, request_stats
from booking_app.services.actors import Actor
from booking_app.services.errors import Forbidden, InvalidInput

_ref = itertools.count(1)
NOW = dt.datetime(2026, 11, 5, 12, 30, 30, tzinfo=dt.timezone.utc)


def T(hms: str, day: str = "2026-11-05") -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T{hms}+00:00")


def seed() -> dict:
    """Hour window at NOW: 60 minutes 11:31 … 12:30 (index 0 … 59).

    bookings made: 11:30:59 (before the window), 11:31:00 (#0), 12:00:10 and 12:00:50 (#29),
    12:30:00 (#59). Money: USD 5000 paid 12:05:30 (#34) with a 1000 refund at 12:10 (#39);
    EUR 2000 paid 12:05:01 (#34); a failed USD payment (not counted). Outbox: one waiting
    since 11-01, one made 11:50 (#19) sent 12:20 (#49), one waiting made 12:00:30 (#29), one
    failed (never counted) → backlog 1 until #18, 2 for #19–#28, 3 for #29–#48, 2 from #49.
    """
    with db.unit_of_work() as s:
        admin = User(username="admin", email="admin@example.com", password_hash="x", role="admin", full_name="A")
        prov = User(username="prov", email="prov@example.com", password_hash="x", role="provider", full_name="P")
        s.add_all([admin, prov])
        s.flush()
        room = Bookable(provider_id=prov.id, kind="room", name="Room", capacity=5, currency="USD", timezone="UTC")
        s.add(room)
        s.flush()
        made = {}
        for created in ("11:30:59", "11:31:00", "12:00:10", "12:00:50", "12:30:00"):
            start = T("09:00", "2026-11-20")
            b = Booking(reference=f"D{next(_ref):08d}", bookable_id=room.id, provider_id=prov.id, user_id=admin.id,
                        start_at=start, end_at=start + dt.timedelta(hours=1), block_start_at=start,
                        block_end_at=start + dt.timedelta(hours=1), quantity=1, status="confirmed",
                        price_cents=1000, currency="USD", created_at=T(created), updated_at=T(created))
            s.add(b)
            s.flush()
            made[created] = b
        p = Payment(booking_id=made["12:00:10"].id, method="card", amount_cents=5000, currency="USD",
                    status="partially_refunded", refunded_cents=1000, created_at=T("12:05:30"), updated_at=T("12:10:00"))
        s.add(p)
        s.flush()
        s.add(Refund(payment_id=p.id, amount_cents=1000, currency="USD", status="succeeded", created_at=T("12:10:00")))
        s.add(Payment(booking_id=made["12:00:50"].id, method="card", amount_cents=2000, currency="EUR",
                      status="succeeded", created_at=T("12:05:01"), updated_at=T("12:05:01")))
        s.add(Payment(booking_id=made["12:30:00"].id, method="card", amount_cents=9999, currency="USD",
                      status="failed", created_at=T("12:06:00"), updated_at=T("12:06:00")))
        for i, (status, created, sent) in enumerate([
                ("pending", T("08:00", "2026-11-01"), None), ("sent", T("11:50:00"), T("12:20:00")),
                ("pending", T("12:00:30"), None), ("failed", T("12:01:00"), None)]):
            s.add(Notification(channel="email", to="x@example.com", template="booking_confirmed", context={},
                               dedupe_key=f"dash{i}", status=status, created_at=created, sent_at=sent))
        return {"admin": admin.id}


@pytest.fixture
def actor(db_url):
    return Actor(id=seed()["admin"], role="admin")


def _at(values: list, **points) -> None:
    """values is zero except at the given indexes (as `i<index>=value`)."""
    expected = [0] * len(values)
    for name, value in points.items():
        expected[int(name[1:])] = value
    assert values == expected


def test_hour_window_per_minute(actor):
    out = dashboard.dashboard_series(actor=actor, window="hour", now=NOW)
    assert out["window"] == "hour" and out["period_seconds"] == 60
    assert out["start"] == "2026-11-05T11:31:00Z" and out["end"] == "2026-11-05T12:31:00Z"
    assert len(out["periods"]) == 60 and out["periods"][0] == "2026-11-05T11:31:00Z"
    assert out["periods"][-1] == "2026-11-05T12:30:00Z"
    _at(out["bookings"], i0=1, i29=2, i59=1)
    revenue = {r["currency"]: r["net_cents"] for r in out["revenue"]}
    assert set(revenue) == {"EUR", "USD"}
    _at(revenue["EUR"], i34=2000)
    _at(revenue["USD"], i34=5000, i39=-1000)
    assert out["backlog"] == [1] * 19 + [2] * 10 + [3] * 20 + [2] * 11
    # no requests were recorded in November 2026 by this process (no Redis configured)
    assert out["requests_per_second"] == [0.0] * 60 and out["p95_ms"] == [None] * 60


def test_day_window_per_quarter_hour(actor):
    out = dashboard.dashboard_series(actor=actor, window="day", now=NOW)
    assert out["period_seconds"] == 900 and len(out["periods"]) == 96
    assert out["start"] == "2026-11-04T12:45:00Z" and out["periods"][-1] == "2026-11-05T12:30:00Z"
    _at(out["bookings"], i91=2, i93=2, i95=1)  # 11:30 quarter: 11:30:59 and 11:31
    revenue = {r["currency"]: r["net_cents"] for r in out["revenue"]}
    _at(revenue["USD"], i93=4000)
    _at(revenue["EUR"], i93=2000)
    # ends of quarters: 11:44:59 → 1 (#91), 11:59:59 → 2 (#92), 12:14:59 → 3 (#93), 12:29:59 → 2 (#94), now → 2
    assert out["backlog"][:92] == [1] * 92 and out["backlog"][92:] == [2, 3, 2, 2]


def test_only_admins_and_known_windows(actor, db_url):
    with pytest.raises(Forbidden):
        dashboard.dashboard_series(actor=Actor(id=actor.id, role="provider"), now=NOW)
    with pytest.raises(InvalidInput):
        dashboard.dashboard_series(actor=actor, window="week", now=NOW)


def test_history_of_one_process_per_minute():
    clock = [600.0 * 60 + 5]  # 5 s into minute 600
    h = request_stats.RequestHistory(60, 60, clock=lambda: clock[0])
    for d in (0.010, 0.010, 0.500):
        h.add(d, False)
    clock[0] += 60  # minute 601
    h.add(0.020, True)
    points = request_stats.merge_history(60, 599, 3, [h.snapshot()], now=clock[0])
    assert [p["requests"] for p in points] == [0, 3, 1]
    assert points[1]["requests_per_second"] == round(3 / 60, 3)
    assert points[2]["requests_per_second"] == round(1 / 5, 3)  # 5 s into the current minute
    assert points[2]["errors"] == 1 and points[0]["p95_ms"] is None
    assert 400 <= points[1]["p95_ms"] <= 625  # the 0.5 s request's bucket
    clock[0] += 3600  # an hour later the old minutes are gone
    h.add(0.010, False)
    assert sorted(h.snapshot()) == [h.index()]


@pytest.fixture
def redis_client():
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip("no Redis")
    prefix = f"test:metrics:{uuid.uuid4().hex[:8]}"
    yield client, prefix
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


def test_history_of_two_processes_merged_over_redis(redis_client):
    client, prefix = redis_client
    clock = [700.0 * 60 + 30]  # 30 s into minute 700

    def process(pid: str):
        hist = request_stats.RequestHistory(60, 60, clock=lambda: clock[0])
        return hist, request_stats.SharedWindow(request_stats.RequestWindow(), client, prefix=prefix, process_id=pid,
                                          histories={60: hist})

    ha, a = process("a")
    hb, b = process("b")
    for _ in range(10):
        ha.add(0.010, False)  # 10 fast requests in a
        hb.add(1.0, False)  # 10 slow requests in b, 2 of them errors
    hb.add(1.0, True)
    hb.add(1.0, True)
    a.publish()
    b.publish()
    clock[0] += 60  # minute 701: only a
    ha.add(0.010, False)
    a.publish()
    for reader in (a, b):  # each sees both (its own read locally)
        points = request_stats.merge_history(60, 700, 2, reader.histories_of_all(60), now=clock[0])
        assert [p["requests"] for p in points] == [22, 1]
        assert points[0]["errors"] == 2
        assert points[0]["requests_per_second"] == round(22 / 60, 3)
        assert 800 <= points[0]["p95_ms"] <= 1250  # the slow process decides the p95
        assert points[1]["requests_per_second"] == round(1 / 30, 3)
    # a process that stopped publishing keeps its past minutes until the key expires
    assert client.ttl(a.history_key(60, "b")) > 3000
    client.delete(a.history_key(60, "b"))
    points = request_stats.merge_history(60, 700, 2, a.histories_of_all(60), now=clock[0])
    assert [p["requests"] for p in points] == [10, 1]
    assert client.smembers(a.history_members_key(60)) == {b"a"}


def test_rest_series(client):
    from booking_app.services import auth

    admin = seed()["admin"]
    with db.unit_of_work() as s:
        token, _ = auth.issue_token(s, user_id=admin)
    headers = {"Authorization": f"Bearer {token}"}
    r = client.get("/api/reports/dashboard/series?window=day", headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["window"] == "day" and len(body["periods"]) == len(body["bookings"]) == 96
    assert len(body["requests_per_second"]) == len(body["backlog"]) == 96
    assert client.get("/api/reports/dashboard/series", headers=headers).json()["period_seconds"] == 60
    r = client.get("/api/reports/dashboard/series?window=week", headers=headers)
    assert r.status_code == 422 and r.json()["field"] == "window"
    assert client.get("/api/reports/dashboard/series").status_code == 401
