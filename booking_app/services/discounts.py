"""Discount codes (issue 26, point 1): who may create which code, what a code is, when it
may be used, its uses, and the discount report.

- A code is trimmed and compared case-insensitively (stored upper case): 3-32 letters,
  digits, "-" or "_". Percent (1-100, rounded by money.percent_of) or a fixed amount in one
  currency (never more than the price). Admins' codes may apply to any bookable, providers'
  only to their own (`provider_id`).
- Uses are the bookings that carry the code and still hold it (`use_held`: not cancelled,
  and not a hold that lapsed), counted under the code row's lock in the booking's own
  transaction (`usable_code(lock=True)`, called by bookings.book), so a code with N uses is
  never redeemed N+1 times, and a cancelled or lapsed booking gives its use back by itself.
- What the booking then costs: services/pricing.py; the report: services/discount_reports.py.
  Details: docs/discount-codes.md.
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from booking_app import db
from booking_app.i18n import N_
from booking_app.models import Bookable, BookableKind, Booking, BookingStatus, DiscountCode, utcnow
from booking_app.services import audit, validation
from booking_app.services.actors import Actor, require_staff
from booking_app.services.bookable_access import load_owned
from booking_app.services.errors import InvalidInput

CODE_RE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{2,31}$")
MAX_AMOUNT = 100_000_000  # minor units
MAX_USES = 1_000_000
MAX_SERVICES = 100
KINDS = tuple(k.value for k in BookableKind)
#: Test-only switch: `LOCKING = False` skips the code row's lock (the control test shows the
#: race then over-redeems a code).
LOCKING = True
#: statuses whose bookings gave their code's use back (a lapsed hold gives it back too)
RELEASED_STATUSES = (BookingStatus.cancelled.value,)

CODE_FORMAT = N_("A code has 3 to 32 letters, digits, - or _.")
CODE_TAKEN = N_("This code is already in use.")
NOT_VALID = N_("This discount code is not valid.")
USED_UP = N_("This discount code has been used up.")
NOT_APPLICABLE = N_("This discount code does not apply to this booking.")
STAFF_ONLY = N_("Only providers and administrators can manage discount codes.")
NOT_FOUND = N_("This discount code does not exist.")
ONE_KIND = N_("Give either a percentage or an amount off.")
UNTIL_AFTER_FROM = N_("The end of validity must be after its start.")
NOT_YOUR_SERVICE = N_("You can only limit a code to your own services.")
UNKNOWN_KIND = N_("Unknown kind {value}.")


class DiscountCodeInvalid(InvalidInput):
    """An unknown, inactive, expired, used-up or not applicable code (422,
    code `discount_code_invalid`; the detail says which)."""

    code = "discount_code_invalid"

    def __init__(self, message: str | None = None, /, **params: Any) -> None:
        super().__init__(message or NOT_VALID, field="discount_code", **params)


@dataclass
class DiscountView:
    id: int
    code: str
    provider_id: int | None
    percent_off: int | None
    amount_off_cents: int | None
    currency: str | None
    valid_from: dt.datetime | None
    valid_until: dt.datetime | None
    max_uses: int | None
    max_uses_per_customer: int | None
    min_price_cents: int
    service_ids: list[int]
    kinds: list[str]
    active: bool
    uses: int
    created_at: dt.datetime
    updated_at: dt.datetime


def normalize_code(value: Any, *, field: str = "code") -> str:
    """What a person typed → the stored form (trimmed, upper case); InvalidInput if not a code."""
    text = validation.text(value if isinstance(value, str) else "", field=field, max_length=64).upper()
    if not CODE_RE.fullmatch(text):
        raise InvalidInput(CODE_FORMAT, field=field)
    return text


def use_held(now: dt.datetime):
    """SQL: the booking still holds its code's use (not cancelled, no lapsed hold)."""
    return and_(Booking.status.notin_(RELEASED_STATUSES),  # type: ignore[attr-defined]
                or_(Booking.hold_expires_at.is_(None), Booking.hold_expires_at > now))  # type: ignore[union-attr]


