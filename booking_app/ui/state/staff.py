"""What the provider and admin states share: who may be on a staff page (StaffState),
a row button's busy/run/reload cycle (row_action), rows built again in a new language
(StaffState._relocalize), and the labels of stored keys (statuses, payment methods,
outbox templates and channels): a table never shows a raw key."""
from __future__ import annotations

import asyncio
from urllib.parse import urlencode

import reflex as rx

from booking_app.i18n import N_, translate
from booking_app.services.errors import ServiceError
from booking_app.ui import paths
from booking_app.ui.state import fmt
from booking_app.ui.state.base import AppState

WEEKDAYS = (N_("Monday"), N_("Tuesday"), N_("Wednesday"), N_("Thursday"), N_("Friday"), N_("Saturday"),
            N_("Sunday"))
STATUS_LABELS = {
    "pending": N_("Pending"),
    "confirmed": N_("Confirmed"),
    "cancelled": N_("Cancelled"),
    "completed": N_("Completed"),
    "no_show": N_("No-show"),
    "awaiting_approval": N_("Awaiting approval"),
}
PAYMENT_LABELS = {
    "none": N_("No payment"),
    "pending": N_("To pay"),
    "requires_action": N_("Awaiting customer"),
    "succeeded": N_("Paid"),
    "failed": N_("Failed"),
    "cancelled": N_("Cancelled"),
    "refunded": N_("Refunded"),
    "partially_refunded": N_("Partly refunded"),
}
PAYMENT_METHOD_LABELS = {"on_site": N_("On site"), "card": N_("Card"), "paypal": N_("PayPal")}
#: the outbox's message templates (services/messages.py TEMPLATES) by what they tell
TEMPLATE_LABELS = {
    "booking_confirmed": N_("Booking confirmed"),
    "booking_pending": N_("Booking awaiting payment"),
    "booking_rescheduled": N_("Booking moved"),
    "booking_cancelled": N_("Booking cancelled"),
    "reminder": N_("Reminder"),
    "payment_received": N_("Payment received"),
    "payment_failed": N_("Payment failed"),
    "payment_refunded": N_("Refund"),
    "payment_refunded_unavailable": N_("Refund (bookable gone)"),
    "password_reset": N_("Password reset"),
    "mfa_reset": N_("Two-factor sign-in turned off"),
    "guest_booking_request": N_("Guest booking link"),
    "guest_manage_link": N_("Guest manage link"),
    "provider_new_booking": N_("New booking (provider)"),
    "provider_booking_rescheduled": N_("Booking moved (provider)"),
    "provider_booking_cancelled": N_("Booking cancelled (provider)"),
    # approval (issue 24)
    "booking_awaiting_approval": N_("Booking request received"),
    "booking_approved": N_("Booking approved"),
    "booking_approved_pay": N_("Booking approved, to pay"),
    "booking_declined": N_("Booking request declined"),
    "booking_approval_expired": N_("Booking request expired"),
    "provider_approval_request": N_("Approval request (provider)"),
}
CHANNEL_LABELS = {"email": N_("Email"), "sms": N_("SMS")}


def label(labels: dict[str, str], key: str, locale: str) -> str:
    """The translated label of a stored key; an unknown key reads as words ("on_site" → "on site")."""
    msgid = labels.get(key)
    return translate(msgid, locale) if msgid else str(key or "").replace("_", " ")


def sign_in_redirect(path: str) -> rx.event.EventSpec:
    return rx.redirect(f"{paths.SIGN_IN}?{urlencode({'next': path})}")


async def row_action(state, row_id: str, call, done):
    """A button on one row of a list (a bookable, a booking): mark that row busy (one at a
    time), run `call(actor, id)` off the event loop, show `done(result)` or the service's
    error, then reload the list. The state has `busy_id`, `error`, `message`, `_fetch`."""
    rid = fmt.int_param(row_id)
    if rid is None or state.busy_id:
        return
    state.busy_id = rid
    state.error = state.message = ""
    yield
    actor = state._actor()
    try:
        state.message = done(await asyncio.to_thread(call, actor, rid))
    except ServiceError as exc:
        state.error = state._error_text(exc)
    state.busy_id = 0
    state._fetch(actor)


class StaffState(AppState):
    """Shared by the provider and admin pages: who may be here."""

    denied: str = ""

    def _staff_actor(self, path: str, *, admin_only: bool = False):
        """(actor, redirect): the signed-in provider/admin, or a redirect / a denial message."""
        actor = self._actor()
        if actor.is_guest:
            return None, sign_in_redirect(path)
        allowed = actor.is_admin or (actor.is_provider and not admin_only)
        if not allowed:
            msgid = (N_("This page is for administrators only.") if admin_only
                     else N_("This page is for providers and administrators."))
            self.denied = translate(msgid, self.locale)
            return None, None
        self.denied = ""
        return actor, None

    def _load_rows(self, path: str, *, admin_only: bool = False):
        """The `load` of a page that is its rows: for a provider/admin they are fetched
        (`_refresh_rows`), anyone else gets the denial message; the sign-in redirect a guest
        gets is returned (the handler returns it too)."""
        actor, redirect = self._staff_actor(path, admin_only=admin_only)
        if actor is not None:
            self._refresh_rows(actor)
        return redirect

    def _relocalize(self) -> None:
        """After a language switch (AppState.set_language): the rows again, in the new language."""
        actor = self._actor()
        if actor.is_guest or self.denied:
            return
        self._refresh_rows(actor)

    def _refresh_rows(self, actor) -> None:
        """Build the page's rows (states override it; most have a `_fetch`)."""
        fetch = getattr(self, "_fetch", None)
        if fetch is not None:
            fetch(actor)
