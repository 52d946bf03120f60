"""Staff discount codes page (/provider/discount-codes; admins see everyone's): create or
edit a code, the codes as stacked cards (phone-friendly, every field visible at 390 px)
with their uses, deactivate/activate. The rules: services/discounts.py."""
from __future__ import annotations

import reflex as rx

from booking_app.i18n import N_
from booking_app.ui import paths
from booking_app.ui.components import T, error_callout
from booking_app.ui.components.staff import (
    PROVIDER_TABS,
    active_toggle,
    card_item,
    card_list,
    check_label,
    choice_group,
    done_callout,
    fact,
    form_card,
    guarded,
    staff_header,
)
from booking_app.ui.state.discount_codes import DiscountCodesState


def _input(msgid: str, name: str, *, type: str = "text", hint: rx.Var | None = None, **props) -> rx.Component:
    state = DiscountCodesState
    error = state.field_errors.get(name, "")
    return rx.vstack(
        rx.el.label(T(msgid), html_for=f"dc-{name}", class_name="field-label"),
        rx.input(id=f"dc-{name}", name=name, type=type, size="3", width="100%",
                 default_value=state.form.get(name, ""),
                 custom_attrs={"data-testid": f"dc-{name}", "aria-invalid": rx.cond(error != "", "true", "false")},
                 **props),
        *([rx.text(hint, size="1", color_scheme="gray")] if hint is not None else []),
        rx.cond(error != "", rx.text(error, color_scheme="red", size="2", role="alert",
                                     custom_attrs={"data-testid": f"dc-{name}-error"})),
        spacing="1", width="100%", min_width="12rem", flex="1",
    )


def _check(label: rx.Var, checked: rx.Var, on_change, testid: rx.Var) -> rx.Component:
    return check_label(rx.checkbox(checked=checked, on_change=on_change, custom_attrs={"data-testid": testid}),
                       rx.text(label, size="2"))


def _form() -> rx.Component:
    state = DiscountCodesState
    return form_card(
        rx.heading(rx.cond(state.editing_id != 0, T("Edit the discount code"), T("New discount code")),
                   size="4", as_="h2"),
        rx.flex(
            _input(N_("Code"), "code", required=True, max_length=64, auto_capitalize="characters"),
            rx.vstack(
                rx.text(T("Discount"), class_name="field-label"),
                rx.radio_group.root(
                    rx.radio_group.item(T("Percent"), value="percent"),
                    rx.radio_group.item(T("Fixed amount"), value="amount"),
                    value=state.form["kind"], on_change=state.set_kind, direction="row", size="3",
                    aria_label=T("Discount"), custom_attrs={"data-testid": "dc-kind"},
                ),
                spacing="1", min_width="12rem", flex="1",
            ),
            wrap="wrap", spacing="3", width="100%",
        ),
        rx.flex(
            _input(N_("Amount off"), "value", input_mode="decimal", required=True,
                   hint=rx.cond(state.form["kind"] == "percent", T("Percent, 1 to 100"), T("Like 12.50"))),
            rx.cond(state.form["kind"] == "amount", _input(N_("Currency"), "currency", max_length=3)),
            _input(N_("Minimum price (optional)"), "min_price", input_mode="decimal"),
            wrap="wrap", spacing="3", width="100%",
        ),
        rx.flex(
            _input(N_("Valid from (optional)"), "valid_from", type="date"),
            _input(N_("Valid until (optional)"), "valid_until", type="date"),
            wrap="wrap", spacing="3", width="100%",
        ),
        rx.text(state.zone_note, size="1", color_scheme="gray"),
        rx.flex(
            _input(N_("Total uses (optional)"), "max_uses", type="number", min="1"),
            _input(N_("Uses per customer (optional)"), "max_uses_per_customer", type="number", min="1"),
            wrap="wrap", spacing="3", width="100%",
        ),
        choice_group(
            N_("Only for these services (optional)"),
            rx.flex(rx.foreach(state.bookables, lambda b: _check(
                b["name"], state.chosen_services.contains(b["id"]),
                lambda on: state.toggle_service(b["id"], on), "dc-service-" + b["id"])), wrap="wrap"),
            rx.cond(state.field_errors.get("services", "") != "",
                    rx.text(state.field_errors.get("services", ""), color_scheme="red", size="2", role="alert")),
        ),
        choice_group(
            N_("Only for these kinds (optional)"),
            rx.flex(rx.foreach(state.kind_options, lambda k: _check(
                k["label"], state.chosen_kinds.contains(k["value"]),
                lambda on: state.toggle_kind(k["value"], on), "dc-kind-" + k["value"])), wrap="wrap"),
        ),
        rx.flex(
            rx.button(rx.cond(state.editing_id != 0, T("Save"), T("Create code")), type="submit", size="3",
                      custom_attrs={"data-testid": "dc-save"}),
            rx.cond(state.editing_id != 0,
                    rx.button(T("Cancel"), type="button", size="3", variant="soft", color_scheme="gray",
                              on_click=state.cancel_edit)),
            spacing="2", wrap="wrap",
        ),
        on_submit=state.save, form_key=state.form_key,
    )


def _code_card(c: dict) -> rx.Component:
    state = DiscountCodesState
    busy = state.busy_id.to_string() == c["id"]
    return card_item(
        rx.flex(
            rx.code(c["code"], size="4", custom_attrs={"data-testid": "dc-card-code"}),
            rx.text(c["off"], weight="bold", custom_attrs={"data-testid": "dc-card-off"}),
            rx.spacer(),
            rx.badge(c["status"], color_scheme=rx.cond(c["active"] == "1", "green", "gray"),
                     custom_attrs={"data-testid": "dc-card-status"}),
            wrap="wrap", spacing="2", width="100%", align="center",
        ),
        rx.flex(
            fact(N_("Uses"), c["uses"], "dc-card-uses"),
            fact(N_("Uses per customer"), c["per_customer"], "dc-card-per-customer"),
            fact(N_("Minimum price"), c["min_price"], "dc-card-min"),
            spacing="4", wrap="wrap",
        ),
        fact(N_("Valid"), c["valid"], "dc-card-valid"),
        fact(N_("Applies to"), c["limits"], "dc-card-limits"),
        rx.flex(
            rx.button(T("Edit"), size="2", variant="soft", on_click=state.edit(c["id"]),
                      custom_attrs={"data-testid": "dc-card-edit"}),
            active_toggle(c["active"] == "1", busy, lambda on: state.set_active(c["id"], on), "dc-card-"),
            spacing="2", wrap="wrap", width="100%",
        ),
        testid="dc-card",
    )


def discount_codes_page() -> rx.Component:
    state = DiscountCodesState
    return guarded(state, rx.vstack(
        staff_header(N_("Discount codes"), PROVIDER_TABS, paths.STAFF_DISCOUNT_CODES),
        rx.text(T("Customers enter a code when they review their booking; the price is computed when they book."),
                size="2", color_scheme="gray"),
        error_callout(state.error),
        done_callout(state.message, "dc-message"),
        _form(),
        card_list(state.codes, _code_card, empty_msgid=N_("No discount codes yet."), empty_testid="dc-empty",
                  testid="dc-list"),
        spacing="4", width="100%",
    ))


def register(add) -> None:
    add(discount_codes_page, paths.STAFF_DISCOUNT_CODES, N_("Discount codes"), DiscountCodesState.load)
