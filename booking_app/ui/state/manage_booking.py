"""The customer's booking after it is made: its page (confirmation, pay, cancel, .ics,
staff re-issue the guest's link), My bookings, a guest's email confirmation and new-link
request. Cancel/change are offered only while the service's cancellation quote allows them;
the refund shown before a cancel is that quote (payments.cancellation_quote)."""
from __future__ import annotations

import asyncio
import datetime as dt
from urllib.parse import urlencode

import reflex as rx

from booking_app.i18n import translate
from booking_app.services import booking_queries, bookings, catalog, guest_bookings, manage_links, payments
from booking_app.services.errors import NotAvailable, ServiceError
from booking_app.ui import paths
from booking_app.ui.components.payment_summary import money_lines  # deposits and fees (issue 26)
from booking_app.ui.state import fmt
from booking_app.ui.state.base import AppState
from booking_app.ui.state.booking_common import (
    CONFIRMATION_TITLES,
    DEFAULT_CONFIRMATION_TITLE,
    METHOD_LABELS,
    bookable_dict,
    bookable_summary,
    booking_card,
    booking_raw,
    booking_url,
    ics_for,
    online_methods,
    quote_fields,
    refund_preview_text,
)


class ManageState(AppState):
    """Shared by the confirmation page and My bookings: .ics download and cancel (with the
    refund the policy gives shown before confirming)."""

    cancel_id: int = 0
    cancel_text: str = ""
    cancel_open: bool = False
    cancel_error: str = ""
    cancel_busy: bool = False
    # the quote lets this actor cancel now (else the dialog says why and offers no "Yes, cancel")
    cancel_allowed: bool = False
    _token: str = ""

    def _with_quote(self, v: booking_queries.BookingView, token: str = "") -> dict:
        """The booking for the UI state with what its cancellation quote allows now."""
        try:
            quote = payments.cancellation_quote(actor=self._actor(), booking_id=v.id, manage_token=token or None)
        except ServiceError:
            quote = None
        return {**booking_raw(v), **quote_fields(quote)}

    def _refund_preview(self, v: booking_queries.BookingView) -> str:
        """What cancelling refunds now: the service's quote, the rule the cancellation applies."""
        try:
            quote = payments.cancellation_quote(actor=self._actor(), booking_id=v.id,
                                                manage_token=self._token or None)
        except ServiceError:
            self.cancel_allowed = False
            return ""
        self.cancel_allowed = quote.may_cancel
        return refund_preview_text(quote, v.start, self.locale)

    @rx.event
    def ask_cancel(self, booking_id: str):
        self._open_cancel(booking_id)

    def _open_cancel(self, booking_id: str) -> None:
        """Load the refund preview of `booking_id` and open its cancel dialog."""
        self.cancel_error = ""
        bid = fmt.int_param(booking_id)
        if bid is None:
            return
        self._token = str(self.router.url.query_parameters.get("token", ""))[:100]
        try:
            v = booking_queries.get_booking(actor=self._actor(), booking_id=bid, manage_token=self._token or None)
        except ServiceError as exc:
            self.cancel_error = self._error_text(exc)
            return
        self.cancel_id = bid
        self.cancel_text = translate("Cancel {service} on {when}?", self.locale, service=v.service_name,
                                     when=fmt.when_short(v.start, self._view_tz(), self.locale)) \
            + " " + self._refund_preview(v)
        self.cancel_open = True

    @rx.event
    def set_cancel_open(self, value: bool):
        """Close requests of the dialog (Esc, Keep it); it opens through ask_cancel."""
        if not value:
            self.cancel_open = False
            self.cancel_busy = False

    @rx.event
    def cancel_open_change(self, booking_id: str, value: bool):
        """A booking's cancel dialog asks to open (its trigger button) or close (Esc, Keep
        it): opening loads the refund preview first, then shows the dialog."""
        if value:
            self._open_cancel(booking_id)
        else:
            self.cancel_open = False
            self.cancel_busy = False

    @rx.event
    async def confirm_cancel(self):
        if self.cancel_busy or not self.cancel_id or not self.cancel_allowed:
            return
        self.cancel_busy = True
        yield
        try:
            await asyncio.to_thread(payments.cancel_and_refund, actor=self._actor(), booking_id=self.cancel_id,
                                    manage_token=self._token or None)
        except ServiceError as exc:
            self.cancel_error = self._error_text(exc)
            self.cancel_busy = False
            self.cancel_open = False
            return
        self.cancel_busy = False
        self.cancel_open = False
        yield rx.redirect(str(self.router.url.path) + ("?" + str(self.router.url.query) if self.router.url.query else ""))

    @rx.event
    def download_ics(self, booking_id: str):
        bid = fmt.int_param(booking_id)
        if bid is None:
            return
        token = str(self.router.url.query_parameters.get("token", ""))[:100]
        try:
            v = booking_queries.get_booking(actor=self._actor(), booking_id=bid, manage_token=token or None)
        except ServiceError as exc:
            self.cancel_error = self._error_text(exc)
            return
        return rx.download(data=ics_for(v, self.locale), filename=f"booking-{v.reference}.ics")


