"""Booking questions (issue 24, point 4): definitions, the answers' checks per type (good,
bad, hostile), the snapshot stored with a booking surviving edits and deletes of the
questions, on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest

from booking_app import db
from booking_app.models import Booking
from booking_app.services import booking_questions as bq
from booking_app.services import bookings, catalog
from booking_app.services.actors import Actor
from booking_app.services.errors import InvalidInput
from tests.factories import actor_for, make_bookable, make_customer, make_provider, next_day_at

QUESTIONS = [
    {"id": "name", "type": "short_text", "label": "Name on the badge", "required": True,
     "labels": {"es": "Nombre en la credencial"}},
    {"id": "about", "type": "long_text", "label": "Anything we should know?"},
    {"id": "size", "type": "single_choice", "label": "T-shirt size", "options": ["S", "M", "L"], "required": True},
    {"id": "diet", "type": "multiple_choice", "label": "Diet", "options": ["vegan", "gluten-free", "halal"]},
    {"id": "first", "type": "yes_no", "label": "First visit?"},
    {"id": "age", "type": "number", "label": "Age", "min": 18, "max": 120},
    {"id": "tel", "type": "phone", "label": "Mobile"},
    {"id": "mail", "type": "email", "label": "Invoice email"},
]
GOOD = {"name": "Ann", "about": "Line one\nline two", "size": "M", "diet": ["halal", "vegan"], "first": True,
        "age": "42", "tel": "+34 600 123 456", "mail": "Ann@Example.COM"}


def questions():
    return bq.normalize_questions(QUESTIONS)


# ---- definitions --------------------------------------------------------------------------------

def test_definitions_are_normalised_and_new_questions_get_ids():
    qs = bq.normalize_questions([*QUESTIONS, {"type": "yes_no", "label": "  Agree?  "}])
    assert [q["id"] for q in qs[:8]] == [q["id"] for q in QUESTIONS]
    assert bq.ID_RE.fullmatch(qs[8]["id"]) and qs[8]["label"] == "Agree?" and qs[8]["required"] is False
    assert qs[5]["min"] == 18 and qs[5]["max"] == 120 and "options" not in qs[0]
    assert bq.normalize_questions([]) is None and bq.normalize_questions(None) is None


@pytest.mark.parametrize("bad, field", [
    ([{"type": "essay", "label": "x"}], "questions.0.type"),
    ([{"type": "short_text", "label": ""}], "questions.0.label"),
    ([{"type": "short_text", "label": "a\x00b"}], "questions.0.label"),
    ([{"type": "short_text", "label": "a\r\nBcc: x"}], "questions.0.label"),
    ([{"type": "short_text", "label": "x" * 201}], "questions.0.label"),
    ([{"type": "single_choice", "label": "x"}], "questions.0.options"),
    ([{"type": "single_choice", "label": "x", "options": ["a", "a"]}], "questions.0.options"),
    ([{"type": "multiple_choice", "label": "x", "options": ["a"] * 0 + [str(i) for i in range(31)]}],
     "questions.0.options"),
    ([{"type": "single_choice", "label": "x", "options": ["a\nb"]}], "questions.0.options"),
    ([{"id": "a", "type": "yes_no", "label": "x"}, {"id": "a", "type": "yes_no", "label": "y"}], "questions.1.id"),
    ([{"id": "Bad Id!", "type": "yes_no", "label": "x"}], "questions.0.id"),
    ([{"type": "yes_no", "label": "x", "required": "yes"}], "questions.0.required"),
    ([{"type": "yes_no", "label": "x", "labels": {"xx": "y"}}], "questions.0.labels"),
    ([{"type": "yes_no", "label": "x", "labels": {"es": "a\x07"}}], "questions.0.labels.es"),
    ([{"type": "number", "label": "x", "min": 5, "max": 1}], "questions.0.max"),
    ([{"type": "number", "label": "x", "min": float("nan")}], "questions.0.min"),
    ([{"type": "yes_no", "label": str(i)} for i in range(21)], "questions"),
    ("not a list", "questions"),
])
def test_bad_definitions_are_refused_with_their_field(bad, field):
    with pytest.raises(InvalidInput) as err:
        bq.normalize_questions(bad)
    assert err.value.field == field


def test_labels_are_translated_with_the_default_as_fallback():
    q = questions()[0]
    assert bq.label_for(q, "es") == "Nombre en la credencial"
    assert bq.label_for(q, "de") == "Name on the badge" == bq.label_for(q, None)
    assert [x["label"] for x in bq.localized(questions(), "es")][:2] == ["Nombre en la credencial",
                                                                         "Anything we should know?"]


# ---- answers per type ---------------------------------------------------------------------------

def test_good_answers_become_a_snapshot_with_clean_values():
    snap = bq.check_answers(questions(), GOOD)
    values = bq.answer_map(snap)
    assert values == {"name": "Ann", "about": "Line one\nline two", "size": "M", "diet": ["vegan", "halal"],
                      "first": True, "age": 42, "tel": "+34600123456", "mail": "Ann@example.com"}
    assert snap[0] == {"id": "name", "type": "short_text", "label": "Name on the badge", "value": "Ann",
                       "labels": {"es": "Nombre en la credencial"}}
    assert bq.answers_text(snap, "es").splitlines()[0] == "Nombre en la credencial: Ann"
    assert "First visit?: Sí" in bq.answers_text(snap, "es")
    assert "Diet: vegan, halal" in bq.answers_text(snap, "en")


def test_optional_questions_may_stay_unanswered():
    snap = bq.check_answers(questions(), {"name": "Bo", "size": "S", "about": "   ", "diet": []})
    assert bq.answer_map(snap) == {"name": "Bo", "size": "S"}
    assert bq.check_answers(None, None) is None and bq.check_answers([], {}) is None


@pytest.mark.parametrize("qid, value", [
    ("name", None), ("name", "   "), ("size", ""), ("size", None),
])
def test_required_answers_are_required(qid, value):
    answers = {**GOOD, qid: value}
    with pytest.raises(InvalidInput) as err:
        bq.check_answers(questions(), answers)
    assert err.value.field == f"answers.{qid}" and err.value.message == bq.NEEDS_ANSWER


@pytest.mark.parametrize("qid, value", [
    ("name", "a\x00b"), ("name", "two\r\nlines"), ("name", "x" * 201), ("name", 42), ("name", ["a"]),
    ("about", "x" * 2001), ("about", "bell\x07"), ("about", "\ud800"),
    ("size", "XL"), ("size", ["M"]), ("size", 1), ("size", "m"),
    ("diet", ["kosher"]), ("diet", ["vegan", 3]), ("diet", {"vegan": True}), ("diet", ["vegan"] * 5),
    ("first", "maybe"), ("first", 1), ("first", [True]),
    ("age", "17"), ("age", 121), ("age", "NaN"), ("age", float("inf")), ("age", "1e400"), ("age", True),
    ("age", "12abc"), ("age", "9" * 50), ("age", [42]),
    ("tel", "call me"), ("tel", "+1 555\n0100"), ("tel", 34600123456),
    ("mail", "not-an-email"), ("mail", "a@b.c\r\nBcc: x@y.z"), ("mail", ["a@example.com"]),
])
def test_bad_and_hostile_answers_are_refused_with_their_field(qid, value):
    with pytest.raises(InvalidInput) as err:
        bq.check_answers(questions(), {**GOOD, qid: value})
    assert err.value.field == f"answers.{qid}"


def test_answers_to_questions_not_asked_are_refused():
    with pytest.raises(InvalidInput) as err:
        bq.check_answers(questions(), {**GOOD, "ghost": "boo"})
    assert err.value.field == "answers.ghost"
    with pytest.raises(InvalidInput) as err:
        bq.check_answers(None, {"x" * 500: 1})
    assert err.value.field == "answers." + "x" * 40
    with pytest.raises(InvalidInput) as err:
        bq.check_answers(questions(), ["name", "Ann"])  # type: ignore[arg-type]
    assert err.value.field == "answers"


def test_numbers_keep_fractions_and_bounds():
    qs = bq.normalize_questions([{"id": "w", "type": "number", "label": "Weight (kg)"}])
    assert bq.answer_map(bq.check_answers(qs, {"w": "72,5"})) == {"w": 72.5}
    assert bq.answer_map(bq.check_answers(qs, {"w": -3})) == {"w": -3}
    with pytest.raises(InvalidInput):
        bq.check_answers(qs, {"w": 10**10})


# ---- with bookings --------------------------------------------------------------------------------

def test_booking_stores_the_answers_and_old_answers_survive_edits_and_deletes(db_url):
    provider = make_provider()
    b = make_bookable(provider, questions=QUESTIONS)
    assert [q["id"] for q in b.questions] == [q["id"] for q in QUESTIONS]
    customer = make_customer()
    view = bookings.book(actor=actor_for(customer), service_id=b.id, start=next_day_at(10), answers=GOOD)
    assert bq.answer_map(view.answers)["size"] == "M"
    # the provider renames, retypes and deletes questions: the booking's answers stay as given
    catalog.update_bookable(actor=actor_for(provider), bookable_id=b.id, questions=[
        {"id": "size", "type": "single_choice", "label": "Shirt", "options": ["XS", "XL"], "required": True}])
    with db.read_session() as s:
        stored = s.get(Booking, view.id).answers
    assert bq.answer_map(stored) == bq.answer_map(view.answers)
    assert bq.answers_text(stored, "es").startswith("Nombre en la credencial: Ann\n")
    assert "T-shirt size: M" in bq.answers_text(stored, "en")
    # new bookings follow the new questions
    with pytest.raises(InvalidInput) as err:
        bookings.book(actor=actor_for(customer), service_id=b.id, start=next_day_at(11), answers={"size": "M"})
    assert err.value.field == "answers.size"
    later = bookings.book(actor=actor_for(customer), service_id=b.id, start=next_day_at(11), answers={"size": "XL"})
    assert bq.answer_map(later.answers) == {"size": "XL"}
    # all questions removed: old bookings still show theirs
    catalog.update_bookable(actor=actor_for(provider), bookable_id=b.id, questions=[])
    assert catalog.get_bookable(bookable_id=b.id).questions == []
    with db.read_session() as s:
        assert bq.answer_map(s.get(Booking, later.id).answers) == {"size": "XL"}


def test_invalid_answers_book_nothing_and_bookables_without_questions_take_none(db_url):
    provider = make_provider()
    b = make_bookable(provider, questions=QUESTIONS)
    guest = Actor.guest()
    with pytest.raises(InvalidInput) as err:
        bookings.book(actor=guest, service_id=b.id, start=next_day_at(10),
                      guest={"name": "G", "email": "g@example.com"}, answers={**GOOD, "age": 7})
    assert err.value.field == "answers.age"
    with db.read_session() as s:
        assert s.query(Booking).count() == 0
    ok = bookings.book(actor=guest, service_id=b.id, start=next_day_at(10),
                       guest={"name": "G", "email": "g@example.com"}, answers=GOOD)
    assert ok.answers and ok.guest_email == "g@example.com"
    plain = make_bookable(provider)
    assert plain.questions == []
    view = bookings.book(actor=actor_for(make_customer()), service_id=plain.id, start=next_day_at(10))
    assert view.answers is None
    with pytest.raises(InvalidInput) as err:
        bookings.book(actor=actor_for(make_customer()), service_id=plain.id, start=next_day_at(12),
                      answers={"size": "M"})
    assert err.value.field == "answers.size"


def test_a_series_checks_the_answers_once_and_every_occurrence_keeps_them(db_url):
    from booking_app.services import series

    provider = make_provider()
    b = make_bookable(provider, questions=QUESTIONS[:3], weekly=[
        {"weekday": d, "start": "00:00", "end": "24:00"} for d in range(7)])
    customer = make_customer()
    rule = {"frequency": "weekly", "interval": 1, "count": 3, "mode": "all_or_nothing"}
    with pytest.raises(InvalidInput) as err:
        series.book_series(actor=actor_for(customer), service_id=b.id, start=next_day_at(10), recurrence_rule=rule,
                           answers={"name": "Ann"})
    assert err.value.field == "answers.size"
    done = series.book_series(actor=actor_for(customer), service_id=b.id, start=next_day_at(10),
                              recurrence_rule=rule, answers={"name": "Ann", "size": "L"})
    assert len(done.bookings) == 3
    assert all(bq.answer_map(v.answers) == {"name": "Ann", "size": "L"} for v in done.bookings)


def test_a_guest_request_keeps_its_answers_until_the_link_books_them(db_url, monkeypatch):
    from booking_app.config import reset_settings_cache
    from booking_app.models import Notification
    from booking_app.services import guest_bookings

    monkeypatch.setenv("GUEST_EMAIL_CONFIRMATION", "true")
    reset_settings_cache()
    b = make_bookable(questions=QUESTIONS[:3])
    guest = {"name": "Gina", "email": "gina@example.com"}
    with pytest.raises(InvalidInput) as err:
        guest_bookings.request_guest_booking(actor=Actor.guest(), service_id=b.id, start=next_day_at(10), guest=guest,
                                             answers={"name": "Gina"})
    assert err.value.field == "answers.size"
    guest_bookings.request_guest_booking(actor=Actor.guest(), service_id=b.id, start=next_day_at(10), guest=guest,
                                         answers={"name": " Gina ", "size": "S"})
    with db.read_session() as s:
        url = s.query(Notification).filter(Notification.template == "guest_booking_request").one().context[
            "confirm_url"]
    made = bookings.confirm_guest_request(token=url.partition("token=")[2])
    assert bq.answer_map(made.answers) == {"name": "Gina", "size": "S"}
