"""Booking questions (issue 24, point 4): the typed questions a provider asks per bookable
and the customer's answers, checked here — the one home of these rules, called by the
catalog (definitions), the booking service (answers), the UI and the API.

A bookable's questions live on its row (`bookables.questions`, JSON), so the booking hot
path reads them with the bookable and a bookable without questions costs nothing extra. A
booking keeps a snapshot of what was asked and answered (`bookings.answers`: id, type,
label and translated labels at the time, value): editing or deleting questions later never
changes or breaks an old booking's answers. Details: docs/booking-questions.md.
"""
from __future__ import annotations

import csv
import io
import math
import re
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from booking_app.config import SUPPORTED_LOCALES
from booking_app.i18n import N_, translate
from booking_app.services import audit, booking_queries, validation
from booking_app.services.actors import Actor
from booking_app.services.errors import InvalidInput
from booking_app.services.validation import zone

TYPES = ("short_text", "long_text", "single_choice", "multiple_choice", "yes_no", "number", "phone", "email")
CHOICE_TYPES = ("single_choice", "multiple_choice")
#: the msgid naming each type (editor, docs)
TYPE_LABELS = {
    "short_text": N_("Short text"), "long_text": N_("Long text"), "single_choice": N_("Single choice"),
    "multiple_choice": N_("Several choices"), "yes_no": N_("Yes or no"), "number": N_("Number"),
    "phone": N_("Phone number"), "email": N_("Email address"),
}
MAX_QUESTIONS = 20
MAX_OPTIONS = 30
LABEL_MAX = 200
OPTION_MAX = 100
SHORT_TEXT_MAX = 200
LONG_TEXT_MAX = 2000
#: a number answer's default bounds (a question may narrow them with min/max)
NUMBER_LIMIT = 1_000_000_000
ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")

NEEDS_ANSWER = N_("This question needs an answer.")
NOT_AN_OPTION = N_("Choose one of the offered options.")
NOT_A_NUMBER = N_("Enter a number.")
NOT_YES_NO = N_("Answer yes or no.")
UNKNOWN_QUESTION = N_("This question is not asked for this service.")
ANSWERS_SHAPE = N_("Give the answers as an object of question ids and values.")
YES, NO = N_("Yes"), N_("No")


# ---- definitions (the provider's side) --------------------------------------------------------

def _field(i: int, name: str) -> str:
    return f"questions.{i}.{name}"


def _get(item: Any, key: str, default: Any = None) -> Any:
    if isinstance(item, Mapping):
        return item.get(key, default)
    return getattr(item, key, default)


def _number_bound(value: Any, *, field: str) -> int | float | None:
    if value is None or value == "":
        return None
    return parse_number(value, field=field, lo=-NUMBER_LIMIT, hi=NUMBER_LIMIT)


def normalize_questions(value: Sequence[Any] | None) -> list[dict[str, Any]] | None:
    """A provider's question list (dicts or objects with id?, type, label, labels?,
    required?, options?, min?, max?) → what is stored (None when there are none). A question
    without an id gets a new one; a kept id keeps old answers linked to it. InvalidInput names
    the field (`questions.<index>.<name>`)."""
    if value is None:
        return None
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise InvalidInput(N_("Give the questions as a list."), field="questions")
    if len(value) > MAX_QUESTIONS:
        raise InvalidInput(N_("A service can ask at most {max} questions."), field="questions", max=MAX_QUESTIONS)
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, item in enumerate(value):
        if not isinstance(item, Mapping) and not hasattr(item, "type"):
            raise InvalidInput(N_("Give the questions as a list."), field="questions")
        qid = _get(item, "id")
        if qid in (None, ""):
            qid = "q" + secrets.token_hex(4)
        if not isinstance(qid, str) or not ID_RE.fullmatch(qid) or qid in seen:
            raise InvalidInput(N_("Each question needs its own id (lowercase letters, digits, - or _)."),
                               field=_field(i, "id"))
        seen.add(qid)
        qtype = _get(item, "type")
        if qtype not in TYPES:
            raise InvalidInput(N_("Unknown question type."), field=_field(i, "type"))
        label = validation.text(_get(item, "label"), field=_field(i, "label"), max_length=LABEL_MAX, required=True)
        labels: dict[str, str] = {}
        raw_labels = _get(item, "labels") or {}
        if not isinstance(raw_labels, Mapping):
            raise InvalidInput(N_("Give the translated labels as an object of language codes and texts."),
                               field=_field(i, "labels"))
        for lang, text in raw_labels.items():
            if lang not in SUPPORTED_LOCALES:
                raise InvalidInput(N_("This language is not supported."), field=_field(i, "labels"))
            text = validation.text(text, field=_field(i, f"labels.{lang}"), max_length=LABEL_MAX)
            if text:
                labels[lang] = text
        required = _get(item, "required", False)
        if not isinstance(required, bool):
            raise InvalidInput(N_("Must be true or false."), field=_field(i, "required"))
        q: dict[str, Any] = {"id": qid, "type": qtype, "label": label, "required": required}
        if labels:
            q["labels"] = labels
        if qtype in CHOICE_TYPES:
            q["options"] = _options(_get(item, "options"), field=_field(i, "options"))
        if qtype == "number":
            lo = _number_bound(_get(item, "min"), field=_field(i, "min"))
            hi = _number_bound(_get(item, "max"), field=_field(i, "max"))
            if lo is not None and hi is not None and lo > hi:
                raise InvalidInput(N_("The smallest number can't be larger than the largest."), field=_field(i, "max"))
            if lo is not None:
                q["min"] = lo
            if hi is not None:
                q["max"] = hi
        out.append(q)
    return out or None