class ConfirmationState(ManageState):
    booking: dict = {}
    # the booking's bookable, for its location and cancellation policy
    svc: dict = {}
    # the booking was just moved (reschedule comes here with moved=1)
    moved: bool = False
    not_found: str = ""
    # the page was opened with a manage link that is wrong, re-issued or expired
    link_refused: bool = False
    # staff re-issued the guest's link
    link_notice: str = ""
    # why the payment chosen when booking did not start (set by BookState before it comes here)
    _payment_notice: str = ""
    # paid / due, deposit, balance and fees (issue 26: ui/components/payment_summary.py)
    money: dict = {}

    @rx.event
    def load(self):
        params = self.router.url.query_parameters
        self.booking, self.not_found, self.cancel_error = {}, "", ""
        self.svc = {}
        self.money = {}
        self.moved = False
        self.cancel_open = False
        self.link_refused = False
        self.link_notice = ""
        bid = fmt.int_param(params.get("id"))
        token = str(params.get("token", ""))[:100]
        if bid is None:
            self.not_found = translate("This booking does not exist.", self.locale)
            return
        try:
            v = booking_queries.get_booking(actor=self._actor(), booking_id=bid, manage_token=token or None)
        except ServiceError as exc:
            self.not_found = self._error_text(exc)
            self.link_refused = bool(token)
            return
        self.booking = {**self._with_quote(v, token), "token": token}
        self._load_money(bid, token)
        self.moved = params.get("moved") == "1" and v.status in ("pending", "confirmed")
        try:
            self.svc = bookable_dict(catalog.get_bookable(bookable_id=v.service_id, actor=self._actor()))
        except ServiceError:
            self.svc = {}  # (a bookable taken offline: the booking's own facts still show)
        if params.get("notice"):
            # the booking was made but its payment did not start: say why, offer to retry
            self.cancel_error = self._payment_notice or translate(
                "The payment could not be started. Please try again later or choose another payment method.",
                self.locale)
        self._payment_notice = ""
        pay = str(params.get("pay", "") or "")  # the approval email's payment link (issue 24): on to Checkout
        if pay and v.status == "pending" and pay in online_methods():
            return ConfirmationState.pay(pay)

    @rx.var
    def card(self) -> dict[str, str]:
        b = self.booking
        if not b:
            return {}
        out = booking_card(b, self.locale, self._view_tz(), b.get("token", ""))
        title = CONFIRMATION_TITLES.get(b["status"], DEFAULT_CONFIRMATION_TITLE)
        out["title"] = translate(title, self.locale)
        summary = bookable_summary(self.svc, self.locale)
        out["location"] = summary.get("location", "")
        out["policy"] = summary.get("policy", "")
        out["moved"] = translate("Your booking was moved to {when}.", self.locale, when=out["short_when"]) \
            if self.moved else ""
        return out


    @rx.var
    def pay_options(self) -> list[dict[str, str]]:
        b = self.booking
        if not b or b["status"] != "pending" or b["payment_status"] == "succeeded":
            return []
        return [{"value": m, "label": translate(METHOD_LABELS.get(m, m), self.locale)}
                for m in online_methods()]

    async def _checkout(self, start):
        """Start a payment of the booking, `start(actor, booking_id, manage_token)`, off the
        event loop, then off to its Checkout; the service's error shown otherwise."""
        b = self.booking
        if self.cancel_busy or not b:
            return
        self.cancel_busy = True
        self.cancel_error = ""
        yield
        try:
            payment = await asyncio.to_thread(start, self._actor(), int(b["id"]), b.get("token") or None)
        except ServiceError as exc:
            self.cancel_error = self._error_text(exc)
            self.cancel_busy = False
            return
        self.cancel_busy = False
        if payment.checkout_url:
            yield self._to_checkout(payment.checkout_url)

    @rx.event
    async def pay(self, method: str):
        if method not in online_methods():
            return
        async for update in self._checkout(lambda actor, booking_id, token: payments.process(
                actor=actor, booking_id=booking_id, method=method, manage_token=token)):
            yield update

    def _load_money(self, booking_id: int, token: str) -> None:
        try:
            self.money = money_lines(payments.booking_money(actor=self._actor(), booking_id=booking_id,
                                                            manage_token=token or None), self.locale)
        except ServiceError:
            self.money = {}

    @rx.event
    async def pay_balance(self):
        """"Pay the balance": off to a Checkout for the rest of the price after the deposit."""
        async for update in self._checkout(lambda actor, booking_id, token: payments.pay_balance(
                actor=actor, booking_id=booking_id, manage_token=token)):
            yield update

    def _to_checkout(self, checkout_url: str):
        """Off to Stripe Checkout (the booking widget opens it in a new tab instead)."""
        return rx.redirect(checkout_url)

    @rx.event
    async def reissue_link(self):
        """Staff: revoke this guest booking's manage link and email the guest a new one."""
        b = self.booking
        if self.cancel_busy or not b:
            return
        self.cancel_busy = True
        self.cancel_error, self.link_notice = "", ""
        yield
        try:
            await asyncio.to_thread(guest_bookings.reissue_manage_link, actor=self._actor(), booking_id=int(b["id"]))
        except ServiceError as exc:
            self.cancel_error = self._error_text(exc)
        else:
            self.link_notice = translate("A new link is on its way to the guest. Earlier links no longer work.",
                                         self.locale)
        self.cancel_busy = False


