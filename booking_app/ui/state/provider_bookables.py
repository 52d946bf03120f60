"""My bookables: the provider's rooms, services and events (an admin sees everyone's: the
catalog overview), with deactivate / activate on each row. The catalog checks the rights."""
from __future__ import annotations

import reflex as rx

from booking_app.i18n import N_, translate
from booking_app.services import catalog
from booking_app.services.errors import ServiceError
from booking_app.ui import paths
from booking_app.ui.state import fmt
from booking_app.ui.state.base import relocalized
from booking_app.ui.state.staff import StaffState, row_action

PAGE_SIZE = 100


@relocalized(paths.PROVIDER)
class ProviderBookablesState(StaffState):
    items: list[dict[str, str]] = []
    total: int = 0
    show_inactive: bool = True
    error: str = ""
    message: str = ""
    busy_id: int = 0
    is_admin_view: bool = False

    @rx.event
    def load(self):
        self.error = ""
        self.busy_id = 0
        actor, redirect = self._staff_actor(paths.PROVIDER)
        if redirect:
            return redirect
        if actor is None:
            return
        self.is_admin_view = actor.is_admin
        self._fetch(actor)

    def _fetch(self, actor) -> None:
        try:
            views, total = catalog.search_bookables(
                actor=actor, provider_id=None if actor.is_admin else actor.id,
                include_inactive=self.show_inactive, limit=PAGE_SIZE)
        except ServiceError as exc:
            self.error = self._error_text(exc)
            return
        loc = self.locale
        self.total = total
        self.items = [{
            "id": str(v.id), "name": v.name, "kind": fmt.kind_label(v.kind, loc), "location": v.location,
            "provider": v.provider_name, "duration": fmt.duration(v.duration_minutes, loc),
            "capacity": str(v.capacity), "price": fmt.money(v.price_cents, v.currency, loc),
            "active": "1" if v.is_active else "",
            "status": translate("Active", self.locale) if v.is_active else translate("Inactive", self.locale),
        } for v in views]

    @rx.event
    def toggle_inactive(self, value: bool):
        self.show_inactive = bool(value)
        actor = self._actor()
        if not actor.is_guest:
            self._fetch(actor)

    async def _set_active(self, bookable_id: str, fn, done_msgid: str, **kwargs):
        async for update in row_action(self, bookable_id, lambda actor, bid: fn(actor=actor, bookable_id=bid, **kwargs),
                                        lambda view: translate(done_msgid, self.locale, name=view.name)):
            yield update

    @rx.event
    async def deactivate(self, bookable_id: str):
        async for update in self._set_active(bookable_id, catalog.deactivate,
                                             N_("“{name}” is no longer bookable.")):
            yield update

    @rx.event
    async def reactivate(self, bookable_id: str):
        async for update in self._set_active(bookable_id, catalog.update_bookable,
                                             N_("“{name}” can be booked again."), is_active=True):
            yield update


# ---------------------------------------------------------------------------------------
# One bookable: details form, availability editor, event sessions
