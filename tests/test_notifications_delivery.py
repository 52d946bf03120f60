"""Real transports against local servers: SMTP (aiosmtpd), SendGrid and Twilio (their
official SDKs pointed at local stubs). Messages arrive as the providers expect them;
4xx/5xx/timeouts are retried with backoff and end `failed`, never lost."""
from __future__ import annotations

import base64
import datetime as dt
import zoneinfo

import pytest
from babel.dates import format_date
from freezegun import freeze_time
from icalendar import Calendar

from booking_app.config import reset_settings_cache
from booking_app.integrations.email import email_sender_from_settings
from booking_app.integrations.email_sendgrid import SendGridEmailSender
from booking_app.integrations.email_smtp import parse_smtp_url
from booking_app.integrations.sms import TwilioSmsSender, sms_sender_from_settings
from booking_app.services import outbox_admin, relay
from booking_app.services.actors import Actor
from tests.stubs.notify_helpers import SmtpSink, book, fast_password_hashing, make_world, outbox_rows, set_user
from tests.stubs.provider_stub import SendGridStub, TwilioStub

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
START = dt.datetime(2026, 6, 4, 14, 0, tzinfo=UTC)
SID = "AC" + "0" * 32

# aiosmtpd warns that AUTH without TLS is unsafe: on loopback in a test it is what we want
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    fast_password_hashing(monkeypatch)


def configure(monkeypatch, **env: str) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_settings_cache()


def booked_world(**customer):
    w = make_world(customer=customer or None, bookable={"price_cents": 2500, "currency": "EUR"})
    set_user(w.provider.id, notify_email=False)  # one message per test: the customer's
    with freeze_time(T0):
        b = book(w, START)
    return w, b


def run_relay(now: dt.datetime, **kw):
    return relay.relay_once(now=now, **kw)


# --- SMTP ------------------------------------------------------------------------------------------

def test_smtp_url_forms():
    c = parse_smtp_url("smtp://user%40x:p%3Ass@mail.example.com:2525?starttls=true&timeout=3")
    assert (c.host, c.port, c.username, c.password, c.starttls, c.implicit_tls, c.timeout) == (
        "mail.example.com", 2525, "user@x", "p:ss", True, False, 3.0)
    assert parse_smtp_url("smtps://u:p@h").port == 465 and parse_smtp_url("smtps://u:p@h").implicit_tls
    assert parse_smtp_url("smtp+starttls://h").port == 587
    assert parse_smtp_url("smtp://h").port == 25
    for bad in ("http://h", "smtp://", "smtps://h?starttls=true", "smtp://h?timeout=x"):
        with pytest.raises(ValueError):
            parse_smtp_url(bad)


def test_smtp_message_arrives_multipart_with_ics_in_recipient_locale(db_url, monkeypatch):
    with SmtpSink(credentials=("mailer", "s3cret")) as smtp:
        configure(monkeypatch, SMTP_URL=smtp.url, EMAIL_FROM="Booking <bookings@example.org>")
        assert email_sender_from_settings().name == "smtp"
        w, b = booked_world(locale="fr", timezone="America/New_York")
        stats = run_relay(T0)
        assert stats.sent == 1, stats
        assert smtp.logins == ["mailer"]
        (msg,) = smtp.messages
    assert smtp.envelopes == [("bookings@example.org", [w.customer.email])]
    assert msg["To"] == w.customer.email and msg["Content-Language"] == "fr"
    assert msg.get_content_type() == "multipart/mixed"
    parts = [p.get_content_type() for p in msg.walk()]
    assert parts == ["multipart/mixed", "multipart/alternative", "text/plain", "text/html", "text/calendar"]
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    local = START.astimezone(zoneinfo.ZoneInfo("America/New_York"))
    assert format_date(local, "full", locale="fr") in text  # "jeudi 4 juin 2026"
    assert "25,00" in text and "€" in text
    assert '<html lang="fr" dir="ltr">' in html and f"/booking?id={b.id}" in html
    (att,) = [p for p in msg.iter_attachments()]
    assert att.get_filename() == "invite.ics" and att.get_param("method") == "REQUEST"
    cal = Calendar.from_ical(att.get_content() if isinstance(att.get_content(), bytes) else att.get_content().encode())
    assert cal["METHOD"] == "REQUEST"
    (ev,) = cal.walk("VEVENT")
    assert str(ev["UID"]) == f"booking-{b.reference}@localhost" and ev.decoded("DTSTART") == START
    assert str(ev["ATTENDEE"]).lower() == f"mailto:{w.customer.email}"
    (row,) = outbox_rows(booking_id=b.id, template="booking_confirmed")
    assert row.status == "sent" and row.transport == "smtp" and row.provider_ref == msg["Message-ID"]


