"""Calendar Service: bookables (rooms, services, events), their availability and sessions.

Every public function takes keyword-only arguments and an `actor` (services/actors.py):
providers manage only their own bookables, admins all of them; anyone may read active
bookables. Functions return plain dataclasses and raise the typed errors of
services/errors.py (InvalidInput, NotFound, Forbidden, Conflict).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import exists, func, or_
from sqlmodel import Session, select

from booking_app import db
from booking_app.i18n import N_
from booking_app.models import (
    ACTIVE_STATUSES,
    AvailabilityException,
    AvailabilityRule,
    Bookable,
    BookableKind,
    Booking,
    EventSession,
    User,
)
from booking_app.models.base import utcnow
from booking_app.services import audit, availability, booking_questions, reminders, slots, validation
from booking_app.services.actors import Actor
from booking_app.services import live_slots  # live slots (issue 25): catalog changes reach open pages
from booking_app.services import deposits  # deposits and fees (issue 26)
from booking_app.services.bookable_access import load_bookable
from booking_app.services.waitlist import offer_freed  # waitlist (issue 24): seats a change frees
from booking_app.services.errors import Forbidden, InvalidInput
from booking_app.services.sessions import require_recent_auth
from booking_app.services.slots import MAX_BUFFER_MINUTES, MAX_DURATION_MINUTES
from booking_app.services.validation import (
    fmt_hhmm,
    parse_aware_datetime,
    parse_date,
    parse_end_time,
    parse_hhmm,
    parse_int,
)

# sane upper bounds (the duration's and buffers' are the slot math's: services/slots.py)
MAX_CAPACITY = 100_000
MAX_PRICE_CENTS = 100_000_000
MAX_MIN_NOTICE_MINUTES = 365 * 24 * 60
MAX_ADVANCE_DAYS = 3 * 366
MAX_CANCEL_CUTOFF_HOURS = 365 * 24
MAX_WEEKLY_RANGES = 7 * 24
MAX_EXCEPTIONS = 1000
MAX_PAGE = 200
MAX_REMINDER_OFFSETS = reminders.MAX_REMINDERS  # reminders per booking
MAX_REMINDER_OFFSET_MINUTES = reminders.MAX_REMINDER_OFFSET_MINUTES

KINDS = tuple(k.value for k in BookableKind)


# ---------------------------------------------------------------------------------------
# read models
# ---------------------------------------------------------------------------------------

@dataclass
class BookableView:
    id: int
    provider_id: int
    provider_name: str
    kind: str
    name: str
    description: str
    location: str
    duration_minutes: int
    capacity: int
    price_cents: int
    currency: str
    timezone: str
    is_active: bool
    buffer_minutes: int  # the larger of before/after (the API's single field)
    buffer_before_minutes: int
    buffer_after_minutes: int
    min_notice_minutes: int
    max_advance_days: int
    cancel_cutoff_hours: int
    refund_percent: int
    reminder_offsets: list[int]  # minutes before the start, largest first; [] = the defaults
    created_at: dt.datetime
    updated_at: dt.datetime
    # booking questions (issue 24, point 4): services/booking_questions.py
    questions: list[dict[str, Any]] = field(default_factory=list)
    # approval (issue 24, point 2): services/approvals.py
    requires_approval: bool = False
    approval_expiry_hours: int | None = None

    # deposits and fees (issue 26): services/deposits.py, services/fees.py
    deposit_percent: int | None = None
    deposit_cents: int | None = None
    no_show_fee_cents: int = 0
    late_cancel_fee_cents: int = 0

@dataclass
class WeeklyRange:
    weekday: int  # 0 = Monday
    start: str  # "HH:MM" local time
    end: str


@dataclass
class ExceptionView:
    date: dt.date
    closed: bool
    start: str | None = None
    end: str | None = None


@dataclass
class OutsideBooking:
    """An active booking that falls outside the (new) opening hours: reported, never dropped."""

    id: int
    reference: str
    start: dt.datetime
    end: dt.datetime
    status: str
    quantity: int


@dataclass
class AvailabilityView:
    bookable_id: int
    weekly: list[WeeklyRange]
    exceptions: list[ExceptionView]
    outside_bookings: list[OutsideBooking] = field(default_factory=list)


@dataclass
class SessionView:
    id: int
    bookable_id: int
    start: dt.datetime
    end: dt.datetime
    capacity: int
    is_cancelled: bool


# ---------------------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------------------

def _kind(value: Any) -> str:
    if value not in KINDS:
        raise InvalidInput(N_("Kind must be one of room, service or event."), field="kind")
    return value


def _ranges_overlap(ranges: list[tuple[dt.time, dt.time]]) -> bool:
    ordered = sorted(ranges)
    return any(b[0] < a[1] for a, b in zip(ordered, ordered[1:]))


def _get(item: Any, key: str, default: Any = None) -> Any:
    if isinstance(item, Mapping):
        return item.get(key, default)
    return getattr(item, key, default)


def validate_weekly(weekly: Iterable[Any] | None) -> list[tuple[int, dt.time, dt.time]]:
    """[{weekday, start, end}] → [(weekday, start, end)], validated (no overlaps per day)."""
    out: list[tuple[int, dt.time, dt.time]] = []
    items = list(weekly or [])
    if len(items) > MAX_WEEKLY_RANGES:
        raise InvalidInput(N_("Too many opening-hour ranges (at most {max})."), field="weekly", max=MAX_WEEKLY_RANGES)
    for i, item in enumerate(items):
        weekday = parse_int(_get(item, "weekday"), field=f"weekly[{i}].weekday", lo=0, hi=6)
        start = parse_hhmm(_get(item, "start"), field=f"weekly[{i}].start")
        end = parse_end_time(_get(item, "end"), field=f"weekly[{i}].end")
        if not start < end:
            raise InvalidInput(N_("The start time must be before the end time."), field=f"weekly[{i}]")
        out.append((weekday, start, end))
    for wd in range(7):
        if _ranges_overlap([(s, e) for d, s, e in out if d == wd]):
            raise InvalidInput(N_("Opening-hour ranges of one day must not overlap."), field="weekly")
    return sorted(out)


def validate_exceptions(exceptions: Iterable[Any] | None) -> list[tuple[dt.date, bool, dt.time | None, dt.time | None]]:
    """[{date, closed: true} | {date, start, end}] → rows; a date is closed or has hours."""
    out: list[tuple[dt.date, bool, dt.time | None, dt.time | None]] = []
    items = list(exceptions or [])
    if len(items) > MAX_EXCEPTIONS:
        raise InvalidInput(N_("Too many date exceptions (at most {max})."), field="exceptions", max=MAX_EXCEPTIONS)
    for i, item in enumerate(items):
        day = parse_date(_get(item, "date"), field=f"exceptions[{i}].date")
        closed = _get(item, "closed")
        start, end = _get(item, "start"), _get(item, "end")
        if closed is True:
            if start is not None or end is not None:
                raise InvalidInput(N_("A closed day has no opening hours."), field=f"exceptions[{i}]")
            out.append((day, True, None, None))
            continue
        if closed not in (None, False):
            raise InvalidInput(N_("Closed must be true or false."), field=f"exceptions[{i}].closed")
        if start is None or end is None:
            raise InvalidInput(N_("Give either closed: true or a start and an end time."), field=f"exceptions[{i}]")
        s = parse_hhmm(start, field=f"exceptions[{i}].start")
        e = parse_end_time(end, field=f"exceptions[{i}].end")
        if not s < e:
            raise InvalidInput(N_("The start time must be before the end time."), field=f"exceptions[{i}]")
        out.append((day, False, s, e))
    by_day: dict[dt.date, list] = {}
    for row in out:
        by_day.setdefault(row[0], []).append(row)
    for rows in by_day.values():
        if any(r[1] for r in rows) and len(rows) > 1:
            raise InvalidInput(N_("A date cannot be both closed and open."), field="exceptions")
        if _ranges_overlap([(r[2], r[3]) for r in rows if not r[1]]):
            raise InvalidInput(N_("Opening-hour ranges of one day must not overlap."), field="exceptions")
    return sorted(out, key=lambda r: (r[0], r[2] or dt.time(0)))


_FIELD_RULES: dict[str, tuple[int, int]] = {
    "duration_minutes": (1, MAX_DURATION_MINUTES),
    "capacity": (1, MAX_CAPACITY),
    "price_cents": (0, MAX_PRICE_CENTS),
    "buffer_before_minutes": (0, MAX_BUFFER_MINUTES),
    "buffer_after_minutes": (0, MAX_BUFFER_MINUTES),
    "min_notice_minutes": (0, MAX_MIN_NOTICE_MINUTES),
    "max_advance_days": (1, MAX_ADVANCE_DAYS),
    "cancel_cutoff_hours": (0, MAX_CANCEL_CUTOFF_HOURS),
    "refund_percent": (0, 100),
}

MAX_APPROVAL_EXPIRY_HOURS = 30 * 24  # (approval requests wait at most 30 days)

UPDATABLE_FIELDS = frozenset({
    "name", "description", "location", "duration_minutes", "capacity", "price_cents", "currency",
    "timezone", "is_active", "buffer_minutes", "buffer_before_minutes", "buffer_after_minutes",
    "min_notice_minutes", "max_advance_days", "cancel_cutoff_hours", "refund_percent", "reminder_offsets",
    "questions",  # (booking questions, issue 24 point 4)
    "requires_approval", "approval_expiry_hours",  # (approval, issue 24 point 2)
    "deposit_percent", "deposit_cents", "no_show_fee_cents", "late_cancel_fee_cents",  # (deposits and fees, issue 26)
})


def _clean_fields(values: dict[str, Any]) -> dict[str, Any]:
    """Validate the given bookable fields (only those present) → column values."""
    out: dict[str, Any] = {}
    if "name" in values:
        out["name"] = validation.text(values["name"], field="name", max_length=200, required=True)
    if "description" in values:
        out["description"] = validation.text(values["description"], field="description", max_length=5000,
                                             multiline=True)
    if "location" in values:
        out["location"] = validation.text(values["location"], field="location", max_length=200)
    if "currency" in values:
        out["currency"] = validation.currency(values["currency"])
    if "timezone" in values:
        if values["timezone"] is None:
            raise InvalidInput(N_("Unknown time zone."), field="timezone")
        out["timezone"] = validation.timezone(values["timezone"])
    if "is_active" in values:
        if not isinstance(values["is_active"], bool):
            raise InvalidInput(N_("Must be true or false."), field="is_active")
        out["is_active"] = values["is_active"]
    if values.get("buffer_minutes") is not None:
        b = parse_int(values["buffer_minutes"], field="buffer_minutes", lo=0, hi=MAX_BUFFER_MINUTES)
        out["buffer_before_minutes"] = b
        out["buffer_after_minutes"] = b
    for name, (lo, hi) in _FIELD_RULES.items():
        if name in values and values[name] is not None:
            out[name] = parse_int(values[name], field=name, lo=lo, hi=hi)
        elif name in values and name not in ("buffer_before_minutes", "buffer_after_minutes"):
            raise InvalidInput(N_("This field is required."), field=name)
    if "reminder_offsets" in values:
        out["reminder_offsets"] = reminders.normalize_reminder_offsets(values["reminder_offsets"])
    if "questions" in values:
        out["questions"] = booking_questions.normalize_questions(values["questions"])
    if "requires_approval" in values:  # (approval, issue 24 point 2)
        if not isinstance(values["requires_approval"], bool):
            raise InvalidInput(N_("Must be true or false."), field="requires_approval")
        out["requires_approval"] = values["requires_approval"]
    if "approval_expiry_hours" in values:  # (None: the APPROVAL_EXPIRY_HOURS setting)
        hours = values["approval_expiry_hours"]
        out["approval_expiry_hours"] = None if hours in (None, "") else parse_int(
            hours, field="approval_expiry_hours", lo=1, hi=MAX_APPROVAL_EXPIRY_HOURS)
    out.update(deposits.clean_policy(values))  # deposits and fees (issue 26)
    return out


def default_reminder_offsets() -> list[int]:
    """The reminder offsets (minutes before the start) of a bookable without its own."""
    return reminders.reminder_offsets(None)


def _view(b: Bookable, provider_name: str = "") -> BookableView:
    assert b.id is not None
    return BookableView(
        id=b.id, provider_id=b.provider_id, provider_name=provider_name, kind=b.kind, name=b.name,
        description=b.description, location=b.location, duration_minutes=b.duration_minutes,
        capacity=b.capacity, price_cents=b.price_cents, currency=b.currency, timezone=b.timezone,
        is_active=b.is_active, buffer_minutes=max(b.buffer_before_minutes, b.buffer_after_minutes),
        buffer_before_minutes=b.buffer_before_minutes, buffer_after_minutes=b.buffer_after_minutes,
        min_notice_minutes=b.min_notice_minutes, max_advance_days=b.max_advance_days,
        cancel_cutoff_hours=b.cancel_cutoff_hours, refund_percent=b.refund_percent,
        reminder_offsets=reminders.parse_offsets(b.reminder_offsets),
        created_at=b.created_at, updated_at=b.updated_at, questions=list(b.questions or []),
        requires_approval=bool(getattr(b, "requires_approval", False)),
        approval_expiry_hours=getattr(b, "approval_expiry_hours", None),
        deposit_percent=b.deposit_percent, deposit_cents=b.deposit_cents, no_show_fee_cents=b.no_show_fee_cents,
        late_cancel_fee_cents=b.late_cancel_fee_cents,
    )


def _provider_names(session: Session, ids: Iterable[int]) -> dict[int, str]:
    ids = sorted(set(ids))
    if not ids:
        return {}
    rows = session.exec(select(User.id, User.full_name, User.username).where(User.id.in_(ids))).all()  # type: ignore[union-attr]
    return {uid: (full or username) for uid, full, username in rows}


def to_view(session: Session, bookable: Bookable) -> BookableView:
    return _view(bookable, _provider_names(session, [bookable.provider_id]).get(bookable.provider_id, ""))


# ---------------------------------------------------------------------------------------
# bookables
# ---------------------------------------------------------------------------------------

def create_bookable(
    *,
    actor: Actor,
    name: str,
    kind: str,
    duration_minutes: int,
    capacity: int = 1,
    price_cents: int = 0,
    currency: str = "USD",
    timezone: str = "UTC",
    description: str = "",
    location: str = "",
    buffer_minutes: int | None = None,
    buffer_before_minutes: int | None = None,
    buffer_after_minutes: int | None = None,
    min_notice_minutes: int = 0,
    max_advance_days: int = 365,
    cancel_cutoff_hours: int = 0,
    refund_percent: int = 100,
    provider_id: int | None = None,
    is_active: bool = True,
    reminder_offsets: str | Sequence[int] | None = None,
    questions: Sequence[Any] | None = None,
    requires_approval: bool = False,
    approval_expiry_hours: int | None = None,
    deposit_percent: int | None = None,
    deposit_cents: int | None = None,
    no_show_fee_cents: int = 0,
    late_cancel_fee_cents: int = 0,
) -> BookableView:
    """Create a room, service or event. Providers create their own; an admin may give
    `provider_id` (default: the admin). `buffer_minutes` sets both buffers; the separate
    before/after values win when given. `reminder_offsets` (minutes before the start,
    e.g. [1440, 60]; None or empty = the defaults) are the booking reminders."""
    if not (actor.is_admin or (actor.is_provider and actor.id is not None)):
        raise Forbidden(N_("Only providers and admins can create services."))
    kind = _kind(kind)
    values: dict[str, Any] = dict(
        name=name, description=description, location=location, duration_minutes=duration_minutes,
        capacity=capacity, price_cents=price_cents, currency=currency, timezone=timezone,
        min_notice_minutes=min_notice_minutes, max_advance_days=max_advance_days,
        cancel_cutoff_hours=cancel_cutoff_hours, refund_percent=refund_percent, is_active=is_active,
        buffer_minutes=buffer_minutes, reminder_offsets=reminder_offsets, questions=questions,
        requires_approval=requires_approval, approval_expiry_hours=approval_expiry_hours,
    )
    values.update(deposit_percent=deposit_percent, deposit_cents=deposit_cents,  # deposits and fees (issue 26)
                  no_show_fee_cents=no_show_fee_cents, late_cancel_fee_cents=late_cancel_fee_cents)
    if buffer_before_minutes is not None:
        values["buffer_before_minutes"] = buffer_before_minutes
    if buffer_after_minutes is not None:
        values["buffer_after_minutes"] = buffer_after_minutes
    clean = _clean_fields(values)
    clean.setdefault("buffer_before_minutes", 0)
    clean.setdefault("buffer_after_minutes", 0)
    if actor.is_provider:
        if provider_id is not None and provider_id != actor.id:
            raise Forbidden(N_("Providers can only create their own services."))
        owner = actor.id
    else:
        owner = provider_id if provider_id is not None else actor.id
    if owner is None:
        raise InvalidInput(N_("Choose the provider of this service."), field="provider_id")
    with db.unit_of_work() as s:
        user = s.get(User, owner) if isinstance(owner, int) and not isinstance(owner, bool) else None
        if user is None or not user.is_active or user.role not in ("provider", "admin"):
            raise InvalidInput(N_("The provider must be an active provider or admin account."), field="provider_id")
        b = Bookable(provider_id=owner, kind=kind, **clean)
        s.add(b)
        s.flush()
        audit.record(s, actor_id=actor.id, action="bookable.created", entity="bookable", entity_id=b.id,
                     data={"kind": kind, "name": b.name})
        return _view(b, user.full_name or user.username)


def update_bookable(*, actor: Actor, bookable_id: int, **changes: Any) -> BookableView:
    """Partial update: only the given fields change (see UPDATABLE_FIELDS; `kind` and the
    provider are fixed). Existing bookings keep their times, price and seats.

    An event's new capacity also applies to its upcoming sessions that had the old one
    (sessions given a capacity of their own keep it); seats already sold stay sold, and a
    booking racing the change is counted against the capacity committed by then (the
    booking service reads it under its lock)."""
    unknown = set(changes) - UPDATABLE_FIELDS
    if unknown:
        raise InvalidInput(N_("Unknown field: {name}."), field=sorted(unknown)[0], name=sorted(unknown)[0])
    clean = _clean_fields(changes)
    with db.unit_of_work() as s:
        b = load_bookable(s, bookable_id, actor, manage=True)
        live_slots.note_bookable(s, b)  # (open pages refresh after commit: live_slots.py)
        if "price_cents" in clean and clean["price_cents"] != b.price_cents:
            require_recent_auth(actor)  # a new price: a recent sign-in (issue 23)
        before = {k: getattr(b, k) for k in clean}
        for k, v in clean.items():
            setattr(b, k, v)
        b.updated_at = utcnow()
        s.add(b)
        s.flush()
        changed = {k: [before[k], v] for k, v in clean.items() if before[k] != v}
        sessions = 0
        if b.kind == "event" and "capacity" in changed:
            sessions = _follow_event_capacity(s, b.id, *changed["capacity"])
        if changed:
            data: dict[str, Any] = {"changes": {k: [str(a), str(c)] for k, (a, c) in changed.items()}}
            if sessions:
                data["sessions_updated"] = sessions
            audit.record(s, actor_id=actor.id, action="bookable.updated", entity="bookable", entity_id=b.id,
                         data=data)
        if "capacity" in changed and changed["capacity"][1] > changed["capacity"][0]:
            offer_freed(s, b, now=utcnow())  # more seats: offered to the waitlists first
        return to_view(s, b)


def _follow_event_capacity(s: Session, event_id: int, old: int, new: int) -> int:
    """Give the event's upcoming sessions that had its old capacity the new one → how many."""
    rows = s.exec(select(EventSession).where(
        EventSession.bookable_id == event_id, EventSession.capacity == old,
        EventSession.start_at > utcnow())).all()  # type: ignore[operator]
    for e in rows:
        e.capacity = new
        s.add(e)
    s.flush()
    return len(rows)


