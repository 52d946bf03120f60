"""Waitlist widgets (issue 24, point 1): one entry as a card (the customer's page) and as a
table row (the provider's queue)."""
from __future__ import annotations

import reflex as rx

from booking_app.ui.components import T
from booking_app.ui.components.staff import td
from booking_app.ui.state.waitlist import WaitlistState


def entry_card(row: dict) -> rx.Component:
    """A customer's entry: what, when (the bookable's zone), status, position or offer, and
    Accept / Decline (an open offer) or Leave (waiting)."""
    busy = WaitlistState.busy_id.to_string() == row["id"]
    return rx.card(
        rx.vstack(
            rx.flex(rx.text(row["service"], weight="bold"), rx.spacer(),
                    rx.badge(row["status_label"], color_scheme=rx.cond(row["status"] == "offered", "grass", "gray"),
                             custom_attrs={"data-testid": "entry-status"}),
                    width="100%", align="center", wrap="wrap", spacing="2"),
            rx.text(row["when"], size="2"),
            rx.cond(row["position"] != "", rx.text(row["position"], size="2",
                                                   custom_attrs={"data-testid": "entry-position"})),
            rx.cond(row["until"] != "", rx.text(row["until"], size="2", weight="medium")),
            rx.cond(row["status"] == "offered", rx.hstack(
                rx.button(T("Accept"), size="3", loading=busy, disabled=WaitlistState.busy_id > 0,
                          on_click=WaitlistState.accept(row["id"]), custom_attrs={"data-testid": "accept-offer"}),
                rx.button(T("Decline"), size="3", variant="soft", color_scheme="red",
                          disabled=WaitlistState.busy_id > 0, on_click=WaitlistState.decline(row["id"]),
                          custom_attrs={"data-testid": "decline-offer"}),
                spacing="2", wrap="wrap")),
            rx.cond(row["status"] == "waiting", rx.button(
                T("Leave waitlist"), size="2", variant="soft", loading=busy, disabled=WaitlistState.busy_id > 0,
                on_click=WaitlistState.leave(row["id"]), custom_attrs={"data-testid": "leave-waitlist"})),
            spacing="2", width="100%",
        ),
        width="100%", custom_attrs={"data-testid": "waitlist-entry"},
    )


def queue_row(row: dict) -> rx.Component:
    """A provider's view of one open entry."""
    return rx.table.row(
        td("Time", row["when"]),
        td("Customer", row["customer"]),
        td("Places", row["places"]),
        td("Status", rx.text(row["status_label"], custom_attrs={"data-testid": "queue-status"})),
        td("Position", rx.cond(row["position"] != "", row["position"], row["until"])),
        custom_attrs={"data-testid": "queue-row"},
    )