def count_uses(s: Session, code_ids: Iterable[int], now: dt.datetime) -> dict[int, int]:
    """code id → its uses now (one query)."""
    ids = sorted(set(code_ids))
    if not ids:
        return {}
    rows = s.exec(select(Booking.discount_code_id, func.count(Booking.id))  # type: ignore[call-overload]
                  .where(Booking.discount_code_id.in_(ids), use_held(now))  # type: ignore[union-attr]
                  .group_by(Booking.discount_code_id)).all()
    return {cid: int(n) for cid, n in rows}


def _customer_uses(s: Session, code_id: int, customer_id: int | None, email: str | None, now: dt.datetime) -> int:
    if customer_id is not None:
        who = Booking.user_id == customer_id
    elif email:
        who = and_(Booking.user_id.is_(None), func.lower(Booking.guest_email) == email.lower())  # type: ignore[union-attr]
    else:
        return 0
    return int(s.exec(select(func.count(Booking.id))  # type: ignore[call-overload]
                      .where(Booking.discount_code_id == code_id, who, use_held(now))).one())


def applies_to(code: DiscountCode, bookable: Bookable, list_price_cents: int) -> bool:
    """Does `code` apply to `bookable` at this list price (owner, bookables, kinds,
    currency of a fixed amount, minimum price)?"""
    if code.provider_id is not None and code.provider_id != bookable.provider_id:
        return False
    if code.service_ids and bookable.id not in code.service_ids:
        return False
    if code.kinds and bookable.kind not in code.kinds:
        return False
    if code.amount_off_cents is not None and (code.currency or "").upper() != (bookable.currency or "").upper():
        return False
    return list_price_cents >= (code.min_price_cents or 0)


def usable_code(s: Session, text: Any, *, bookable: Bookable, list_price_cents: int, customer_id: int | None,
                email: str | None, now: dt.datetime, lock: bool, uses: int = 1) -> DiscountCode:
    """The code the customer typed, checked for this booking (active, valid now, applies,
    uses left in total and for this customer — the signed-in `customer_id`, else the guest's
    `email`); DiscountCodeInvalid otherwise. `lock`: the code row is locked for the rest
    of the transaction (PostgreSQL FOR UPDATE; SQLite holds its single write lock), so the
    uses counted here stay true until the booking commits."""
    try:
        normalized = normalize_code(text, field="discount_code")
    except InvalidInput:
        raise DiscountCodeInvalid() from None
    stmt = select(DiscountCode).where(DiscountCode.code == normalized)
    if lock and LOCKING and db.is_postgres(s):
        stmt = stmt.with_for_update()
    code = s.exec(stmt).first()
    if (code is None or not code.active or (code.valid_from is not None and now < code.valid_from)
            or (code.valid_until is not None and now >= code.valid_until)):
        raise DiscountCodeInvalid()
    if not applies_to(code, bookable, list_price_cents):
        raise DiscountCodeInvalid(NOT_APPLICABLE)
    if not uses_left(s, code, customer_id=customer_id, email=email, now=now, uses=uses):
        raise DiscountCodeInvalid(USED_UP)
    return code


def uses_left(s: Session, code: DiscountCode, *, customer_id: int | None, email: str | None,
              now: dt.datetime, uses: int = 1) -> bool:
    """Has `code` `uses` uses left (a series: one per date), in total and for this customer?
    (Call it under the code's lock.)"""
    assert code.id is not None
    if code.max_uses is not None and count_uses(s, [code.id], now).get(code.id, 0) + uses > code.max_uses:
        return False
    return (code.max_uses_per_customer is None
            or _customer_uses(s, code.id, customer_id, email, now) + uses <= code.max_uses_per_customer)


# --- managing codes ------------------------------------------------------------------------

def _staff(actor: Actor) -> None:
    require_staff(actor, STAFF_ONLY)


