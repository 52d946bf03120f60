"""Discount codes in the UI (issue 26, point 1).

- `DiscountCodesState`: the staff page — a provider's codes (an admin's: everyone's) as
  cards with their uses, a form to create or edit one, deactivate/activate. Every rule is in
  services/discounts.py; this parses the form (a typed amount through money.parse_price, the
  validity dates as whole days in the viewer's time zone) and shows the service's errors
  next to their fields.
- `DiscountEntryState`: the review step's "discount code" box — Apply asks
  services/pricing.preview for the price with the code (an inline error when the code would
  be refused); the code is then sent with the booking, where the service checks it again.
"""
from __future__ import annotations

import datetime as dt

import reflex as rx

from booking_app.i18n import N_, translate
from booking_app.services import catalog, discounts, money, pricing
from booking_app.services.errors import InvalidInput, ServiceError
from booking_app.services.validation import zone
from booking_app.ui import paths
from booking_app.ui.state import fmt
from booking_app.ui.state.base import AppState, relocalized
from booking_app.ui.state.booking import BookState
from booking_app.ui.state.staff import StaffState, row_action

KIND_LABELS = {"room": N_("Room"), "service": N_("Service"), "event": N_("Event")}
FORM_FIELDS = ("code", "value", "currency", "valid_from", "valid_until", "max_uses", "max_uses_per_customer",
               "min_price", "services", "kinds")
_EMPTY_FORM = {"code": "", "kind": "percent", "value": "", "currency": "EUR", "valid_from": "", "valid_until": "",
               "max_uses": "", "max_uses_per_customer": "", "min_price": ""}


def _blank(value: object) -> str:
    return str(value if value is not None else "").strip()[:100]


