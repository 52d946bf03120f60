"""Outgoing webhooks against a local plain-HTTP receiver (WEBHOOK_ALLOW_PRIVATE_TARGETS=true):
signatures (also during a rotation's overlap), retries with backoff, per-endpoint ordering,
events from the booking service, from jobs (hold expiry, completion sweep) and from payments,
nothing for a rolled-back transaction; and the URL safety rule (no SSRF), at registration
and again at delivery. The relay functions are called directly (no scheduler)."""
from __future__ import annotations

import datetime as dt
import http.server
import json
import threading
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import select

from booking_app import db
from booking_app.config import reset_settings_cache
from booking_app.models import Booking, Notification, WebhookDelivery, WebhookEndpoint, utcnow
from booking_app.services import accounts, bookings, notify, relay, url_safety, webhook_delivery, webhooks
from booking_app.services.errors import InvalidInput, NotFound
from tests.factories import DEFAULT_PASSWORD, actor_for, make_admin
from tests.stubs.notify_helpers import book, fast_password_hashing, make_world, set_user
from tests.threads import run_together

UTC = dt.timezone.utc


class Receiver:
    """A local webhook receiver: answers from `script` (status codes, then 200), records
    every request (headers, body)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: list[int] = []
        self.location = ""
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.requests.append({"headers": dict(self.headers), "body": body, "path": self.path})
                code = outer.script.pop(0) if outer.script else 200
                self.send_response(code)
                if 300 <= code < 400:
                    self.send_header("Location", outer.location)
                payload = b"x" * 100_000  # a large answer: only a few KiB are read
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except OSError:
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(monkeypatch):
    fast_password_hashing(monkeypatch)
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
    reset_settings_cache()
    r = Receiver()
    yield r
    r.close()


def endpoint_for(world, receiver, events=webhooks.EVENTS):
    return webhooks.create_endpoint(actor=actor_for(world.provider), url=receiver.url, events=list(events))


def deliveries(endpoint_id: int) -> list[WebhookDelivery]:
    with db.read_session() as s:
        return list(s.exec(select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
                           .order_by(WebhookDelivery.id)).all())


def future(hours: int = 48) -> dt.datetime:
    start = utcnow().replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=hours)
    return start


# --- signatures, schema, rotation ----------------------------------------------------------------

def test_booking_events_are_signed_and_follow_the_schema(sqlite_db, receiver):
    w = make_world()
    ep = endpoint_for(w, receiver)
    assert ep.secret and ep.secret.startswith("whsec_")
    bk = book(w, future())
    assert webhook_delivery.relay_webhooks().delivered == 2  # booking.created, booking.confirmed
    first, second = receiver.requests
    for req in (first, second):
        assert webhook_delivery.verify(req["body"], req["headers"]["Booking-Signature"], ep.secret)
        assert not webhook_delivery.verify(req["body"], req["headers"]["Booking-Signature"], "whsec_wrong")
        assert req["headers"]["Content-Type"] == "application/json"
    created, confirmed = receiver.events()
    assert [created["type"], confirmed["type"]] == ["booking.created", "booking.confirmed"]
    assert list(created) == ["id", "type", "created_at", "data"] and created["id"].startswith("evt_")
    booking = created["data"]["booking"]
    assert booking["id"] == bk.id and booking["reference"] == bk.reference and booking["status"] == "confirmed"
    assert booking["bookable"]["id"] == w.bookable.id and booking["customer"]["email"] == w.customer.email
    assert booking["start"].startswith(bk.start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M"))
    (d1, d2) = deliveries(ep.id)
    assert (d1.status, d1.response_code, d1.attempts) == ("delivered", 200, 1)
    # the secret is stored sealed, never in clear
    with db.read_session() as s:
        row = s.get(WebhookEndpoint, ep.id)
        assert ep.secret not in row.secret_sealed
    # the outbox rows they came from are done, and are not the relay's email work
    assert {n.status for n in _webhook_outbox_rows()} == {"sent"}


def _webhook_outbox_rows() -> list[Notification]:
    with db.read_session() as s:
        return list(s.exec(select(Notification).where(Notification.channel == "webhook")).all())


def test_rotation_signs_with_both_secrets_during_the_overlap(sqlite_db, receiver):
    w = make_world()
    ep = endpoint_for(w, receiver, ["booking.cancelled"])
    bk = book(w, future())
    rotated = webhooks.rotate_secret(actor=actor_for(w.provider), endpoint_id=ep.id)
    assert rotated.secret and rotated.secret != ep.secret and rotated.previous_secret_until is not None
    bookings.cancel(actor=actor_for(w.customer), booking_id=bk.id)
    webhook_delivery.relay_webhooks()
    (req,) = receiver.requests
    header = req["headers"]["Booking-Signature"]
    assert header.count("v1=") == 2
    assert webhook_delivery.verify(req["body"], header, ep.secret) and webhook_delivery.verify(req["body"], header, rotated.secret)
    # after the overlap only the new secret signs
    with db.unit_of_work() as s:
        s.exec(update(WebhookEndpoint).where(WebhookEndpoint.id == ep.id)
               .values(previous_secret_until=utcnow() - dt.timedelta(seconds=1)))
    webhooks.redeliver(actor=actor_for(w.provider), endpoint_id=ep.id, delivery_id=deliveries(ep.id)[0].id)
    webhook_delivery.relay_webhooks()
    header = receiver.requests[1]["headers"]["Booking-Signature"]
    assert header.count("v1=") == 1
    assert webhook_delivery.verify(receiver.requests[1]["body"], header, rotated.secret)
    assert not webhook_delivery.verify(receiver.requests[1]["body"], header, ep.secret)
    assert receiver.events()[0]["id"] == receiver.events()[1]["id"]  # a redelivery: the same event


# --- retries and ordering ----------------------------------------------------------------------

def test_retry_with_backoff_then_delivered(db_url, receiver):
    w = make_world()
    ep = endpoint_for(w, receiver, ["booking.created"])
    book(w, future())
    receiver.script = [500]
    now = utcnow()
    stats = webhook_delivery.relay_webhooks(now=now)
    assert (stats.delivered, stats.retried) == (0, 1)
    (d,) = deliveries(ep.id)
    assert (d.status, d.response_code, d.attempts) == ("pending", 500, 1) and "HTTP 500" in d.last_error
    assert now < d.next_attempt_at <= now + dt.timedelta(minutes=1)  # first retry within a minute
    assert webhook_delivery.relay_webhooks(now=now + dt.timedelta(seconds=10)).delivered == 0  # not yet due
    assert webhook_delivery.relay_webhooks(now=now + dt.timedelta(seconds=61)).delivered == 1
    (d,) = deliveries(ep.id)
    assert (d.status, d.response_code, d.attempts, d.last_error) == ("delivered", 200, 2, None)
    assert len(receiver.requests) == 2 and receiver.requests[0]["body"] == receiver.requests[1]["body"]


def test_backoff_gives_up_after_about_a_day():
    total = sum(webhook_delivery.RETRY_DELAYS)
    assert webhook_delivery.RETRY_DELAYS[0] <= 60 and dt.timedelta(hours=20) < dt.timedelta(seconds=total) < dt.timedelta(hours=30)


def test_deliveries_of_an_endpoint_go_out_in_order(db_url, receiver):
    """A later event waits while an earlier one of the same endpoint is being retried."""
    w = make_world()
    ep = endpoint_for(w, receiver, ["booking.created", "booking.cancelled", "booking.rescheduled"])
    bk = book(w, future())
    receiver.script = [503, 503]
    now = utcnow()
    webhook_delivery.relay_webhooks(now=now)  # booking.created fails
    bookings.reschedule(actor=actor_for(w.customer), booking_id=bk.id, start=future(50))
    bookings.cancel(actor=actor_for(w.customer), booking_id=bk.id)
    webhook_delivery.relay_webhooks(now=now + dt.timedelta(seconds=1))  # nothing may overtake it
    assert len(receiver.requests) == 1
    webhook_delivery.relay_webhooks(now=now + dt.timedelta(seconds=70))  # second attempt fails again
    assert len(receiver.requests) == 2
    webhook_delivery.relay_webhooks(now=now + dt.timedelta(minutes=10))
    assert [e["type"] for e in receiver.events()] == ["booking.created"] * 3 + ["booking.rescheduled",
                                                                              "booking.cancelled"]
    assert [d.status for d in deliveries(ep.id)] == ["delivered"] * 3


def test_concurrent_relays_keep_each_endpoints_order(db_url, receiver):
    """Several relays at once (threads; on PostgreSQL each claims with SKIP LOCKED): every
    event arrives once, and each endpoint's in the order they were queued."""
    w = make_world()
    first = endpoint_for(w, receiver, ["booking.created", "booking.cancelled"])
    second = endpoint_for(w, receiver, ["booking.created", "booking.cancelled"])
    made = [book(w, future(48 + i)) for i in range(4)]
    for bk in made:
        bookings.cancel(actor=actor_for(w.customer), booking_id=bk.id)

    def run(i: int) -> None:
        for _ in range(3):
            webhook_delivery.relay_webhooks()

    _, errors = run_together(3, run)
    assert errors == []
    webhook_delivery.relay_webhooks()
    expected = [("booking.created", bk.id) for bk in made] + [("booking.cancelled", bk.id) for bk in made]
    for ep in (first, second):
        got = [(json.loads(r["body"])["type"], json.loads(r["body"])["data"]["booking"]["id"])
               for r in receiver.requests if r["headers"]["Booking-Delivery"] in {str(d.id) for d in deliveries(ep.id)}]
        assert got == expected
    assert len(receiver.requests) == 2 * len(expected)


