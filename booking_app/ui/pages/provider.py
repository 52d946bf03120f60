"""Provider pages: My bookables, one bookable (details, opening hours, closed days and
special hours, event sessions) and the bookings of my bookables. Also the small pieces
shared with the admin pages (section tabs, scrolling tables, badges)."""
from __future__ import annotations

import reflex as rx

from booking_app.i18n import N_
from booking_app.ui import routes
from booking_app.ui.components import T, error_callout
from booking_app.ui.state.base import AppState
from booking_app.ui.state.provider import (
    STATUS_LABELS,
    BookableEditorState,
    ProviderBookablesState,
    ProviderBookingsState,
)

PROVIDER_TABS = [(N_("My bookables"), routes.PROVIDER), (N_("Bookings"), routes.PROVIDER_BOOKINGS)]
ADMIN_TABS = [(N_("Dashboard"), routes.ADMIN_DASHBOARD), (N_("Reports"), routes.ADMIN_REPORTS),
              (N_("Users"), routes.ADMIN_USERS), (N_("Outbox"), routes.ADMIN_OUTBOX),
              (N_("Audit trail"), routes.ADMIN_AUDIT),
              (N_("Catalog"), routes.PROVIDER)]


# ---- shared pieces -----------------------------------------------------------------------

def section_tabs(tabs: list[tuple[str, str]], current: str) -> rx.Component:
    """Sub-navigation of a staff area (scrolls sideways on a phone, never the page)."""
    return rx.box(
        rx.hstack(
            *[rx.link(T(msgid), href=href, underline="none", class_name="nav-link", white_space="nowrap",
                      weight=("bold" if href == current else "regular"),
                      aria_current=("page" if href == current else None),
                      color=(rx.color("accent", 11) if href == current else rx.color("gray", 12)))
              for msgid, href in tabs],
            spacing="5", padding_bottom="0.25rem",
        ),
        overflow_x="auto", width="100%", border_bottom=f"1px solid {rx.color('gray', 5)}",
        custom_attrs={"data-testid": "section-tabs"},
    )


def staff_header(msgid: str, tabs: list[tuple[str, str]], current: str, *extra) -> rx.Component:
    return rx.vstack(
        rx.cond(AppState.role == "admin", section_tabs(ADMIN_TABS, current), section_tabs(tabs, current)),
        rx.flex(rx.heading(T(msgid), size="7", as_="h1"), rx.spacer(), *extra, align="center", wrap="wrap",
                spacing="3", width="100%"),
        spacing="3", width="100%",
    )


def scroll_table(*children, testid: str = "table", **props) -> rx.Component:
    """A table that scrolls inside its own box on narrow screens."""
    return rx.box(
        rx.table.root(*children, variant="surface", size="2", width="100%", **props),
        overflow_x="auto", width="100%", max_width="100%",
        custom_attrs={"data-testid": testid, "tabindex": "0"},
    )


def th(msgid: str, **props) -> rx.Component:
    return rx.table.column_header_cell(T(msgid), white_space="nowrap", **props)


def ok_callout(message: rx.Var) -> rx.Component:
    return rx.cond(message != "", rx.callout(message, icon="circle_check", color_scheme="grass", width="100%",
                                             role="status", custom_attrs={"data-testid": "form-ok"}))


def denied(message: rx.Var) -> rx.Component:
    return rx.callout(message, icon="lock", color_scheme="amber", width="100%", role="alert",
                      custom_attrs={"data-testid": "denied"})


def empty_row(colspan: int, msgid: str) -> rx.Component:
    return rx.table.row(rx.table.cell(rx.text(T(msgid), color_scheme="gray", size="2"), col_span=colspan))


def guarded(state, body: rx.Component) -> rx.Component:
    return rx.cond(state.denied != "", denied(state.denied), body)


def _field_error(state, name: str) -> rx.Component:
    return rx.cond(state.errors.contains(name),
                   rx.text(state.errors[name], color_scheme="red", size="2", role="alert",
                           custom_attrs={"data-testid": f"error-{name}"}))


# ---- My bookables ----------------------------------------------------------------------------

