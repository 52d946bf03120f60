"""Guest manage links: the signed token in a guest's emailed link that lets whoever holds
it view, reschedule and cancel one booking, until MANAGE_LINK_TTL_DAYS after its end.
Re-issuing a link bumps the booking's `manage_link_version`, which revokes older tokens
(services/guest_bookings.py: request_manage_link, reissue_manage_link).

A leaf module (no service imports): the outbox signs links into messages with it.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
from typing import Any

from booking_app import db
from booking_app.config import get_settings
from booking_app.i18n import N_
from booking_app.models import Booking
from booking_app.models.base import utcnow

LINK_NOT_VALID = N_("This booking link is not valid or has expired. You can ask for a new one.")


def _sign(booking_id: int, version: int = 0) -> str:
    key = get_settings().secret_key.encode()
    # (version 0 signs what links signed before versions existed did: those keep working)
    message = f"booking-manage:{booking_id}" if not version else f"booking-manage:{booking_id}:{version}"
    mac = hmac.new(key, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:24]).decode().rstrip("=")


def booking_manage_token(booking_id: int, version: int = 0) -> str:
    """A signed token that lets whoever holds it (the guest, via the emailed link) view,
    reschedule and cancel one booking: `<id>.<HMAC-SHA256 of id and link version with
    SECRET_KEY>`. `version`: the booking's `manage_link_version` — re-issuing the link bumps
    it, which revokes every older token. Valid until MANAGE_LINK_TTL_DAYS after the end."""
    return f"{int(booking_id)}.{_sign(int(booking_id), int(version or 0))}"


def token_id(token: Any) -> int | None:
    """The id a `<id>.<signature>` token names (not yet verified), or None for a malformed one."""
    if not token or not isinstance(token, str) or len(token) > 100 or "." not in token:
        return None
    raw_id, _, _sig = token.partition(".")
    if not raw_id.isascii() or not raw_id.isdigit() or len(raw_id) > 12:
        return None
    return int(raw_id)


def manage_link_expires_at(end_at: dt.datetime) -> dt.datetime:
    """When the manage links of a booking ending at `end_at` stop working."""
    return end_at + dt.timedelta(days=get_settings().manage_link_ttl_days)


def manage_token_grants(token: str | None, booking: Any, now: dt.datetime | None = None) -> bool:
    """True when `token` is a current manage token of `booking` (a Booking or row with id,
    end_at, manage_link_version): signed for its id and current link version (constant-time
    compare), and not expired. Every other token — wrong, re-issued, expired — is False."""
    booking_id = token_id(token)
    if booking_id is None or booking is None or booking_id != booking.id:
        return False
    if (now or utcnow()) > manage_link_expires_at(booking.end_at):
        return False
    expected = _sign(booking_id, int(getattr(booking, "manage_link_version", 0) or 0))
    return hmac.compare_digest(str(token).partition(".")[2].encode(), expected.encode())


def verify_manage_token(token: str | None, now: dt.datetime | None = None) -> int | None:
    """The booking id of a current manage token (see manage_token_grants; one read), else None."""
    booking_id = token_id(token)
    if booking_id is None:
        return None
    with db.read_session() as s:
        bk = s.get(Booking, booking_id)
        return booking_id if manage_token_grants(token, bk, now) else None
