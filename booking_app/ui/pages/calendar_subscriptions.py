"""Provider page "Outside calendars" (/provider/calendars): add an iCalendar feed whose busy
times block the provider's slots, the list with when each last synced and its error, sync
again, remove (state: ui/state/calendar_subscriptions.py)."""
from __future__ import annotations

import reflex as rx

from booking_app.i18n import N_
from booking_app.ui import paths
from booking_app.ui.components import T, error_callout, field, ok_callout
from booking_app.ui.components.staff import PROVIDER_TABS, empty_row, guarded, scroll_table, staff_header, th
from booking_app.ui.state.calendar_subscriptions import CalendarSubscriptionsState


def _form() -> rx.Component:
    return rx.card(
        rx.form(
            rx.vstack(
                rx.heading(T("Add a calendar"), size="5", as_="h2"),
                rx.text(T("Paste the address of an iCalendar feed (Google, Outlook, iCloud, Nextcloud…). "
                          "Its busy times are taken out of your free slots."), size="2", color_scheme="gray"),
                field(N_("Calendar address (https:// or webcal://)"), name="url", type="url", autocomplete="off",
                      input_id="field-calendar-url", custom_attrs={"data-testid": "calendar-url"}),
                rx.cond(CalendarSubscriptionsState.url_error != "", rx.text(CalendarSubscriptionsState.url_error, color_scheme="red", size="2", role="alert",
                                                   custom_attrs={"data-testid": "url-error"})),
                rx.vstack(
                    rx.el.label(T("Blocks"), html_for="field-calendar-service", class_name="field-label"),
                    rx.el.select(
                        rx.el.option(T("All my bookables"), value=""),
                        rx.foreach(CalendarSubscriptionsState.choices, lambda c: rx.el.option(c[1], value=c[0])),
                        id="field-calendar-service", name="service_id", class_name="native-select",
                    ),
                    spacing="1", width="100%",
                ),
                rx.el.details(
                    rx.el.summary(T("Private calendar: user name and password")),
                    rx.vstack(
                        field(N_("Username"), name="username", autocomplete="off", required=False,
                              input_id="field-calendar-username"),
                        field(N_("Password"), name="password", type="password", autocomplete="new-password",
                              required=False, input_id="field-calendar-password"),
                        spacing="3", width="100%", padding_top="0.5rem",
                    ),
                    width="100%",
                ),
                rx.button(T("Add calendar"), type="submit", size="3", loading=CalendarSubscriptionsState.adding, disabled=CalendarSubscriptionsState.adding,
                          custom_attrs={"data-testid": "add-calendar"}),
                spacing="3", width="100%", align="stretch",
            ),
            on_submit=CalendarSubscriptionsState.add, reset_on_submit=True, key=CalendarSubscriptionsState.form_key.to_string(),
        ),
        width="100%",
    )


def _row(row: dict) -> rx.Component:
    busy = CalendarSubscriptionsState.busy_id.to_string() == row["id"]
    return rx.table.row(
        rx.table.cell(rx.text(row["url"], word_break="break-all", size="2")),
        rx.table.cell(row["scope"]),
        rx.table.cell(rx.text(row["synced"], white_space="nowrap"), custom_attrs={"data-testid": "synced"}),
        rx.table.cell(rx.cond(row["error"] != "", rx.text(row["error"], color_scheme="red", size="2"),
                              rx.text("—", color_scheme="gray")), custom_attrs={"data-testid": "sync-error"}),
        rx.table.cell(rx.hstack(
            rx.button(T("Sync now"), size="1", variant="soft", loading=busy, disabled=CalendarSubscriptionsState.busy_id > 0,
                      on_click=CalendarSubscriptionsState.sync(row["id"]), custom_attrs={"data-testid": "sync"}),
            rx.button(T("Remove"), size="1", variant="soft", color_scheme="red", disabled=CalendarSubscriptionsState.busy_id > 0,
                      on_click=CalendarSubscriptionsState.remove(row["id"]), custom_attrs={"data-testid": "remove"}),
            spacing="2", wrap="wrap",
        )),
        custom_attrs={"data-testid": "calendar-row"},
    )


def content() -> rx.Component:
    return rx.vstack(
        staff_header(N_("Outside calendars"), PROVIDER_TABS, paths.PROVIDER_CALENDARS),
        guarded(CalendarSubscriptionsState, rx.vstack(
            ok_callout(CalendarSubscriptionsState.message),
            error_callout(CalendarSubscriptionsState.error),
            _form(),
            scroll_table(
                rx.table.header(rx.table.row(th(N_("Calendar")), th(N_("Blocks")), th(N_("Last synced")),
                                             th(N_("Error")), th(N_("Actions")))),
                rx.table.body(rx.cond(CalendarSubscriptionsState.subscriptions.length() > 0, rx.foreach(CalendarSubscriptionsState.subscriptions, _row),
                                      empty_row(5, N_("No calendars yet.")))),
                testid="calendars",
            ),
            spacing="4", width="100%",
        )),
        spacing="4", width="100%", max_width="64rem", margin_x="auto",
    )


def register(add) -> None:
    add(content, paths.PROVIDER_CALENDARS, N_("Outside calendars"), CalendarSubscriptionsState.load)
