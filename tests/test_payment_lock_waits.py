"""Lock waits in the payment and refund transactions follow the one "lock wait → Busy" rule
(services/capacity.busy_error): while another transaction holds the booking's row lock,
marking paid or refunding answers Busy(retry_after=1) (503 + Retry-After: 1) within the
lock timeout, not the generic "database unavailable". (Both take the booking row with
capacity.lock_booking, which applies the rule; these tests keep it that way.)"""
from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from booking_app.config import reset_settings_cache
from booking_app.services import bookings, payments, refunds
from booking_app.services.actors import Actor
from booking_app.services.errors import Busy
from tests.factories import ALL_WEEK, actor_for, make_bookable, make_customer, make_provider, next_day_at

pytestmark = pytest.mark.postgres


@pytest.fixture
def short_lock_timeout(monkeypatch):
    monkeypatch.setenv("DB_LOCK_TIMEOUT_MS", "300")
    reset_settings_cache()
    yield
    monkeypatch.delenv("DB_LOCK_TIMEOUT_MS")
    reset_settings_cache()


@contextmanager
def booking_row_locked(pg_url: str, booking_id: int) -> Iterator[None]:
    """Another connection holds the booking row's lock (FOR UPDATE) until the block ends."""
    import psycopg

    with psycopg.connect(pg_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        conn.execute("SELECT id FROM bookings WHERE id = %s FOR UPDATE", (booking_id,))
        try:
            yield
        finally:
            conn.rollback()


def _on_site_booking():
    """A customer's paid booking with a payment on site waiting → (provider, booking)."""
    provider = make_provider()
    customer = actor_for(make_customer())
    room = make_bookable(provider, weekly=ALL_WEEK, price_cents=1000)
    bk = bookings.book(actor=customer, service_id=room.id, start=next_day_at(10), payment_method="on_site")
    payments.process(actor=customer, booking_id=bk.id, method="on_site")
    return provider, bk


def _assert_busy_quickly(call) -> None:
    started = time.monotonic()
    with pytest.raises(Busy) as info:
        call()
    assert info.value.retry_after == 1
    assert info.value.status == 503
    assert time.monotonic() - started < 2.5  # the lock timeout (300 ms), not a hang


def test_mark_paid_while_the_booking_is_locked_is_busy(pg_db, short_lock_timeout):
    provider, bk = _on_site_booking()
    with booking_row_locked(pg_db, bk.id):
        _assert_busy_quickly(lambda: payments.mark_paid(actor=actor_for(provider), booking_id=bk.id))
    # once the lock is gone it works
    assert payments.mark_paid(actor=actor_for(provider), booking_id=bk.id).status == "succeeded"


def test_refund_while_the_booking_is_locked_is_busy(pg_db, short_lock_timeout):
    provider, bk = _on_site_booking()
    payments.mark_paid(actor=actor_for(provider), booking_id=bk.id)
    admin = Actor.system()
    with booking_row_locked(pg_db, bk.id):
        _assert_busy_quickly(lambda: refunds.refund(actor=admin, booking_id=bk.id, amount_cents=100))


def test_refund_for_cancellation_while_the_booking_is_locked_is_busy(pg_db, short_lock_timeout):
    _provider, bk = _on_site_booking()
    with booking_row_locked(pg_db, bk.id):
        _assert_busy_quickly(lambda: refunds.refund_for_cancellation(booking_id=bk.id))




def test_the_api_answers_503_with_retry_after_1(pg_db, short_lock_timeout):
    from fastapi.testclient import TestClient

    from booking_app.api import create_api
    from tests.api.conftest import make_account

    customer = actor_for(make_customer())
    room = make_bookable(make_provider(), weekly=ALL_WEEK, price_cents=1000)
    bk = bookings.book(actor=customer, service_id=room.id, start=next_day_at(10), payment_method="on_site")
    payments.process(actor=customer, booking_id=bk.id, method="on_site")
    admin = make_account("admin")
    with TestClient(create_api(), raise_server_exceptions=False) as client, booking_row_locked(pg_db, bk.id):
        response = client.post(f"/api/payments/{bk.id}/mark-paid", headers=admin.headers)
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "1"
    assert response.json()["code"] == "busy"
