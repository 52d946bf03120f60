"""Access that ends when it should (issue 20, point 8): calendar feeds follow their owner's
current role, tokens never reach an access log, idempotent replays re-check access, Stripe
webhooks are refused outside ±5 minutes, and email header values stay single-line."""
from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import subprocess
import sys
import threading
import time

import httpx
import pytest
from freezegun import freeze_time
from sqlalchemy import update
from sqlmodel import select

from booking_app import db
from booking_app.integrations import stripe_gateway
from booking_app.integrations.email import ConsoleEmailSender
from booking_app.models import AuditEvent, Bookable, IdempotencyRecord, ProcessedWebhookEvent
from booking_app.services import bookings, guest_bookings, manage_links, relay
from tests.api.conftest import assert_problem, make_account, set_env
from tests.conftest import ROOT, free_port
from tests.factories import make_bookable, next_day_at
from tests.stubs.notify_helpers import SmtpSink, fast_password_hashing, make_world, set_user
from tests.stubs.notify_helpers import book as book_in_world
from tests.test_payments_api import sqlite_client, stripe_on  # noqa: F401 - shared fixtures

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    fast_password_hashing(monkeypatch)


def _feed_path(created: dict) -> str:
    return f"/api/calendar/{created['token']}.ics"


def _new_feed(client, account, scope: str) -> dict:
    r = client.post("/api/calendar/feeds", json={"scope": scope}, headers=account.headers)
    assert r.status_code == 201, r.text
    return r.json()


def _feed_state(client, account) -> dict[int, str | None]:
    r = client.get("/api/calendar/feeds", headers=account.headers)
    assert r.status_code == 200, r.text
    return {f["id"]: f["revoked_at"] for f in r.json()["items"]}


def _revocations(feed_id: int) -> list[AuditEvent]:
    with db.read_session() as s:
        return list(s.exec(select(AuditEvent).where(AuditEvent.action == "calendar_feed.revoked",
                                                    AuditEvent.entity_id == str(feed_id))).all())


# --- feeds ---------------------------------------------------------------------------------------

def test_a_demoted_providers_schedule_feed_is_404_and_revoked_their_own_bookings_feed_stays(client):
    admin, provider = make_account("admin"), make_account("provider")
    schedule, mine = _new_feed(client, provider, "schedule"), _new_feed(client, provider, "bookings")
    assert client.get(_feed_path(schedule)).status_code == 200
    assert client.get(_feed_path(mine)).status_code == 200

    r = client.put(f"/api/admin/users/{provider.id}/role", json={"role": "customer"}, headers=admin.headers)
    assert r.status_code == 200, r.text
    assert_problem(client.get(_feed_path(schedule)), 404)
    assert client.get(_feed_path(mine)).status_code == 200  # a customer may still have this one
    state = _feed_state(client, provider)
    assert state[schedule["id"]] is not None and state[mine["id"]] is None
    (event,) = _revocations(schedule["id"])
    assert event.actor_id == admin.id and event.data == {"scope": "schedule", "reason": "role_changed"}
    assert _revocations(mine["id"]) == []
    # promoted again: the revoked URL stays dead (a new one must be made)
    client.put(f"/api/admin/users/{provider.id}/role", json={"role": "provider"}, headers=admin.headers)
    assert_problem(client.get(_feed_path(schedule)), 404)


def test_the_feed_checks_the_owners_current_role_on_every_read(client):
    """Even a role changed behind the service's back (no revocation ran): the read refuses."""
    provider = make_account("provider")
    schedule = _new_feed(client, provider, "schedule")
    assert client.get(_feed_path(schedule)).status_code == 200
    set_user(provider.id, role="customer")
    assert_problem(client.get(_feed_path(schedule)), 404)
    set_user(provider.id, role="admin")  # admins may have a schedule feed
    assert client.get(_feed_path(schedule)).status_code == 200


