"""Guests (anonymous visitors) and their bookings: the rules that keep guests from
hoarding (issue 20: at most GUEST_MAX_QUANTITY seats, GUEST_MAX_HOLDS_PER_EMAIL / _PER_IP
active unpaid bookings, rate limits per email address and client, counted under per-guest
advisory locks), booking requests that wait for the guest to confirm their email address
(GUEST_EMAIL_CONFIRMATION; the booking itself is made by bookings.confirm_guest_request),
and manage-link requests (a lost or leaked link is re-issued; the old one stops working).
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session, func, select

from booking_app import db
from booking_app.config import get_settings
from booking_app.i18n import N_, Np_
from booking_app.models import Bookable, Booking, BookingStatus, Notification, Payment
from booking_app.models.base import utcnow
from booking_app.models.booking import HELD_STATUSES, GuestBookingRequest
from booking_app.services import audit, booking_questions, capacity, outbox, ratelimit, validation
from booking_app.services.actors import Actor
from booking_app.services import pricing  # discount codes (issue 26)
from booking_app.services.availability import resolve_start_with_usage
from booking_app.services.booking_queries import access, check_payment_method
from booking_app.services.errors import Conflict, Forbidden, InvalidInput, NotAvailable, NotFound
from booking_app.services.manage_links import manage_link_expires_at
from booking_app.services.validation import parse_aware_datetime, parse_int

REQUEST_NOT_VALID = N_("This confirmation link is not valid or has expired. Please book again.")
GUEST_QUANTITY = Np_("Guests can book at most {max} place at once. Sign in to book more.",
                      "Guests can book at most {max} places at once. Sign in to book more.", "max")
_GUEST_HOLDS_EMAIL = Np_("This email address already has {max} unpaid booking. Pay for or cancel it, or sign in, "
                         "to book more.",
                         "This email address already has {max} unpaid bookings. Pay for or cancel one, or sign in, "
                         "to book more.", "max")
_GUEST_HOLDS_IP = N_("Too many unpaid guest bookings come from your network. Pay for or cancel one, or sign in, "
                     "to book more.")
CONFIRM_FIRST = N_("Please confirm your email address first: open the link we emailed you.")
_NOT_A_LINK = N_("Please write your name without web or email addresses.")
#: a name carrying a link (scheme, www., an address, a domain such as example.com): our
#: emails greet guests by name, and mail clients turn such text into links
_LINK_IN_NAME = re.compile(r"(?i)(?:://|www\.|@|\b[a-z0-9-]+\.[a-z]{2,24}(?![a-z]))")
#: advisory-lock classes of the guest counters (capacity uses 1 and 2; see lock_key)
_GUEST_EMAIL_LOCK, _GUEST_IP_LOCK = 3, 4


def guest_fields(guest: Any) -> tuple[str, str, str | None]:
    def get(key: str) -> Any:
        return guest.get(key) if isinstance(guest, Mapping) else getattr(guest, key, None)

    name = validation.text(get("name"), field="guest.name", max_length=200, required=True)
    if _LINK_IN_NAME.search(name):
        raise InvalidInput(_NOT_A_LINK, field="guest.name")
    email = valid_guest_email(get("email"), field="guest.email")
    try:
        phone = validation.phone(get("phone"))
    except InvalidInput as exc:
        raise InvalidInput(exc.message, field="guest.phone", **exc.params) from None
    return name, email, phone


def valid_guest_email(value: Any, *, field: str = "email") -> str:
    try:
        return validation.email(value if isinstance(value, str) else "")
    except InvalidInput as exc:
        raise InvalidInput(exc.message, field=field, **exc.params) from None


def guest_ip_key(ip: str | None) -> str | None:
    """What a guest's client IP is counted and stored under: a keyed hash (the address is
    never kept), of the /64 for IPv6 (one subscriber's block: a client can't dodge the per-IP
    cap by picking another address of its own block)."""
    if not ip or not isinstance(ip, str):
        return None
    value = ip.strip()[:100]
    try:
        addr = ipaddress.ip_address(value.split("%", 1)[0])
    except ValueError:
        pass
    else:
        if addr.version == 6 and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        value = str(ipaddress.ip_network(f"{addr}/64", strict=False)) if addr.version == 6 else str(addr)
    key = get_settings().secret_key.encode()
    return hmac.new(key, f"guest-ip:{value}".encode(), hashlib.sha256).hexdigest()[:32]


def guest_email_confirmation_required(actor: Actor) -> bool:
    """Whether a booking by `actor` must wait for the guest to confirm their email address
    (GUEST_EMAIL_CONFIRMATION; anonymous visitors only): API and UI then call
    `request_guest_booking` instead of `book`."""
    return actor.role == "guest" and get_settings().guest_email_confirmation


def _lock_number(text_value: str) -> int:
    return int.from_bytes(hashlib.sha256(text_value.encode()).digest()[:4], "big", signed=True)


def lock_guest(s: Session, email: str, ip_key: str | None) -> None:
    """PostgreSQL: the transaction-scoped locks that serialise one email address's (and one
    client's) guest bookings, so that their counts and caps hold under concurrency. Taken
    before any capacity lock, in a fixed order (class 3, then 4), by every path that takes
    them: no lock-order cycles. SQLite: the unit of work already holds the write lock."""
    if not db.is_postgres(s):
        return
    capacity.advisory_lock(s, _GUEST_EMAIL_LOCK, _lock_number(email.lower()))
    if ip_key:
        capacity.advisory_lock(s, _GUEST_IP_LOCK, _lock_number(ip_key))


def count_guest_request(s: Session, kind: str, email: str, ip_key: str | None) -> None:
    """Count one guest `kind` of request ("booking", "request", "link") for the email
    address and the client; RateLimited (429 + Retry-After) when either is at its limit
    (GUEST_RATE_PER_EMAIL / _PER_IP per GUEST_RATE_WINDOW_MINUTES; off with
    RATE_LIMITS_ENABLED=false). Counted in the caller's transaction: a request that fails
    later (taken, invalid) is not counted."""
    settings = get_settings()
    window = dt.timedelta(minutes=settings.guest_rate_window_minutes)
    email_keys = [f"guest-{kind}:email:{email.lower()}"]
    ip_keys = [f"guest-{kind}:ip:{ip_key}"] if ip_key else []
    ratelimit.check(s, email_keys, limit=settings.guest_rate_per_email, window=window)
    if ip_keys:
        ratelimit.check(s, ip_keys, limit=settings.guest_rate_per_ip, window=window)
    ratelimit.hit(s, email_keys + ip_keys)


def _unpaid_guest_bookings(s: Session, where: Any, now: dt.datetime) -> int:
    """Active unpaid guest bookings matching `where`: pending with a hold not yet expired,
    or confirmed, still to come, with nothing paid (a free or pay-on-site booking holds its
    seats as surely as an unpaid hold)."""
    paid = select(Payment.id).where(Payment.booking_id == Booking.id,
                                    Payment.status.in_(("succeeded", "partially_refunded")))  # type: ignore[attr-defined]
    active = ((Booking.status == BookingStatus.confirmed.value)
              | (Booking.status.in_(HELD_STATUSES) & (Booking.hold_expires_at > now)))  # type: ignore[attr-defined,operator]
    stmt = select(func.count()).select_from(Booking).where(
        where, Booking.end_at > now, active, ~paid.exists())  # type: ignore[operator]
    return int(s.exec(stmt).one())  # type: ignore[call-overload]


def check_guest_caps(s: Session, email: str, ip_key: str | None, now: dt.datetime, adding: int = 1) -> None:
    """Conflict (409) when the email address or the client already has its maximum of
    active unpaid guest bookings (GUEST_MAX_HOLDS_PER_EMAIL / _PER_IP) — or would pass it
    with `adding` more (a recurring series adds several). Call under
    `lock_guest`. The per-client cap, like the rate limits, is off with
    RATE_LIMITS_ENABLED=false (load tests come from one address); the per-address cap stays."""
    settings = get_settings()
    by_email = (Booking.user_id.is_(None)) & (func.lower(Booking.guest_email) == email.lower())  # type: ignore[union-attr]
    if _unpaid_guest_bookings(s, by_email, now) + adding > settings.guest_max_holds_per_email:
        raise Conflict(_GUEST_HOLDS_EMAIL, max=settings.guest_max_holds_per_email)
    if (ip_key and ratelimit.enabled()
            and _unpaid_guest_bookings(s, Booking.guest_ip == ip_key, now) + adding > settings.guest_max_holds_per_ip):
        raise Conflict(_GUEST_HOLDS_IP)


@dataclass
class GuestLimits:
    """What `_book` checks for an anonymous guest, under `lock_guest`."""
    email: str
    ip_key: str | None
    count_rate: bool  # False for a booking made by a confirmed request (counted when requested)


@dataclass
class GuestRequestView:
    """A guest's booking request waiting for the email confirmation (holds nothing)."""
    id: int
    service_id: int
    start: dt.datetime
    quantity: int
    email: str
    expires_at: dt.datetime


