"""Admin pages' states: users (search, role, deactivate/reactivate, two-factor reset,
bookings, audit trail) and the notification outbox (status, last error, retry). Handlers
call the accounts / bookings / outbox services; nothing here touches the database. The
reports and the live dashboard are in ui/state/admin_reports.py."""
from __future__ import annotations

import asyncio
import json

import reflex as rx

from booking_app.i18n import N_, translate
from booking_app.services import accounts, booking_queries, outbox_admin, sessions
from booking_app.services.errors import ServiceError
from booking_app.ui import paths
from booking_app.ui.state import fmt
from booking_app.ui.state.reauth import ask_reauth
from booking_app.ui.state.base import relocalized
from booking_app.ui.state.staff import (
    CHANNEL_LABELS,
    PAYMENT_LABELS,
    STATUS_LABELS,
    TEMPLATE_LABELS,
    StaffState,
    label,
    row_action,
)

ROLE_LABELS = {"admin": N_("Administrator"), "provider": N_("Provider"), "customer": N_("Customer")}
ROLE_COLORS = {"admin": "crimson", "provider": "indigo", "customer": "gray"}
OUTBOX_LABELS = {"pending": N_("Pending"), "sending": N_("Sending"), "sent": N_("Sent"), "failed": N_("Failed"),
                 "cancelled": N_("Cancelled")}
OUTBOX_COLORS = {"pending": "amber", "sending": "blue", "sent": "grass", "failed": "red", "cancelled": "gray"}


# ---------------------------------------------------------------------------------------
# Users
# ---------------------------------------------------------------------------------------

@relocalized(paths.ADMIN_USERS)
class AdminUsersState(StaffState):
    q: str = ""
    role_filter: str = ""
    users: list[dict[str, str]] = []
    total: int = 0
    error: str = ""
    loading: bool = False
    # the selected user
    user: dict[str, str] = {}
    role_choice: str = ""
    user_bookings: list[dict[str, str]] = []
    user_bookings_total: int = 0
    audit: list[dict[str, str]] = []
    audit_total: int = 0
    detail_error: str = ""
    detail_message: str = ""
    detail_busy: bool = False

    @rx.event
    def load(self):
        self.error = self.detail_error = self.detail_message = ""
        self.detail_busy = False
        actor, redirect = self._staff_actor(paths.ADMIN_USERS, admin_only=True)
        if redirect:
            return redirect
        if actor is None:
            return
        self._search(actor)
        uid = fmt.int_param(self.router.url.query_parameters.get("id"))
        if uid:
            self._open(actor, uid)
        else:
            self.user = {}

    def _refresh_rows(self, actor) -> None:
        self._search(actor)
        uid = fmt.int_param(self.user.get("id"))
        if uid:
            self._open(actor, uid)

    def _search(self, actor) -> None:
        page = self._ask(accounts.list_users, actor=actor, q=self.q or None, role=self.role_filter or None, limit=100)
        if page is None:
            return
        loc, tz = self.locale, self._view_tz()
        self.total = page.total
        self.users = [{
            "id": str(u.id), "username": u.username, "full_name": u.full_name or "", "email": u.email,
            "role": u.role, "role_label": translate(ROLE_LABELS.get(u.role, u.role), self.locale),
            "role_color": ROLE_COLORS.get(u.role, "gray"), "active": "1" if u.is_active else "",
            "created": fmt.date_(u.created_at, loc, "medium", tz),
        } for u in page.items]

    @rx.event
    def search(self, data: dict):
        self.q = str(data.get("q", "") or "").strip()[:200]
        role = str(data.get("role", "") or "")
        self.role_filter = role if role in ROLE_LABELS else ""
        self.error = ""
        self._search(self._actor())

    def _open(self, actor, user_id: int) -> None:
        self.detail_error = ""
        try:
            u = accounts.get_user(actor=actor, user_id=user_id)
            views, total = booking_queries.list_bookings(actor=actor, scope="all", user_id=user_id, limit=50)
            events, audit_total = accounts.user_audit(actor=actor, user_id=user_id, limit=50)
        except ServiceError as exc:
            self.user = {}
            self.detail_error = self._error_text(exc)
            return
        loc, tz = self.locale, self._view_tz()
        self.user = {
            "id": str(u.id), "username": u.username, "full_name": u.full_name or "", "email": u.email,
            "phone": u.phone or "", "role": u.role,
            "role_label": translate(ROLE_LABELS.get(u.role, u.role), self.locale),
            "role_color": ROLE_COLORS.get(u.role, "gray"), "active": "1" if u.is_active else "",
            "locale": u.locale, "timezone": u.timezone, "created": fmt.datetime_(u.created_at, tz, loc, "medium"),
            "mfa": "1" if accounts.two_factor_on(actor=actor, user_id=user_id) else "",
        }
        self.role_choice = u.role
        self.user_bookings_total = total
        self.user_bookings = [{
            "id": str(v.id), "reference": v.reference, "service": v.service_name,
            "customer": v.customer_name or "", "contact": v.customer_email or "",
            # in the bookable's zone, named (as on the provider's bookings page)
            "when": f"{fmt.date_(v.start, loc, 'medium', v.timezone)} {fmt.time_(v.start, v.timezone, loc)} "
                    f"{fmt.zone_abbr(v.timezone, v.start)}",
            "status_label": translate(STATUS_LABELS.get(v.status, v.status), self.locale),
            "status_color": fmt.STATUS_COLORS.get(v.status, "gray"),
            "payment_label": translate(PAYMENT_LABELS.get(v.payment_status, v.payment_status), self.locale),
            "price": fmt.booking_price(v.price_cents, v.currency, loc, v.discount_cents),
        } for v in views]
        self.audit_total = audit_total
        self.audit = [{
            "id": str(e.id), "at": fmt.datetime_(e.at, tz, loc, "medium"), "action": e.action,
            "entity": f"{e.entity} #{e.entity_id}" if e.entity_id else e.entity,
            "by": translate("this user", self.locale) if e.actor_id == u.id else (f"#{e.actor_id}" if e.actor_id else
                                                                   translate("system", self.locale)),
            "data": json.dumps(e.data, ensure_ascii=False, sort_keys=True)[:200] if e.data else "",
        } for e in events]

    @rx.event
    def open_user(self, user_id: str):
        uid = fmt.int_param(user_id)
        if uid is None:
            return
        self.detail_message = ""
        self._open(self._actor(), uid)
        self._scroll_to("user-detail")

    @rx.event
    def close_user(self):
        self.user = {}
        self.detail_error = self.detail_message = ""

    @rx.event
    def set_role_choice(self, value: str):
        if value in ROLE_LABELS:
            self.role_choice = value

    async def _change(self, fn, done_msgid: str, retry=None, **kwargs):
        uid = fmt.int_param(self.user.get("id"))
        if uid is None or self.detail_busy:
            return
        self.detail_busy = True
        self.detail_error = self.detail_message = ""
        yield
        actor = self._actor()
        try:
            await asyncio.to_thread(fn, actor=actor, user_id=uid, **kwargs)
            self.detail_message = translate(done_msgid, self.locale)
        except sessions.ReauthRequired:  # the password or a code first; then `retry` runs again
            await ask_reauth(self, retry=retry)
        except ServiceError as exc:
            self.detail_error = self._error_text(exc)
        self.detail_busy = False
        self._open(actor, uid)
        self._search(actor)

    @rx.event
    async def save_role(self):
        async for update in self._change(accounts.set_role, N_("The role is changed."),
                                         retry=AdminUsersState.save_role, role=self.role_choice):
            yield update

    @rx.event
    async def deactivate_user(self):
        async for update in self._change(accounts.set_active, N_("The account is deactivated and signed out "
                                                                 "everywhere."), retry=AdminUsersState.deactivate_user,
                                         active=False):
            yield update

    @rx.event
    async def reset_two_factor(self):
        async for update in self._change(accounts.reset_2fa, N_("Two-factor sign-in is off for this user; they "
                                                                "were signed out and told by email."),
                                         retry=AdminUsersState.reset_two_factor):
            yield update

    @rx.event
    async def reactivate_user(self):
        async for update in self._change(accounts.set_active, N_("The account is active again."), active=True):
            yield update