def test_a_deactivated_users_feeds_are_404_and_the_staff_one_is_revoked(client):
    admin, provider = make_account("admin"), make_account("provider")
    schedule, mine = _new_feed(client, provider, "schedule"), _new_feed(client, provider, "bookings")
    r = client.put(f"/api/admin/users/{provider.id}/active", json={"active": False}, headers=admin.headers)
    assert r.status_code == 200, r.text
    assert_problem(client.get(_feed_path(schedule)), 404)
    assert_problem(client.get(_feed_path(mine)), 404)
    (event,) = _revocations(schedule["id"])
    assert event.data == {"scope": "schedule", "reason": "deactivated"}
    # reactivated: their own bookings feed works again, the schedule URL does not
    r = client.put(f"/api/admin/users/{provider.id}/active", json={"active": True}, headers=admin.headers)
    assert r.status_code == 200, r.text
    assert client.get(_feed_path(mine)).status_code == 200
    assert_problem(client.get(_feed_path(schedule)), 404)


# --- access logs -----------------------------------------------------------------------------------

def _secret_urls(client) -> tuple[list[str], list[str]]:
    """(request paths that carry secrets, the secrets): a live feed, a guest manage link, a
    password reset and an email confirmation link."""
    provider = make_account("provider")
    feed = _new_feed(client, provider, "schedule")
    manage = manage_links.booking_manage_token(12345)
    reset, code = secrets.token_urlsafe(32), secrets.token_urlsafe(16)
    paths = [_feed_path(feed), f"/api/bookings/12345?token={manage}", f"/api/payments/12345?lang=en&token={manage}",
             f"/reset-password?token={reset}", f"/api/bookings/confirm?code={code}&x=1",
             f"/api/users/me?access_token={reset}"]
    return paths, [feed["token"], manage, manage.partition(".")[2], reset, code]


def _assert_clean(lines: list[str], secrets_: list[str]) -> None:
    assert lines, "no access log line was written"
    text = "\n".join(lines)
    for secret in secrets_:
        assert secret not in text, text
    assert "/api/calendar/[redacted].ics" in text, text
    assert "token=[redacted]" in text and "code=[redacted]&x=1" in text and "lang=en" in text, text


