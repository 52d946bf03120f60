"""Provider page: the bookings of my bookables as a list (with the row actions and each row's
cancel / reschedule dialogs), a week or a month calendar."""
from __future__ import annotations

import reflex as rx

from booking_app.i18n import N_
from booking_app.ui import paths
from booking_app.ui.components import T, error_callout, ok_callout
from booking_app.ui.components.staff import (
    PROVIDER_TABS,
    date_range_fields,
    empty_row,
    guarded,
    scroll_table,
    staff_header,
    status_options,
    td,
    th,
)
from booking_app.ui.state.provider_bookings import ProviderBookingsState
from booking_app.ui.state.staff import STATUS_LABELS


def _booking_row(row: dict) -> rx.Component:
    state = ProviderBookingsState
    busy = state.busy_id.to_string() == row["id"]
    disabled = state.busy_id > 0
    return rx.table.row(
        td(N_("When"), rx.text(row["when"], white_space="nowrap", title=row["zone"],
                               custom_attrs={"data-testid": "when"}),
           rx.text(row["reference"], size="1", color_scheme="gray")),
        td(N_("Bookable"), row["service"]),
        td(N_("Customer"), rx.text(row["customer"]), rx.text(row["contact"], size="1", color_scheme="gray"),
           rx.cond(row["answers"] != "", rx.text(row["answers"], size="1", white_space="pre-line", dir="auto",
                                                 custom_attrs={"data-testid": "answers"}))),
        td(N_("Seats"), row["seats"]),
        td(N_("Status"), rx.badge(row["status_label"], color_scheme=row["status_color"],
                                  custom_attrs={"data-testid": "status"})),
        td(N_("Price"), rx.text(row["price"], white_space="nowrap"),
           rx.text(row["payment_label"], size="1", color_scheme="gray", custom_attrs={"data-testid": "payment"}),
           rx.cond(row["money"] != "", rx.text(row["money"], size="1", white_space="pre-line",  # (issue 26)
                                               custom_attrs={"data-testid": "money"}))),
        td(N_("Actions"), rx.hstack(
            rx.cond(row["can_pay"] != "", rx.button(T("Paid on site"), size="1", variant="soft", loading=busy,
                                                    disabled=disabled, on_click=state.mark_paid(row["id"]),
                                                    custom_attrs={"data-testid": "mark-paid"})),
            rx.cond(row["can_finish"] != "", rx.button(T("Completed"), size="1", variant="soft",
                                                       color_scheme="blue", loading=busy, disabled=disabled,
                                                       on_click=state.complete(row["id"]),
                                                       custom_attrs={"data-testid": "complete"})),
            rx.cond(row["can_finish"] != "", rx.button(T("No-show"), size="1", variant="soft",
                                                       color_scheme="orange", loading=busy, disabled=disabled,
                                                       on_click=state.no_show(row["id"]),
                                                       custom_attrs={"data-testid": "no-show"})),
            rx.cond(row["retry_fee"] != "", rx.button(T("Charge fee again"), size="1", variant="soft",  # (issue 26)
                                                      color_scheme="amber", loading=busy, disabled=disabled,
                                                      on_click=state.charge_fee_again(row["id"], row["retry_fee"]),
                                                      custom_attrs={"data-testid": "charge-fee-again"})),
            rx.cond(row["can_cancel"] != "", _reschedule_dialog(row, rx.button(
                T("Move"), size="1", variant="soft", color_scheme="gray", disabled=disabled,
                custom_attrs={"data-testid": "reschedule"}))),
            rx.cond(row["can_cancel"] != "", _cancel_dialog(row, rx.button(
                T("Cancel"), size="1", variant="soft", color_scheme="red", disabled=disabled,
                custom_attrs={"data-testid": "cancel"}))),
            spacing="2", wrap="wrap", min_width="8rem",
        )),
        custom_attrs={"data-testid": "booking-row", "data-reference": row["reference"]},
    )