def _bookable_row(item: dict) -> rx.Component:
    S = ProviderBookablesState
    busy = S.busy_id.to_string() == item["id"]
    return rx.table.row(
        rx.table.cell(rx.link(item["name"], href=routes.PROVIDER_BOOKABLE + "?id=" + item["id"], weight="medium"),
                      custom_attrs={"data-testid": "bookable-name"}),
        rx.table.cell(item["kind"]),
        rx.cond(S.is_admin_view, rx.table.cell(item["provider"])),
        rx.table.cell(item["duration"], white_space="nowrap"),
        rx.table.cell(item["capacity"]),
        rx.table.cell(item["price"], white_space="nowrap"),
        rx.table.cell(rx.badge(item["status"], color_scheme=rx.cond(item["active"] != "", "grass", "gray"))),
        rx.table.cell(
            rx.hstack(
                rx.link(rx.button(T("Edit"), size="1", variant="soft"),
                        href=routes.PROVIDER_BOOKABLE + "?id=" + item["id"]),
                rx.cond(
                    item["active"] != "",
                    rx.button(T("Deactivate"), size="1", variant="soft", color_scheme="red", loading=busy,
                              disabled=S.busy_id > 0, on_click=S.deactivate(item["id"]),
                              custom_attrs={"data-testid": "deactivate"}),
                    rx.button(T("Activate"), size="1", variant="soft", loading=busy, disabled=S.busy_id > 0,
                              on_click=S.reactivate(item["id"]), custom_attrs={"data-testid": "reactivate"}),
                ),
                spacing="2",
            ),
        ),
        custom_attrs={"data-testid": "bookable-row"},
    )


def bookables_page() -> rx.Component:
    S = ProviderBookablesState
    return guarded(S, rx.vstack(
        staff_header(N_("My bookables"), PROVIDER_TABS, routes.PROVIDER,
                     rx.link(rx.button(rx.icon("plus", size=16), T("New bookable"), size="3"),
                             href=routes.PROVIDER_BOOKABLE, custom_attrs={"data-testid": "new-bookable"})),
        ok_callout(S.message),
        error_callout(S.error),
        rx.checkbox(T("Show inactive ones too"), checked=S.show_inactive, on_change=S.toggle_inactive),
        scroll_table(
            rx.table.header(rx.table.row(
                th(N_("Name")), th(N_("Kind")), rx.cond(S.is_admin_view, th(N_("Provider"))), th(N_("Duration")),
                th(N_("Capacity")), th(N_("Price")), th(N_("Status")), th(N_("Actions")),
            )),
            rx.table.body(
                rx.foreach(S.items, _bookable_row),
                rx.cond(S.items.length() == 0, empty_row(8, N_("Nothing here yet. Create your first bookable."))),
            ),
            testid="bookables",
        ),
        spacing="4", width="100%",
    ))


# ---- one bookable ------------------------------------------------------------------------------

def _input(state, msgid: str, name: str, *, type: str = "text", hint: str | None = None, **props) -> rx.Component:
    return rx.vstack(
        rx.el.label(T(msgid), html_for=f"field-{name}", class_name="field-label"),
        rx.input(id=f"field-{name}", name=name, type=type, default_value=state.form[name], size="3", width="100%",
                 aria_invalid=rx.cond(state.errors.contains(name), "true", "false"), **props),
        *([rx.text(T(hint), size="1", color_scheme="gray")] if hint else []),
        _field_error(state, name),
        spacing="1", width="100%", align="stretch",
    )