def test_uvicorn_access_log_shows_no_token(db_url, client, caplog):
    """The API served alone by uvicorn, access log on: real requests, captured records."""
    import uvicorn

    from booking_app.api import create_api

    paths, secrets_ = _secret_urls(client)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_api(), host="127.0.0.1", port=port, log_config=None,
                                           access_log=True, lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            time.sleep(0.05)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            statuses = [http.get(p).status_code for p in paths]
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert statuses[0] == 200  # the feed was really served
    lines = [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
    assert len(lines) == len(paths)
    _assert_clean(lines, secrets_)


GRANIAN_FMT = '"%(method)s %(path)s?%(query_string)s" %(status)d referer=%(header{referer})s'


@pytest.mark.parametrize("fmt", [None, GRANIAN_FMT], ids=["default-format", "with-query-and-referer"])
def test_granian_access_log_shows_no_token(sqlite_db, sqlite_client, fmt):
    """Granian (the production server; `reflex run --env prod` leaves its access log off)
    with its access log switched on, in its default format and in one that adds the query
    string and the Referer: the worker's lines, read from its output, carry no token."""
    paths, secrets_ = _secret_urls(sqlite_client)
    port = free_port()
    env = {"DATABASE_URL": sqlite_db, "JOBS_ENABLED": "false", "ENVIRONMENT": "test", "PATH": os.environ.get("PATH", ""),
           "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1", "--port", str(port),
               "--workers", "1", "--access-log", "--factory", "booking_app.api:create_api"]
    proc = subprocess.Popen(command + (["--access-log-fmt", fmt] if fmt else []), cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        statuses = []
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            for _ in range(300):
                try:
                    http.get("/api/health")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            # (the browser sends the page it is on as Referer: a reset page's URL has its token)
            statuses = [http.get(p, headers={"Referer": f"http://localhost:3000{paths[3]}"}).status_code
                        for p in paths]
        time.sleep(0.5)
    finally:
        proc.terminate()
        output = proc.communicate(timeout=20)[0]
    assert statuses and statuses[0] == 200, output
    lines = [line for line in output.splitlines() if '"GET /' in line]
    assert len(lines) > len(paths), output
    if fmt is None:  # path only: the feed's token is the secret in it
        text = "\n".join(lines)
        assert "/api/calendar/[redacted].ics" in text and secrets_[0] not in text, text
    else:
        _assert_clean(lines, secrets_)
        assert "referer=http://localhost:3000/reset-password?token=[redacted]" in lines[-1], lines[-1]


def test_the_error_log_names_paths_without_tokens(caplog):
    from booking_app.api import logredact

    logredact.install()
    caplog.set_level(logging.ERROR, logger="booking_app.api.errors")
    logging.getLogger("booking_app.api.errors").error("unhandled error on %s %s", "GET", "/api/calendar/s3cr3t.ics")
    assert caplog.records[-1].getMessage() == "unhandled error on GET /api/calendar/[redacted].ics"


# --- idempotent replays --------------------------------------------------------------------------

def _guest_booking(client, service_id: int, hour: int, email: str, *, key: str | None = None,
                   token: str | None = None, method: str | None = None):
    body = {"service_id": service_id, "start": next_day_at(hour).isoformat(),
            "guest": {"name": "Gus Guest", "email": email}, **({"payment_method": method} if method else {})}
    headers = {"Idempotency-Key": key} if key else {}
    return client.post("/api/bookings" + (f"?token={token}" if token else ""), json=body, headers=headers)


def _service(price_cents: int = 4200):
    return make_bookable(make_account("provider").row(), price_cents=price_cents, capacity=5)


def test_a_payment_replay_with_another_guests_token_is_404(client, stripe_on):
    service = _service()
    mine = _guest_booking(client, service.id, 11, "gus@example.com", method="card").json()["id"]
    theirs = _guest_booking(client, service.id, 12, "eve@example.com", method="card").json()["id"]
    body = {"booking_id": mine, "method": "card"}
    key = {"Idempotency-Key": "pay-guest-1"}
    my_token, their_token = manage_links.booking_manage_token(mine), manage_links.booking_manage_token(theirs)
    first = client.post(f"/api/payments/process?token={my_token}", json=body, headers=key)
    assert first.status_code == 201, first.text
    for wrong in (their_token, f"{mine}.forged"):
        body_404 = assert_problem(client.post(f"/api/payments/process?token={wrong}", json=body, headers=key), 404)
        assert "checkout_url" not in body_404 and "payment_id" not in body_404
    assert_problem(client.post("/api/payments/process", json=body, headers=key), 401)  # no token: sign in
    # the same key with another body from a stranger: 404 too, not "the key was used"
    assert_problem(client.post(f"/api/payments/process?token={their_token}", json={**body, "method": "paypal"},
                               headers=key), 404)
    again = client.post(f"/api/payments/process?token={my_token}", json=body, headers=key)
    assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()


def test_a_guest_booking_replay_needs_the_right_token_after_the_retry_window(client):
    service = _service(price_cents=0)
    other = _guest_booking(client, service.id, 10, "eve@example.com").json()["id"]
    first = _guest_booking(client, service.id, 11, "gus@example.com", key="book-guest-1")
    assert first.status_code == 201, first.text
    booking_id = first.json()["id"]
    # the guest's own retry (the answer was lost; no manage link yet): replayed
    retry = _guest_booking(client, service.id, 11, "gus@example.com", key="book-guest-1")
    assert retry.status_code == 201 and retry.json()["id"] == booking_id
    # a token is held to what the document says (at most 100 characters, no control characters)
    assert_problem(_guest_booking(client, service.id, 11, "gus@example.com", key="book-guest-1", token="x" * 101), 422)
    # a wrong token never replays
    for wrong in (manage_links.booking_manage_token(other), f"{booking_id}.forged"):
        assert_problem(_guest_booking(client, service.id, 11, "gus@example.com", key="book-guest-1", token=wrong), 404)
    # after the retry window, without a token: 404, as if the key were unknown
    with db.unit_of_work() as s:
        s.exec(update(IdempotencyRecord).where(IdempotencyRecord.key == "book-guest-1")
               .values(created_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)))
    assert_problem(_guest_booking(client, service.id, 11, "gus@example.com", key="book-guest-1"), 404)
    # … nor learns that the key was used, with another body
    assert_problem(_guest_booking(client, service.id, 13, "gus@example.com", key="book-guest-1"), 404)
    right = _guest_booking(client, service.id, 11, "gus@example.com", key="book-guest-1",
                           token=manage_links.booking_manage_token(booking_id))
    assert right.status_code == 201 and right.json()["id"] == booking_id
    with db.read_session() as s:  # nothing was booked twice
        from booking_app.models import Booking

        assert len(s.exec(select(Booking).where(Booking.guest_email == "gus@example.com")).all()) == 1


# --- Stripe webhook timestamps ---------------------------------------------------------------------

def test_webhook_timestamps_outside_five_minutes_are_refused_both_ways(client, stripe_on):
    now = int(time.time())
    for offset, status in ((3600, 400), (-3600, 400), (301 + 5, 400), (60, 200), (-60, 200)):
        event_id = f"evt_skew_{offset}"
        payload, header = stripe_on.event("customer.created", {"id": "cus_1", "object": "customer"},
                                          event_id=event_id, timestamp=now + offset)
        r = client.post("/api/payments/webhook/stripe", content=payload,
                        headers={"Stripe-Signature": header, "Content-Type": "application/json"})
        if status == 400:
            assert_problem(r, 400)
        else:
            assert r.status_code == 200 and r.json()["event_id"] == event_id, r.text
    with db.read_session() as s:
        assert sorted(e.event_id for e in s.exec(select(ProcessedWebhookEvent)).all()) == ["evt_skew_-60", "evt_skew_60"]


def test_the_webhook_tolerance_is_a_setting(client, stripe_on, monkeypatch):
    set_env(monkeypatch, STRIPE_WEBHOOK_TOLERANCE_SECONDS="30")
    payload, header = stripe_on.event("customer.created", {"id": "cus_2"}, timestamp=int(time.time()) + 60)
    r = client.post("/api/payments/webhook/stripe", content=payload, headers={"Stripe-Signature": header})
    assert_problem(r, 400)
    with pytest.raises(stripe_gateway.WebhookSignatureError):  # two timestamps: which one was meant? refused
        stripe_gateway.verify_webhook(payload, f"t=1,{header}", stripe_on.webhook_secret)


# --- email headers -----------------------------------------------------------------------------------

T0 = dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.timezone.utc)
START = dt.datetime(2026, 6, 4, 14, 0, tzinfo=dt.timezone.utc)
BROKEN = "Yoga\r\nBcc: victim@example.net\r\n\x1b\u2028X-Evil: 1"  # (PostgreSQL refuses NUL itself)


