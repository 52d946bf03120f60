"""Notification Service: what a booking's life queues in the outbox, how messages render
(recipient's locale and timezone, Babel money), reminders (offsets, reschedule, cancel,
DST, frozen clock), the relay's retry/backoff/failure, and transactions that roll back."""
from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from babel.dates import format_date, format_time
from freezegun import freeze_time
from icalendar import Calendar
from sqlalchemy import update
from sqlmodel import select

from booking_app import db
from booking_app.i18n import translate
from booking_app.integrations.delivery import DeliveryError
from booking_app.integrations.email import ConsoleEmailSender
from booking_app.integrations.sms import ConsoleSmsSender
from booking_app.models import Booking, Notification
from booking_app.services import bookings, capacity, manage_links, messages, notify, outbox, outbox_admin, reminders
from booking_app.services import relay as outbox_relay
from booking_app.services.actors import Actor
from booking_app.services.errors import NotAvailable
from tests.factories import actor_for
from tests.stubs.notify_helpers import book, fast_password_hashing, make_world, outbox_rows, set_user

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 6, 1, 8, 0, tzinfo=UTC)  # "now" of most tests (a Monday)
START = dt.datetime(2026, 6, 4, 14, 0, tzinfo=UTC)  # three days later


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    fast_password_hashing(monkeypatch)
    ConsoleEmailSender.clear()
    ConsoleSmsSender.clear()


class RecordingEmail:
    name = "recording"

    def __init__(self, fail_with: Exception | None = None) -> None:
        self.sent = []
        self.fail_with = fail_with

    def send(self, message):
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append(message)
        return f"rec-{len(self.sent)}"


class RecordingSms(RecordingEmail):
    pass


def relay(now: dt.datetime, email=None, sms=None):
    return outbox_relay.relay_once(now=now, email_sender=email or RecordingEmail(), sms_sender=sms or RecordingSms())


def ics_of(message) -> Calendar:
    (att,) = [a for a in message.attachments if a.content_type == "text/calendar"]
    return Calendar.from_ical(att.content)


# --- what gets queued -------------------------------------------------------------------------------

def test_confirmed_booking_queues_customer_email_sms_provider_notice_and_reminders(db_url):
    w = make_world(customer={"phone": "+4915112345678", "locale": "de", "timezone": "Europe/Berlin"})
    set_user(w.customer.id, notify_sms=True)
    with freeze_time(T0):
        b = book(w, START)
    assert b.status == "confirmed"
    rows = outbox_rows(booking_id=b.id)
    by_key = {(r.channel, r.template, r.to): r for r in rows if r.template != "reminder"}
    assert set(by_key) == {
        ("email", "booking_confirmed", w.customer.email),
        ("sms", "booking_confirmed", "+4915112345678"),
        ("email", "provider_new_booking", w.provider.email),
    }
    assert by_key[("email", "booking_confirmed", w.customer.email)].locale == "de"
    assert by_key[("email", "booking_confirmed", w.customer.email)].context["timezone"] == "Europe/Berlin"
    reminders = sorted((r.channel, r.next_attempt_at) for r in rows if r.template == "reminder")
    assert reminders == sorted([
        ("email", START - dt.timedelta(minutes=1440)), ("email", START - dt.timedelta(minutes=60)),
        ("sms", START - dt.timedelta(minutes=1440)), ("sms", START - dt.timedelta(minutes=60)),
    ])
    assert all(r.status == "pending" for r in rows)


def test_no_sms_without_opt_in_and_no_email_when_opted_out(db_url):
    w = make_world(customer={"phone": "+14155550123"})  # phone but no SMS opt-in
    set_user(w.customer.id, notify_email=False)
    with freeze_time(T0):
        b = book(w, START)
    rows = outbox_rows(booking_id=b.id)
    assert [(r.channel, r.template) for r in rows] == [("email", "provider_new_booking")]