@relocalized(paths.STAFF_DISCOUNT_CODES)
class DiscountCodesState(StaffState):
    codes: list[dict[str, str]] = []
    bookables: list[dict[str, str]] = []
    form: dict[str, str] = dict(_EMPTY_FORM)
    chosen_services: list[str] = []
    chosen_kinds: list[str] = []
    editing_id: int = 0
    field_errors: dict[str, str] = {}
    error: str = ""
    message: str = ""
    busy_id: int = 0
    form_key: int = 0

    @rx.var
    def zone_note(self) -> str:
        return translate("Dates are whole days in {zone}.", self.locale, zone=self._view_tz())

    @rx.var
    def kind_options(self) -> list[dict[str, str]]:
        return [{"value": k, "label": translate(KIND_LABELS[k], self.locale)} for k in discounts.KINDS]

    @rx.event
    def load(self):
        self.error = self.message = ""
        self.field_errors = {}
        self.busy_id = 0
        self._reset_form()
        actor, redirect = self._staff_actor(paths.STAFF_DISCOUNT_CODES)
        if redirect:
            return redirect
        if actor is None:
            return
        try:
            views, _total = catalog.search_bookables(actor=actor, include_inactive=True, limit=200,
                                                     provider_id=None if actor.is_admin else actor.id)
        except ServiceError:
            views = []
        self.bookables = [{"id": str(v.id), "name": v.name} for v in views]
        self._fetch(actor)

    def _reset_form(self) -> None:
        self.form = dict(_EMPTY_FORM)
        self.chosen_services, self.chosen_kinds = [], []
        self.editing_id = 0
        self.form_key += 1

    def _fetch(self, actor) -> None:
        views = self._ask(discounts.list_codes, actor=actor)
        if views is None:
            return
        loc, tz = self.locale, self._view_tz()
        names = {b["id"]: b["name"] for b in self.bookables}
        self.codes = [self._row(v, loc, tz, names) for v in views]

    def _row(self, v: discounts.DiscountView, loc: str, tz: str, names: dict[str, str]) -> dict[str, str]:
        off = (f"{v.percent_off} %" if v.percent_off is not None
               else fmt.money(v.amount_off_cents or 0, v.currency or "EUR", loc))
        if v.max_uses is not None:
            uses = translate("{used} of {max}", loc, used=v.uses, max=v.max_uses)
        else:
            uses = str(v.uses)
        limits = [names.get(str(i), f"#{i}") for i in v.service_ids]
        limits += [translate(KIND_LABELS.get(k, k), loc) for k in v.kinds]
        valid = ""
        if v.valid_from or v.valid_until:
            valid = translate("{start} – {end}", loc,
                              start=fmt.date_(v.valid_from, loc, "medium", tz) if v.valid_from else "…",
                              end=fmt.date_(v.valid_until - dt.timedelta(seconds=1), loc, "medium", tz)
                              if v.valid_until else "…")
        return {
            "id": str(v.id), "code": v.code, "off": off, "uses": uses, "active": "1" if v.active else "",
            "status": translate("Active", loc) if v.active else translate("Inactive", loc),
            "limits": ", ".join(limits) or translate("All my services", loc),
            "valid": valid or translate("Always", loc),
            "per_customer": str(v.max_uses_per_customer) if v.max_uses_per_customer is not None else "—",
            "min_price": fmt.money(v.min_price_cents, v.currency or "EUR", loc) if v.min_price_cents else "—",
        }

    @rx.event
    def set_kind(self, value: str):
        if value in ("percent", "amount"):
            self.form = {**self.form, "kind": value}

    @rx.event
    def toggle_service(self, service_id: str, on: bool):
        rest = [s for s in self.chosen_services if s != service_id]
        self.chosen_services = rest + [service_id] if on else rest

    @rx.event
    def toggle_kind(self, kind: str, on: bool):
        rest = [k for k in self.chosen_kinds if k != kind]
        self.chosen_kinds = rest + [kind] if on else rest

    def _day(self, text: str, field: str, *, end: bool) -> dt.datetime | None:
        if not text:
            return None
        day = dt.date.fromisoformat(text) if len(text) == 10 and text[4] == "-" else None
        if day is None:
            raise InvalidInput(N_("Enter a date as YYYY-MM-DD."), field=field)
        local = dt.datetime.combine(day + dt.timedelta(days=1 if end else 0), dt.time(0), tzinfo=zone(self._view_tz()))
        return local.astimezone(dt.timezone.utc)

    def _data(self, form: dict) -> dict:
        """The form → the service's fields (numbers and dates parsed; the rules are the service's)."""
        currency = _blank(form.get("currency")).upper() or "EUR"
        kind = self.form.get("kind", "percent")
        value = _blank(form.get("value"))
        data: dict = {"code": _blank(form.get("code")), "currency": currency if kind == "amount" else None}
        if kind == "amount":
            try:
                data["amount_off_cents"] = money.parse_price(value, currency) if value else None
            except InvalidInput:
                raise InvalidInput(N_("Enter a price like 12.50."), field="amount_off_cents") from None
            data["percent_off"] = None
        else:
            data["percent_off"] = value or None
            data["amount_off_cents"] = None
        for name in ("max_uses", "max_uses_per_customer"):
            data[name] = _blank(form.get(name)) or None
        try:
            data["min_price_cents"] = money.parse_price(_blank(form.get("min_price")), currency)
        except InvalidInput:
            raise InvalidInput(N_("Enter a price like 12.50."), field="min_price_cents") from None
        try:
            data["valid_from"] = self._day(_blank(form.get("valid_from")), "valid_from", end=False)
            data["valid_until"] = self._day(_blank(form.get("valid_until")), "valid_until", end=True)
        except ValueError:
            raise InvalidInput(N_("Enter a date as YYYY-MM-DD."), field="valid_from") from None
        data["service_ids"] = [int(s) for s in self.chosen_services if s.isdigit()]
        data["kinds"] = list(self.chosen_kinds)
        return data

    @rx.event
    def save(self, form: dict):
        self.error = self.message = ""
        self.field_errors = {}
        self.form = {**self.form, **{k: _blank(form.get(k)) for k in _EMPTY_FORM if k != "kind"}}
        actor = self._actor()
        try:
            data = self._data(form)
            if self.editing_id:
                discounts.update_code(actor=actor, code_id=self.editing_id, data=data)
                self.message = translate("The discount code was saved.", self.locale)
            else:
                discounts.create_code(actor=actor, data=data)
                self.message = translate("The discount code was created.", self.locale)
        except InvalidInput as exc:
            field = {"percent_off": "value", "amount_off_cents": "value", "min_price_cents": "min_price",
                     "service_ids": "services"}.get(exc.field or "", exc.field or "")
            if field in FORM_FIELDS:
                self.field_errors = {field: self._error_text(exc)}
            else:
                self.error = self._error_text(exc)
            return
        except ServiceError as exc:
            self.error = self._error_text(exc)
            return
        self._reset_form()
        self._fetch(actor)

    @rx.event
    def edit(self, code_id: str):
        cid = fmt.int_param(code_id)
        if cid is None:
            return
        self.error = self.message = ""
        self.field_errors = {}
        v = self._ask(discounts.get_code, actor=self._actor(), code_id=cid)
        if v is None:
            return
        tz = zone(self._view_tz())
        self.form = {
            "code": v.code, "kind": "percent" if v.percent_off is not None else "amount",
            "value": str(v.percent_off) if v.percent_off is not None
            else money.format_price(v.amount_off_cents or 0, v.currency or "EUR"),
            "currency": v.currency or "EUR",
            "valid_from": v.valid_from.astimezone(tz).date().isoformat() if v.valid_from else "",
            "valid_until": (v.valid_until.astimezone(tz) - dt.timedelta(seconds=1)).date().isoformat()
            if v.valid_until else "",
            "max_uses": str(v.max_uses or ""), "max_uses_per_customer": str(v.max_uses_per_customer or ""),
            "min_price": money.format_price(v.min_price_cents, v.currency or "EUR") if v.min_price_cents else "",
        }
        self.chosen_services = [str(i) for i in v.service_ids]
        self.chosen_kinds = list(v.kinds)
        self.editing_id = v.id
        self.form_key += 1

    @rx.event
    def cancel_edit(self):
        self.field_errors = {}
        self._reset_form()

    @rx.event
    async def set_active(self, code_id: str, active: bool):
        done = N_("The discount code is active.") if active else N_("The discount code is inactive.")
        async for update in row_action(
                self, code_id,
                lambda actor, cid: discounts.update_code(actor=actor, code_id=cid, data={"active": bool(active)}),
                lambda _view: translate(done, self.locale)):
            yield update


class DiscountEntryState(AppState):
    """The review step's discount code box (ui/components/discount_entry.py)."""

    code: str = ""
    error: str = ""
    discount_line: str = ""
    total_line: str = ""

    @rx.event
    def reset_entry(self):
        self.code = self.error = self.discount_line = self.total_line = ""

    @rx.event
    def set_code(self, value: str):
        self.code = str(value or "")[:64]
        self.error = self.discount_line = self.total_line = ""

    @rx.event
    async def apply(self):
        self.error = self.discount_line = self.total_line = ""
        book = await self.get_state(BookState)
        if not book.svc or not self.code.strip():
            return
        try:
            quote = pricing.preview(actor=self._actor(), service_id=int(book.svc["id"]), quantity=book.quantity,
                                    discount_code=self.code)
        except ServiceError as exc:
            self.error = self._error_text(exc)
            return
        loc = self.locale
        self.discount_line = translate("Discount {code}: −{amount}", loc, code=quote.discount_code or "",
                                       amount=fmt.money(quote.discount_cents, quote.currency, loc))
        self.total_line = translate("To pay: {amount}", loc, amount=fmt.money(quote.price_cents, quote.currency, loc))