def test_smtp_temporary_refusal_and_server_down_are_retried_then_sent(sqlite_db, monkeypatch):
    with SmtpSink() as smtp:
        configure(monkeypatch, SMTP_URL=smtp.url)
        w, b = booked_world()
        smtp.refuse_next(451)
        stats = run_relay(T0)
        assert stats.retried == 1 and smtp.messages == []
        (row,) = outbox_rows(booking_id=b.id, template="booking_confirmed")
        assert row.status == "pending" and row.last_error.startswith("SMTP 451")
        retry_at = row.next_attempt_at
        port = smtp.port
    # the server is gone: connection refused → retried later, still not lost
    configure(monkeypatch, SMTP_URL=f"smtp://127.0.0.1:{port}?timeout=2")
    assert run_relay(retry_at).retried == 1
    (row,) = outbox_rows(booking_id=b.id, template="booking_confirmed")
    assert row.attempts == 2 and "SMTP error" in row.last_error
    with SmtpSink() as smtp:
        configure(monkeypatch, SMTP_URL=smtp.url)
        assert run_relay(row.next_attempt_at).sent == 1
        assert len(smtp.messages) == 1


def test_smtp_batch_reuses_one_connection_and_login(sqlite_db, monkeypatch):
    from booking_app import db
    from booking_app.services import outbox

    with db.unit_of_work() as s:
        for i in range(3):
            outbox.enqueue(s, channel="email", to=f"u{i}@example.com", template="password_reset", locale="de",
                           context={"username": f"u{i}", "reset_url": "http://x/r", "expires_minutes": 60},
                           dedupe_key=f"batch-{i}")
    with SmtpSink(credentials=("mailer", "s3cret")) as smtp:
        configure(monkeypatch, SMTP_URL=smtp.url)
        assert run_relay(dt.datetime.now(UTC)).sent == 3
    assert sorted(m["To"] for m in smtp.messages) == ["u0@example.com", "u1@example.com", "u2@example.com"]
    assert len(set(smtp.peers)) == 1 and smtp.logins == ["mailer"]


def test_smtp_permanent_refusal_still_ends_failed_with_error(sqlite_db, monkeypatch):
    configure(monkeypatch, OUTBOX_MAX_ATTEMPTS="2")
    with SmtpSink() as smtp:
        configure(monkeypatch, SMTP_URL=smtp.url)
        w, b = booked_world()
        smtp.refuse_next(554, times=5)
        run_relay(T0)
        (row,) = outbox_rows(booking_id=b.id, template="booking_confirmed")
        run_relay(row.next_attempt_at)
    (row,) = outbox_rows(booking_id=b.id, template="booking_confirmed")
    assert row.status == "failed" and row.attempts == 2 and "554" in row.last_error


# --- SendGrid ---------------------------------------------------------------------------------------

def test_sendgrid_request_body_as_the_api_expects(db_url, monkeypatch):
    with SendGridStub() as sg:
        configure(monkeypatch, SENDGRID_API_KEY="SG.test-key", SENDGRID_API_BASE=sg.url,
                  EMAIL_FROM="Booking Desk <desk@example.org>")
        assert email_sender_from_settings().name == "sendgrid"
        w, b = booked_world(locale="es", timezone="Europe/Madrid")
        assert run_relay(T0).sent == 1
        (req,) = sg.calls()
    assert req.method == "POST" and req.path == "/v3/mail/send"
    assert req.headers["authorization"] == "Bearer SG.test-key"
    body = req.json
    assert body["from"] == {"email": "desk@example.org", "name": "Booking Desk"}
    assert body["personalizations"][0]["to"] == [{"email": w.customer.email}]
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    local = START.astimezone(zoneinfo.ZoneInfo("Europe/Madrid"))
    assert format_date(local, "full", locale="es") in body["content"][0]["value"]
    (att,) = body["attachments"]
    assert att["filename"] == "invite.ics" and att["type"] == "text/calendar; method=REQUEST"
    assert att["disposition"] == "attachment"
    cal = Calendar.from_ical(base64.b64decode(att["content"]))
    assert str(cal.walk("VEVENT")[0]["UID"]) == f"booking-{b.reference}@localhost"
    assert body["headers"]["X-Booking-Notification"].isdigit()
    (row,) = outbox_rows(booking_id=b.id, template="booking_confirmed")
    assert row.status == "sent" and row.transport == "sendgrid" and row.provider_ref