def test_given_up_delivery_no_longer_blocks_and_can_be_redelivered(sqlite_db, receiver, monkeypatch):
    monkeypatch.setattr(webhook_delivery, "MAX_ATTEMPTS", 1)
    w = make_world()
    ep = endpoint_for(w, receiver, ["booking.created", "booking.cancelled"])
    bk = book(w, future())
    receiver.script = [500]
    webhook_delivery.relay_webhooks()
    bookings.cancel(actor=actor_for(w.customer), booking_id=bk.id)
    webhook_delivery.relay_webhooks()
    first, second = deliveries(ep.id)
    assert (first.status, second.status) == ("failed", "delivered")
    again = webhooks.redeliver(actor=actor_for(w.provider), endpoint_id=ep.id, delivery_id=first.id)
    assert again.status == "pending"
    webhook_delivery.relay_webhooks()
    assert [e["type"] for e in receiver.events()] == ["booking.created", "booking.cancelled", "booking.created"]
    assert deliveries(ep.id)[-1].status == "delivered"


# --- every path fires, a rollback fires nothing --------------------------------------------------

def test_jobs_fire_events_hold_expiry_and_completion(db_url, receiver):
    w = make_world()
    ep = endpoint_for(w, receiver, ["booking.cancelled", "booking.completed"])
    held = book(w, future(48))
    done = book(w, future(72))
    now = utcnow()
    with db.unit_of_work() as s:
        s.exec(update(Booking).where(Booking.id == held.id).values(
            status="pending", hold_expires_at=now - dt.timedelta(minutes=1)))
    assert bookings.release_expired_holds(now=now) == 1
    assert bookings.complete_past_bookings(now=done.end + dt.timedelta(days=2)) == 1
    relay.relay_once(now=now)  # the job's tick: messages, then webhooks
    cancelled, completed = receiver.events()
    assert (cancelled["type"], cancelled["data"]["booking"]["id"]) == ("booking.cancelled", held.id)
    assert cancelled["data"]["booking"]["cancel_reason"] == "hold_expired"
    assert (completed["type"], completed["data"]["booking"]["id"]) == ("booking.completed", done.id)
    assert completed["data"]["booking"]["status"] == "completed"
    assert len(deliveries(ep.id)) == 2


