"""Calendar files and feeds: invitations (REQUEST/CANCEL, stable UID, SEQUENCE), the
per-user feed `/api/calendar/{token}.ics` (secret, revocable; providers' schedules), and
the admin's outbox endpoints (list, detail preview, retry)."""
from __future__ import annotations

import datetime as dt

import pytest
from freezegun import freeze_time
from icalendar import Calendar

from booking_app import db
from booking_app.integrations import ics
from booking_app.services import auth, bookings, messages, outbox, relay
from booking_app.services.actors import Actor
from tests.factories import actor_for
from tests.stubs.notify_helpers import book, fast_password_hashing, make_world, outbox_rows

UTC = dt.timezone.utc
START = (dt.datetime.now(UTC) + dt.timedelta(days=3)).replace(hour=10, minute=0, second=0, microsecond=0)


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    fast_password_hashing(monkeypatch)


def headers_for(user) -> dict[str, str]:
    with db.unit_of_work() as s:
        token, _ = auth.issue_token(s, user_id=user.id)
    return {"Authorization": f"Bearer {token}"}


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return response.json()


# --- ics files ----------------------------------------------------------------------------------

def test_invitation_and_cancellation_share_uid_and_carry_sequence():
    event = ics.IcsEvent(uid=ics.booking_uid("ABC123", "https://book.example.com:8443/x"), start=START,
                         end=START + dt.timedelta(hours=1), summary="Yoga; beginners, level 1", sequence=3,
                         location="Studio B", url="https://book.example.com/booking?id=7",
                         organizer=ics.person_from_address("Booking <no-reply@book.example.com>"),
                         attendees=(ics.Person("ann@example.com", "Ann"),))
    req = Calendar.from_ical(ics.invitation(event, method=ics.METHOD_REQUEST))
    cancel = Calendar.from_ical(ics.invitation(event, method=ics.METHOD_CANCEL))
    assert req["METHOD"] == "REQUEST" and cancel["METHOD"] == "CANCEL"
    (ev_req,), (ev_cancel,) = req.walk("VEVENT"), cancel.walk("VEVENT")
    assert str(ev_req["UID"]) == str(ev_cancel["UID"]) == "booking-ABC123@book.example.com"
    assert int(ev_req["SEQUENCE"]) == int(ev_cancel["SEQUENCE"]) == 3
    assert str(ev_req["STATUS"]) == "CONFIRMED" and str(ev_cancel["STATUS"]) == "CANCELLED"
    assert str(ev_req["SUMMARY"]) == "Yoga; beginners, level 1"  # escaped and parsed back
    assert ev_req.decoded("DTSTART") == START and ev_req.decoded("DTEND") == START + dt.timedelta(hours=1)
    assert str(ev_req["ORGANIZER"]) == "mailto:no-reply@book.example.com"
    assert "PRODID" in req and req["VERSION"] == "2.0"


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError):
        ics.invitation(ics.IcsEvent(uid="u", start=dt.datetime(2026, 1, 1), end=dt.datetime(2026, 1, 1, 1), summary="x"))


def test_reschedule_invitation_bumps_sequence(sqlite_db):
    w = make_world()
    b = book(w, START)
    bookings.reschedule(actor=actor_for(w.customer), booking_id=b.id, start=START + dt.timedelta(hours=2))
    (row,) = outbox_rows(booking_id=b.id, template="booking_rescheduled")
    rendered = messages.render_email(row.template, row.locale, row.context)
    (ev,) = Calendar.from_ical(rendered.ics).walk("VEVENT")
    assert int(ev["SEQUENCE"]) == 1 and ev.decoded("DTSTART") == START + dt.timedelta(hours=2)
    assert "Previous time:" in rendered.text


# --- feeds --------------------------------------------------------------------------------------

def test_customer_feed_lists_upcoming_bookings_and_can_be_revoked(client):
    w = make_world()
    h = headers_for(w.customer)
    b1 = book(w, START)
    b2 = book(w, START + dt.timedelta(days=1))
    b3 = book(w, START + dt.timedelta(days=2))
    bookings.cancel(actor=actor_for(w.customer), booking_id=b3.id)
    r = client.post("/api/calendar/feeds", headers=h, json={})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["scope"] == "bookings" and created["url"].endswith(f"/api/calendar/{created['token']}.ics")

    feed = client.get(f"/api/calendar/{created['token']}.ics")
    assert feed.status_code == 200 and feed.headers["content-type"].startswith("text/calendar")
    cal = Calendar.from_ical(feed.content)
    assert "METHOD" not in cal and "My bookings" in str(cal["X-WR-CALNAME"])
    uids = sorted(str(e["UID"]) for e in cal.walk("VEVENT"))
    assert uids == sorted(f"booking-{b.reference}@localhost" for b in (b1, b2))

    listed = client.get("/api/calendar/feeds", headers=h).json()["items"]
    assert [f["id"] for f in listed] == [created["id"]] and "token" not in listed[0]
    # someone else cannot revoke it (and does not learn that it exists)
    other = make_world()
    problem(client.delete(f"/api/calendar/feeds/{created['id']}", headers=headers_for(other.customer)), 404)
    assert client.delete(f"/api/calendar/feeds/{created['id']}", headers=h).status_code == 204
    problem(client.get(f"/api/calendar/{created['token']}.ics"), 404)
    assert client.get("/api/calendar/feeds", headers=h).json()["items"][0]["revoked_at"] is not None