def _details_form() -> rx.Component:
    S = BookableEditorState
    grid = dict(columns=rx.breakpoints(initial="1", sm="2", md="3"), spacing="3", width="100%")
    return rx.card(
        rx.form(
            rx.vstack(
                rx.heading(T("Details"), size="5", as_="h2"),
                ok_callout(S.saved),
                error_callout(S.form_error),
                rx.grid(
                    rx.vstack(
                        rx.el.label(T("Kind"), html_for="field-kind", class_name="field-label"),
                        rx.el.select(
                            rx.el.option(T("Service"), value="service"), rx.el.option(T("Room"), value="room"),
                            rx.el.option(T("Event"), value="event"),
                            id="field-kind", name="kind", value=S.kind, on_change=S.set_kind,
                            disabled=~S.is_new, class_name="native-select",
                        ),
                        rx.cond(S.is_new, rx.text(T("The kind can't be changed later."), size="1",
                                                  color_scheme="gray")),
                        _field_error(S, "kind"),
                        spacing="1", width="100%",
                    ),
                    _input(S, N_("Name"), "name", required=True, max_length=200),
                    _input(S, N_("Location"), "location", max_length=200),
                    **grid,
                ),
                rx.vstack(
                    rx.el.label(T("Description"), html_for="field-description", class_name="field-label"),
                    rx.text_area(id="field-description", name="description", default_value=S.form["description"],
                                 rows="3", width="100%", max_length=5000),
                    _field_error(S, "description"),
                    spacing="1", width="100%",
                ),
                rx.grid(
                    _input(S, N_("Duration (minutes)"), "duration_minutes", type="number", min=1,
                           input_mode="numeric"),
                    _input(S, N_("Capacity"),
                           "capacity", type="number", min=1, hint=N_("How many can book the same time.")),
                    _input(S, N_("Price"), "price", input_mode="decimal", hint=N_("Per person for events.")),
                    _input(S, N_("Currency"), "currency", max_length=3, hint=N_("ISO code, e.g. EUR or USD.")),
                    rx.vstack(
                        rx.el.label(T("Time zone"), html_for="field-timezone", class_name="field-label"),
                        rx.el.select(rx.foreach(S.timezones, lambda tz: rx.el.option(tz, value=tz)),
                                     id="field-timezone", name="timezone", default_value=S.form["timezone"],
                                     class_name="native-select"),
                        _field_error(S, "timezone"),
                        spacing="1", width="100%",
                    ),
                    _input(S, N_("Buffer between bookings (minutes)"), "buffer_minutes", type="number", min=0),
                    **grid,
                ),
                rx.heading(T("Booking policy"), size="4", as_="h3"),
                rx.grid(
                    _input(S, N_("Minimum notice (minutes)"), "min_notice_minutes", type="number", min=0),
                    _input(S, N_("Book at most (days ahead)"), "max_advance_days", type="number", min=1),
                    _input(S, N_("Cancellation cut-off (hours before)"), "cancel_cutoff_hours", type="number",
                           min=0),
                    _input(S, N_("Refund on cancellation (%)"), "refund_percent", type="number", min=0, max=100),
                    **grid,
                ),
                rx.heading(T("Reminders"), size="4", as_="h3"),
                rx.vstack(
                    rx.el.label(T("Hours before the start"), html_for="field-reminder_hours", class_name="field-label"),
                    rx.input(id="field-reminder_hours", name="reminder_hours", default_value=S.form["reminder_hours"],
                             size="3", width="100%", max_length=200, auto_complete="off",
                             aria_describedby="hint-reminder_hours",
                             aria_invalid=rx.cond(S.errors.contains("reminder_hours"), "true", "false")),
                    rx.text(S.reminder_hint, id="hint-reminder_hours", size="1", color_scheme="gray"),
                    _field_error(S, "reminder_hours"),
                    spacing="1", width="100%", max_width="32em", align="stretch",
                ),
                rx.flex(
                    rx.button(rx.cond(S.is_new, T("Create"), T("Save changes")), type="submit", size="3",
                              loading=S.saving, disabled=S.saving, custom_attrs={"data-testid": "save-bookable"}),
                    rx.link(T("Back to my bookables"), href=routes.PROVIDER, size="2"),
                    spacing="4", align="center", wrap="wrap",
                ),
                spacing="3", width="100%", align="stretch",
            ),
            on_submit=S.save, reset_on_submit=False, key=S.form_key.to_string(),
            custom_attrs={"data-testid": "bookable-form", "novalidate": "true"},
        ),
        width="100%",
    )