def test_payment_events(sqlite_db, receiver):
    w = make_world()
    endpoint_for(w, receiver, ["payment.succeeded", "payment.refunded"])
    bk = book(w, future())
    with db.unit_of_work() as s:
        row = s.get(Booking, bk.id)
        notify.payment_event(s, booking=row, event="payment_received", amount_cents=2500, currency="EUR", ref="pay-1")
        notify.payment_event(s, booking=row, event="payment_failed", amount_cents=2500, currency="EUR", ref="pay-2")
    webhook_delivery.relay_webhooks()
    (event,) = receiver.events()
    assert event["type"] == "payment.succeeded"
    assert event["data"]["payment"] == {"amount_cents": 2500, "currency": "EUR", "ref": "pay-1"}


def test_rolled_back_transaction_sends_nothing(db_url, receiver):
    w = make_world()
    ep = endpoint_for(w, receiver, ["booking.cancelled"])
    bk = book(w, future())
    with pytest.raises(RuntimeError):
        with db.unit_of_work() as s:
            row = s.get(Booking, bk.id)
            notify.booking_event(s, booking=row, event="booking_cancelled")
            raise RuntimeError("the business transaction fails")
    relay.relay_once()
    assert receiver.requests == [] and deliveries(ep.id) == []


def test_scope_other_providers_events_and_admin_endpoints(sqlite_db, receiver):
    w, other = make_world(), make_world()
    mine = endpoint_for(w, receiver, ["booking.created"])
    admin = make_admin()
    everything = webhooks.create_endpoint(actor=actor_for(admin), url=receiver.url, events=["booking.created"])
    inactive = webhooks.create_endpoint(actor=actor_for(w.provider), url=receiver.url, events=["booking.created"],
                                        active=False)
    book(w, future())
    book(other, future())
    webhook_delivery.relay_webhooks()
    assert len(deliveries(mine.id)) == 1 and len(deliveries(everything.id)) == 2 and deliveries(inactive.id) == []
    # a deactivated owner's endpoints get nothing
    set_user(w.provider.id, is_active=False)
    book(w, future(60))
    webhook_delivery.relay_webhooks()
    assert len(deliveries(mine.id)) == 1 and len(deliveries(everything.id)) == 3


