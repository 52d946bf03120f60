"""Waitlist pages (issue 24, point 1): /waitlist — join a full time, one's entries and
offers (Accept / Decline / Leave; a guest comes through the offer email's link) — and
/provider/waitlists — each bookable's queue with "Offer now" and "Close waitlist"
(states: ui/state/waitlist.py)."""
from __future__ import annotations

import reflex as rx

from booking_app.i18n import N_
from booking_app.ui import paths
from booking_app.ui.components import T, card, error_callout, field, ok_callout, page_heading
from booking_app.ui.components.questions import questions_form
from booking_app.ui.components.staff import PROVIDER_TABS, empty_row, guarded, scroll_table, staff_header, th
from booking_app.ui.components.waitlist import entry_card, queue_row
from booking_app.ui.state.base import AppState
from booking_app.ui.state.waitlist import ProviderWaitlistState, WaitlistState


def _join_form() -> rx.Component:
    state = WaitlistState
    return card(rx.form(
        rx.vstack(
            rx.heading(T("Join the waitlist"), size="5", as_="h2"),
            rx.text(state.service_name, weight="bold", custom_attrs={"data-testid": "waitlist-service"}),
            rx.text(T("When this time is full, join its waitlist: as soon as a place is free, it is held for the "
                      "next person in line."), size="2", color_scheme="gray"),
            rx.cond(state.start_label != "", rx.text(state.start_label, custom_attrs={"data-testid": "waitlist-start"})),
            rx.cond(state.start_param == "", rx.vstack(
                rx.text(T("Start (the slot's local time)"), size="2", weight="medium"),
                rx.text(state.service_tz, size="1", color_scheme="gray"),
                rx.hstack(
                    rx.input(type="date", name="date", required=True, size="3", aria_label=T("Date"),
                             custom_attrs={"data-testid": "waitlist-date"}),
                    rx.input(type="time", name="time", required=True, size="3", aria_label=T("Time"),
                             custom_attrs={"data-testid": "waitlist-time"}),
                    spacing="2", wrap="wrap"),
                spacing="1", width="100%")),
            rx.cond(state.start_error != "", rx.text(state.start_error, color_scheme="red", size="2", role="alert")),
            field(N_("Places"), name="quantity", type="number", min="1", max="1000", default_value="1",
                  input_id="field-waitlist-quantity"),
            rx.cond(AppState.user_id == 0, rx.vstack(
                field(N_("Your name"), name="name", autocomplete="name", input_id="field-waitlist-name"),
                field(N_("Email"), name="email", type="email", autocomplete="email", input_id="field-waitlist-email"),
                spacing="3", width="100%")),
            questions_form(state.service_id),  # the bookable's booking questions, answered when joining
            rx.button(T("Join waitlist"), type="submit", size="3", loading=state.joining, disabled=state.joining,
                      custom_attrs={"data-testid": "join-waitlist"}),
            spacing="3", width="100%", align="stretch",
        ),
        on_submit=state.join,
    ))


def content() -> rx.Component:
    state = WaitlistState
    return rx.vstack(
        page_heading(N_("Waitlist")),
        ok_callout(state.message),
        error_callout(state.error),
        rx.cond(state.service_id > 0, _join_form()),
        rx.cond(state.entries.length() > 0, rx.vstack(rx.foreach(state.entries, entry_card), spacing="3", width="100%"),
                rx.cond(state.service_id == 0, rx.text(T("You are not on any waitlist."), color_scheme="gray"))),
        spacing="4", width="100%", max_width="40rem", margin_x="auto",
    )


def provider_content() -> rx.Component:
    state = ProviderWaitlistState
    return rx.vstack(
        staff_header(N_("Waitlists"), PROVIDER_TABS, paths.PROVIDER_WAITLISTS),
        guarded(state, rx.vstack(
            ok_callout(state.message),
            error_callout(state.error),
            rx.flex(
                rx.el.select(rx.foreach(state.choices, lambda c: rx.el.option(c[1], value=c[0])),
                             value=state.selected, on_change=state.choose, class_name="native-select",
                             aria_label=T("Bookable"), custom_attrs={"data-testid": "waitlist-bookable"}),
                rx.button(T("Offer now"), size="2", loading=state.busy, disabled=state.busy | state.closed,
                          on_click=state.offer_now, custom_attrs={"data-testid": "offer-now"}),
                rx.button(rx.cond(state.closed, T("Reopen waitlist"), T("Close waitlist")), size="2",
                          variant="soft", color_scheme=rx.cond(state.closed, "grass", "red"), disabled=state.busy,
                          on_click=state.toggle_closed, custom_attrs={"data-testid": "close-waitlist"}),
                spacing="2", wrap="wrap", align="center", width="100%"),
            scroll_table(
                rx.table.header(rx.table.row(th(N_("Time")), th(N_("Customer")), th(N_("Places")), th(N_("Status")),
                                             th(N_("Position")))),
                rx.table.body(rx.cond(state.entries.length() > 0, rx.foreach(state.entries, queue_row),
                                      empty_row(5, N_("No one is waiting.")))),
                testid="waitlist-queue", stack=True,
            ),
            spacing="4", width="100%",
        )),
        spacing="4", width="100%", max_width="64rem", margin_x="auto",
    )


def register(add) -> None:
    add(content, paths.WAITLIST, N_("Waitlist"), WaitlistState.load)
    add(provider_content, paths.PROVIDER_WAITLISTS, N_("Waitlists"), ProviderWaitlistState.load)