def request_signature(request_id: int, expires_at: dt.datetime) -> str:
    key = get_settings().secret_key.encode()
    message = f"guest-request:{request_id}:{int(expires_at.timestamp())}"
    return base64.urlsafe_b64encode(hmac.new(key, message.encode(), hashlib.sha256).digest()[:24]).decode().rstrip("=")


def guest_request_token(request_id: int, expires_at: dt.datetime) -> str:
    """The signed token of a booking request's confirmation link: `<id>.<HMAC of id and
    expiry with SECRET_KEY>`; valid until the request's `expires_at`."""
    return f"{int(request_id)}.{request_signature(int(request_id), expires_at)}"


def confirm_url(token: str) -> str:
    """The page a confirmation link opens (ui/paths.py: CONFIRM_EMAIL)."""
    return f"{get_settings().public_url.rstrip('/')}/booking/confirm?token={token}"


def request_guest_booking(
    *,
    actor: Actor,
    service_id: int,
    start: dt.datetime | str,
    quantity: int = 1,
    notes: str | None = "",
    guest: Mapping[str, Any] | Any | None = None,
    payment_method: str | None = None,
    client_ip: str | None = None,
    now: dt.datetime | None = None,
    answers: Mapping[str, Any] | None = None,
    discount_code: str | None = None,
) -> GuestRequestView:
    """GUEST_EMAIL_CONFIRMATION: record an anonymous guest's booking request and email them
    a short-lived link (GUEST_CONFIRMATION_MINUTES); nothing is held until they open it
    (`confirm_guest_request`). Checked now as far as it can be: the input, the guest rules
    and that the slot has the seats at this moment (NotAvailable otherwise). Rate-limited
    per email address and client (RateLimited)."""
    now = now or utcnow()
    if actor.role != "guest":
        raise Forbidden()
    settings = get_settings()
    start_at = parse_aware_datetime(start, field="start")
    quantity = parse_int(quantity, field="quantity", lo=1, hi=capacity.MAX_QUANTITY)
    if quantity > settings.guest_max_quantity:
        raise InvalidInput(GUEST_QUANTITY, field="quantity", max=settings.guest_max_quantity)
    notes_text = validation.text(notes, field="notes", max_length=2000, multiline=True)
    method = check_payment_method(payment_method)
    if guest is None:
        raise InvalidInput(N_("Give your name and email address to book as a guest."), field="guest")
    name, email, phone = guest_fields(guest)
    if isinstance(service_id, bool) or not isinstance(service_id, int):
        raise NotFound(N_("This service does not exist."))
    ip_key = guest_ip_key(client_ip)
    with db.read_session() as rs:
        b = rs.get(Bookable, service_id)
        if b is None or not b.is_active:
            raise NotFound(N_("This service does not exist."))
        checked = booking_questions.answer_map(booking_questions.check_answers(b.questions, answers))
        code = None if discount_code is None else pricing.quote_with_code(  # (checked again at booking)
            rs, b, quantity, discount_code, customer_id=None, email=email, now=now, lock=False).discount_code
        shape, used, _expired = resolve_start_with_usage(rs, b, start_at, now, quantity=quantity)
        if quantity > shape.capacity:
            raise InvalidInput(capacity.AT_MOST_SEATS, field="quantity", max=shape.capacity)
        if used + quantity > shape.capacity:
            raise NotAvailable()
        service = {"service": b.name, "location": b.location, "service_timezone": b.timezone,
                   "start": shape.start.isoformat(), "end": shape.end.isoformat()}
    with capacity.transaction() as s:
        lock_guest(s, email, ip_key)
        count_guest_request(s, "request", email, ip_key)
        expires = now + dt.timedelta(minutes=settings.guest_confirmation_minutes)
        req = GuestBookingRequest(bookable_id=service_id, start_at=shape.start, quantity=quantity, guest_name=name,
                                  guest_email=email, guest_phone=phone, guest_ip=ip_key, notes=notes_text,
                                  payment_method=method, locale=actor.locale or "en", created_at=now,
                                  expires_at=expires, answers=checked or None, discount_code=code)
        s.add(req)
        s.flush()
        assert req.id is not None
        outbox.enqueue(s, channel="email", to=email, template="guest_booking_request", locale=req.locale,
                       context={**service, "name": name, "quantity": quantity,
                                "timezone": service["service_timezone"],
                                "expires_minutes": settings.guest_confirmation_minutes,
                                "confirm_url": confirm_url(guest_request_token(req.id, expires))},
                       dedupe_key=f"guest-request:{req.id}")
        audit.record(s, actor_id=None, action="booking.requested", entity="guest_booking_request", entity_id=req.id,
                     data={"bookable_id": service_id, "start": shape.start.isoformat(), "quantity": quantity})
        return GuestRequestView(id=req.id, service_id=service_id, start=shape.start, quantity=quantity, email=email,
                                expires_at=expires)


