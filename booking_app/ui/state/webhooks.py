"""Staff webhooks page: a provider's endpoints (an admin's and everyone's for an admin),
adding one (its secret shown once), activate/deactivate, rotate the secret (shown once),
remove, and an endpoint's recent deliveries with "redeliver". Handlers call
services/webhooks.py, which checks the rights and the URL; nothing here touches the database."""
from __future__ import annotations

import reflex as rx

from booking_app.i18n import N_, translate
from booking_app.services import webhooks
from booking_app.services.errors import InvalidInput, ServiceError
from booking_app.ui import paths
from booking_app.ui.state import fmt
from booking_app.ui.state.base import relocalized
from booking_app.ui.state.staff import StaffState, row_action

DELIVERY_LABELS = {
    "pending": N_("Pending"),
    "sending": N_("Sending"),
    "delivered": N_("Delivered"),
    "failed": N_("Failed"),
}


@relocalized(paths.STAFF_WEBHOOKS, paths.ADMIN_WEBHOOKS)
class WebhooksState(StaffState):
    endpoints: list[dict[str, str]] = []
    deliveries: list[dict[str, str]] = []
    selected_id: int = 0
    selected_url: str = ""
    new_secret: str = ""
    secret_endpoint: str = ""  # "Signing secret for <url>"
    url_error: str = ""
    events_error: str = ""
    error: str = ""
    message: str = ""
    busy_id: int = 0
    form_key: int = 0

    @rx.var
    def event_names(self) -> list[str]:
        return list(webhooks.EVENTS)

    @rx.event
    def load(self):
        self.error = self.message = self.url_error = self.events_error = ""
        self.new_secret = self.secret_endpoint = ""
        self.busy_id = 0
        return self._load_rows(self.router.page.path or paths.STAFF_WEBHOOKS)

    def _fetch(self, actor) -> None:
        views = self._ask(webhooks.list_endpoints, actor=actor)
        if views is None:
            return
        loc = self.locale
        self.endpoints = [{
            "id": str(v.id), "url": v.url, "events": ", ".join(v.events), "active": "1" if v.active else "",
            "status": translate("Active", loc) if v.active else translate("Inactive", loc),
            "scope": (translate("All bookables", loc) if v.all_bookables
                      else translate("My bookables", loc) if v.owner_id == actor.id
                      else translate("Bookables of provider #{id}", loc, id=v.owner_id)),
            "rotating": (translate("The previous secret also signs until {time}.", loc,
                                   time=fmt.datetime_(v.previous_secret_until, self._view_tz(), loc, "medium"))
                         if v.previous_secret_until else ""),
        } for v in views]
        if self.selected_id and not any(e["id"] == str(self.selected_id) for e in self.endpoints):
            self.selected_id, self.selected_url, self.deliveries = 0, "", []
        if self.selected_id:
            self._fetch_deliveries(actor)

    def _fetch_deliveries(self, actor) -> None:
        items = self._ask(webhooks.list_deliveries, actor=actor, endpoint_id=self.selected_id, limit=50)
        if items is None:
            return
        loc, tz = self.locale, self._view_tz()
        self.deliveries = [{
            "id": str(d.id), "event": d.event, "status": d.status,
            "status_label": translate(DELIVERY_LABELS.get(d.status, d.status), loc),
            "code": str(d.response_code) if d.response_code is not None else "—",
            "attempts": str(d.attempts),
            "at": fmt.datetime_(d.last_attempt_at or d.created_at, tz, loc, "medium"),
            "error": d.last_error or "",
        } for d in items]

    @rx.event
    def create(self, data: dict):
        self.error = self.message = self.url_error = self.events_error = ""
        self.new_secret = self.secret_endpoint = ""
        actor = self._actor()
        events = [e for e in webhooks.EVENTS if data.get(f"event-{e}")]
        try:
            view = webhooks.create_endpoint(actor=actor, url=str(data.get("url", "") or "").strip()[:2000],
                                            events=events)
        except InvalidInput as exc:
            if exc.field == "url":
                self.url_error = self._error_text(exc)
            elif exc.field == "events":
                self.events_error = self._error_text(exc)
            else:
                self.error = self._error_text(exc)
            return
        except ServiceError as exc:
            self.error = self._error_text(exc)
            return
        self.new_secret = view.secret or ""
        self.secret_endpoint = translate("Signing secret for {url}", self.locale, url=view.url)
        self.form_key += 1  # a fresh, empty form
        self._fetch(actor)

    @rx.event
    def dismiss_secret(self):
        self.new_secret = self.secret_endpoint = ""

    @rx.event
    def rotate(self, endpoint_id: str):
        eid = fmt.int_param(endpoint_id)
        if eid is None:
            return
        self.error = self.message = ""
        actor = self._actor()
        view = self._ask(webhooks.rotate_secret, actor=actor, endpoint_id=eid)
        if view is None:
            return
        self.new_secret = view.secret or ""
        self.secret_endpoint = translate("Signing secret for {url}", self.locale, url=view.url)
        self._fetch(actor)

    @rx.event
    async def set_active(self, endpoint_id: str, active: bool):
        done = N_("The endpoint is active.") if active else N_("The endpoint is inactive.")
        async for update in row_action(self, endpoint_id,
                                        lambda actor, eid: webhooks.update_endpoint(actor=actor, endpoint_id=eid,
                                                                                    active=bool(active)),
                                        lambda view: translate(done, self.locale)):
            yield update

    @rx.event
    async def remove(self, endpoint_id: str):
        async for update in row_action(self, endpoint_id,
                                        lambda actor, eid: webhooks.delete_endpoint(actor=actor, endpoint_id=eid),
                                        lambda _none: translate("The endpoint was removed.", self.locale)):
            yield update

    @rx.event
    def show_deliveries(self, endpoint_id: str):
        eid = fmt.int_param(endpoint_id)
        if eid is None:
            return
        self.error = ""
        self.selected_id = eid
        self.selected_url = next((e["url"] for e in self.endpoints if e["id"] == str(eid)), "")
        self._fetch_deliveries(self._actor())

    @rx.event
    def refresh_deliveries(self):
        if self.selected_id:
            self._fetch_deliveries(self._actor())

    @rx.event
    def redeliver(self, delivery_id: str):
        did = fmt.int_param(delivery_id)
        if did is None or not self.selected_id:
            return
        self.error = self.message = ""
        actor = self._actor()
        try:
            webhooks.redeliver(actor=actor, endpoint_id=self.selected_id, delivery_id=did)
        except ServiceError as exc:
            self.error = self._error_text(exc)
            return
        self.message = translate("The event will be sent again.", self.locale)
        self._fetch_deliveries(actor)