def _cancel_dialog(row: dict, opener: rx.Component) -> rx.Component:
    """A row's cancel dialog, `opener` (the row's Cancel button) its trigger: Radix moves focus
    in, keeps Tab inside, closes on Esc and gives focus back to the button. The trigger has no
    on_click (Reflex would wrap it in a div); open/close go through on_open_change."""
    state = ProviderBookingsState
    return rx.alert_dialog.root(
        rx.alert_dialog.trigger(opener),
        rx.alert_dialog.content(
            rx.alert_dialog.title(T("Cancel this booking?")),
            rx.alert_dialog.description(state.cancel_text, custom_attrs={"data-testid": "cancel-text"}),
            rx.form(
                rx.vstack(
                    error_callout(state.cancel_error),
                    rx.el.label(T("Reason (sent to the customer)"), html_for="cancel-reason",
                                class_name="field-label"),
                    rx.text_area(id="cancel-reason", name="reason", max_length=500, rows="3", width="100%"),
                    rx.flex(
                        rx.alert_dialog.cancel(rx.button(T("Keep the booking"), variant="soft", color_scheme="gray",
                                                         type="button")),
                        rx.button(T("Cancel booking"), color_scheme="red", type="submit", loading=state.busy_id > 0,
                                  disabled=state.busy_id > 0, custom_attrs={"data-testid": "confirm-cancel"}),
                        spacing="3", justify="end", wrap="wrap",
                    ),
                    spacing="2", width="100%", margin_top="1rem",
                ),
                on_submit=state.confirm_cancel, reset_on_submit=True,
            ),
            max_width="460px",
        ),
        open=state.cancel_open & (state.cancel_id.to_string() == row["id"]),
        on_open_change=lambda value: state.cancel_open_change(row["id"], value),
    )


def _reschedule_dialog(row: dict, opener: rx.Component) -> rx.Component:
    """A row's move dialog, `opener` (the row's Move button) its trigger, like the cancel dialog."""
    state = ProviderBookingsState
    return rx.dialog.root(
        rx.dialog.trigger(opener),
        rx.dialog.content(
            rx.dialog.title(T("Move this booking")),
            rx.dialog.description(state.resched_text, size="2"),
            rx.vstack(
                error_callout(state.resched_error),
                rx.el.label(T("Date"), html_for="resched-date", class_name="field-label"),
                rx.input(id="resched-date", type="date", value=state.resched_date, on_change=state.set_resched_date,
                         size="3", custom_attrs={"data-testid": "resched-date"}),
                rx.el.label(T("Free times"), html_for="resched-slot", class_name="field-label"),
                rx.cond(
                    state.resched_slots.length() > 0,
                    rx.el.select(rx.foreach(state.resched_slots, lambda x: rx.el.option(x["label"], value=x["value"])),
                                 id="resched-slot", value=state.resched_choice, on_change=state.set_resched_choice,
                                 class_name="native-select", custom_attrs={"data-testid": "resched-slot"}),
                    rx.text(T("No free times on this day. Pick another day."), size="2", color_scheme="gray"),
                ),
                rx.flex(
                    rx.dialog.close(rx.button(T("Keep the time"), variant="soft", color_scheme="gray", type="button")),
                    rx.button(T("Move booking"), on_click=state.confirm_reschedule, loading=state.busy_id > 0,
                              disabled=(state.busy_id > 0) | (state.resched_choice == ""),
                              custom_attrs={"data-testid": "confirm-reschedule"}),
                    spacing="3", justify="end", wrap="wrap", width="100%",
                ),
                spacing="2", width="100%", margin_top="1rem",
            ),
            max_width="460px",
        ),
        open=state.resched_open & (state.resched_id.to_string() == row["id"]),
        on_open_change=lambda value: state.resched_open_change(row["id"], value),
    )


def _week_item(item: dict) -> rx.Component:
    return rx.box(
        rx.text(item["time"], size="1", weight="bold"),
        rx.text(item["service"], size="2", class_name="clamp-2"),
        rx.cond(item["customer"] != "", rx.text(item["customer"], size="1", color_scheme="gray")),
        rx.badge(item["status_label"], color_scheme=item["status_color"], size="1"),
        padding="0.4rem", border_radius="var(--radius-2)", background=rx.color("accent", 2),
        border_inline_start=f"3px solid {rx.color('accent', 8)}", width="100%",
        custom_attrs={"data-testid": "week-item", "data-reference": item["reference"]},
    )


def _open_band(day) -> rx.Component:
    """The day's opening hours: a light band on a 24-hour strip, and the hours as text."""
    return rx.cond(
        day.open_label != "",
        rx.vstack(
            rx.box(
                rx.foreach(day.bands, lambda band: rx.box(
                    position="absolute", top="0", bottom="0", inset_inline_start=band["start"], width=band["width"],
                    background=rx.color("grass", 5), border_radius="2px")),
                position="relative", width="100%", height="6px", background=rx.color("gray", 3),
                border_radius="3px", overflow="hidden", aria_hidden="true",
            ),
            rx.text(day.open_label, size="1", color_scheme="grass"),
            spacing="1", width="100%", padding="0.25rem 0.4rem", border_radius="var(--radius-2)",
            background=rx.color("grass", 2), custom_attrs={"data-testid": "week-open"},
        ),
    )