def deactivate(*, actor: Actor, bookable_id: int) -> BookableView:
    """Hide a bookable from search and new bookings (existing bookings stay)."""
    with db.unit_of_work() as s:
        b = load_bookable(s, bookable_id, actor, manage=True)
        live_slots.note_bookable(s, b)  # (open pages refresh after commit: live_slots.py)
        if b.is_active:
            b.is_active = False
            b.updated_at = utcnow()
            s.add(b)
            audit.record(s, actor_id=actor.id, action="bookable.deactivated", entity="bookable", entity_id=b.id)
        return to_view(s, b)


def get_bookable(*, bookable_id: int, actor: Actor | None = None) -> BookableView:
    """One bookable. Inactive ones → NotFound unless the actor may manage them."""
    with db.read_session() as s:
        return to_view(s, load_bookable(s, bookable_id, actor))


def search_bookables(
    *,
    actor: Actor | None = None,
    q: str | None = None,
    kind: str | None = None,
    location: str | None = None,
    date: dt.date | str | None = None,
    provider_id: int | None = None,
    include_inactive: bool = False,
    limit: int = 50,
    offset: int = 0,
    now: dt.datetime | None = None,
    bookable_only: bool = False,
) -> tuple[list[BookableView], int]:
    """Active bookables matching text (name/description/location), kind, location and — when
    `date` is given — having at least one free slot that day (in each bookable's timezone).
    `include_inactive` only works for admins (all) and providers (their own).
    `bookable_only` (customer search): only bookables that can be booked at all — with weekly
    hours, special opening hours or an event session (indexed EXISTS checks per row).
    Returns (page of items ordered by name, total).

    With `date`, candidates are checked lazily in order until the page is full, so `total`
    is exact when at most availability.EXACT_DATE_TOTAL_MAX bookables are open that day (or on the last
    page); above that it is an upper bound that only over-counts fully booked bookables
    (the items and offset paging are always exact; a page shorter than `limit` is the last).
    """

    limit = parse_int(limit, field="limit", lo=1, hi=MAX_PAGE)
    offset = parse_int(offset, field="offset", lo=0, hi=10_000_000)
    if kind not in (None, ""):
        kind = _kind(kind)
    day = parse_date(date, field="date") if date not in (None, "") else None
    q_text = validation.text(q, field="q", max_length=200)
    loc_text = validation.text(location, field="location", max_length=200)
    filters: list[Any] = []
    if include_inactive and actor is not None and actor.is_admin:
        pass
    elif include_inactive and actor is not None and actor.is_provider and actor.id is not None:
        filters.append(or_(Bookable.is_active == True, Bookable.provider_id == actor.id))  # noqa: E712
    else:
        filters.append(Bookable.is_active == True)  # noqa: E712
    if kind:
        filters.append(Bookable.kind == kind)
    if provider_id is not None:
        filters.append(Bookable.provider_id == parse_int(provider_id, field="provider_id", lo=1, hi=2**31))
    if loc_text:
        filters.append(func.lower(Bookable.location).contains(loc_text.lower(), autoescape=True))
    if q_text:
        needle = q_text.lower()
        filters.append(or_(
            func.lower(Bookable.name).contains(needle, autoescape=True),
            func.lower(Bookable.description).contains(needle, autoescape=True),
            func.lower(Bookable.location).contains(needle, autoescape=True),
        ))
    if bookable_only:
        filters.append(or_(
            exists().where(AvailabilityRule.bookable_id == Bookable.id),
            exists().where(AvailabilityException.bookable_id == Bookable.id,
                           AvailabilityException.closed == False),  # noqa: E712
            exists().where(EventSession.bookable_id == Bookable.id),
        ))
    order = (Bookable.name, Bookable.id)
    with db.read_session() as s:
        if day is None:
            total = s.exec(select(func.count()).select_from(Bookable).where(*filters)).one()
            rows = s.exec(select(Bookable).where(*filters).order_by(*order).offset(offset).limit(limit)).all()
        else:
            matching, total = availability.free_on_day(s, filters, order, day, now or utcnow(), need=offset + limit)
            page_ids = matching[offset:offset + limit]
            by_id = {b.id: b for b in s.exec(select(Bookable).where(Bookable.id.in_(page_ids))).all()} if page_ids else {}  # type: ignore[union-attr]
            rows = [by_id[i] for i in page_ids]
        names = _provider_names(s, [b.provider_id for b in rows])
        return [_view(b, names.get(b.provider_id, "")) for b in rows], int(total)