def test_reminders_whose_time_has_passed_are_not_queued(sqlite_db):
    w = make_world()
    with freeze_time(START - dt.timedelta(minutes=30)):
        b1 = book(w, START)  # 30 min ahead: neither the 24 h nor the 1 h reminder
    with freeze_time(START - dt.timedelta(hours=3)):
        b2 = book(w, START + dt.timedelta(hours=1))  # 4 h ahead: only the 1 h reminder
    assert outbox_rows(booking_id=b1.id, template="reminder") == []
    (r,) = outbox_rows(booking_id=b2.id, template="reminder")
    assert r.next_attempt_at == START and r.context["offset_minutes"] == 60


def test_per_bookable_reminder_offsets_override_the_defaults(sqlite_db):
    w = make_world(reminder_offsets="2880, 15,bogus,-5")
    with freeze_time(T0):
        b = book(w, START)
    due = sorted(r.next_attempt_at for r in outbox_rows(booking_id=b.id, template="reminder"))
    assert due == [START - dt.timedelta(days=2), START - dt.timedelta(minutes=15)]


def test_reminder_offsets_validation_for_the_catalog():
    from booking_app.services.errors import InvalidInput

    assert reminders.normalize_reminder_offsets("60, 1440,60") == "1440,60"
    assert reminders.normalize_reminder_offsets([15]) == "15" and reminders.normalize_reminder_offsets(None) == ""
    for bad in ("0", "abc", "-5", "1,2,3,4,5,6", [True], str(reminders.MAX_REMINDER_OFFSET_MINUTES + 1)):
        with pytest.raises(InvalidInput):
            reminders.normalize_reminder_offsets(bad)


def test_outbox_contexts_hold_plain_json_with_times_in_utc(db_url):
    """The contexts are built JSON-safe once (the snapshot converts its times itself): every
    row's context survives a JSON round trip unchanged, times as UTC ISO strings, the
    reschedule's previous start too."""
    import json

    w = make_world(customer={"timezone": "Europe/Berlin"})
    new_start = START + dt.timedelta(days=1)
    with freeze_time(T0):
        b = book(w, START)
        bookings.reschedule(actor=actor_for(w.customer), booking_id=b.id, start=new_start)
    rows = outbox_rows(booking_id=b.id)
    assert {r.template for r in rows} >= {"booking_confirmed", "reminder", "booking_rescheduled",
                                          "provider_new_booking", "provider_booking_rescheduled"}
    for r in rows:
        assert json.loads(json.dumps(r.context)) == r.context
        assert dt.datetime.fromisoformat(r.context["start"]).utcoffset() == dt.timedelta(0)
    moved = [r for r in rows if r.template == "booking_rescheduled"]
    assert moved and all(dt.datetime.fromisoformat(r.context["previous_start"]) == START for r in moved)
    assert all(dt.datetime.fromisoformat(r.context["start"]) == new_start for r in moved)


def test_reschedule_moves_reminders_and_cancel_drops_them(db_url):
    w = make_world()
    new_start = START + dt.timedelta(days=1, hours=2)
    with freeze_time(T0):
        b = book(w, START)
        bookings.reschedule(actor=actor_for(w.customer), booking_id=b.id, start=new_start)
    rows = outbox_rows(booking_id=b.id, template="reminder")
    pending = sorted(r.next_attempt_at for r in rows if r.status == "pending")
    assert pending == [new_start - dt.timedelta(days=1), new_start - dt.timedelta(hours=1)]
    assert sorted(r.next_attempt_at for r in rows if r.status == "cancelled") == [
        START - dt.timedelta(days=1), START - dt.timedelta(hours=1)]
    templates = [r.template for r in outbox_rows(booking_id=b.id) if r.template != "reminder"]
    assert templates.count("booking_rescheduled") == 1 and templates.count("provider_booking_rescheduled") == 1

    with freeze_time(T0 + dt.timedelta(hours=1)):
        bookings.cancel(actor=actor_for(w.customer), booking_id=b.id)
    rows = outbox_rows(booking_id=b.id, template="reminder")
    assert [r for r in rows if r.status == "pending"] == []
    # and the relay, at the old reminder times, sends none
    email = RecordingEmail()
    for when in (START - dt.timedelta(hours=1), new_start - dt.timedelta(hours=1)):
        relay(when, email=email)
    assert [m for m in email.sent if "Reminder" in m.subject] == []