def test_provider_schedule_feed_shows_customers(client):
    w = make_world()
    b = book(w, START)
    guest = bookings.book(actor=Actor.guest(), service_id=w.bookable.id, start=START + dt.timedelta(hours=1),
                          guest={"name": "Gus Guest", "email": "gus@example.com"})
    r = client.post("/api/calendar/feeds", headers=headers_for(w.provider), json={"scope": "schedule"})
    assert r.status_code == 201, r.text
    cal = Calendar.from_ical(client.get(f"/api/calendar/{r.json()['token']}.ics").content)
    summaries = {str(e["UID"]): str(e["SUMMARY"]) for e in cal.walk("VEVENT")}
    assert summaries == {f"booking-{b.reference}@localhost": "Meeting room: Carla Customer",
                         f"booking-{guest.reference}@localhost": "Meeting room: Gus Guest"}
    # a customer has no schedule
    problem(client.post("/api/calendar/feeds", headers=headers_for(w.customer), json={"scope": "schedule"}), 403)


def test_feed_input_errors(client):
    w = make_world()
    problem(client.post("/api/calendar/feeds", json={}), 401)
    problem(client.post("/api/calendar/feeds", headers=headers_for(w.customer), json={"scope": "everything"}), 422)
    problem(client.get("/api/calendar/not-a-token.ics"), 404)
    problem(client.get(f"/api/calendar/{'x' * 500}.ics"), 404)
    problem(client.delete("/api/calendar/feeds/99999999999", headers=headers_for(w.customer)), 422)


# --- admin outbox -----------------------------------------------------------------------------------

def test_admin_outbox_list_detail_and_retry(client):
    from tests.factories import make_admin

    w = make_world()
    admin = make_admin()
    ha = headers_for(admin)
    with freeze_time(dt.datetime.now(UTC) - dt.timedelta(days=1)):
        b = book(w, START)
    with db.unit_of_work() as s:
        outbox.enqueue(s, channel="email", to="broken@example.com", template="password_reset", locale="en",
                       context={"username": "x", "reset_url": "http://secret/reset?token=abc", "token": "abc",
                                "expires_minutes": 60}, dedupe_key="admin-view-1")

    problem(client.get("/api/admin/notifications"), 401)
    problem(client.get("/api/admin/notifications", headers=headers_for(w.customer)), 403)
    page = client.get("/api/admin/notifications", headers=ha).json()
    assert page["total"] == len(outbox_rows()) and page["items"][0]["to"] == "broken@example.com"  # newest first
    assert "context" not in page["items"][0]
    only = client.get("/api/admin/notifications", headers=ha, params={"template": "reminder", "status": "pending"}).json()
    assert only["total"] == 2 and {i["template"] for i in only["items"]} == {"reminder"}
    by_booking = client.get("/api/admin/notifications", headers=ha, params={"booking_id": b.id}).json()
    assert by_booking["total"] == 4
    problem(client.get("/api/admin/notifications", headers=ha, params={"status": "lost"}), 422)
    problem(client.get("/api/admin/notifications", headers=ha, params={"limit": 0}), 422)
    problem(client.get("/api/admin/notifications", headers=ha, params={"q": "a\x00b"}), 422)
    assert client.get("/api/admin/notifications", headers=ha, params={"q": "%_"}).json()["total"] == 0
    found = client.get("/api/admin/notifications", headers=ha, params={"q": "BROKEN@"}).json()
    assert [i["to"] for i in found["items"]] == ["broken@example.com"]

    row = outbox_rows(dedupe_key="admin-view-1")[0]
    detail = client.get(f"/api/admin/notifications/{row.id}", headers=ha).json()
    assert detail["subject"] == "Reset your password" and "secret" not in detail["body"] and "abc" not in detail["body"]
    problem(client.get("/api/admin/notifications/424242", headers=ha), 404)

    # not failed: nothing to retry
    problem(client.post(f"/api/admin/notifications/{row.id}/retry", headers=ha), 409)
    with db.unit_of_work() as s:
        from booking_app.models import Notification

        n = s.get(Notification, row.id)
        n.status, n.attempts, n.last_error = "failed", 8, "SendGrid HTTP 500"
        s.add(n)
    failed = client.get("/api/admin/notifications", headers=ha, params={"status": "failed"}).json()
    assert [(i["id"], i["last_error"]) for i in failed["items"]] == [(row.id, "SendGrid HTTP 500")]
    problem(client.post(f"/api/admin/notifications/{row.id}/retry", headers=headers_for(w.customer)), 403)
    r = client.post(f"/api/admin/notifications/{row.id}/retry", headers=ha)
    assert r.status_code == 200 and r.json()["status"] == "pending" and r.json()["attempts"] == 0
    assert relay.relay_once().sent >= 1
    assert outbox_rows(dedupe_key="admin-view-1")[0].status == "sent"