# ---------------------------------------------------------------------------------------
# availability
# ---------------------------------------------------------------------------------------

def _availability_view(s: Session, bookable_id: int) -> AvailabilityView:
    rules = s.exec(select(AvailabilityRule).where(AvailabilityRule.bookable_id == bookable_id)
                   .order_by(AvailabilityRule.weekday, AvailabilityRule.start_time)).all()
    excs = s.exec(select(AvailabilityException).where(AvailabilityException.bookable_id == bookable_id)
                  .order_by(AvailabilityException.date, AvailabilityException.start_time)).all()
    return AvailabilityView(
        bookable_id=bookable_id,
        weekly=[WeeklyRange(r.weekday, fmt_hhmm(r.start_time), fmt_hhmm(r.end_time)) for r in rules],
        exceptions=[ExceptionView(e.date, e.closed, fmt_hhmm(e.start_time) if e.start_time else None,
                                  fmt_hhmm(e.end_time) if e.end_time else None) for e in excs],
    )


def get_availability(*, bookable_id: int, actor: Actor | None = None) -> AvailabilityView:
    """The weekly hours and date exceptions of a bookable."""
    with db.read_session() as s:
        load_bookable(s, bookable_id, actor)
        return _availability_view(s, bookable_id)


def set_availability(
    *,
    actor: Actor,
    bookable_id: int,
    weekly: Iterable[Any] | None = None,
    exceptions: Iterable[Any] | None = None,
    now: dt.datetime | None = None,
) -> AvailabilityView:
    """Replace the weekly hours ([{weekday 0-6, start "HH:MM", end "HH:MM"}]) and the date
    exceptions ([{date, closed: true}] or [{date, start, end}]). Existing bookings are never
    touched: the result's `outside_bookings` lists the future active bookings that now fall
    outside the hours, for the provider to handle. `end` may be "24:00"."""
    rules = validate_weekly(weekly)
    excs = validate_exceptions(exceptions)
    now = now or utcnow()
    with db.unit_of_work() as s:
        b = load_bookable(s, bookable_id, actor, manage=True)
        live_slots.note_bookable(s, b)  # (open pages refresh after commit: live_slots.py)
        for old in s.exec(select(AvailabilityRule).where(AvailabilityRule.bookable_id == b.id)).all():
            s.delete(old)
        for old in s.exec(select(AvailabilityException).where(AvailabilityException.bookable_id == b.id)).all():
            s.delete(old)
        s.flush()
        new_rules = [AvailabilityRule(bookable_id=b.id, weekday=wd, start_time=st, end_time=en) for wd, st, en in rules]
        new_excs = [AvailabilityException(bookable_id=b.id, date=d, closed=c, start_time=st, end_time=en)
                    for d, c, st, en in excs]
        s.add_all(new_rules + new_excs)
        b.updated_at = utcnow()
        s.add(b)
        audit.record(s, actor_id=actor.id, action="bookable.availability_set", entity="bookable", entity_id=b.id,
                     data={"weekly": len(rules), "exceptions": len(excs)})
        s.flush()
        view = _availability_view(s, b.id)  # type: ignore[arg-type]
        future = s.exec(select(Booking).where(
            Booking.bookable_id == b.id, Booking.status.in_(ACTIVE_STATUSES),  # type: ignore[attr-defined]
            Booking.end_at > now).order_by(Booking.start_at)).all()
        sessions = s.exec(select(EventSession).where(EventSession.bookable_id == b.id)).all() if b.kind == "event" else []
        outside = slots.bookings_outside_hours(b, new_rules, new_excs, sessions, future, now=now)
        offer_freed(s, b, now=now)  # hours widened: seats now free go to the waitlists first
        view.outside_bookings = [OutsideBooking(id=x.id, reference=x.reference, start=x.start_at, end=x.end_at,  # type: ignore[arg-type]
                                                status=x.status, quantity=x.quantity) for x in outside]
        return view