def _range_row(day, rng, index) -> rx.Component:
    S = BookableEditorState
    return rx.hstack(
        rx.input(type="time", value=rng.start, size="2", width="7.5rem",
                 on_change=lambda v: S.set_range(day.weekday, index, "start", v),
                 aria_label=T("Opens at"), custom_attrs={"data-testid": "range-start"}),
        rx.text("–"),
        rx.input(type="time", value=rng.end, size="2", width="7.5rem",
                 on_change=lambda v: S.set_range(day.weekday, index, "end", v),
                 aria_label=T("Closes at"), custom_attrs={"data-testid": "range-end"}),
        rx.icon_button(rx.icon("x", size=14), size="1", variant="ghost", color_scheme="gray",
                       on_click=S.remove_range(day.weekday, index), aria_label=T("Remove these hours"),
                       type="button"),
        spacing="2", align="center",
    )


def _day_row(day) -> rx.Component:
    S = BookableEditorState
    return rx.flex(
        rx.text(day.label, weight="medium", min_width="7rem", padding_top="0.35rem"),
        rx.vstack(
            rx.cond(day.ranges.length() == 0, rx.text(T("Closed"), color_scheme="gray", size="2",
                                                       padding_top="0.35rem")),
            rx.foreach(day.ranges, lambda rng, i: _range_row(day, rng, i)),
            rx.hstack(
                rx.button(rx.icon("plus", size=14), T("Add hours"), size="1", variant="ghost", type="button",
                          on_click=S.add_range(day.weekday), custom_attrs={"data-testid": "add-range"}),
                rx.cond((day.weekday == 0) & (day.ranges.length() > 0),
                        rx.button(T("Copy to Monday–Friday"), size="1", variant="ghost", type="button",
                                  on_click=S.copy_to_weekdays(0), custom_attrs={"data-testid": "copy-weekdays"})),
                spacing="2", wrap="wrap",
            ),
            spacing="1",
        ),
        direction=rx.breakpoints(initial="column", sm="row"), spacing="2", width="100%",
        padding_y="0.5rem", border_bottom=f"1px solid {rx.color('gray', 4)}",
        custom_attrs={"data-testid": "day-row"},
    )


def _exception_row(exc, index) -> rx.Component:
    S = BookableEditorState
    return rx.flex(
        rx.input(type="date", value=exc.date, size="2", width="10rem",
                 on_change=lambda v: S.set_exception(index, "date", v), aria_label=T("Date")),
        rx.el.select(
            rx.el.option(T("Closed all day"), value="closed"), rx.el.option(T("Special hours"), value="open"),
            value=rx.cond(exc.closed, "closed", "open"), on_change=lambda v: S.set_exception(index, "closed", v),
            class_name="lang-select", aria_label=T("Closed or special hours"),
        ),
        rx.cond(~exc.closed, rx.hstack(
            rx.input(type="time", value=exc.start, size="2", width="7.5rem",
                     on_change=lambda v: S.set_exception(index, "start", v), aria_label=T("Opens at")),
            rx.text("–"),
            rx.input(type="time", value=exc.end, size="2", width="7.5rem",
                     on_change=lambda v: S.set_exception(index, "end", v), aria_label=T("Closes at")),
            spacing="2", align="center",
        )),
        rx.icon_button(rx.icon("trash_2", size=14), size="1", variant="ghost", color_scheme="red", type="button",
                       on_click=S.remove_exception(index), aria_label=T("Remove this date")),
        spacing="2", align="center", wrap="wrap", width="100%", custom_attrs={"data-testid": "exception-row"},
    )