def _week_day(day) -> rx.Component:
    return rx.vstack(
        rx.hstack(rx.text(day.weekday, weight="bold", size="2"), rx.text(day.label, size="1", color_scheme="gray"),
                  spacing="2", align="baseline", wrap="wrap"),
        _open_band(day),
        rx.cond(day.cards.length() == 0, rx.text(T("No bookings."), size="1", color_scheme="gray")),
        rx.foreach(day.cards, _week_item),
        spacing="2", width="100%", min_width="0", padding="0.5rem",
        border=rx.cond(day.today, f"2px solid {rx.color('accent', 8)}", f"1px solid {rx.color('gray', 5)}"),
        border_radius="var(--radius-3)", background=rx.color("gray", 1), min_height="6rem",
        custom_attrs={"data-testid": "week-day", "data-day": day.key},
    )


def _week_view() -> rx.Component:
    state = ProviderBookingsState
    return rx.vstack(
        rx.flex(
            rx.icon_button(rx.icon("chevron_left", class_name="flip-rtl"), variant="soft", on_click=state.shift_week(-1),
                           aria_label=T("Previous week"), custom_attrs={"data-testid": "week-prev"}),
            rx.button(T("This week"), variant="soft", on_click=state.shift_week(0)),
            rx.icon_button(rx.icon("chevron_right", class_name="flip-rtl"), variant="soft", on_click=state.shift_week(1),
                           aria_label=T("Next week"), custom_attrs={"data-testid": "week-next"}),
            rx.text(state.week_title, weight="medium", custom_attrs={"data-testid": "week-title"}),
            spacing="2", align="center", wrap="wrap",
        ),
        error_callout(state.error),
        rx.grid(rx.foreach(state.week, _week_day), columns=rx.breakpoints(initial="1", sm="2", md="7"), spacing="2",
                width="100%"),
        spacing="3", width="100%",
    )


def _stripes(step: int = 6, shade: int = 3) -> str:
    """The hatching of a closed day."""
    return (f"repeating-linear-gradient(135deg, {rx.color('gray', shade)} 0 {step}px, "
            f"{rx.color('gray', 2)} {step}px {2 * step}px)")


def _month_item(item: dict) -> rx.Component:
    """One booking in a month cell: a status dot, the time, bookable · customer (one line)."""
    return rx.hstack(
        rx.box(width="6px", height="6px", border_radius="50%", flex_shrink="0", align_self="center",
               background=rx.color(item["color"], 9)),
        rx.text(item["time"], size="1", weight="bold", white_space="nowrap", flex_shrink="0"),
        rx.text(item["text"], size="1", white_space="nowrap", overflow="hidden", text_overflow="ellipsis",
                min_width="0", dir="auto"),
        spacing="1", width="100%", min_width="0", align="baseline",
        custom_attrs={"data-testid": "month-item", "data-reference": item["reference"], "title": item["text"]},
    )


def _month_bar(day) -> rx.Component:
    """The day's open time as a bar: the free share green, the booked share accent."""
    return rx.cond(
        (day.state == "open") | (day.state == "full"),
        rx.box(
            rx.box(width=day.free_width, height="100%", background=rx.color("grass", 9),
                   border_radius="2px"),
            width="100%", height="4px", background=rx.color("accent", 6), border_radius="2px",
            overflow="hidden", aria_hidden="true", flex_shrink="0",
        ),
    )