# --- URL safety ------------------------------------------------------------------------------------

REFUSED = [
    "http://127.0.0.1/hook", "http://127.1.2.3:8080/x", "http://10.1.2.3/", "http://172.16.0.1/", "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data", "http://[::1]/", "http://[fe80::1]/", "http://[fc00::1]/",
    "http://[::ffff:127.0.0.1]/", "http://[::ffff:10.0.0.1]/", "http://0.0.0.0/", "http://224.0.0.1/",
    "http://localhost:8000/hook", "http://100.64.0.1/",
]


@pytest.mark.parametrize("url", REFUSED)
def test_private_targets_are_refused(url, monkeypatch):
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE_TARGETS", "false")
    reset_settings_cache()
    with pytest.raises(url_safety.UnsafeUrl) as exc:
        url_safety.check_url(url)
    assert exc.value.message == url_safety.PRIVATE_TARGET


def test_url_rules(monkeypatch):
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE_TARGETS", "false")
    reset_settings_cache()
    assert url_safety.check_url(" https://93.184.216.34/hooks ") == "https://93.184.216.34/hooks"
    assert url_safety.check_url("http://93.184.216.34/hooks")  # http outside production
    for bad in ("ftp://93.184.216.34/", "https://user:pw@93.184.216.34/", "not a url", "https:///x", "",
                "http://[::1", "https://[x]/", "https://a]b/"):  # malformed IPv6 brackets: refused, not a 500
        with pytest.raises(url_safety.UnsafeUrl):
            url_safety.check_url(bad)
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SECRET_KEY", "p" * 40)
    reset_settings_cache()
    with pytest.raises(url_safety.UnsafeUrl) as exc:
        url_safety.check_url("http://93.184.216.34/hooks")
    assert exc.value.message == url_safety.NOT_HTTPS
    monkeypatch.setenv("ENVIRONMENT", "development")
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
    reset_settings_cache()
    assert url_safety.check_url("http://127.0.0.1:9/") == "http://127.0.0.1:9/"


