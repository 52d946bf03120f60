"""Waitlist pages' states (issue 24, point 1): the customer's page (/waitlist: join a full
time, their entries and offers with Accept / Decline / Leave; a guest arrives through the
offer email's link with the entry's token) and the provider's queues (/provider/waitlists:
"Offer now", close / reopen). Handlers parse input and call services/waitlist*.py, which
hold every rule; nothing here touches the database."""
from __future__ import annotations

import asyncio
import datetime as dt

import reflex as rx

from booking_app.i18n import N_, translate
from booking_app.services import catalog, waitlist, waitlist_accept, waitlist_admin
from booking_app.services.errors import InvalidInput, ServiceError
from booking_app.services.validation import zone
from booking_app.ui import paths
from booking_app.ui.state import fmt
from booking_app.ui.state.base import AppState
from booking_app.ui.state.questions import QuestionsFormState
from booking_app.ui.state.staff import StaffState

STATUS_LABELS = {"waiting": N_("Waiting"), "offered": N_("Offered"), "accepted": N_("Accepted"),
                 "declined": N_("Declined"), "lapsed": N_("Lapsed"), "left": N_("Left"), "closed": N_("Closed")}
BOOKED = N_("The place is yours: it is booked.")
DECLINED = N_("You declined the offer; it passes to the next person.")
LEFT = N_("You left the waitlist.")
ON_LIST = N_("You are on the waitlist.")


def entry_row(v: waitlist.EntryView, locale: str, *, staff: bool = False) -> dict[str, str]:
    """An entry as the pages show it: times in the bookable's zone, labelled."""
    when = f"{fmt.datetime_(v.start, v.timezone, locale, 'medium')} ({v.timezone})"
    until = (translate(N_("Held for you until {until}"), locale,
                       until=fmt.datetime_(v.offer_expires_at, v.timezone, locale, "medium"))
             if v.offer_expires_at is not None else "")
    return {"id": str(v.id), "service": v.service_name, "when": when, "places": str(v.quantity),
            "status": v.status, "status_label": translate(STATUS_LABELS.get(v.status, v.status), locale),
            "position": (translate(N_("Position {position}"), locale, position=v.position) if v.position else ""),
            "until": until, "customer": (v.customer_name or "") if staff else "",
            "booking_id": str(v.booking_id or "")}


class WaitlistState(AppState):
    entries: list[dict[str, str]] = []
    service_id: int = 0
    service_name: str = ""
    service_tz: str = ""
    start_param: str = ""
    token: str = ""
    error: str = ""
    start_error: str = ""
    message: str = ""
    busy_id: int = 0
    joining: bool = False

    @rx.event
    def load(self):
        self.error = self.message = self.start_error = ""
        self.busy_id = 0
        self.entries = []
        params = self.router.page.params
        self.token = str(params.get("token", "") or "")[:100]
        self.start_param = str(params.get("start", "") or "")[:64]
        self.service_id = fmt.int_param(params.get("service")) or 0
        self.service_name = self.service_tz = ""
        if self.service_id:
            try:
                b = catalog.get_bookable(bookable_id=self.service_id, actor=self._actor())
                self.service_name, self.service_tz = b.name, b.timezone
            except ServiceError as exc:
                self.error = self._error_text(exc)
                self.service_id = 0
        self._fetch(fmt.int_param(params.get("entry")))

    def _fetch(self, entry_id: int | None = None) -> None:
        actor = self._actor()
        try:
            if entry_id:
                views = [waitlist_admin.get_entry(actor=actor, entry_id=entry_id, token=self.token or None)]
            elif actor.is_guest:
                views = []
            else:
                views = waitlist_admin.list_entries(actor=actor)
        except ServiceError as exc:
            self.error = self._error_text(exc)
            return
        self.entries = [entry_row(v, self.locale) for v in views]

    @rx.var
    def start_label(self) -> str:
        """The time picked on the bookable page (`start`), in the bookable's zone, labelled."""
        try:
            at = dt.datetime.fromisoformat(self.start_param)
        except ValueError:
            return ""
        if at.tzinfo is None or not self.service_tz:
            return ""
        return f"{fmt.datetime_(at, self.service_tz, self.locale, 'medium')} ({self.service_tz})"

    def _start(self, data: dict) -> dt.datetime | str:
        """The time to wait for: the page's `start` parameter, else the form's local date and
        time in the bookable's zone (InvalidInput when missing or not a date/time)."""
        if self.start_param:
            return self.start_param
        try:
            day = dt.date.fromisoformat(str(data.get("date", "") or "")[:10])
            at = dt.time.fromisoformat(str(data.get("time", "") or "")[:5])
        except ValueError:
            raise InvalidInput(N_("Choose a date and a time."), field="start") from None
        return dt.datetime.combine(day, at, tzinfo=zone(self.service_tz))

    @rx.event
    async def join(self, data: dict):
        if self.joining or not self.service_id:
            return
        self.error = self.message = self.start_error = ""
        self.joining = True
        yield
        actor = self._actor()
        guest = ({"name": str(data.get("name", "") or "")[:200], "email": str(data.get("email", "") or "")[:254]}
                 if actor.is_guest else None)
        questions = await self.get_state(QuestionsFormState)  # the booking questions (checked by the service)
        answers = questions.answers(data)
        try:
            view = await asyncio.to_thread(waitlist.join, actor=actor, service_id=self.service_id,
                                           start=self._start(data), quantity=fmt.int_param(data.get("quantity")) or 1,
                                           guest=guest, answers=answers)
        except InvalidInput as exc:
            if exc.field == "start":
                self.start_error = self._error_text(exc)
            elif not questions.show_error(exc):
                self.error = self._error_text(exc)
            self.joining = False
            return
        except ServiceError as exc:
            self.error = self._error_text(exc)
            self.joining = False
            return
        self.joining = False
        self.message = translate(ON_LIST, self.locale)
        if view.token:
            self.token = view.token
        self.entries = [entry_row(view, self.locale)] + [e for e in self.entries if e["id"] != str(view.id)]

    async def _act(self, entry_id: str, call, done: str):
        eid = fmt.int_param(entry_id)
        if eid is None or self.busy_id:
            return
        self.error = self.message = ""
        self.busy_id = eid
        yield
        actor = self._actor()
        try:
            result = await asyncio.to_thread(call, actor=actor, entry_id=eid, token=self.token or None)
        except ServiceError as exc:
            self.error = self._error_text(exc)
            self.busy_id = 0
            return
        self.busy_id = 0
        checkout = getattr(result, "checkout_url", None)
        if checkout:
            yield rx.redirect(checkout, is_external=True)
            return
        self.message = translate(done, self.locale)
        self._fetch(eid if self.token else None)

    @rx.event
    async def accept(self, entry_id: str):
        async for update in self._act(entry_id, waitlist_accept.accept, BOOKED):
            yield update

    @rx.event
    async def decline(self, entry_id: str):
        async for update in self._act(entry_id, waitlist.decline, DECLINED):
            yield update

    @rx.event
    async def leave(self, entry_id: str):
        async for update in self._act(entry_id, waitlist.leave, LEFT):
            yield update