def _hours_card() -> rx.Component:
    S = BookableEditorState
    return rx.card(
        rx.vstack(
            rx.heading(T("Opening hours"), size="5", as_="h2"),
            rx.cond(S.is_event,
                    rx.text(T("Events are booked by their sessions; weekly hours don't apply to them, but closed "
                              "days do."), size="2", color_scheme="gray"),
                    rx.text(T("Customers can book inside these hours (in the bookable's time zone)."), size="2",
                            color_scheme="gray")),
            rx.cond(~S.is_event, rx.box(rx.foreach(S.days, _day_row), width="100%")),
            rx.heading(T("Closed days and special hours"), size="4", as_="h3", margin_top="0.5rem"),
            rx.cond(S.exceptions.length() == 0, rx.text(T("None."), size="2", color_scheme="gray")),
            rx.foreach(S.exceptions, _exception_row),
            rx.button(rx.icon("calendar_plus", size=14), T("Add a date"), size="2", variant="soft", type="button",
                      on_click=S.add_exception, custom_attrs={"data-testid": "add-exception"}),
            error_callout(S.hours_error),
            ok_callout(S.hours_saved),
            rx.cond(
                S.outside.length() > 0,
                rx.callout(
                    rx.vstack(
                        rx.text(T("These bookings are now outside the opening hours. They are kept: contact the "
                                  "customers or cancel them."), weight="medium"),
                        rx.foreach(S.outside, lambda o: rx.text(o["reference"], " · ", o["when"], " · ",
                                                                 o["status"], size="2")),
                        spacing="1",
                    ),
                    icon="triangle_alert", color_scheme="amber", width="100%",
                    custom_attrs={"data-testid": "outside-warning"},
                ),
            ),
            rx.button(T("Save opening hours"), size="3", on_click=S.save_hours, loading=S.hours_saving,
                      disabled=S.hours_saving, custom_attrs={"data-testid": "save-hours"}),
            spacing="3", width="100%", align="start",
        ),
        width="100%",
    )


def _sessions_card() -> rx.Component:
    S = BookableEditorState
    return rx.card(
        rx.vstack(
            rx.heading(T("Sessions"), size="5", as_="h2"),
            rx.cond(S.sessions.length() == 0, rx.text(T("No upcoming sessions."), size="2", color_scheme="gray")),
            rx.foreach(S.sessions, lambda x: rx.hstack(rx.icon("calendar", size=14), rx.text(x["when"], size="2"),
                                                       rx.badge(x["capacity"], variant="soft"), spacing="2",
                                                       align="center", custom_attrs={"data-testid": "session"})),
            rx.flex(
                rx.input(type="date", value=S.session_date, on_change=S.set_session_date, size="2", width="10rem",
                         aria_label=T("Date")),
                rx.input(type="time", value=S.session_time, on_change=S.set_session_time, size="2", width="7.5rem",
                         aria_label=T("Start time")),
                rx.input(type="number", value=S.session_capacity, on_change=S.set_session_capacity, size="2",
                         width="6rem", min=1, aria_label=T("Seats")),
                rx.button(rx.icon("plus", size=14), T("Add session"), size="2", on_click=S.add_session,
                          loading=S.session_saving, disabled=S.session_saving,
                          custom_attrs={"data-testid": "add-session"}),
                spacing="2", wrap="wrap", align="center",
            ),
            error_callout(S.session_error),
            spacing="3", width="100%",
        ),
        width="100%",
    )


def bookable_page() -> rx.Component:
    S = BookableEditorState
    return guarded(S, rx.cond(
        S.not_found != "",
        rx.vstack(rx.callout(S.not_found, icon="circle_alert", color_scheme="red", width="100%", role="alert",
                             custom_attrs={"data-testid": "not-found"}),
                  rx.link(T("Back to my bookables"), href=routes.PROVIDER), spacing="3", width="100%"),
        rx.vstack(
            rx.cond(AppState.role == "admin", section_tabs(ADMIN_TABS, routes.PROVIDER),
                    section_tabs(PROVIDER_TABS, routes.PROVIDER)),
            rx.flex(
                rx.heading(S.title, size="7", as_="h1", dir="auto", custom_attrs={"data-testid": "editor-title"}),
                rx.cond(~S.is_new & ~S.is_active, rx.badge(T("Inactive"), color_scheme="gray")),
                spacing="3", align="center", wrap="wrap",
            ),
            _details_form(),
            rx.cond(~S.is_new, rx.cond(S.is_event, rx.vstack(_sessions_card(), _hours_card(), spacing="4",
                                                             width="100%"), _hours_card())),
            spacing="4", width="100%",
        ),
    ))


# ---- bookings ----------------------------------------------------------------------------------

