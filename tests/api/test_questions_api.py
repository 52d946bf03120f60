"""Booking questions through the API (issue 24, point 4): a bookable's `questions` (create,
change, read), a booking's `answers` on create and read, 422 problem+json naming the answer."""
from __future__ import annotations

import datetime as dt

import pytest

from tests.api.conftest import assert_problem, make_account, open_room

QUESTIONS = [
    {"id": "size", "type": "single_choice", "label": "T-shirt size", "labels": {"fr": "Taille du t-shirt"},
     "required": True, "options": ["S", "M", "L"]},
    {"id": "diet", "type": "multiple_choice", "label": "Diet", "options": ["vegan", "halal"]},
    {"id": "first", "type": "yes_no", "label": "First visit?"},
    {"id": "age", "type": "number", "label": "Age", "min": 18, "max": 99},
    {"id": "mail", "type": "email", "label": "Invoice email"},
]


@pytest.fixture
def room(client, fast_hash):
    return open_room(client, name="Quiz room", timezone="Europe/Madrid", questions=QUESTIONS)


def free_starts(client, service_id, n=3):
    day = (dt.date.today() + dt.timedelta(days=10)).isoformat()
    r = client.get(f"/api/services/{service_id}/slots", params={"from": day, "to": day})
    assert r.status_code == 200, r.text
    return [s["start"] for s in r.json()["slots"][:n]]


def test_questions_and_answers_round_trip(client, room):
    r = client.get(f"/api/services/{room['id']}")
    assert r.status_code == 200
    qs = r.json()["questions"]
    assert [q["id"] for q in qs] == ["size", "diet", "first", "age", "mail"]
    assert qs[0]["labels"] == {"fr": "Taille du t-shirt"} and qs[0]["options"] == ["S", "M", "L"] and qs[0]["required"]
    cust = make_account("customer")
    start, later, _ = free_starts(client, room["id"])
    answers = {"size": "L", "diet": ["halal"], "first": False, "age": 30, "mail": "a@example.com"}
    r = client.post("/api/bookings", headers=cust.headers,
                    json={"service_id": room["id"], "start": start, "answers": answers})
    assert r.status_code == 201, r.text
    bk = r.json()
    assert bk["answers"] == answers
    assert client.get(f"/api/bookings/{bk['id']}", headers=cust.headers).json()["answers"] == answers
    listed = client.get("/api/bookings", headers=room["provider"].headers, params={"scope": "provider"}).json()
    assert listed["items"][0]["answers"] == answers
    # a guest answers too
    r = client.post("/api/bookings", json={"service_id": room["id"], "start": later, "answers": {"size": "S"},
                                           "guest": {"name": "Gus", "email": "gus@example.com"}})
    assert r.status_code == 201, r.text
    assert r.json()["answers"] == {"size": "S"}
    # the provider replaces the questions: old answers stay
    r = client.put(f"/api/services/{room['id']}", headers=room["provider"].headers,
                   json={"questions": [{"type": "short_text", "label": "Company"}]})
    assert r.status_code == 200, r.text
    new_q = r.json()["questions"]
    assert len(new_q) == 1 and new_q[0]["id"] not in {q["id"] for q in QUESTIONS}
    assert client.get(f"/api/bookings/{bk['id']}", headers=cust.headers).json()["answers"] == answers


def test_bookables_without_questions_have_none_and_take_no_answers(client, fast_hash):
    provider = make_account("provider")
    r = client.post("/api/services", headers=provider.headers, json={
        "name": "Plain", "kind": "room", "duration_minutes": 60, "capacity": 1, "price_cents": 0,
        "currency": "EUR", "timezone": "UTC"})
    assert r.status_code == 201 and r.json()["questions"] == []
    sid = r.json()["id"]
    client.put(f"/api/services/{sid}/availability", headers=provider.headers,
               json={"weekly": [{"weekday": d, "start": "08:00", "end": "20:00"} for d in range(7)]})
    cust = make_account("customer")
    start = free_starts(client, sid)[0]
    body = assert_problem(client.post("/api/bookings", headers=cust.headers,
                                      json={"service_id": sid, "start": start, "answers": {"x": "y"}}), 422)
    assert body["field"] == "answers.x"
    r = client.post("/api/bookings", headers=cust.headers, json={"service_id": sid, "start": start})
    assert r.status_code == 201 and r.json()["answers"] == {}