def _view(code: DiscountCode, uses: int) -> DiscountView:
    assert code.id is not None
    return DiscountView(
        id=code.id, code=code.code, provider_id=code.provider_id, percent_off=code.percent_off,
        amount_off_cents=code.amount_off_cents, currency=code.currency, valid_from=code.valid_from,
        valid_until=code.valid_until, max_uses=code.max_uses, max_uses_per_customer=code.max_uses_per_customer,
        min_price_cents=code.min_price_cents, service_ids=list(code.service_ids or []),
        kinds=list(code.kinds or []), active=code.active, uses=uses, created_at=code.created_at,
        updated_at=code.updated_at)


def _owned(s: Session, actor: Actor, code_id: Any, *, lock: bool = False) -> DiscountCode:
    """The code, for its owner (the provider it belongs to) or an admin; NotFound otherwise."""
    _staff(actor)
    return load_owned(s, DiscountCode, code_id, actor, owner="provider_id", not_found=NOT_FOUND, lock=lock)


def _optional_int(value: Any, *, field: str, lo: int, hi: int) -> int | None:
    return None if value is None else validation.parse_int(value, field=field, lo=lo, hi=hi)


def _optional_time(value: Any, *, field: str) -> dt.datetime | None:
    return None if value in (None, "") else validation.parse_aware_datetime(value, field=field)


def _service_ids(s: Session, actor: Actor, value: Any) -> list[int]:
    if value is None:
        return []
    if not isinstance(value, (list, tuple)) or len(value) > MAX_SERVICES:
        raise InvalidInput(N_("Must be between {min} and {max}."), field="service_ids", min=0, max=MAX_SERVICES)
    ids = sorted({validation.parse_int(v, field="service_ids", lo=1, hi=2**31 - 1) for v in value})
    if not ids:
        return []
    owners = dict(s.exec(select(Bookable.id, Bookable.provider_id).where(Bookable.id.in_(ids))).all())  # type: ignore[union-attr,call-overload]
    if set(owners) != set(ids):
        raise InvalidInput(N_("This service does not exist."), field="service_ids")
    if not actor.is_admin and any(owner != actor.id for owner in owners.values()):
        raise InvalidInput(NOT_YOUR_SERVICE, field="service_ids")
    return ids


def _kinds(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, (list, tuple)) or len(value) > len(KINDS):
        raise InvalidInput(UNKNOWN_KIND, field="kinds", value="?")
    kinds = []
    for v in value:
        if not isinstance(v, str) or v not in KINDS:
            raise InvalidInput(UNKNOWN_KIND, field="kinds", value=str(v)[:20] if isinstance(v, str) else "?")
        kinds.append(v)
    return sorted(set(kinds))


def _apply(s: Session, actor: Actor, code: DiscountCode, data: Mapping[str, Any]) -> None:
    """Validate `data` (the fields present) into `code`, then check the code as a whole."""
    if "code" in data:
        code.code = normalize_code(data["code"])
    if "percent_off" in data or "amount_off_cents" in data:
        percent = _optional_int(data.get("percent_off"), field="percent_off", lo=1, hi=100)
        amount = _optional_int(data.get("amount_off_cents"), field="amount_off_cents", lo=1, hi=MAX_AMOUNT)
        if (percent is None) == (amount is None):
            raise InvalidInput(ONE_KIND, field="percent_off")
        code.percent_off, code.amount_off_cents = percent, amount
    if "currency" in data:
        code.currency = validation.currency(data["currency"]) if data["currency"] not in (None, "") else None
    if code.amount_off_cents is None:
        code.currency = None
    elif not code.currency:
        raise InvalidInput(N_("This field is required."), field="currency")
    if "valid_from" in data:
        code.valid_from = _optional_time(data["valid_from"], field="valid_from")
    if "valid_until" in data:
        code.valid_until = _optional_time(data["valid_until"], field="valid_until")
    if code.valid_from is not None and code.valid_until is not None and code.valid_until <= code.valid_from:
        raise InvalidInput(UNTIL_AFTER_FROM, field="valid_until")
    if "max_uses" in data:
        code.max_uses = _optional_int(data["max_uses"], field="max_uses", lo=1, hi=MAX_USES)
    if "max_uses_per_customer" in data:
        code.max_uses_per_customer = _optional_int(data["max_uses_per_customer"], field="max_uses_per_customer",
                                                   lo=1, hi=MAX_USES)
    if "min_price_cents" in data:
        code.min_price_cents = _optional_int(data["min_price_cents"], field="min_price_cents", lo=0,
                                             hi=MAX_AMOUNT) or 0
    if "service_ids" in data:
        code.service_ids = _service_ids(s, actor, data["service_ids"])
    if "kinds" in data:
        code.kinds = _kinds(data["kinds"])
    if "active" in data:
        if not isinstance(data["active"], bool):
            raise InvalidInput(N_("The input is not valid."), field="active")
        code.active = data["active"]


