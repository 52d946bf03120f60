"""Provider page "Outside calendars": add an iCalendar feed (optionally for one bookable,
optionally with a user name and password), see when each last synced and its error, sync
again, remove. Handlers call services/calendar_sync.py, which checks the rights and the URL;
nothing here touches the database."""
from __future__ import annotations

import asyncio

import reflex as rx

from booking_app.i18n import N_, translate
from booking_app.services import calendar_sync
from booking_app.services.errors import InvalidInput, ServiceError
from booking_app.ui import paths
from booking_app.ui.state import fmt
from booking_app.ui.state.staff import StaffState, row_action


ALL_BOOKABLES = N_("All my bookables")
NOT_YET = N_("Not yet")
ADDED = N_("The calendar was added and synced.")
ADDED_UNREAD = N_("The calendar was added, but it could not be read yet.")
SYNCED = N_("The calendar was synced.")
UNREAD = N_("The calendar could not be read.")
REMOVED = N_("The calendar was removed.")


class CalendarSubscriptionsState(StaffState):
    subscriptions: list[dict[str, str]] = []
    choices: list[list[str]] = []  # [id, name] of the bookables a subscription may be limited to
    url_error: str = ""
    error: str = ""
    message: str = ""
    busy_id: int = 0
    adding: bool = False
    form_key: int = 0

    @rx.event
    def load(self):
        self.error = self.message = self.url_error = ""
        self.busy_id = 0
        actor, redirect = self._staff_actor(self.router.page.path or paths.PROVIDER_CALENDARS)
        if redirect:
            return redirect
        if actor is None:
            return
        self.choices = [[str(i), name] for i, name in calendar_sync.bookable_choices(actor=actor)]
        self._fetch(actor)

    def _fetch(self, actor) -> None:
        items = self._ask(calendar_sync.list_for, actor=actor)
        if items is None:
            return
        loc, tz = self.locale, self._view_tz()
        names = {i: n for i, n in self.choices}
        self.subscriptions = [{
            "id": str(x["id"]), "url": x["url"],
            "scope": (names.get(str(x["service_id"]), "#" + str(x["service_id"])) if x["service_id"]
                      else translate(ALL_BOOKABLES, loc)),
            "synced": (fmt.datetime_(x["last_synced_at"], tz, loc, "medium") if x["last_synced_at"]
                       else translate(NOT_YET, loc)),
            "error": x["last_error"] or "",
        } for x in items]

    @rx.event
    async def add(self, data: dict):
        if self.adding:
            return
        self.error = self.message = self.url_error = ""
        self.adding = True
        yield
        actor = self._actor()
        service_id = fmt.int_param(str(data.get("service_id", "") or ""))
        try:
            sub = await asyncio.to_thread(
                calendar_sync.add, actor=actor, url=str(data.get("url", "") or "")[:2000],
                service_id=service_id, username=str(data.get("username", "") or "") or None,
                password=str(data.get("password", "") or "") or None)
        except InvalidInput as exc:
            if exc.field == "url":
                self.url_error = self._error_text(exc)
            else:
                self.error = self._error_text(exc)
            self.adding = False
            return
        except ServiceError as exc:
            self.error = self._error_text(exc)
            self.adding = False
            return
        self.adding = False
        self.message = translate(ADDED_UNREAD if sub["last_error"] else ADDED, self.locale)
        self.form_key += 1  # a fresh, empty form
        self._fetch(actor)

    @rx.event
    async def sync(self, subscription_id: str):
        async for update in row_action(
                self, subscription_id,
                lambda actor, sid: calendar_sync.sync_now_for(actor=actor, subscription_id=sid),
                lambda sub: translate(UNREAD if sub["last_error"] else SYNCED, self.locale)):
            yield update

    @rx.event
    async def remove(self, subscription_id: str):
        async for update in row_action(
                self, subscription_id,
                lambda actor, sid: calendar_sync.remove(actor=actor, subscription_id=sid),
                lambda _none: translate(REMOVED, self.locale)):
            yield update