def _booked_with_broken_name():
    w = make_world()
    set_user(w.provider.id, notify_email=False)
    with db.unit_of_work() as s:  # as if written by an import or a direct edit: no validation ran
        s.exec(update(Bookable).where(Bookable.id == w.bookable.id).values(name=BROKEN))
    with freeze_time(T0):
        book_in_world(w, START)
    return w


def _assert_single_line(subject: str) -> None:
    assert not any(ch in subject for ch in "\r\n\x1b\u2028"), repr(subject)
    assert subject.startswith("Booking confirmed: Yoga Bcc: victim@example.net X-Evil: 1 on "), repr(subject)


def test_a_service_name_with_cr_lf_still_sends_a_single_line_subject_console(db_url):
    ConsoleEmailSender.clear()
    w = _booked_with_broken_name()
    stats = relay.relay_once(now=T0)
    assert stats.sent == 1, stats
    (msg,) = ConsoleEmailSender.recent()
    assert msg.to == w.customer.email
    _assert_single_line(msg.subject)


def test_a_service_name_with_cr_lf_still_sends_a_single_line_subject_smtp(sqlite_db, monkeypatch):
    with SmtpSink() as smtp:
        set_env(monkeypatch, SMTP_URL=smtp.url)
        w = _booked_with_broken_name()
        stats = relay.relay_once(now=T0)
        assert stats.sent == 1, stats
        (msg,) = smtp.messages
    assert msg["To"] == w.customer.email and msg["Bcc"] is None and msg["X-Evil"] is None
    assert smtp.envelopes[0][1] == [w.customer.email]
    _assert_single_line(str(msg["Subject"]).strip())  # (a long subject may be folded: one logical line)


