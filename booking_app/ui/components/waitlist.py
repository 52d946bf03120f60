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


def _full_slot(slot: dict) -> rx.Component:
    """A full time: a link (not a slot button) to its waitlist's join form, dashed and grey so
    it reads as taken; its accessible name says the time and that it is full."""
    return rx.link(
        rx.vstack(rx.text(slot["time"], weight="medium"), rx.text(T("Full — join the waitlist"), size="1"),
                  spacing="0", align="center"),
        href=slot["href"], underline="none", color_scheme="gray", width="100%", padding_y="0.5rem",
        padding_x="0.5rem", border="1px dashed var(--gray-8)", border_radius="var(--radius-3)", display="block",
        text_align="center", custom_attrs={"data-testid": "full-slot", "data-start": slot["start"]},
    )


def full_slots(rows) -> rx.Component:
    """The bookable page's full times of the day (BookableState.day_full_slots), each joining
    that time's waitlist in one step."""
    return rx.cond(rows.length() > 0, rx.vstack(
        rx.text(T("Full times"), size="2", weight="medium", id="full-times-label"),
        rx.box(rx.foreach(rows, _full_slot), class_name="slot-grid", role="group",
               aria_labelledby="full-times-label"),
        spacing="2", width="100%", custom_attrs={"data-testid": "full-slots"}))