@pytest.mark.parametrize("fault", ["500", "429", "400", "timeout"])
def test_sendgrid_errors_retry_with_backoff_then_fail_then_admin_retry_sends(sqlite_db, monkeypatch, fault):
    configure(monkeypatch, OUTBOX_MAX_ATTEMPTS="3")
    with SendGridStub() as sg:
        sender = SendGridEmailSender("SG.k", base_url=sg.url, timeout=0.5)
        w, b = booked_world()
        if fault == "timeout":
            sg.delay_next(1.5, times=3)
        else:
            sg.fail_next(int(fault), times=3)
        now = T0
        for attempt in (1, 2, 3):
            stats = run_relay(now, email_sender=sender)
            (row,) = outbox_rows(booking_id=b.id, template="booking_confirmed")
            assert row.attempts == attempt and stats.sent == 0
            expected = "unreachable" if fault == "timeout" else f"HTTP {fault}"
            assert expected in row.last_error, row.last_error
            if attempt < 3:
                assert row.status == "pending" and row.next_attempt_at > now
                assert run_relay(row.next_attempt_at - dt.timedelta(seconds=1), email_sender=sender).claimed == 0
                now = row.next_attempt_at
        assert row.status == "failed"
        assert len(sg.calls()) == 3  # one request per attempt, none lost, none extra
        outbox_admin.retry_notification(actor=Actor(id=None, role="admin"), notification_id=row.id)
        assert run_relay(dt.datetime.now(UTC), email_sender=sender).sent == 1
        assert sg.calls()[-1].status == 202
    (row,) = outbox_rows(booking_id=b.id, template="booking_confirmed")
    assert row.status == "sent"


# --- Twilio -----------------------------------------------------------------------------------------

def sms_world(phone="+14155550123", **customer):
    w = make_world(customer={"phone": phone, "timezone": "America/Los_Angeles", **customer})
    set_user(w.customer.id, notify_sms=True, notify_email=False)
    set_user(w.provider.id, notify_email=False)
    with freeze_time(T0):
        b = book(w, START)
    return w, b


def test_twilio_request_as_the_api_expects(db_url, monkeypatch):
    with TwilioStub() as tw:
        configure(monkeypatch, TWILIO_ACCOUNT_SID=SID, TWILIO_AUTH_TOKEN="tok", TWILIO_FROM="+15005550006",
                  TWILIO_API_BASE=tw.url)
        assert sms_sender_from_settings().name == "twilio"
        w, b = sms_world()
        assert run_relay(T0).sent == 1
        (req,) = tw.calls()
    assert req.method == "POST" and req.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert req.headers["authorization"] == "Basic " + base64.b64encode(f"{SID}:tok".encode()).decode()
    assert req.form["To"] == "+14155550123" and req.form["From"] == "+15005550006"
    assert b.reference in req.form["Body"] and "7:00" in req.form["Body"]  # 14:00 UTC in Los Angeles
    assert len(req.form["Body"]) <= 160
    (row,) = outbox_rows(booking_id=b.id, channel="sms", template="booking_confirmed")
    assert row.status == "sent" and row.transport == "twilio" and row.provider_ref.startswith("SM")


def test_twilio_messaging_service_sender(sqlite_db):
    with TwilioStub() as tw:
        sender = TwilioSmsSender(SID, "tok", "MG" + "1" * 32, base_url=tw.url, timeout=2)
        from booking_app.integrations.sms import SmsMessage

        assert sender.send(SmsMessage(to="+33612345678", body="hi")).startswith("SM")
        assert tw.calls()[0].form["MessagingServiceSid"] == "MG" + "1" * 32


@pytest.mark.parametrize("fault", ["503", "400", "timeout"])
def test_twilio_errors_retry_then_fail_never_lost(sqlite_db, monkeypatch, fault):
    configure(monkeypatch, OUTBOX_MAX_ATTEMPTS="2")
    with TwilioStub() as tw:
        sender = TwilioSmsSender(SID, "tok", "+15005550006", base_url=tw.url, timeout=0.5)
        w, b = sms_world()
        if fault == "timeout":
            tw.delay_next(1.5, times=2)
        else:
            tw.fail_next(int(fault), times=2)
        run_relay(T0, sms_sender=sender)
        (row,) = outbox_rows(booking_id=b.id, channel="sms", template="booking_confirmed")
        assert row.status == "pending" and row.attempts == 1
        run_relay(row.next_attempt_at, sms_sender=sender)
        (row,) = outbox_rows(booking_id=b.id, channel="sms", template="booking_confirmed")
        assert row.status == "failed" and row.attempts == 2
        assert ("unreachable" if fault == "timeout" else f"HTTP {fault}") in row.last_error
        assert len(tw.calls()) == 2
        outbox_admin.retry_notification(actor=Actor(id=None, role="admin"), notification_id=row.id)
        assert run_relay(dt.datetime.now(UTC), sms_sender=sender).sent == 1
        assert tw.calls()[-1].status == 201


def test_console_transports_are_the_default(sqlite_db):
    from booking_app.integrations.email import ConsoleEmailSender
    from booking_app.integrations.sms import ConsoleSmsSender

    assert isinstance(email_sender_from_settings(), ConsoleEmailSender)
    assert isinstance(sms_sender_from_settings(), ConsoleSmsSender)
    ConsoleEmailSender.clear()
    w, b = booked_world()
    assert run_relay(T0).sent == 1
    (row,) = outbox_rows(booking_id=b.id, template="booking_confirmed")
    assert row.transport == "console" and row.status == "sent"
    assert ConsoleEmailSender.recent()[-1].to == w.customer.email