def _booking_row(row: dict) -> rx.Component:
    S = ProviderBookingsState
    busy = S.busy_id.to_string() == row["id"]
    disabled = S.busy_id > 0
    return rx.table.row(
        rx.table.cell(rx.text(row["when"], white_space="nowrap"), rx.text(row["reference"], size="1",
                                                                           color_scheme="gray")),
        rx.table.cell(row["service"]),
        rx.table.cell(rx.text(row["customer"]), rx.text(row["contact"], size="1", color_scheme="gray")),
        rx.table.cell(row["seats"]),
        rx.table.cell(rx.badge(row["status_label"], color_scheme=row["status_color"],
                               custom_attrs={"data-testid": "status"})),
        rx.table.cell(rx.text(row["price"], white_space="nowrap"),
                      rx.text(row["payment_label"], size="1", color_scheme="gray",
                              custom_attrs={"data-testid": "payment"})),
        rx.table.cell(rx.hstack(
            rx.cond(row["can_pay"] != "", rx.button(T("Paid on site"), size="1", variant="soft", loading=busy,
                                                    disabled=disabled, on_click=S.mark_paid(row["id"]),
                                                    custom_attrs={"data-testid": "mark-paid"})),
            rx.cond(row["can_finish"] != "", rx.button(T("Completed"), size="1", variant="soft",
                                                       color_scheme="blue", loading=busy, disabled=disabled,
                                                       on_click=S.complete(row["id"]),
                                                       custom_attrs={"data-testid": "complete"})),
            rx.cond(row["can_finish"] != "", rx.button(T("No-show"), size="1", variant="soft",
                                                       color_scheme="orange", loading=busy, disabled=disabled,
                                                       on_click=S.no_show(row["id"]),
                                                       custom_attrs={"data-testid": "no-show"})),
            rx.cond(row["can_cancel"] != "", rx.button(T("Move"), size="1", variant="soft", color_scheme="gray",
                                                       disabled=disabled, on_click=S.ask_reschedule(row["id"]),
                                                       custom_attrs={"data-testid": "reschedule"})),
            rx.cond(row["can_cancel"] != "", rx.button(T("Cancel"), size="1", variant="soft", color_scheme="red",
                                                       disabled=disabled, on_click=S.ask_cancel(row["id"]),
                                                       custom_attrs={"data-testid": "cancel"})),
            spacing="2",
        )),
        custom_attrs={"data-testid": "booking-row", "data-reference": row["reference"]},
    )


def _cancel_dialog() -> rx.Component:
    S = ProviderBookingsState
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title(T("Cancel this booking?")),
            rx.alert_dialog.description(S.cancel_text, custom_attrs={"data-testid": "cancel-text"}),
            rx.form(
                rx.vstack(
                    error_callout(S.cancel_error),
                    rx.el.label(T("Reason (sent to the customer)"), html_for="cancel-reason",
                                class_name="field-label"),
                    rx.text_area(id="cancel-reason", name="reason", max_length=500, rows="3", width="100%"),
                    rx.flex(
                        rx.alert_dialog.cancel(rx.button(T("Keep the booking"), variant="soft", color_scheme="gray",
                                                         type="button")),
                        rx.button(T("Cancel booking"), color_scheme="red", type="submit", loading=S.busy_id > 0,
                                  disabled=S.busy_id > 0, custom_attrs={"data-testid": "confirm-cancel"}),
                        spacing="3", justify="end", wrap="wrap",
                    ),
                    spacing="2", width="100%", margin_top="1rem",
                ),
                on_submit=S.confirm_cancel, reset_on_submit=True,
            ),
            max_width="460px",
        ),
        open=S.cancel_open,
        on_open_change=S.set_cancel_open,
    )