def _month_day(day) -> rx.Component:
    state = ProviderBookingsState
    wide = rx.breakpoints(initial="none", sm="flex")
    return rx.el.button(
        # the name is this text plus what is visible (no aria-label that would replace it)
        rx.el.span(day.label, class_name="sr-only"),
        rx.hstack(
            rx.box(
                rx.text(day.number, size="2", weight=rx.cond(day.today, "bold", "medium")),
                display="flex", align_items="center", justify_content="center", min_width="1.6rem",
                height="1.6rem", padding_x="0.2rem", border_radius="999px",
                background=rx.cond(day.today, rx.color("accent", 9), "transparent"),
                color=rx.cond(day.today, "white", rx.cond(day.in_month, rx.color("gray", 12), rx.color("gray", 10))),
            ),
            rx.spacer(display=wide),
            rx.cond(day.count > 0, rx.badge(day.count, size="1", variant="solid", radius="full",
                                            custom_attrs={"data-testid": "month-count"})),
            spacing="1", width="100%", align="center", wrap="wrap", justify="between",
        ),
        rx.vstack(
            rx.foreach(day.previews, _month_item),
            rx.cond(day.more != "", rx.text(day.more, size="1", color_scheme="gray",
                                            custom_attrs={"data-testid": "month-more"})),
            spacing="1", width="100%", min_width="0", display=wide,
        ),
        rx.spacer(),
        rx.cond(day.free_label != "", rx.text(
            day.free_label, size="1", display=rx.breakpoints(initial="none", sm="block"), max_width="100%",
            color=rx.match(day.state, ("open", rx.color("grass", 11)), ("full", rx.color("amber", 11)),
                           rx.color("gray", 10)),
            custom_attrs={"data-testid": "month-free"})),
        _month_bar(day),
        type="button", on_click=state.open_day(day.key), title=day.label,
        color=rx.color("gray", 12),
        display="flex", flex_direction="column", gap="0.25rem", align_items="stretch", text_align="start",
        width="100%", min_width="0", overflow="hidden", font="inherit", cursor="pointer",
        min_height=rx.breakpoints(initial="3.75rem", sm="7.5rem", md="8.5rem"),
        padding=rx.breakpoints(initial="0.25rem", sm="0.4rem"),
        border=rx.cond(day.today, f"2px solid {rx.color('accent', 8)}", f"1px solid {rx.color('gray', 5)}"),
        border_radius="var(--radius-2)",
        background=rx.cond(day.state == "closed", _stripes(),
                           rx.cond(day.in_month, rx.color("gray", 1), rx.color("gray", 2))),
        opacity=rx.cond(day.in_month, "1", "0.6"),
        _hover={"border_color": rx.color("accent", 8), "box_shadow": f"0 1px 6px {rx.color('gray', 5)}"},
        custom_attrs={"data-testid": "month-day", "data-day": day.key, "data-state": day.state,
                      "data-in-month": rx.cond(day.in_month, "true", "false"),
                      "data-today": rx.cond(day.today, "true", "false")},
    )


def _legend_item(swatch: rx.Component, msgid: str) -> rx.Component:
    return rx.hstack(swatch, rx.text(T(msgid), size="1", color_scheme="gray"), spacing="1", align="center")


def _month_view() -> rx.Component:
    state = ProviderBookingsState
    swatch = dict(width="0.9rem", height="0.6rem", border_radius="2px", flex_shrink="0")
    return rx.vstack(
        rx.flex(
            rx.icon_button(rx.icon("chevron_left", class_name="flip-rtl"), variant="soft", on_click=state.shift_month(-1),
                           aria_label=T("Previous month"), custom_attrs={"data-testid": "month-prev"}),
            rx.button(T("This month"), variant="soft", on_click=state.shift_month(0),
                      custom_attrs={"data-testid": "month-today"}),
            rx.icon_button(rx.icon("chevron_right", class_name="flip-rtl"), variant="soft", on_click=state.shift_month(1),
                           aria_label=T("Next month"), custom_attrs={"data-testid": "month-next"}),
            rx.heading(state.month_title, size="4", as_="h2", custom_attrs={"data-testid": "month-title"}),
            spacing="2", align="center", wrap="wrap",
        ),
        error_callout(state.error),
        rx.cond(state.month_note != "", rx.text(state.month_note, size="2", color_scheme="gray",
                                            custom_attrs={"data-testid": "month-note"})),
        rx.grid(
            rx.foreach(state.month_weekdays, lambda w: rx.box(
                rx.text(w["short"], display=rx.breakpoints(initial="block", sm="none")),
                rx.text(w["long"], display=rx.breakpoints(initial="none", sm="block")),
                text_align="center", font_size="var(--font-size-1)", font_weight="500", color=rx.color("gray", 11),
                overflow="hidden", white_space="nowrap", min_width="0", aria_hidden="true",
            )),
            rx.foreach(state.month, _month_day),
            columns="7", gap=rx.breakpoints(initial="3px", sm="0.4rem"), width="100%",
            grid_template_columns="repeat(7, minmax(0, 1fr))", custom_attrs={"data-testid": "month-grid"},
        ),
        rx.flex(
            _legend_item(rx.box(background=rx.color("grass", 9), **swatch), N_("Free time")),
            _legend_item(rx.box(background=rx.color("accent", 6), **swatch), N_("Booked")),
            _legend_item(rx.box(background=_stripes(2, 6), border=f"1px solid {rx.color('gray', 6)}", **swatch),
                         N_("Closed")),
            rx.text(T("Pick a day to see its week."), size="1", color_scheme="gray"),
            spacing="4", wrap="wrap", align="center",
        ),
        spacing="3", width="100%", custom_attrs={"data-testid": "month-view"},
    )