# ---------------------------------------------------------------------------------------
# event sessions
# ---------------------------------------------------------------------------------------

def _session_view(e: EventSession) -> SessionView:
    assert e.id is not None
    return SessionView(id=e.id, bookable_id=e.bookable_id, start=e.start_at, end=e.end_at, capacity=e.capacity,
                       is_cancelled=e.is_cancelled)


def add_event_session(*, actor: Actor, bookable_id: int, start: dt.datetime | str,
                      capacity: int | None = None) -> SessionView:
    """Add a dated session to an event (kind=event). `start` is an aware datetime (or ISO
    string with offset); capacity defaults to the event's. Duplicate start → InvalidInput."""
    start_at = parse_aware_datetime(start, field="start")
    with db.unit_of_work() as s:
        b = load_bookable(s, bookable_id, actor, manage=True)
        live_slots.note_bookable(s, b)  # (open pages refresh after commit: live_slots.py)
        if b.kind != BookableKind.event.value:
            raise InvalidInput(N_("Sessions can only be added to events."), field="start")
        cap = b.capacity if capacity is None else parse_int(capacity, field="capacity", lo=1, hi=MAX_CAPACITY)
        if start_at < utcnow() - dt.timedelta(minutes=1):
            raise InvalidInput(N_("The session must start in the future."), field="start")
        dup = s.exec(select(EventSession.id).where(EventSession.bookable_id == b.id,
                                                   EventSession.start_at == start_at)).first()
        if dup is not None:
            raise InvalidInput(N_("This event already has a session at that time."), field="start")
        e = EventSession(bookable_id=b.id, start_at=start_at,  # type: ignore[arg-type]
                         end_at=start_at + dt.timedelta(minutes=b.duration_minutes), capacity=cap)
        s.add(e)
        s.flush()
        audit.record(s, actor_id=actor.id, action="event_session.created", entity="event_session", entity_id=e.id,
                     data={"bookable_id": b.id, "start": start_at.isoformat(), "capacity": cap})
        return _session_view(e)


def list_event_sessions(*, bookable_id: int, actor: Actor | None = None,
                        date_from: dt.date | str | None = None, date_to: dt.date | str | None = None) -> list[SessionView]:
    """Sessions of an event (not cancelled), optionally within local dates (inclusive)."""
    with db.read_session() as s:
        b = load_bookable(s, bookable_id, actor)
        tz = validation.zone(b.timezone)
        stmt = select(EventSession).where(EventSession.bookable_id == b.id, EventSession.is_cancelled == False)  # noqa: E712
        if date_from not in (None, ""):
            d = parse_date(date_from, field="from")
            stmt = stmt.where(EventSession.start_at >= dt.datetime.combine(d, dt.time(0), tzinfo=tz).astimezone(dt.timezone.utc))
        if date_to not in (None, ""):
            d = parse_date(date_to, field="to") + dt.timedelta(days=1)
            stmt = stmt.where(EventSession.start_at < dt.datetime.combine(d, dt.time(0), tzinfo=tz).astimezone(dt.timezone.utc))
        return [_session_view(e) for e in s.exec(stmt.order_by(EventSession.start_at)).all()]
