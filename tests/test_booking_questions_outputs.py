"""Booking questions where the answers are read (issue 24, point 4): the confirmation
emails of customer and provider (in each one's language), the invitation's and the
calendar feed's event description, and the CSV export (formula injection neutralised)."""
from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from icalendar import Calendar

from booking_app.services import booking_questions, feeds, messages
from booking_app.services.actors import Actor
from tests.factories import actor_for
from tests.stubs.notify_helpers import book, fast_password_hashing, make_world, outbox_rows

UTC = dt.timezone.utc
START = (dt.datetime.now(UTC) + dt.timedelta(days=3)).replace(hour=10, minute=0, second=0, microsecond=0)
QUESTIONS = [
    {"id": "size", "type": "single_choice", "label": "T-shirt size", "labels": {"es": "Talla de camiseta"},
     "options": ["S", "=HYPERLINK(\"http://evil\")"], "required": True},
    {"id": "first", "type": "yes_no", "label": "First visit?", "labels": {"es": "¿Primera visita?"}},
    {"id": "tel", "type": "phone", "label": "Mobile"},
]
ANSWERS = {"size": "=HYPERLINK(\"http://evil\")", "first": True, "tel": "+34 600 123 456"}


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    fast_password_hashing(monkeypatch)


@pytest.fixture
def world(db_url):
    return make_world(customer={"locale": "es"}, bookable={"questions": QUESTIONS})


def test_confirmation_emails_and_invitation_carry_the_answers(world):
    view = book(world, START, answers=ANSWERS)
    (to_customer,) = outbox_rows(template="booking_confirmed", channel="email")
    (to_provider,) = outbox_rows(template="provider_new_booking", channel="email")
    mail = messages.render_email(to_customer.template, to_customer.locale, to_customer.context)
    assert "¿Primera visita?: Sí" in mail.text and "Talla de camiseta: =HYPERLINK" in mail.text
    assert "Mobile: +34600123456" in mail.text
    assert "¿Primera visita?: Sí" in mail.html and "<br>" in mail.html and "<a href=\"http://evil" not in mail.html
    event = Calendar.from_ical(mail.ics).walk("VEVENT")[0]
    description = str(event["DESCRIPTION"])
    assert view.reference in description and "¿Primera visita?: Sí" in description
    provider_mail = messages.render_email(to_provider.template, to_provider.locale, to_provider.context)
    assert "First visit?: Yes" in provider_mail.text and "T-shirt size: =HYPERLINK" in provider_mail.text


def test_bookings_without_answers_keep_their_messages_unchanged(db_url):
    plain = make_world()
    book(plain, START)
    (row,) = outbox_rows(template="booking_confirmed", channel="email")
    assert "answers" not in row.context
    mail = messages.render_email(row.template, row.locale, row.context)
    assert "Answers" not in mail.text


def test_provider_calendar_feed_describes_the_answers(world):
    book(world, START, answers=ANSWERS)
    token = feeds.create_feed_token(actor=actor_for(world.provider), scope="schedule")
    event = Calendar.from_ical(feeds.feed_ics(token=token.token)).walk("VEVENT")[0]
    assert "First visit?: Yes" in str(event["DESCRIPTION"]) and "Mobile: +34600123456" in str(event["DESCRIPTION"])


def test_csv_export_has_a_column_per_question_and_neutralises_formulas(world):
    book(world, START, answers=ANSWERS)
    book(world, START + dt.timedelta(hours=1), answers={"size": "S"}, notes="-2+3")
    text = booking_questions.export_bookings_csv(actor=actor_for(world.provider), scope="provider")
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    assert header[:len(booking_questions.CSV_COLUMNS)] == list(booking_questions.CSV_COLUMNS)
    assert header[len(booking_questions.CSV_COLUMNS):] == ["T-shirt size", "First visit?", "Mobile"]
    first, second = rows[1], rows[2]
    assert first[-3:] == ["'=HYPERLINK(\"http://evil\")", "Yes", "'+34600123456"]
    assert second[-3:] == ["S", "", ""] and second[header.index("notes")] == "'-2+3"
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)


def test_csv_export_follows_the_listing_rights(world):
    book(world, START, answers=ANSWERS)
    other = make_world()
    text = booking_questions.export_bookings_csv(actor=actor_for(other.provider), scope="provider")
    assert len(list(csv.reader(io.StringIO(text)))) == 1  # the header only
    with pytest.raises(Exception):
        booking_questions.export_bookings_csv(actor=Actor.guest(), scope="provider")


def test_webhook_events_carry_the_answers(world):
    from booking_app import db
    from booking_app.models import Booking
    from booking_app.services import webhooks

    view = book(world, START, answers=ANSWERS)
    with db.read_session() as s:
        bk = s.get(Booking, view.id)
        data = webhooks.booking_data(bk, None, customer_name="C", customer_email=None)
    assert data["answers"] == {"size": ANSWERS["size"], "first": True, "tel": "+34600123456"}