def _options(value: Any, *, field: str) -> list[str]:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        value = []
    options = [validation.text(o, field=field, max_length=OPTION_MAX) for o in value]
    options = [o for o in options if o]
    if not 1 <= len(options) <= MAX_OPTIONS:
        raise InvalidInput(N_("A choice question needs between 1 and {max} options."), field=field, max=MAX_OPTIONS)
    if len(set(options)) != len(options):
        raise InvalidInput(N_("Each option must be different."), field=field)
    return options


def options_from_text(value: str) -> list[str]:
    """The options typed one per line (the editor's text area) → a list (blank lines dropped)."""
    return [line.strip() for line in (value or "").splitlines() if line.strip()]


def label_for(question: Mapping[str, Any], locale: str | None) -> str:
    """The question's label in `locale`, else its default label (the bookable's own language)."""
    labels = question.get("labels") or {}
    return labels.get(locale or "") or question.get("label") or ""


def localized(questions: Sequence[Mapping[str, Any]] | None, locale: str | None) -> list[dict[str, Any]]:
    """The questions as the booking form shows them in `locale` (label resolved)."""
    return [{**q, "label": label_for(q, locale)} for q in (questions or [])]


# ---- answers (the customer's side) ------------------------------------------------------------

def parse_number(value: Any, *, field: str, lo: int | float, hi: int | float) -> int | float:
    """A finite number (int, float, or text holding one; never a bool) within [lo, hi] → an
    int when whole, else a float."""
    number: float | int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float):
        number = value if math.isfinite(value) else None
    elif isinstance(value, str) and len(value) <= 40 and re.fullmatch(r"\s*-?\d{1,15}([.,]\d{1,6})?\s*", value):
        number = float(value.strip().replace(",", "."))
    if number is None:
        raise InvalidInput(NOT_A_NUMBER, field=field)
    if not lo <= number <= hi:
        raise InvalidInput(N_("Must be between {min} and {max}."), field=field, min=lo, max=hi)
    if isinstance(number, float) and number.is_integer():
        return int(number)
    return number


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or (isinstance(value, list) and not value)


def _answer(q: Mapping[str, Any], value: Any, field: str) -> Any:
    """One answer checked against its question → the stored value."""
    qtype = q["type"]
    if qtype in ("short_text", "long_text"):
        multiline = qtype == "long_text"
        return validation.text(value, field=field, max_length=LONG_TEXT_MAX if multiline else SHORT_TEXT_MAX,
                               multiline=multiline)
    if qtype == "single_choice":
        if not isinstance(value, str) or value not in q.get("options", []):
            raise InvalidInput(NOT_AN_OPTION, field=field)
        return value
    if qtype == "multiple_choice":
        if isinstance(value, str):
            value = [value]
        options = q.get("options", [])
        if not isinstance(value, list) or len(value) > len(options) or any(
                not isinstance(v, str) or v not in options for v in value):
            raise InvalidInput(NOT_AN_OPTION, field=field)
        return [o for o in options if o in value]  # (the provider's order, no repeats)
    if qtype == "yes_no":
        if isinstance(value, bool):
            return value
        if value in ("yes", "true"):
            return True
        if value in ("no", "false"):
            return False
        raise InvalidInput(NOT_YES_NO, field=field)
    if qtype == "number":
        return parse_number(value, field=field, lo=q.get("min", -NUMBER_LIMIT), hi=q.get("max", NUMBER_LIMIT))
    try:  # phone and email: the account fields' own rules, under this answer's field name
        if qtype == "phone":
            if not isinstance(value, str):
                raise InvalidInput(validation.NOT_TEXT, field=field)
            return validation.phone(value)
        if not isinstance(value, str):
            raise InvalidInput(validation.NOT_TEXT, field=field)
        return validation.email(value)
    except InvalidInput as exc:
        raise InvalidInput(exc.message, field=field, **exc.params) from None