@pytest.mark.parametrize("answers, field", [
    ({}, "answers.size"),
    ({"size": "XXL"}, "answers.size"),
    ({"size": "M", "diet": ["kosher"]}, "answers.diet"),
    ({"size": "M", "first": "perhaps"}, "answers.first"),
    ({"size": "M", "age": 12}, "answers.age"),
    ({"size": "M", "mail": "nope"}, "answers.mail"),
    ({"size": "M", "ghost": 1}, "answers.ghost"),
])
def test_bad_answers_are_422_naming_the_answer(client, room, answers, field):
    cust = make_account("customer", locale="fr")
    start = free_starts(client, room["id"])[0]
    r = client.post("/api/bookings", headers={**cust.headers, "Accept-Language": "fr"},
                    json={"service_id": room["id"], "start": start, "answers": answers})
    body = assert_problem(r, 422)
    assert body["field"] == field
    # nothing was booked
    assert start in free_starts(client, room["id"])


@pytest.mark.parametrize("answers", [
    {"size": "M\u0000"}, {"size": ["M"] * 40}, {"size": {"nested": 1}}, "not an object", {"size": None},
])
def test_hostile_answer_shapes_are_422(client, room, answers):
    cust = make_account("customer")
    start = free_starts(client, room["id"])[0]
    assert_problem(client.post("/api/bookings", headers=cust.headers,
                               json={"service_id": room["id"], "start": start, "answers": answers}), 422)


@pytest.mark.parametrize("questions", [
    [{"type": "essay", "label": "x"}],
    [{"type": "single_choice", "label": "x"}],
    [{"type": "short_text", "label": "a\nb"}],
    [{"type": "short_text", "label": "x", "labels": {"xx": "y"}}],
    [{"id": "same", "type": "yes_no", "label": "a"}, {"id": "same", "type": "yes_no", "label": "b"}],
    [{"type": "yes_no", "label": str(i)} for i in range(21)],
])
def test_bad_question_definitions_are_422(client, room, questions):
    r = client.put(f"/api/services/{room['id']}", headers=room["provider"].headers, json={"questions": questions})
    assert_problem(r, 422)


def test_bookings_csv_export_carries_the_answers(client, room):
    cust = make_account("customer")
    start = free_starts(client, room["id"])[0]
    r = client.post("/api/bookings", headers=cust.headers,
                    json={"service_id": room["id"], "start": start, "answers": {"size": "M", "first": True}})
    assert r.status_code == 201, r.text
    r = client.get("/api/bookings", headers=room["provider"].headers, params={"scope": "provider", "format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    header, row = r.text.splitlines()[:2]
    assert header.endswith("T-shirt size,First visit?") and row.endswith("M,Yes")
    assert_problem(client.get("/api/bookings", params={"format": "csv"}), 401)


def test_a_series_takes_the_answers_for_every_occurrence(client, room):
    cust = make_account("customer")
    start = free_starts(client, room["id"])[0]
    recurrence = {"frequency": "weekly", "interval": 1, "count": 2, "mode": "all_or_nothing"}
    body = assert_problem(client.post("/api/bookings", headers=cust.headers, json={
        "service_id": room["id"], "start": start, "recurrence": recurrence}), 422)
    assert body["field"] == "answers.size"
    r = client.post("/api/bookings", headers=cust.headers, json={
        "service_id": room["id"], "start": start, "recurrence": recurrence, "answers": {"size": "S"}})
    assert r.status_code == 201, r.text
    assert [b["answers"] for b in r.json()["bookings"]] == [{"size": "S"}, {"size": "S"}]