def _reschedule_dialog() -> rx.Component:
    S = ProviderBookingsState
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(T("Move this booking")),
            rx.dialog.description(S.resched_text, size="2"),
            rx.vstack(
                error_callout(S.resched_error),
                rx.el.label(T("Date"), html_for="resched-date", class_name="field-label"),
                rx.input(id="resched-date", type="date", value=S.resched_date, on_change=S.set_resched_date,
                         size="3", custom_attrs={"data-testid": "resched-date"}),
                rx.el.label(T("Free times"), html_for="resched-slot", class_name="field-label"),
                rx.cond(
                    S.resched_slots.length() > 0,
                    rx.el.select(rx.foreach(S.resched_slots, lambda x: rx.el.option(x["label"], value=x["value"])),
                                 id="resched-slot", value=S.resched_choice, on_change=S.set_resched_choice,
                                 class_name="native-select", custom_attrs={"data-testid": "resched-slot"}),
                    rx.text(T("No free times on this day. Pick another day."), size="2", color_scheme="gray"),
                ),
                rx.flex(
                    rx.dialog.close(rx.button(T("Keep the time"), variant="soft", color_scheme="gray", type="button")),
                    rx.button(T("Move booking"), on_click=S.confirm_reschedule, loading=S.busy_id > 0,
                              disabled=(S.busy_id > 0) | (S.resched_choice == ""),
                              custom_attrs={"data-testid": "confirm-reschedule"}),
                    spacing="3", justify="end", wrap="wrap", width="100%",
                ),
                spacing="2", width="100%", margin_top="1rem",
            ),
            max_width="460px",
        ),
        open=S.resched_open,
        on_open_change=S.set_resched_open,
    )