class MyBookingsState(ManageState):
    upcoming: list[dict] = []
    past: list[dict] = []
    error: str = ""
    loaded: bool = False

    @rx.event
    def load(self):
        self.error, self.cancel_error = "", ""
        self.cancel_open = False
        actor = self._actor()
        if actor.is_guest:
            return rx.redirect(f"{paths.SIGN_IN}?{urlencode({'next': paths.MY_BOOKINGS})}")
        try:
            items, _total = booking_queries.list_bookings(actor=actor, scope="mine", limit=200)
        except ServiceError as exc:
            self.error = self._error_text(exc)
            return
        now = dt.datetime.now(dt.timezone.utc)
        upcoming, past = [], []
        for v in items:
            if v.end >= now and v.status in ("pending", "confirmed"):
                upcoming.append(self._with_quote(v))
            else:
                past.append({**booking_raw(v), **quote_fields(None)})
        self.upcoming = upcoming
        self.past = list(reversed(past))
        self.loaded = True

    def _cards(self, raws: list[dict]) -> list[dict[str, str]]:
        return [booking_card(b, self.locale, self._view_tz()) for b in raws]

    @rx.var
    def upcoming_cards(self) -> list[dict[str, str]]:
        return self._cards(self.upcoming)

    @rx.var
    def past_cards(self) -> list[dict[str, str]]:
        return self._cards(self.past)


class ConfirmEmailState(AppState):
    """The page a guest's confirmation link opens (GUEST_EMAIL_CONFIRMATION): books the
    request now and goes on to the booking's page, or says why it can't."""

    error: str = ""
    service_href: str = ""

    @rx.event
    async def load(self):
        self.error, self.service_href = "", ""
        token = str(self.router.url.query_parameters.get("token", ""))[:100]
        try:
            view = await asyncio.to_thread(bookings.confirm_guest_request, token=token or None)
        except NotAvailable as exc:
            self.error = self._error_text(exc)
            return
        except ServiceError as exc:
            self.error = self._error_text(exc)
            return
        yield rx.redirect(booking_url(view.id, manage_links.booking_manage_token(view.id, view.link_version)))


class ManageLinkState(AppState):
    """A guest asks for a new manage link by email address + booking reference (the old
    link stops working). The answer never says whether they matched."""

    sent: str = ""
    error: str = ""
    busy: bool = False

    @rx.event
    def load(self):
        self.sent, self.error, self.busy = "", "", False

    @rx.event
    async def submit(self, form: dict):
        if self.busy:
            return
        self.busy = True
        self.error = ""
        yield
        try:
            await asyncio.to_thread(guest_bookings.request_manage_link, email=str(form.get("email", "")).strip(),
                                    reference=str(form.get("reference", "")).strip(), client_ip=self._client_ip())
        except ServiceError as exc:
            self.error = self._error_text(exc)
            self.busy = False
            return
        self.sent = translate("If the email address and the reference match a booking, we have emailed a new link "
                              "to it. Earlier links no longer work.", self.locale)
        self.busy = False
