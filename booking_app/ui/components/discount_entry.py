"""The review step's discount code box (issue 26): type a code, Apply shows the discount and
the price to pay (services/pricing.preview) or an inline error. The input is part of the
review form (`name="discount_code"`), so the code goes with the booking, where the service
checks it again and computes the price itself."""
from __future__ import annotations

import reflex as rx

from booking_app.ui.components import T
from booking_app.ui.state.booking import BookState
from booking_app.ui.state.discount_codes import DiscountEntryState


def discount_entry() -> rx.Component:
    state = DiscountEntryState
    return rx.cond(
        BookState.svc["price_cents"].to(int) > 0,
        rx.vstack(
            rx.el.label(T("Discount code (optional)"), html_for="discount-code", class_name="field-label"),
            rx.hstack(
                rx.input(id="discount-code", name="discount_code", value=state.code, on_change=state.set_code,
                         max_length=64, size="3", width="100%", auto_complete="off", auto_capitalize="characters",
                         spell_check=False,
                         custom_attrs={"data-testid": "discount-code",
                                       "aria-invalid": rx.cond(state.error != "", "true", "false"),
                                       "aria-describedby": "discount-feedback"}),
                rx.button(T("Apply"), type="button", size="3", variant="soft", on_click=state.apply,
                          custom_attrs={"data-testid": "discount-apply"}),
                spacing="2", width="100%", align="center",
            ),
            rx.box(
                rx.cond(state.error != "",
                        rx.text(state.error, color_scheme="red", size="2", role="alert",
                                custom_attrs={"data-testid": "discount-error"})),
                rx.cond(state.discount_line != "",
                        rx.vstack(
                            rx.text(state.discount_line, size="2", color_scheme="grass",
                                    custom_attrs={"data-testid": "discount-line"}),
                            rx.text(state.total_line, size="3", weight="bold",
                                    custom_attrs={"data-testid": "discount-total"}),
                            spacing="1",
                        )),
                id="discount-feedback", aria_live="polite", width="100%",
            ),
            spacing="1", width="100%", on_mount=state.reset_entry,
            custom_attrs={"data-testid": "discount-entry"},
        ),
    )