def test_registration_refuses_private_targets(sqlite_db, monkeypatch):
    fast_password_hashing(monkeypatch)
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE_TARGETS", "false")
    reset_settings_cache()
    w = make_world()
    for url in ("http://127.0.0.1/", "http://[::1]/", "http://localhost/", "http://10.0.0.5/", "http://169.254.1.1/"):
        with pytest.raises(InvalidInput) as exc:
            webhooks.create_endpoint(actor=actor_for(w.provider), url=url, events=["booking.created"])
        assert exc.value.field == "url"
    with pytest.raises(InvalidInput) as exc:
        webhooks.create_endpoint(actor=actor_for(w.provider), url="https://93.184.216.34/", events=["booking.nope"])
    assert exc.value.field == "events"


def test_delivery_rechecks_the_target_and_never_connects_to_a_refused_one(sqlite_db, receiver, monkeypatch):
    """Registered while private targets were allowed; now they are not (or DNS changed):
    the delivery fails without a connection."""
    w = make_world()
    ep = endpoint_for(w, receiver, ["booking.created"])
    book(w, future())
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE_TARGETS", "false")
    reset_settings_cache()
    webhook_delivery.relay_webhooks()
    assert receiver.requests == []
    (d,) = deliveries(ep.id)
    assert d.status == "pending" and d.response_code is None and "target refused" in d.last_error


def test_delivery_pins_the_checked_address(monkeypatch, receiver):
    """The name is resolved once, checked, and the connection goes to that address."""
    seen = []
    real = url_safety.resolve

    def resolve_once(host, port):
        seen.append(host)
        return real("127.0.0.1", port)

    monkeypatch.setattr(url_safety, "resolve", resolve_once)
    url = receiver.url.replace("127.0.0.1", "hooks.example.test")
    assert webhook_delivery.post(url, "{}", {"Content-Type": "application/json"}) == 200
    assert seen == ["hooks.example.test"]
    assert receiver.requests[0]["headers"]["Host"].startswith("hooks.example.test:")


def test_redirects_are_not_followed(sqlite_db, receiver):
    w = make_world()
    ep = endpoint_for(w, receiver, ["booking.created"])
    book(w, future())
    receiver.script = [302]
    receiver.location = "http://10.0.0.1/internal"
    webhook_delivery.relay_webhooks()
    (d,) = deliveries(ep.id)
    assert (d.status, d.response_code) == ("pending", 302) and "redirect" in d.last_error
    assert len(receiver.requests) == 1


def test_secret_sealed_with_the_previous_key_is_sealed_again(sqlite_db, receiver, monkeypatch):
    from booking_app.config import get_settings
    from booking_app.services import mfa

    w = make_world()
    ep = endpoint_for(w, receiver, ["booking.created"])
    with db.read_session() as s:
        before = s.get(WebhookEndpoint, ep.id).secret_sealed
    monkeypatch.setenv("SECRET_KEY_PREVIOUS", get_settings().secret_key)
    monkeypatch.setenv("SECRET_KEY", "a-new-secret-key-of-enough-length-0123456789")
    reset_settings_cache()
    book(w, future())
    webhook_delivery.relay_webhooks()
    (req,) = receiver.requests
    assert webhook_delivery.verify(req["body"], req["headers"]["Booking-Signature"], ep.secret)
    with db.read_session() as s:
        after = s.get(WebhookEndpoint, ep.id).secret_sealed
    assert after != before
    monkeypatch.delenv("SECRET_KEY_PREVIOUS")
    reset_settings_cache()
    assert mfa.unseal(after) == (ep.secret, False)