def test_relay_sends_reminder_at_its_time_not_before(sqlite_db):
    w = make_world()
    with freeze_time(T0):
        b = book(w, START)
    email = RecordingEmail()
    relay(T0, email=email)  # the confirmation and the provider notice go now
    assert sorted(m.to for m in email.sent) == sorted([w.customer.email, w.provider.email])
    email.sent.clear()
    assert relay(START - dt.timedelta(hours=24, seconds=1), email=email).sent == 0
    assert relay(START - dt.timedelta(hours=24), email=email).sent == 1
    (msg,) = email.sent
    assert msg.subject.startswith("Reminder: Meeting room") and "starts in 1 day" in msg.text
    assert relay(START - dt.timedelta(hours=1), email=email).sent == 1
    assert "starts in 1 hour" in email.sent[-1].text
    assert relay(START, email=email).sent == 0
    assert {r.status for r in outbox_rows(booking_id=b.id)} == {"sent"}


def test_reminders_follow_the_recipients_current_settings(sqlite_db):
    w = make_world(customer={"phone": "+14155550123", "locale": "en", "timezone": "UTC"})
    set_user(w.customer.id, notify_sms=True)
    with freeze_time(T0):
        b = book(w, START)
    # later the customer moves to Tokyo, switches to French, stops text messages, changes address
    set_user(w.customer.id, timezone="Asia/Tokyo", locale="fr", notify_sms=False, email="new@example.com")
    email, sms = RecordingEmail(), RecordingSms()
    stats = relay(START - dt.timedelta(hours=1), email=email, sms=sms)
    assert {m.headers["Content-Language"] for m in email.sent if m.to == "new@example.com"} == {"fr"}
    reminder_ids = {str(r.id) for r in outbox_rows(booking_id=b.id, channel="email", template="reminder")}
    reminders = [m for m in email.sent if m.headers["X-Booking-Notification"] in reminder_ids]
    assert [m.to for m in reminders] == ["new@example.com", "new@example.com"]  # 24 h (late) and 1 h
    local = START.astimezone(zoneinfo.ZoneInfo("Asia/Tokyo"))
    assert format_date(local, "full", locale="fr") in reminders[-1].text and "23:00" in reminders[-1].text
    assert sms.sent == [] and stats.skipped >= 2
    assert {r.last_error for r in outbox_rows(booking_id=b.id, channel="sms", template="reminder")} == {
        "skipped: text messages turned off"}


def test_relay_skips_a_reminder_whose_booking_changed_behind_its_back(sqlite_db):
    w = make_world()
    with freeze_time(T0):
        b = book(w, START)
    with db.unit_of_work() as s:  # e.g. an admin fixed the row by hand
        s.exec(update(Booking).where(Booking.id == b.id).values(status="cancelled"))
    email = RecordingEmail()
    stats = relay(START - dt.timedelta(minutes=30), email=email)
    assert stats.skipped == 2 and not any("Reminder" in m.subject for m in email.sent)
    assert {r.status for r in outbox_rows(booking_id=b.id, template="reminder")} == {"cancelled"}


# --- rendering ---------------------------------------------------------------------------------