def test_a_confirmation_link_opened_again_after_the_window_still_shows_its_booking(db_url, monkeypatch):
    """The email-confirmation link proves access by itself: its replay (the booking was made,
    but recording it on the request did not happen) is not refused by the retry window."""
    from booking_app.models.booking import GuestBookingRequest
    from booking_app.services.actors import Actor

    set_env(monkeypatch, GUEST_EMAIL_CONFIRMATION="true")
    service = _service(price_cents=0)
    req = guest_bookings.request_guest_booking(actor=Actor.guest(), service_id=service.id, start=next_day_at(11),
                                         guest={"name": "Gus Guest", "email": "gus@example.com"})
    token = guest_bookings.guest_request_token(req.id, req.expires_at)
    first = bookings.confirm_guest_request(token=token)
    with db.unit_of_work() as s:  # as if the process died between the booking and recording it
        s.exec(update(GuestBookingRequest).where(GuestBookingRequest.id == req.id).values(booking_id=None))
        s.exec(update(IdempotencyRecord).where(IdempotencyRecord.key == f"guest-request:{req.id}")
               .values(created_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)))
    assert bookings.confirm_guest_request(token=token).id == first.id


def test_every_adapter_sends_single_line_headers_and_refuses_a_broken_recipient(monkeypatch):
    """Adapter level (defence in depth, whatever a caller passes): SendGrid gets a clean
    subject, sender name and extra header; an SMS keeps line feeds but no other control
    character; a recipient address with a line break is refused for good, never guessed at."""
    from booking_app.integrations.delivery import DeliveryError
    from booking_app.integrations.email_message import EmailMessage
    from booking_app.integrations.email_sendgrid import SendGridEmailSender
    from booking_app.integrations.sms import SmsMessage, TwilioSmsSender
    from tests.stubs.provider_stub import SendGridStub, TwilioStub

    message = EmailMessage(to="gus@example.com", subject=f"Booking confirmed: {BROKEN}", text="t", html="<p>h</p>",
                           sender="Desk\r\nBcc: x@example.net <desk@example.org>",
                           headers={"X-Booking-Notification": "7\r\nBcc: x@example.net", "Bad\r\nName": "v"})
    with SendGridStub() as sg:
        SendGridEmailSender("SG.key", base_url=sg.url, timeout=5).send(message)
        (req,) = sg.calls()
    body = req.json
    assert body["subject"] == "Booking confirmed: Yoga Bcc: victim@example.net X-Evil: 1"
    assert body["from"] == {"email": "desk@example.org", "name": "Desk Bcc: x@example.net"}
    assert body["headers"] == {"X-Booking-Notification": "7 Bcc: x@example.net"}
    for bad_to in ("gus@example.com\r\nBcc: x@example.net", "gus@example.com\n"):
        with pytest.raises(DeliveryError) as refused:
            ConsoleEmailSender().send(EmailMessage(**{**message.__dict__, "to": bad_to}))
        assert refused.value.transient is False
    sid = "AC" + "0" * 32
    with TwilioStub() as tw:
        TwilioSmsSender(sid, "tok", "+15005550006", base_url=tw.url, timeout=5).send(
            SmsMessage(to="+14155550123", body="Yoga\r\nat 9\x1b[2J\x07 today"))
        (sms,) = tw.calls()
    assert sms.form["Body"] == "Yoga\nat 9 [2J  today"
