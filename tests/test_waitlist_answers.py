"""A waitlist offer carries the booking questions' answers (issues 24 points 1 and 4): joining
the waitlist of a bookable with questions checks them through services/booking_questions.py
(a required one refused, field `answers.<id>`), the entry keeps the snapshot, the offer's
held booking takes it and keeps it once accepted; an older entry without answers still works."""
from __future__ import annotations

import datetime as dt

import pytest

from booking_app import db
from booking_app.models import Booking, WaitlistEntry
from booking_app.services import bookings, catalog, waitlist, waitlist_accept
from booking_app.services.actors import Actor
from booking_app.services.errors import InvalidInput
from tests.factories import actor_for, make_bookable, make_customer, make_provider

UTC = dt.timezone.utc
NOW = dt.datetime(2027, 1, 10, 12, 0, tzinfo=UTC)
AT = dt.datetime(2027, 2, 1, 10, 0, tzinfo=UTC)
QUESTIONS = [
    {"id": "badge", "type": "short_text", "label": "Name on the badge", "required": True},
    {"id": "size", "type": "single_choice", "label": "T-shirt size", "options": ["S", "M", "L"]},
]


def _full_room(questions=QUESTIONS):
    provider = make_provider()
    b = make_bookable(provider, questions=questions)
    holder = make_customer()
    first = bookings.book(actor=actor_for(holder), service_id=b.id, start=AT, now=NOW,
                          answers={"badge": "Holder"} if questions else None)
    return provider, b, holder, first


def test_required_answer_refused_at_join_and_kept_through_the_offer(db_url):
    provider, b, holder, first = _full_room()
    alice = make_customer()
    with pytest.raises(InvalidInput) as exc:
        waitlist.join(actor=actor_for(alice), service_id=b.id, start=AT, now=NOW)
    assert exc.value.field == "answers.badge"
    with pytest.raises(InvalidInput) as exc:
        waitlist.join(actor=actor_for(alice), service_id=b.id, start=AT, answers={"badge": "A", "size": "XXL"},
                      now=NOW)
    assert exc.value.field == "answers.size"
    with pytest.raises(InvalidInput) as exc:
        waitlist.join(actor=actor_for(alice), service_id=b.id, start=AT, answers={"nope": "x", "badge": "A"},
                      now=NOW)
    assert exc.value.field == "answers.nope"
    with db.read_session() as s:  # nothing half-written
        assert s.query(WaitlistEntry).count() == 0
    entry = waitlist.join(actor=actor_for(alice), service_id=b.id, start=AT, answers={"badge": " Alice ", "size": "M"},
                          now=NOW)
    assert [(a["id"], a["value"]) for a in entry.answers] == [("badge", "Alice"), ("size", "M")]
    guest = waitlist.join(actor=Actor.guest(), service_id=b.id, start=AT, now=NOW,
                          guest={"name": "Gina Guest", "email": "gina@example.com"}, answers={"badge": "Gina"})
    # the provider edits the questions afterwards: the entry's snapshot does not change
    catalog.update_bookable(actor=actor_for(provider), bookable_id=b.id, questions=[])
    bookings.cancel(actor=actor_for(holder), booking_id=first.id, now=NOW)
    with db.read_session() as s:
        e = s.get(WaitlistEntry, entry.id)
        hold = s.get(Booking, e.booking_id)
        assert e.status == "offered" and hold.status == "pending"
        assert hold.answers == e.answers and hold.answers[0]["label"] == "Name on the badge"
    result = waitlist_accept.accept(actor=actor_for(alice), entry_id=entry.id, now=NOW + dt.timedelta(minutes=5))
    assert result.booking.status == "confirmed"
    assert [(a["id"], a["value"]) for a in result.booking.answers] == [("badge", "Alice"), ("size", "M")]
    assert [a["value"] for a in guest.answers] == ["Gina"]


def test_an_entry_without_answers_still_works(db_url):
    provider, b, holder, first = _full_room(questions=None)
    alice = make_customer()
    with pytest.raises(InvalidInput) as exc:  # nothing asked: no answers taken
        waitlist.join(actor=actor_for(alice), service_id=b.id, start=AT, answers={"badge": "x"}, now=NOW)
    assert exc.value.field == "answers.badge"
    entry = waitlist.join(actor=actor_for(alice), service_id=b.id, start=AT, now=NOW)
    assert entry.answers is None
    # an older entry (joined before the bookable asked anything) is offered and accepted as it is
    catalog.update_bookable(actor=actor_for(provider), bookable_id=b.id, questions=QUESTIONS)
    bookings.cancel(actor=actor_for(holder), booking_id=first.id, now=NOW)
    result = waitlist_accept.accept(actor=actor_for(alice), entry_id=entry.id, now=NOW + dt.timedelta(minutes=5))
    assert result.booking.status == "confirmed" and not result.booking.answers