def test_confirmation_renders_in_recipient_locale_timezone_and_currency(sqlite_db):
    w = make_world(customer={"locale": "de", "timezone": "America/New_York"},
                   bookable={"price_cents": 12345, "currency": "EUR", "timezone": "Europe/Paris"})
    with freeze_time(T0):
        b = book(w, START)
    email = RecordingEmail()
    relay(T0, email=email)
    (msg,) = [m for m in email.sent if m.to == w.customer.email]
    local = START.astimezone(zoneinfo.ZoneInfo("America/New_York"))
    assert format_date(local, "full", locale="de") in msg.text  # "Donnerstag, 4. Juni 2026"
    assert format_time(local, "short", locale="de") in msg.text  # 10:00 in New York
    assert "123,45\xa0€" in msg.text
    assert translate("Booking confirmed: {service} on {date}", "de", service="Meeting room",
                     date=format_date(local, "medium", locale="de")) == msg.subject
    assert '<html lang="de" dir="ltr">' in msg.html and "123,45" in msg.html
    assert f"/booking?id={b.id}" in msg.text
    cal = ics_of(msg)
    assert cal["METHOD"] == "REQUEST"
    (ev,) = cal.walk("VEVENT")
    assert str(ev["UID"]) == f"booking-{b.reference}@localhost"
    assert ev.decoded("DTSTART") == START and int(ev["SEQUENCE"]) == 0
    # the provider's notice: their own locale/timezone (UTC), the customer's name
    (notice,) = [m for m in email.sent if m.to == w.provider.email]
    assert "Carla Customer booked Meeting room." in notice.text
    assert "2:00\u202fPM" in notice.text and "Coordinated Universal Time" in notice.text


def test_arabic_message_is_right_to_left(sqlite_db):
    rendered = messages.render_email("booking_confirmed", "ar", {
        "reference": "R1", "service": "Room", "start": START.isoformat(), "end": (START + dt.timedelta(hours=1)).isoformat(),
        "timezone": "Asia/Dubai", "price_cents": 5000, "currency": "AED", "url": "http://x/booking?id=1", "name": "Ali"})
    assert 'dir="rtl"' in rendered.html and "text-align:right" in rendered.html
    assert format_date(START.astimezone(zoneinfo.ZoneInfo("Asia/Dubai")), "full", locale="ar") in rendered.text


def test_money_uses_the_currency_minor_units():
    assert messages.format_money(1234, "JPY", "en") == "¥1,234"
    assert messages.format_money(1234, "USD", "en") == "$12.34"
    assert messages.format_money(1234, "EUR", "fr").replace("\u202f", " ").replace("\xa0", " ") == "12,34 €"


def test_cancellation_email_has_refund_and_cancel_ics_with_same_uid_and_higher_sequence(sqlite_db):
    w = make_world()
    with freeze_time(T0):
        b = book(w, START)
    # a paid booking: pretend the payments service recorded 40.00 EUR
    with freeze_time(T0), db.unit_of_work() as s:
        bk = s.get(Booking, b.id)
        bk.refund_due_cents = 4000
        bk.status = "cancelled"
        bk.cancel_reason = "cancelled_by_provider"
        bk.sequence += 1
        bk.version += 1
        s.add(bk)
        notify.booking_event(s, booking=bk, event="booking_cancelled", extra={"refund_due_cents": 4000})
    email = RecordingEmail()
    relay(T0, email=email)
    (msg,) = [m for m in email.sent if m.subject.startswith("Booking cancelled") and m.to == w.customer.email]
    assert "A refund of €40.00 is on its way to you." in msg.text
    assert "Cancelled by the provider." in msg.text
    cal = ics_of(msg)
    assert cal["METHOD"] == "CANCEL"
    (ev,) = cal.walk("VEVENT")
    assert str(ev["UID"]) == f"booking-{b.reference}@localhost" and int(ev["SEQUENCE"]) == 1
    assert str(ev["STATUS"]) == "CANCELLED"