# ---------------------------------------------------------------------------------------
# Outbox
# ---------------------------------------------------------------------------------------

@relocalized(paths.ADMIN_OUTBOX)
class OutboxState(StaffState):
    status: str = ""
    q: str = ""
    rows: list[dict[str, str]] = []
    total: int = 0
    error: str = ""
    message: str = ""
    busy_id: int = 0

    @rx.event
    def load(self):
        self.error = self.message = ""
        self.busy_id = 0
        return self._load_rows(paths.ADMIN_OUTBOX, admin_only=True)

    def _fetch(self, actor) -> None:
        try:
            page = outbox_admin.list_notifications(actor=actor, status=self.status or None, q=self.q or None,
                                                    limit=100)
        except ServiceError as exc:
            self.error = self._error_text(exc)
            return
        loc, tz = self.locale, self._view_tz()
        self.total = page.total
        self.rows = [{
            "id": str(n.id), "created": fmt.datetime_(n.created_at, tz, loc, "short"),
            "channel": label(CHANNEL_LABELS, n.channel, loc), "to": n.to,
            "template": label(TEMPLATE_LABELS, n.template, loc), "template_key": n.template, "status": n.status,
            "status_label": translate(OUTBOX_LABELS.get(n.status, n.status), self.locale),
            "status_color": OUTBOX_COLORS.get(n.status, "gray"), "attempts": str(n.attempts),
            "error": n.last_error or "", "sent": fmt.datetime_(n.sent_at, tz, loc, "short") if n.sent_at else "",
            "can_retry": "1" if n.status in ("failed", "cancelled") else "",
        } for n in page.items]

    @rx.event
    def filter(self, data: dict):
        status = str(data.get("status", "") or "")
        self.status = status if status in OUTBOX_LABELS else ""
        self.q = str(data.get("q", "") or "").strip()[:200]
        self.error = self.message = ""
        self._fetch(self._actor())

    @rx.event
    def refresh(self):
        self.error = self.message = ""
        self._fetch(self._actor())

    @rx.event
    async def retry(self, notification_id: str):
        async for update in row_action(
                self, notification_id, lambda actor, nid: outbox_admin.retry_notification(actor=actor, notification_id=nid),
                lambda _view: translate("The message is queued again.", self.locale)):
            yield update