def _zone_bar() -> rx.Component:
    """Which zone the times are in; a picker when the bookables' zones differ (week/month)."""
    state = ProviderBookingsState
    return rx.flex(
        rx.hstack(
            rx.icon("globe", size=16, color=rx.color("gray", 11), aria_hidden="true", flex_shrink="0"),
            rx.text(rx.cond(state.mode == "list", T("Each booking's time is in its bookable's time zone."), state.zone_label),
                    size="2", custom_attrs={"data-testid": "zone-label"}),
            spacing="2", align="center",
        ),
        rx.cond((state.mode != "list") & (state.zone_options.length() > 1), rx.el.select(
            rx.foreach(state.zone_options, lambda o: rx.el.option(o["label"], value=o["value"])),
            value=state.zone, on_change=state.set_zone, aria_label=T("Time zone"), class_name="lang-select",
            max_width="18rem", custom_attrs={"data-testid": "zone-picker"})),
        spacing="2", align="center", wrap="wrap", width="100%",
    )


def _mode_switch() -> rx.Component:
    state = ProviderBookingsState
    return rx.hstack(
        rx.button(rx.icon("list", size=16), T("List"), variant=rx.cond(state.mode == "list", "solid", "soft"),
                  on_click=state.set_mode("list"), aria_pressed=rx.cond(state.mode == "list", "true", "false"),
                  custom_attrs={"data-testid": "mode-list"}),
        rx.button(rx.icon("calendar_days", size=16), T("Week"), variant=rx.cond(state.mode == "week", "solid", "soft"),
                  on_click=state.set_mode("week"), aria_pressed=rx.cond(state.mode == "week", "true", "false"),
                  custom_attrs={"data-testid": "mode-week"}),
        rx.button(rx.icon("calendar", size=16), T("Month"), variant=rx.cond(state.mode == "month", "solid", "soft"),
                  on_click=state.set_mode("month"), aria_pressed=rx.cond(state.mode == "month", "true", "false"),
                  custom_attrs={"data-testid": "mode-month"}),
        spacing="2", wrap="wrap",
    )


def bookings_page() -> rx.Component:
    state = ProviderBookingsState
    return guarded(state, rx.vstack(
        staff_header(N_("Bookings"), PROVIDER_TABS, paths.PROVIDER_BOOKINGS, _mode_switch()),
        _zone_bar(),
        rx.match(state.mode, ("week", _week_view()), ("month", _month_view()), _list_view()),
        spacing="4", width="100%",
    ))


def _list_view() -> rx.Component:
    state = ProviderBookingsState
    return rx.vstack(
        rx.form(
            rx.flex(
                rx.vstack(rx.el.label(T("Status"), html_for="f-status", class_name="field-label"),
                          rx.el.select(*status_options(N_("All statuses"), STATUS_LABELS), id="f-status",
                                       name="status", value=state.status, on_change=state.set_status,
                                       class_name="native-select",
                                       custom_attrs={"data-testid": "filter-status"}),
                          spacing="1", min_width="10rem"),
                *date_range_fields(state, "f", "filter"),
                rx.button(rx.icon("filter", size=16), T("Show"), type="submit", size="3",
                          custom_attrs={"data-testid": "apply-filters"}),
                spacing="3", align="end", wrap="wrap",
            ),
            on_submit=state.apply_filters, reset_on_submit=False, width="100%",
        ),
        ok_callout(state.message),
        error_callout(state.error),
        rx.text(T("Bookings found:"), " ", state.total, size="2", color_scheme="gray",
                custom_attrs={"data-testid": "bookings-total"}),
        scroll_table(
            rx.table.header(rx.table.row(
                th(N_("When")), th(N_("Bookable")), th(N_("Customer")), th(N_("Seats")), th(N_("Status")),
                th(N_("Price")), th(N_("Actions")),
            )),
            rx.table.body(
                rx.foreach(state.rows, _booking_row),
                rx.cond(state.rows.length() == 0, empty_row(7, N_("No bookings match these filters."))),
            ),
            testid="provider-bookings", label=N_("Bookings"), stack=True,
        ),
        spacing="4", width="100%",
    )


def register(add) -> None:
    add(bookings_page, paths.PROVIDER_BOOKINGS, N_("Bookings"), ProviderBookingsState.load)