def test_guest_gets_signed_manage_link_which_is_scrubbed_after_sending(sqlite_db):
    w = make_world()
    with freeze_time(T0):
        b = bookings.book(actor=Actor.guest(locale="fr"), service_id=w.bookable.id, start=START,
                          guest={"name": "Gus Guest", "email": "gus@example.com"})
    email = RecordingEmail()
    relay(T0, email=email)
    (msg,) = [m for m in email.sent if m.to == "gus@example.com"]
    token = manage_links.booking_manage_token(b.id)
    assert f"/booking?id={b.id}&token={token}" in msg.text
    (notice,) = [m for m in email.sent if m.to == w.provider.email]
    assert token not in notice.text and "Gus Guest" in notice.text
    (row,) = outbox_rows(booking_id=b.id, template="booking_confirmed")
    assert row.status == "sent" and "manage_url" not in row.context
    # its reminders still carry the link until they are sent
    assert all("manage_url" in r.context for r in outbox_rows(booking_id=b.id, template="reminder"))


def test_password_reset_email_then_token_scrubbed(sqlite_db):
    from booking_app.services import auth

    w = make_world()
    auth.request_password_reset(email=w.customer.email)
    email = RecordingEmail()
    relay(dt.datetime.now(UTC), email=email)
    (msg,) = email.sent
    assert msg.subject == "Reset your password" and "/reset-password?token=" in msg.text
    assert msg.attachments == ()
    (row,) = outbox_rows(template="password_reset")
    assert row.status == "sent" and "token" not in row.context and "reset_url" not in row.context


def test_sms_is_short_and_in_recipient_timezone(sqlite_db):
    w = make_world(customer={"phone": "+33612345678", "timezone": "Europe/Paris", "locale": "fr"})
    set_user(w.customer.id, notify_sms=True)
    with freeze_time(T0):
        book(w, START)
    sms = RecordingSms()
    relay(T0, sms=sms)
    (text,) = [m.body for m in sms.sent]
    assert len(text) <= 160 and "16:00" in text  # 14:00 UTC is 16:00 in Paris in June


# --- relay: failures, backoff, never lost --------------------------------------------------------

def test_failures_back_off_then_fail_and_admin_retry_sends(db_url, monkeypatch):
    monkeypatch.setenv("OUTBOX_MAX_ATTEMPTS", "3")
    from booking_app.config import reset_settings_cache

    reset_settings_cache()
    w = make_world()
    set_user(w.provider.id, notify_email=False)
    with freeze_time(T0):
        b = book(w, START)
    broken = RecordingEmail(fail_with=DeliveryError("SMTP 451: try later"))
    now = T0
    stats = relay(now, email=broken)
    assert (stats.claimed, stats.retried, stats.sent) == (1, 1, 0)
    (row,) = outbox_rows(booking_id=b.id, template="booking_confirmed")
    assert row.status == "pending" and row.attempts == 1 and "451" in row.last_error
    first_delay = row.next_attempt_at - now
    assert dt.timedelta(seconds=26) <= first_delay <= dt.timedelta(seconds=34)
    assert relay(now + first_delay - dt.timedelta(seconds=1), email=broken).claimed == 0  # not yet due
    now = row.next_attempt_at
    relay(now, email=broken)
    (row,) = outbox_rows(booking_id=b.id, template="booking_confirmed")
    assert row.attempts == 2 and row.status == "pending"
    assert dt.timedelta(seconds=53) <= row.next_attempt_at - now <= dt.timedelta(seconds=67)  # doubled
    relay(row.next_attempt_at, email=broken)
    (row,) = outbox_rows(booking_id=b.id, template="booking_confirmed")
    assert row.status == "failed" and row.attempts == 3 and "451" in row.last_error

    admin = Actor(id=None, role="admin")
    view = outbox_admin.retry_notification(actor=admin, notification_id=row.id)
    assert view.status == "pending" and view.attempts == 0
    good = RecordingEmail()
    assert relay(dt.datetime.now(UTC), email=good).sent == 1
    (row,) = outbox_rows(booking_id=b.id, template="booking_confirmed")
    assert row.status == "sent" and row.last_error is None and row.provider_ref == "rec-1"


