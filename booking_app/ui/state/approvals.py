"""Provider page "Approvals" (issue 24, point 2): the requests waiting for the provider's
answer, approve or decline (with a reason for the customer); and the page of the emailed
approval link, where the link's holder decides one request. Handlers call
services/approvals.py, which checks who may decide; nothing here touches the database."""
from __future__ import annotations

import asyncio

import reflex as rx

from booking_app.i18n import N_, Np_, translate
from booking_app.services import approvals
from booking_app.services.booking_queries import BookingView
from booking_app.services.errors import ServiceError
from booking_app.ui import paths
from booking_app.ui.state import fmt
from booking_app.ui.state.base import AppState
from booking_app.ui.state.staff import StaffState, row_action

APPROVED = N_("Approved: the customer has been told.")
DECLINED = N_("Declined: the places are free again, and the customer has been told.")
PLACES = Np_("{count} place", "{count} places", "count")


def request_row(v: BookingView, locale: str) -> dict[str, str]:
    """One request as the page shows it: times in the bookable's zone, named."""
    tz = v.timezone
    until = v.approval_expires_at or v.hold_expires_at
    return {
        "id": str(v.id), "reference": v.reference, "service": v.service_name,
        "customer": v.customer_name or v.guest_name or "", "email": v.customer_email or v.guest_email or "",
        "when": f"{fmt.when_short(v.start, tz, locale)} ({tz})",
        "until": f"{fmt.when_short(until, tz, locale)} ({tz})" if until else "",
        "places": translate(PLACES, locale, count=v.quantity),
        "price": fmt.money(v.price_cents, v.currency, locale),
        "notes": v.notes or "",
    }


class ApprovalsState(StaffState):
    requests: list[dict[str, str]] = []
    error: str = ""
    message: str = ""
    busy_id: int = 0

    @rx.event
    def load(self):
        self.error = self.message = ""
        self.busy_id = 0
        return self._load_rows(self.router.page.path or paths.PROVIDER_APPROVALS)

    def _fetch(self, actor) -> None:
        views = self._ask(approvals.queue, actor=actor)
        if views is None:
            return
        self.requests = [request_row(v, self.locale) for v in views]

    @rx.event
    async def approve(self, row_id: str):
        async for update in row_action(self, row_id, lambda a, i: approvals.approve(actor=a, booking_id=i),
                                       lambda _view: translate(APPROVED, self.locale)):
            yield update

    @rx.event
    async def decline(self, data: dict):
        reason = str(data.get("reason", "") or "")[:2000]
        async for update in row_action(self, str(data.get("id", "")),
                                       lambda a, i: approvals.decline(actor=a, booking_id=i, reason=reason),
                                       lambda _view: translate(DECLINED, self.locale)):
            yield update


class ApprovalLinkState(AppState):
    """The emailed link's page: the request it names, approve or decline it once."""

    request: dict[str, str] = {}
    not_valid: str = ""
    error: str = ""
    done: str = ""
    busy: bool = False
    _token: str = ""

    @rx.event
    def load(self):
        self.request, self.not_valid, self.error, self.done, self.busy = {}, "", "", "", False
        self._token = str(self.router.url.query_parameters.get("token", "") or "")[:100]
        try:
            view = approvals.request_by_token(self._token)
        except ServiceError as exc:
            self.not_valid = self._error_text(exc)
            return
        self.request = {**request_row(view, self.locale), "status": view.status}

    async def _decide(self, call, done: str):
        if self.busy or not self.request:
            return
        self.busy, self.error = True, ""
        yield
        try:
            await asyncio.to_thread(call, self._actor(), int(self.request["id"]), self._token)
            self.done = translate(done, self.locale)
        except ServiceError as exc:
            self.error = self._error_text(exc)
        self.busy = False

    @rx.event
    async def approve(self):
        async for update in self._decide(lambda a, i, t: approvals.approve(actor=a, booking_id=i, token=t),
                                         APPROVED):
            yield update

    @rx.event
    async def decline(self, data: dict):
        reason = str(data.get("reason", "") or "")[:2000]
        async for update in self._decide(
                lambda a, i, t: approvals.decline(actor=a, booking_id=i, reason=reason, token=t), DECLINED):
            yield update