def purge_guest_requests(*, now: dt.datetime | None = None, keep: dt.timedelta = dt.timedelta(days=1)) -> int:
    """Job sweep: delete booking requests whose link expired more than `keep` ago (a guest's
    name, address and phone are not kept for requests nobody confirmed; a confirmed one's
    booking has its own copy). Returns how many were deleted."""
    now = now or utcnow()
    with capacity.transaction() as s:
        stale = delete(GuestBookingRequest).where(GuestBookingRequest.expires_at < now - keep)  # type: ignore[arg-type]
        return int(s.exec(stale).rowcount or 0)  # type: ignore[call-overload]


def request_manage_link(*, email: str, reference: str, client_ip: str | None = None,
                        now: dt.datetime | None = None) -> None:
    """A guest lost their link (or fears someone else has it): when `reference` is a guest
    booking made with `email` whose links have not expired, re-issue its manage link (the
    old one stops working) and email it there. Answers the same whether or not it matched
    (nothing is revealed); rate-limited per email address and client (RateLimited)."""
    now = now or utcnow()
    address = valid_guest_email(email)
    ref = validation.text(reference, field="reference", max_length=32).upper().replace(" ", "").replace("-", "")
    if not ref or not ref.isalnum() or len(ref) > 16:
        raise InvalidInput(N_("Enter the booking reference from your confirmation email."), field="reference")
    ip_key = guest_ip_key(client_ip)
    with capacity.transaction() as s:
        lock_guest(s, address, ip_key)
        count_guest_request(s, "link", address, ip_key)
        bk = s.exec(select(Booking).where(Booking.reference == ref, Booking.user_id.is_(None))  # type: ignore[union-attr]
                    .with_for_update()).first()
        if bk is None or (bk.guest_email or "").lower() != address.lower() or now > manage_link_expires_at(bk.end_at):
            return
        _reissue(s, bk, actor_id=None, now=now)