def check_answers(questions: Sequence[Mapping[str, Any]] | None, answers: Mapping[str, Any] | None
                  ) -> list[dict[str, Any]] | None:
    """The customer's `answers` ({question id: value}) checked against the bookable's
    `questions` → the booking's snapshot (one entry per answered question: id, type, label,
    labels, value), or None when nothing was asked or answered. Every required question needs
    an answer; an answer to a question not asked is refused. InvalidInput names the field
    `answers.<id>` (the first problem, in the questions' order)."""
    if answers is None:
        answers = {}
    if not isinstance(answers, Mapping):
        raise InvalidInput(ANSWERS_SHAPE, field="answers")
    if not questions:
        if answers:
            key = next(iter(answers))
            raise InvalidInput(UNKNOWN_QUESTION, field=f"answers.{str(key)[:40]}")
        return None
    asked = {q["id"] for q in questions}
    for key in answers:
        if key not in asked:
            raise InvalidInput(UNKNOWN_QUESTION, field=f"answers.{str(key)[:40]}")
    snapshot = []
    for q in questions:
        field = f"answers.{q['id']}"
        value = answers.get(q["id"])
        if _empty(value):
            if q.get("required"):
                raise InvalidInput(NEEDS_ANSWER, field=field)
            continue
        value = _answer(q, value, field)
        if _empty(value):
            if q.get("required"):
                raise InvalidInput(NEEDS_ANSWER, field=field)
            continue
        entry = {"id": q["id"], "type": q["type"], "label": q["label"], "value": value}
        if q.get("labels"):
            entry["labels"] = dict(q["labels"])
        snapshot.append(entry)
    return snapshot or None


# ---- showing answers ---------------------------------------------------------------------------

def answer_map(snapshot: Sequence[Mapping[str, Any]] | None) -> dict[str, Any]:
    """A booking's answers as the API returns them: {question id: value}."""
    return {a["id"]: a["value"] for a in (snapshot or [])}


def value_text(answer: Mapping[str, Any], locale: str | None) -> str:
    """One stored answer's value as text in `locale` (yes/no translated, choices joined)."""
    value = answer.get("value")
    if isinstance(value, bool):
        return translate(YES if value else NO, locale)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)


def answer_lines(snapshot: Sequence[Mapping[str, Any]] | None, locale: str | None) -> list[tuple[str, str]]:
    """A booking's answers as (label, value) pairs in `locale`, labels as they were asked."""
    return [(label_for(a, locale), value_text(a, locale)) for a in (snapshot or [])]


def answers_text(snapshot: Sequence[Mapping[str, Any]] | None, locale: str | None, *, separator: str = "\n",
                 lead: str = "") -> str:
    """A booking's answers as "label: value" lines (emails, calendar descriptions, CSV),
    after `lead`; "" without answers."""
    lines = separator.join(f"{label}: {value}" for label, value in answer_lines(snapshot, locale))
    return lead + lines if lines else ""


def with_answers(text: str, snapshot: Sequence[Mapping[str, Any]] | None, locale: str | None) -> str:
    """`text` (a calendar event's description) followed by the booking's answers, if any."""
    answers = answers_text(snapshot, locale)
    return f"{text}\n\n{answers}" if answers else text


# ---- the CSV export -------------------------------------------------------------------------------

#: the export's fixed columns (then one column per question answered on the page)
CSV_COLUMNS = ("reference", "service", "start", "end", "timezone", "status", "quantity", "customer", "email",
               "phone", "notes",
               "price_cents", "currency", "deposit_cents", "balance_due_cents", "fees_cents")  # (issue 26: money)
CSV_COLUMNS += ("list_price_cents", "discount_cents")  # discount codes (issue 26): before the discount, the discount


def bookings_csv(views: Sequence[booking_queries.BookingView], locale: str | None) -> str:
    """Bookings as CSV: the fixed columns (times in each bookable's zone, named in the
    `timezone` column), then one column per question answered (headed by its label in
    `locale`, as asked). Every cell goes through audit.csv_cell (no formula injection)."""
    questions: dict[str, str] = {}
    for v in views:
        for a in v.answers or []:
            questions.setdefault(a["id"], label_for(a, locale))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([audit.csv_cell(c) for c in (*CSV_COLUMNS, *questions.values())])
    for v in views:
        tz = zone(v.timezone)
        values = {a["id"]: value_text(a, locale) for a in v.answers or []}
        row = [v.reference, v.service_name, v.start.astimezone(tz).isoformat(), v.end.astimezone(tz).isoformat(),
               v.timezone, v.status, v.quantity, v.customer_name or v.guest_name or "",
               v.customer_email or v.guest_email or "", v.guest_phone or "", v.notes,
               v.price_cents, v.currency, v.deposit_cents, v.balance_due_cents, v.fees_cents,
               v.list_price_cents, v.discount_cents,
               *(values.get(qid, "") for qid in questions)]
        writer.writerow([audit.csv_cell(c) for c in row])
    return buf.getvalue()


def export_bookings_csv(*, actor: Actor, **filters: Any) -> str:
    """The bookings `actor` may list (booking_queries.list_bookings: same filters and rights,
    one page) as CSV with their answers; the export is audited (who took which data)."""
    views, _total = booking_queries.list_bookings(actor=actor, **filters)
    audit.record_now(actor_id=actor.id, action="bookings.exported", entity="booking", entity_id="csv",
                     data={k: str(v) for k, v in filters.items() if v not in (None, "")} | {"rows": len(views)})
    return bookings_csv(views, actor.locale)
