"""Where the new features meet (issues 24/26), through the services, on SQLite and PostgreSQL:
a recurring series priced with a discount code (each date one use, all or nothing; its
preview's prices), the admin reports counting bookings awaiting approval, and the admins' tab
to the approvals queue. Over HTTP: tests/api/test_series_discounts_api.py."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import select

from booking_app import db
from booking_app.i18n import translate
from booking_app.models import Booking, BookingSeries, BookingStatus
from booking_app.services import bookings, discounts, reports, series
from booking_app.services.actors import Actor
from booking_app.services.discounts import DiscountCodeInvalid
from booking_app.ui import paths
from booking_app.ui.components.staff import ADMIN_TABS
from booking_app.ui.state.admin_reports import CHART_STATUSES
from booking_app.ui.state.staff import STATUS_LABELS
from tests.factories import ALL_WEEK, actor_for, make_admin, make_bookable, make_customer, make_provider, next_day_at
from tests.test_series import WEEK, weekly


@pytest.fixture
def shop(db_url):
    provider = make_provider()
    room = make_bookable(provider, weekly=ALL_WEEK, price_cents=1225)
    return provider, room


def uses(provider, code_id: int) -> int:
    return discounts.get_code(actor=actor_for(provider), code_id=code_id).uses


def rows_of(bookable_id: int) -> list[Booking]:
    with db.read_session() as s:
        return list(s.exec(select(Booking).where(Booking.bookable_id == bookable_id)).all())


def test_each_date_of_a_series_is_priced_with_the_code_and_takes_one_use(shop):
    provider, room = shop
    code = discounts.create_code(actor=actor_for(provider), data={"code": "WEEKLY-10", "percent_off": 10})
    start = next_day_at(10)
    done = series.book_series(actor=actor_for(make_customer()), service_id=room.id, start=start,
                              recurrence_rule=weekly(3), discount_code=" weekly-10 ")
    assert [b.start for b in done.bookings] == [start + k * WEEK for k in range(3)]
    # 12.25 - 10 % (1.225 → 1.23, half-up, services/pricing.py) = 11.02 per date
    assert {(b.list_price_cents, b.discount_cents, b.price_cents) for b in done.bookings} == {(1225, 123, 1102)}
    assert {r.discount_code_id for r in rows_of(room.id)} == {code.id}
    assert uses(provider, code.id) == 3
    # cancelling the series gives every use back
    series.cancel_series(actor=actor_for(provider), series_id=done.series_id)
    assert uses(provider, code.id) == 0


@pytest.mark.parametrize("mode", ["all_or_nothing", "skip_taken"])
def test_a_code_that_cannot_cover_every_date_books_nothing(shop, mode):
    provider, room = shop
    code = discounts.create_code(actor=actor_for(provider), data={"code": "TWICE", "percent_off": 50,
                                                                  "max_uses": 2})
    customer = make_customer()
    with pytest.raises(DiscountCodeInvalid) as err:
        series.book_series(actor=actor_for(customer), service_id=room.id, start=next_day_at(10),
                           recurrence_rule=weekly(3, mode), discount_code="TWICE")
    assert err.value.code == "discount_code_invalid" and err.value.message == discounts.USED_UP
    assert rows_of(room.id) == [] and uses(provider, code.id) == 0
    with db.read_session() as s:
        assert s.exec(select(BookingSeries).where(BookingSeries.bookable_id == room.id)).first() is None
    # two dates fit
    done = series.book_series(actor=actor_for(customer), service_id=room.id, start=next_day_at(10),
                              recurrence_rule=weekly(2, mode), discount_code="TWICE")
    assert [b.price_cents for b in done.bookings] == [612, 612] and uses(provider, code.id) == 2


def test_skip_taken_needs_uses_only_for_the_dates_it_books(shop):
    provider, room = shop
    code = discounts.create_code(actor=actor_for(provider), data={"code": "TWO-MORE", "percent_off": 20,
                                                                  "max_uses": 2})
    start = next_day_at(10)
    bookings.book(actor=Actor.guest(), service_id=room.id, start=start + WEEK,
                  guest={"name": "G", "email": "g@example.com"})
    done = series.book_series(actor=actor_for(make_customer()), service_id=room.id, start=start,
                              recurrence_rule=weekly(3, "skip_taken"), discount_code="TWO-MORE")
    assert [b.start for b in done.bookings] == [start, start + 2 * WEEK]
    assert [x.start for x in done.skipped] == [start + WEEK]
    assert [b.price_cents for b in done.bookings] == [980, 980] and uses(provider, code.id) == 2


def test_the_per_customer_limit_counts_every_date_for_users_and_guests(shop):
    provider, room = shop
    discounts.create_code(actor=actor_for(provider), data={"code": "PER-TWO", "percent_off": 10,
                                                           "max_uses_per_customer": 2})
    customer = make_customer()
    with pytest.raises(DiscountCodeInvalid):
        series.book_series(actor=actor_for(customer), service_id=room.id, start=next_day_at(10),
                           recurrence_rule=weekly(3), discount_code="PER-TWO")
    series.book_series(actor=actor_for(customer), service_id=room.id, start=next_day_at(10),
                       recurrence_rule=weekly(2), discount_code="PER-TWO")
    guest = {"name": "Gina", "email": "gina@example.com"}
    with pytest.raises(DiscountCodeInvalid):
        series.book_series(actor=Actor.guest(), service_id=room.id, start=next_day_at(12),
                           recurrence_rule=weekly(3), guest=guest, discount_code="PER-TWO")
    done = series.book_series(actor=Actor.guest(), service_id=room.id, start=next_day_at(12),
                              recurrence_rule=weekly(2), guest=guest, discount_code="per-two")
    assert [b.discount_cents for b in done.bookings] == [123, 123]
    assert len(rows_of(room.id)) == 4


def test_a_code_that_does_not_apply_or_is_unknown_is_refused_for_a_series(shop):
    provider, room = shop
    other = make_bookable(provider, weekly=ALL_WEEK, price_cents=500)
    discounts.create_code(actor=actor_for(provider), data={"code": "ONLY-OTHER", "percent_off": 10,
                                                           "service_ids": [other.id]})
    for text in ("ONLY-OTHER", "NOPE-123", "bad\x00code"):
        with pytest.raises(DiscountCodeInvalid):
            series.book_series(actor=actor_for(make_customer()), service_id=room.id, start=next_day_at(10),
                               recurrence_rule=weekly(2), discount_code=text)
    assert rows_of(room.id) == []


def test_the_admin_reports_count_bookings_awaiting_approval(db_url):
    provider = make_provider()
    room = make_bookable(provider, weekly=ALL_WEEK, requires_approval=True)
    start = next_day_at(10)
    request = bookings.book(actor=actor_for(make_customer()), service_id=room.id, start=start)
    assert request.status == "awaiting_approval"
    admin = actor_for(make_admin())
    day = start.date()
    per_day = reports.bookings(actor=admin, date_from=day, date_to=day, tz="UTC")
    assert per_day.rows[0]["awaiting_approval"] == 1 and "awaiting_approval" in per_day.columns
    per_status = reports.bookings(actor=admin, date_from=day, date_to=day, tz="UTC", group_by="status")
    assert {r["status"]: r["bookings"] for r in per_status.rows}.get("awaiting_approval") == 1
    # the live dashboard counts it as a booking holding seats until it is decided
    assert reports.dashboard_snapshot(actor=admin, now=start - dt.timedelta(hours=1))[
        "pending_payments"]["bookings_on_hold"] >= 1
    # the admin chart stacks every status, each with its label in every language
    assert set(CHART_STATUSES) == {st.value for st in BookingStatus}
    for locale in ("en", "es", "fr", "de", "ar", "it", "pt_BR", "nl", "pl", "tr"):
        text = translate(STATUS_LABELS["awaiting_approval"], locale)
        assert text and (locale == "en" or text != "Awaiting approval")


def test_the_series_preview_shows_each_free_dates_discounted_price(shop):
    provider, room = shop
    code = discounts.create_code(actor=actor_for(provider), data={"code": "PREVIEW-2", "amount_off_cents": 225,
                                                                  "currency": "EUR", "max_uses": 2})
    start = next_day_at(10)
    bookings.book(actor=Actor.guest(), service_id=room.id, start=start + WEEK,
                  guest={"name": "G", "email": "g@example.com"})
    customer = actor_for(make_customer())
    occ = series.preview(actor=customer, service_id=room.id, start=start, recurrence_rule=weekly(3, "skip_taken"),
                         discount_code="preview-2")
    assert [o.available for o in occ] == [True, False, True] and occ[1].quote is None
    assert [(o.quote.list_price_cents, o.quote.discount_cents, o.quote.price_cents) for o in occ if o.quote] == \
        [(1225, 225, 1000)] * 2
    plain = series.preview(actor=customer, service_id=room.id, start=start, recurrence_rule=weekly(3, "skip_taken"))
    assert [o.quote.price_cents for o in plain if o.quote] == [1225, 1225]
    with pytest.raises(DiscountCodeInvalid):  # four free dates, two uses: refused as booking would be
        series.preview(actor=customer, service_id=room.id, start=start + 2 * WEEK, recurrence_rule=weekly(4),
                       discount_code="PREVIEW-2")
    assert uses(provider, code.id) == 0  # (the preview holds nothing)


def test_admins_reach_the_approvals_queue_from_their_section_tabs():
    assert {href: msgid for msgid, href in ADMIN_TABS}.get(paths.PROVIDER_APPROVALS) == "Approvals"