class ProviderWaitlistState(StaffState):
    choices: list[list[str]] = []  # [id, name, "1" when closed]
    selected: str = ""
    closed: bool = False
    entries: list[dict[str, str]] = []
    error: str = ""
    message: str = ""
    busy: bool = False

    @rx.event
    def load(self):
        self.error = self.message = ""
        actor, redirect = self._staff_actor(self.router.page.path or paths.PROVIDER_WAITLISTS)
        if redirect:
            return redirect
        if actor is None:
            return
        self.choices = [[str(i), n, "1" if c else ""] for i, n, c in waitlist_admin.managed_bookables(actor=actor)]
        wanted = str(self.router.page.params.get("service", "") or "")
        ids = [c[0] for c in self.choices]
        self.selected = wanted if wanted in ids else (ids[0] if ids else "")
        self._fetch()

    def _fetch(self) -> None:
        self.entries = []
        sid = fmt.int_param(self.selected)
        if sid is None:
            return
        self.closed = any(c[0] == self.selected and c[2] for c in self.choices)
        views = self._ask(waitlist_admin.list_entries, actor=self._actor(), service_id=sid, open_only=True)
        if views is None:
            return
        self.entries = [entry_row(v, self.locale, staff=True) for v in views]

    @rx.event
    def choose(self, value: str):
        self.selected = str(value or "")[:12]
        self.error = self.message = ""
        self._fetch()

    async def _run(self, call, done):
        sid = fmt.int_param(self.selected)
        if sid is None or self.busy:
            return
        self.error = self.message = ""
        self.busy = True
        yield
        try:
            result = await asyncio.to_thread(call, self._actor(), sid)
        except ServiceError as exc:
            self.error = self._error_text(exc)
            self.busy = False
            return
        self.busy = False
        self.message = done(result)
        self.choices = [[str(i), n, "1" if c else ""]
                        for i, n, c in waitlist_admin.managed_bookables(actor=self._actor())]
        self._fetch()

    @rx.event
    async def offer_now(self):
        async for update in self._run(
                lambda actor, sid: waitlist_admin.offer_now(actor=actor, service_id=sid),
                lambda n: translate(N_("Offers made: {count}"), self.locale, count=n)):
            yield update

    @rx.event
    async def toggle_closed(self):
        closing = not self.closed
        async for update in self._run(
                lambda actor, sid: waitlist_admin.set_closed(actor=actor, service_id=sid, closed=closing),
                lambda _n: translate(N_("The waitlist is closed.") if closing else N_("The waitlist is open again."),
                                     self.locale)):
            yield update