def reissue_manage_link(*, actor: Actor, booking_id: int, now: dt.datetime | None = None) -> None:
    """Staff (its provider, an admin): revoke a guest booking's manage link and email the
    guest a new one. Conflict for a customer's booking (they sign in; there is no link)."""
    now = now or utcnow()
    with capacity.transaction() as s:
        bk = capacity.lock_booking(s, booking_id, set_lock_timeout=False)
        _owner, manager = access(actor, bk, None)
        assert bk is not None
        if not manager:
            raise Forbidden()
        if bk.user_id is not None or not bk.guest_email:
            raise Conflict(N_("Only guest bookings have a manage link."))
        _reissue(s, bk, actor_id=actor.id, now=now)


def _reissue(s: Session, bk: Booking, *, actor_id: int | None, now: dt.datetime) -> None:
    """Bump the booking's link version (every older link stops working), point the messages
    still waiting in the outbox (reminders) at the new link, and email it to the guest."""
    assert bk.id is not None and bk.guest_email
    bk.manage_link_version = (bk.manage_link_version or 0) + 1
    bk.updated_at = now
    s.add(bk)
    s.flush()
    url = outbox.guest_manage_url(bk)
    waiting = s.exec(select(Notification).where(Notification.booking_id == bk.id,
                                                Notification.status == "pending")).all()
    for n in waiting:
        if isinstance(n.context, dict) and "manage_url" in n.context:
            n.context = {**n.context, "manage_url": url}
            s.add(n)
    b = s.get(Bookable, bk.bookable_id)
    outbox.enqueue(s, channel="email", to=bk.guest_email, template="guest_manage_link", locale=bk.locale or "en",
                   context={**outbox.booking_snapshot(s, bk, b), "name": bk.guest_name or "",
                            "timezone": b.timezone if b is not None else "UTC", "manage_url": url},
                   dedupe_key=f"manage-link:{bk.id}:{bk.manage_link_version}", booking_id=bk.id)
    audit.record(s, actor_id=actor_id, action="booking.manage_link_reissued", entity="booking", entity_id=bk.id,
                 data={"link_version": bk.manage_link_version})