def status_options(all_msgid: str, labels: dict[str, str]) -> list[rx.Component]:
    return [rx.el.option(T(all_msgid), value="")] + [rx.el.option(T(label), value=key)
                                                       for key, label in labels.items()]


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
    S = ProviderBookingsState
    return rx.vstack(
        rx.flex(
            rx.icon_button(rx.icon("chevron_left", class_name="flip-rtl"), variant="soft", on_click=S.shift_week(-1),
                           aria_label=T("Previous week"), custom_attrs={"data-testid": "week-prev"}),
            rx.button(T("This week"), variant="soft", on_click=S.shift_week(0)),
            rx.icon_button(rx.icon("chevron_right", class_name="flip-rtl"), variant="soft", on_click=S.shift_week(1),
                           aria_label=T("Next week"), custom_attrs={"data-testid": "week-next"}),
            rx.text(S.week_title, weight="medium", custom_attrs={"data-testid": "week-title"}),
            spacing="2", align="center", wrap="wrap",
        ),
        error_callout(S.error),
        rx.grid(rx.foreach(S.week, _week_day), columns=rx.breakpoints(initial="1", sm="2", md="7"), spacing="2",
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
    S = ProviderBookingsState
    wide = rx.breakpoints(initial="none", sm="flex")
    return rx.el.button(
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
        type="button", on_click=S.open_day(day.key), aria_label=day.label, title=day.label,
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
    S = ProviderBookingsState
    swatch = dict(width="0.9rem", height="0.6rem", border_radius="2px", flex_shrink="0")
    return rx.vstack(
        rx.flex(
            rx.icon_button(rx.icon("chevron_left", class_name="flip-rtl"), variant="soft", on_click=S.shift_month(-1),
                           aria_label=T("Previous month"), custom_attrs={"data-testid": "month-prev"}),
            rx.button(T("This month"), variant="soft", on_click=S.shift_month(0),
                      custom_attrs={"data-testid": "month-today"}),
            rx.icon_button(rx.icon("chevron_right", class_name="flip-rtl"), variant="soft", on_click=S.shift_month(1),
                           aria_label=T("Next month"), custom_attrs={"data-testid": "month-next"}),
            rx.heading(S.month_title, size="4", as_="h2", custom_attrs={"data-testid": "month-title"}),
            spacing="2", align="center", wrap="wrap",
        ),
        error_callout(S.error),
        rx.cond(S.month_note != "", rx.text(S.month_note, size="2", color_scheme="gray",
                                            custom_attrs={"data-testid": "month-note"})),
        rx.grid(
            rx.foreach(S.month_weekdays, lambda w: rx.box(
                rx.text(w["short"], display=rx.breakpoints(initial="block", sm="none")),
                rx.text(w["long"], display=rx.breakpoints(initial="none", sm="block")),
                text_align="center", font_size="var(--font-size-1)", font_weight="500", color=rx.color("gray", 11),
                overflow="hidden", white_space="nowrap", min_width="0", aria_hidden="true",
            )),
            rx.foreach(S.month, _month_day),
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


def _mode_switch() -> rx.Component:
    S = ProviderBookingsState
    return rx.hstack(
        rx.button(rx.icon("list", size=16), T("List"), variant=rx.cond(S.mode == "list", "solid", "soft"),
                  on_click=S.set_mode("list"), aria_pressed=rx.cond(S.mode == "list", "true", "false"),
                  custom_attrs={"data-testid": "mode-list"}),
        rx.button(rx.icon("calendar_days", size=16), T("Week"), variant=rx.cond(S.mode == "week", "solid", "soft"),
                  on_click=S.set_mode("week"), aria_pressed=rx.cond(S.mode == "week", "true", "false"),
                  custom_attrs={"data-testid": "mode-week"}),
        rx.button(rx.icon("calendar", size=16), T("Month"), variant=rx.cond(S.mode == "month", "solid", "soft"),
                  on_click=S.set_mode("month"), aria_pressed=rx.cond(S.mode == "month", "true", "false"),
                  custom_attrs={"data-testid": "mode-month"}),
        spacing="2", wrap="wrap",
    )


def bookings_page() -> rx.Component:
    S = ProviderBookingsState
    return guarded(S, rx.vstack(
        staff_header(N_("Bookings"), PROVIDER_TABS, routes.PROVIDER_BOOKINGS, _mode_switch()),
        rx.match(S.mode, ("week", _week_view()), ("month", _month_view()), _list_view()),
        _cancel_dialog(),
        _reschedule_dialog(),
        spacing="4", width="100%",
    ))


def _list_view() -> rx.Component:
    S = ProviderBookingsState
    return rx.vstack(
        rx.form(
            rx.flex(
                rx.vstack(rx.el.label(T("Status"), html_for="f-status", class_name="field-label"),
                          rx.el.select(*status_options(N_("All statuses"), STATUS_LABELS), id="f-status",
                                       name="status", value=S.status, on_change=S.set_status,
                                       class_name="native-select",
                                       custom_attrs={"data-testid": "filter-status"}),
                          spacing="1", min_width="10rem"),
                rx.vstack(rx.el.label(T("From"), html_for="f-from", class_name="field-label"),
                          rx.input(id="f-from", name="date_from", type="date", value=S.date_from, size="3",
                                   on_change=S.set_date_from, custom_attrs={"data-testid": "filter-from"}),
                          spacing="1"),
                rx.vstack(rx.el.label(T("To"), html_for="f-to", class_name="field-label"),
                          rx.input(id="f-to", name="date_to", type="date", value=S.date_to, size="3",
                                   on_change=S.set_date_to, custom_attrs={"data-testid": "filter-to"}),
                          spacing="1"),
                rx.button(rx.icon("filter", size=16), T("Show"), type="submit", size="3",
                          custom_attrs={"data-testid": "apply-filters"}),
                spacing="3", align="end", wrap="wrap",
            ),
            on_submit=S.apply_filters, reset_on_submit=False, width="100%",
        ),
        ok_callout(S.message),
        error_callout(S.error),
        rx.text(T("Bookings found:"), " ", S.total, size="2", color_scheme="gray",
                custom_attrs={"data-testid": "bookings-total"}),
        scroll_table(
            rx.table.header(rx.table.row(
                th(N_("When")), th(N_("Bookable")), th(N_("Customer")), th(N_("Seats")), th(N_("Status")),
                th(N_("Price")), th(N_("Actions")),
            )),
            rx.table.body(
                rx.foreach(S.rows, _booking_row),
                rx.cond(S.rows.length() == 0, empty_row(7, N_("No bookings match these filters."))),
            ),
            testid="provider-bookings",
        ),
        spacing="4", width="100%",
    )


def register(add) -> None:
    add(bookables_page, routes.PROVIDER, N_("My bookables"), ProviderBookablesState.load)
    add(bookable_page, routes.PROVIDER_BOOKABLE, N_("Bookable"), BookableEditorState.load)
    add(bookings_page, routes.PROVIDER_BOOKINGS, N_("Bookings"), ProviderBookingsState.load)