def test_backoff_is_capped():
    assert outbox_relay.backoff_delay(30) <= dt.timedelta(seconds=outbox_relay.BACKOFF_CAP_SECONDS * 1.1)
    assert outbox_relay.backoff_delay(30) >= dt.timedelta(seconds=outbox_relay.BACKOFF_CAP_SECONDS * 0.9)


def test_rendering_bug_is_retried_not_lost(sqlite_db):
    with db.unit_of_work() as s:
        outbox.enqueue(s, channel="email", to="a@example.com", template="no_such_template", locale="en",
                       context={}, dedupe_key="broken-1")
    stats = relay(dt.datetime.now(UTC))
    assert stats.retried == 1
    (row,) = outbox_rows(dedupe_key="broken-1")
    assert row.status == "pending" and "no_such_template" in row.last_error


def test_invalid_phone_fails_at_once_without_calling_the_provider(sqlite_db):
    with db.unit_of_work() as s:
        outbox.enqueue(s, channel="sms", to="12345", template="booking_confirmed", locale="en", context={}, dedupe_key="sms-bad")
    sms = RecordingSms()
    stats = relay(dt.datetime.now(UTC), sms=sms)
    assert stats.failed == 1 and sms.sent == []
    (row,) = outbox_rows(dedupe_key="sms-bad")
    assert row.status == "failed" and "E.164" in row.last_error


def test_crashed_sender_lease_expires_and_row_is_sent_once(db_url):
    with db.unit_of_work() as s:
        outbox.enqueue(s, channel="email", to="a@example.com", template="password_reset", locale="en",
                       context={"username": "a", "reset_url": "http://x/r", "expires_minutes": 60}, dedupe_key="lease-1")
    now = dt.datetime.now(UTC)
    claimed = outbox_relay.claim_due(now=now, lease_seconds=60)  # a relay claims it, then dies
    assert [c.attempts for c in claimed] == [1]
    email = RecordingEmail()
    assert relay(now + dt.timedelta(seconds=30), email=email).claimed == 0  # still leased
    assert relay(now + dt.timedelta(seconds=61), email=email).sent == 1  # lease ran out
    (row,) = outbox_rows(dedupe_key="lease-1")
    assert row.status == "sent" and row.attempts == 2 and len(email.sent) == 1
    # the dead relay's late "sent" must not override anything (its lease is gone)
    assert outbox_relay._finish(claimed[0], status="failed") is False


def test_relay_hands_back_rows_it_has_no_lease_time_left_for(sqlite_db):
    import time as _time

    with db.unit_of_work() as s:
        for i in range(4):
            outbox.enqueue(s, channel="email", to=f"slow{i}@example.com", template="password_reset", locale="en",
                           context={"username": "s", "reset_url": "http://x/r", "expires_minutes": 5},
                           dedupe_key=f"slow-{i}")

    class Slow(RecordingEmail):
        def send(self, message):
            _time.sleep(1.0)
            return super().send(message)

    now = dt.datetime.now(UTC)
    stats = outbox_relay.relay_batch(now=now, lease_seconds=2.0, email_sender=Slow(), sms_sender=RecordingSms())
    assert stats.sent >= 1 and stats.released >= 1 and stats.sent + stats.released == 4
    rows = outbox_rows()
    assert sorted(r.status for r in rows) == sorted(["sent"] * stats.sent + ["pending"] * stats.released)
    assert all(r.attempts == 0 and r.claimed_until is None for r in rows if r.status == "pending")
    assert relay(now).sent == stats.released  # and the next tick sends them


# --- transactions ------------------------------------------------------------------------------

def test_rolled_back_booking_queues_no_message(db_url, monkeypatch):
    w = make_world()

    def lost_race(*args, **kwargs):
        raise NotAvailable()

    monkeypatch.setattr(capacity, "recount_or_fail", lost_race)  # fails after booking_event ran
    with freeze_time(T0), pytest.raises(NotAvailable):
        book(w, START)
    with db.read_session() as s:
        assert s.exec(select(Booking)).all() == []
        assert s.exec(select(Notification)).all() == []