def _save(s: Session, code: DiscountCode) -> None:
    clash = s.exec(select(DiscountCode.id).where(DiscountCode.code == code.code)).first()
    if clash is not None and clash != code.id:
        raise InvalidInput(CODE_TAKEN, field="code")
    s.add(code)
    try:
        with s.begin_nested():
            s.flush()
    except IntegrityError:  # a concurrent create took the code meanwhile
        raise InvalidInput(CODE_TAKEN, field="code") from None


def create_code(*, actor: Actor, data: Mapping[str, Any], now: dt.datetime | None = None) -> DiscountView:
    """A new code (admin: any bookable; provider: their own). `data`: code, percent_off |
    amount_off_cents + currency, valid_from, valid_until, max_uses, max_uses_per_customer,
    min_price_cents, service_ids, kinds, active. InvalidInput (422) for anything wrong."""
    _staff(actor)
    now = now or utcnow()
    if "code" not in data:
        raise InvalidInput(N_("This field is required."), field="code")
    if "percent_off" not in data and "amount_off_cents" not in data:
        raise InvalidInput(ONE_KIND, field="percent_off")
    with db.unit_of_work() as s:
        code = DiscountCode(code="", provider_id=None if actor.is_admin else actor.id, created_by=actor.id,
                            created_at=now, updated_at=now)
        _apply(s, actor, code, data)
        _save(s, code)
        audit.record(s, actor_id=actor.id, action="discount_code.created", entity="discount_code", entity_id=code.id,
                     data={"code": code.code})
        return _view(code, 0)


def update_code(*, actor: Actor, code_id: Any, data: Mapping[str, Any], now: dt.datetime | None = None) -> DiscountView:
    """Change the given fields of a code (its owner or an admin)."""
    now = now or utcnow()
    with db.unit_of_work() as s:
        code = _owned(s, actor, code_id, lock=True)
        _apply(s, actor, code, data)
        code.updated_at = now
        _save(s, code)
        audit.record(s, actor_id=actor.id, action="discount_code.updated", entity="discount_code", entity_id=code.id,
                     data={"fields": sorted(data)})
        assert code.id is not None
        return _view(code, count_uses(s, [code.id], now).get(code.id, 0))


def deactivate_code(*, actor: Actor, code_id: Any, now: dt.datetime | None = None) -> DiscountView:
    """Deactivate a code (kept: bookings refer to it and reports count its uses)."""
    return update_code(actor=actor, code_id=code_id, data={"active": False}, now=now)


def get_code(*, actor: Actor, code_id: Any, now: dt.datetime | None = None) -> DiscountView:
    now = now or utcnow()
    with db.read_session() as s:
        code = _owned(s, actor, code_id)
        assert code.id is not None
        return _view(code, count_uses(s, [code.id], now).get(code.id, 0))


def list_codes(*, actor: Actor, now: dt.datetime | None = None) -> list[DiscountView]:
    """The codes `actor` manages (all for an admin), newest first, with their uses."""
    _staff(actor)
    now = now or utcnow()
    with db.read_session() as s:
        stmt = select(DiscountCode).order_by(DiscountCode.id.desc())  # type: ignore[union-attr]
        if not actor.is_admin:
            stmt = stmt.where(DiscountCode.provider_id == actor.id)
        codes = list(s.exec(stmt.limit(1000)).all())
        uses = count_uses(s, [c.id for c in codes if c.id is not None], now)
        return [_view(c, uses.get(c.id, 0)) for c in codes if c.id is not None]