def test_deactivating_gives_up_waiting_deliveries_and_stops_new_ones(sqlite_db, receiver):
    w = make_world()
    ep = endpoint_for(w, receiver, ["booking.created", "booking.cancelled"])
    bk = book(w, future())
    receiver.script = [500]
    webhook_delivery.relay_webhooks()  # booking.created: waiting for its retry
    view = webhooks.update_endpoint(actor=actor_for(w.provider), endpoint_id=ep.id, active=False)
    assert view.active is False
    bookings.cancel(actor=actor_for(w.customer), booking_id=bk.id)  # not queued for an inactive endpoint
    webhook_delivery.relay_webhooks(now=utcnow() + dt.timedelta(minutes=5))
    (d,) = deliveries(ep.id)
    assert (d.status, d.last_error) == ("failed", "endpoint deactivated") and len(receiver.requests) == 1
    # another provider can't see, change or redeliver it
    other = make_world()
    for call in (lambda a: webhooks.get_endpoint(actor=a, endpoint_id=ep.id),
                 lambda a: webhooks.update_endpoint(actor=a, endpoint_id=ep.id, active=True),
                 lambda a: webhooks.redeliver(actor=a, endpoint_id=ep.id, delivery_id=d.id)):
        with pytest.raises(NotFound):
            call(actor_for(other.provider))


def test_forget_user_blanks_the_customer_and_drops_own_endpoints(sqlite_db, receiver):
    w = make_world()
    ep = endpoint_for(w, receiver, ["booking.created"])
    book(w, future())
    webhook_delivery.relay_webhooks()
    with db.unit_of_work() as s:
        webhooks.forget_user(s, w.customer.id)
    (d,) = deliveries(ep.id)
    customer = json.loads(d.body)["data"]["booking"]["customer"]
    assert customer["name"] == "" and customer["email"] is None
    with db.unit_of_work() as s:
        webhooks.forget_user(s, w.provider.id)
    with db.read_session() as s:
        assert s.get(WebhookEndpoint, ep.id) is None
    assert deliveries(ep.id) == []


def test_deleting_an_account_forgets_it_in_webhooks(sqlite_db, receiver):
    """Account deletion (accounts.delete_account) blanks the customer in stored deliveries
    and drops a deleted provider's own endpoints."""
    w = make_world()
    ep = endpoint_for(w, receiver, ["booking.created", "booking.cancelled"])
    bk = book(w, future())
    bookings.cancel(actor=actor_for(w.customer), booking_id=bk.id)
    webhook_delivery.relay_webhooks()
    accounts.delete_account(actor=actor_for(w.customer), current_password=DEFAULT_PASSWORD)
    for d in deliveries(ep.id):
        customer = json.loads(d.body)["data"]["booking"]["customer"]
        assert customer["name"] == "" and customer["email"] is None
    accounts.delete_account(actor=actor_for(w.provider), current_password=DEFAULT_PASSWORD)
    with db.read_session() as s:
        assert s.get(WebhookEndpoint, ep.id) is None


def test_old_finished_deliveries_leave_the_log(sqlite_db, receiver):
    w = make_world()
    ep = endpoint_for(w, receiver, ["booking.created", "booking.cancelled"])
    bk = book(w, future())
    webhook_delivery.relay_webhooks()
    receiver.script = [500]
    bookings.cancel(actor=actor_for(w.customer), booking_id=bk.id)
    webhook_delivery.relay_webhooks()
    later = utcnow() + dt.timedelta(days=31)
    assert webhook_delivery.purge_log(now=later) == 1  # the delivered one; the waiting one stays
    assert [d.event for d in deliveries(ep.id)] == ["booking.cancelled"]