def test_rolled_back_unit_of_work_leaves_no_outbox_row(db_url):
    w = make_world()
    with freeze_time(T0):
        b = book(w, START)
    before = len(outbox_rows())
    with pytest.raises(RuntimeError), db.unit_of_work() as s:
        bk = s.get(Booking, b.id)
        bk.version += 1
        bk.sequence += 1
        bk.status = "cancelled"
        s.add(bk)
        notify.booking_event(s, booking=bk, event="booking_cancelled")
        s.flush()
        raise RuntimeError("boom")
    assert len(outbox_rows()) == before
    assert all(r.status == "pending" for r in outbox_rows(template="reminder"))


# --- DST and frozen clock --------------------------------------------------------------------------

def test_reminders_across_a_dst_change(db_url):
    """Berlin switches to summer time on 2026-03-29 at 02:00. A booking at 10:00 local that
    day (08:00 UTC): the 24 h reminder goes 24 real hours before (09:00 local the day before,
    still winter time), and the message shows 10:00 summer time."""
    w = make_world(customer={"timezone": "Europe/Berlin"}, bookable={"timezone": "Europe/Berlin"})
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    start = dt.datetime(2026, 3, 29, 10, 0, tzinfo=berlin).astimezone(UTC)
    assert start == dt.datetime(2026, 3, 29, 8, 0, tzinfo=UTC)
    with freeze_time(dt.datetime(2026, 3, 20, 12, 0, tzinfo=UTC)):
        b = book(w, start)
    (r24,) = [r for r in outbox_rows(booking_id=b.id, template="reminder") if r.context["offset_minutes"] == 1440]
    assert r24.next_attempt_at == start - dt.timedelta(hours=24)
    assert r24.next_attempt_at.astimezone(berlin).hour == 9  # wall clock: 23 h before
    email = RecordingEmail()
    relay(dt.datetime(2026, 3, 20, 12, 0, tzinfo=UTC), email=email)
    email.sent.clear()
    with freeze_time(r24.next_attempt_at - dt.timedelta(minutes=1)):
        assert outbox_relay.relay_once(email_sender=email, sms_sender=RecordingSms()).sent == 0
    with freeze_time(r24.next_attempt_at):
        assert outbox_relay.relay_once(email_sender=email, sms_sender=RecordingSms()).sent == 1
    (msg,) = email.sent
    assert "10:00\u202fAM" in msg.text and "Central European Summer Time" in msg.text
    assert "starts in 1 day" in msg.text


def test_reminder_sweep_backfills_missing_and_cancels_stale_without_duplicates(db_url):
    w = make_world()
    with freeze_time(T0):
        b = book(w, START)
        other = book(w, START + dt.timedelta(hours=2))
    # simulate a booking confirmed by a path that queued no reminders
    with db.unit_of_work() as s:
        s.exec(update(Notification).where(Notification.booking_id == b.id, Notification.template == "reminder")
               .values(dedupe_key=Notification.dedupe_key + ":gone", status="cancelled"))
        s.exec(update(Booking).where(Booking.id == other.id).values(status="cancelled"))
    now = START - dt.timedelta(hours=24, minutes=10)  # the 24 h reminder is due in 10 min
    assert reminders.sweep_reminders(now=now) == 1 + 2  # 1 queued, 2 stale cancelled
    assert reminders.sweep_reminders(now=now) == 0  # repeat-safe
    (new,) = [r for r in outbox_rows(booking_id=b.id, template="reminder") if r.status == "pending"]
    assert new.next_attempt_at == START - dt.timedelta(hours=24)
    assert [r.status for r in outbox_rows(booking_id=other.id, template="reminder")] == ["cancelled", "cancelled"]
    # the 1 h reminder is queued by a later sweep, when it comes into the window
    assert reminders.sweep_reminders(now=START - dt.timedelta(minutes=70)) == 1
