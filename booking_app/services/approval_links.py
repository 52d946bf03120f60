"""Signed approve/decline links in the provider's "approval needed" email (issue 24,
point 2): `<id>.<HMAC-SHA256 of id and version with SECRET_KEY>`, valid for that booking
while it still awaits approval at that version (a decision, a reschedule or a new link
bumps `version`, which retires it). The token only names the booking and proves who sent
it; services/approvals.py decides. A leaf module (the outbox signs links with it).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from booking_app.config import get_settings
from booking_app.services.manage_links import token_id


def _sign(booking_id: int, version: int) -> str:
    message = f"booking-approval:{int(booking_id)}:{int(version)}"
    mac = hmac.new(get_settings().secret_key.encode(), message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:24]).decode().rstrip("=")


def approval_token(booking_id: int, version: int) -> str:
    """The token of the provider's approve/decline links for a booking at `version`."""
    return f"{int(booking_id)}.{_sign(booking_id, version)}"


def approval_url(booking: Any) -> str:
    """The page (ui/paths.py: APPROVAL_LINK) where the provider approves or declines it."""
    token = approval_token(int(booking.id), int(booking.version))
    return f"{get_settings().public_url.rstrip('/')}/provider/approval?token={token}"


def token_grants(token: Any, booking: Any) -> bool:
    """True when `token` is the current approval token of `booking` (constant-time compare)."""
    booking_id = token_id(token)
    if booking_id is None or booking is None or booking_id != booking.id:
        return False
    expected = _sign(booking_id, int(booking.version))
    return hmac.compare_digest(str(token).partition(".")[2].encode(), expected.encode())
