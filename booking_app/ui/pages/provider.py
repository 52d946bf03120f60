"""Provider pages: My bookables and one bookable (details, opening hours, closed days and
special hours, event sessions). The bookings page is ui/pages/provider_bookings.py."""
from __future__ import annotations

import reflex as rx

from booking_app.i18n import N_
from booking_app.ui import paths
from booking_app.ui.components import T, error_callout, ok_callout
from booking_app.ui.components.questions import questions_editor
from booking_app.ui.components.payment_summary import editor_inputs  # deposits and fees (issue 26)
from booking_app.ui.components.security import reauth_dialog
from booking_app.ui.components.staff import (
    ADMIN_TABS,
    PROVIDER_TABS,
    empty_row,
    guarded,
    scroll_table,
    section_tabs,
    staff_header,
    th,
)
from booking_app.ui.state.base import AppState
from booking_app.ui.state.bookable_editor import BookableEditorState
from booking_app.ui.state.provider_bookables import ProviderBookablesState


def _field_error(state, name: str) -> rx.Component:
    return rx.cond(state.errors.contains(name),
                   rx.text(state.errors[name], color_scheme="red", size="2", role="alert",
                           custom_attrs={"data-testid": f"error-{name}"}))


# ---- My bookables ----------------------------------------------------------------------------

def _bookable_row(item: dict) -> rx.Component:
    state = ProviderBookablesState
    busy = state.busy_id.to_string() == item["id"]
    return rx.table.row(
        rx.table.cell(rx.link(item["name"], href=paths.PROVIDER_BOOKABLE + "?id=" + item["id"], weight="medium"),
                      custom_attrs={"data-testid": "bookable-name"}),
        rx.table.cell(item["kind"]),
        rx.cond(state.is_admin_view, rx.table.cell(item["provider"])),
        rx.table.cell(item["duration"], white_space="nowrap"),
        rx.table.cell(item["capacity"]),
        rx.table.cell(item["price"], white_space="nowrap"),
        rx.table.cell(rx.badge(item["status"], color_scheme=rx.cond(item["active"] != "", "grass", "gray"))),
        rx.table.cell(
            rx.hstack(
                rx.link(rx.button(T("Edit"), size="1", variant="soft"),
                        href=paths.PROVIDER_BOOKABLE + "?id=" + item["id"]),
                rx.cond(
                    item["active"] != "",
                    rx.button(T("Deactivate"), size="1", variant="soft", color_scheme="red", loading=busy,
                              disabled=state.busy_id > 0, on_click=state.deactivate(item["id"]),
                              custom_attrs={"data-testid": "deactivate"}),
                    rx.button(T("Activate"), size="1", variant="soft", loading=busy, disabled=state.busy_id > 0,
                              on_click=state.reactivate(item["id"]), custom_attrs={"data-testid": "reactivate"}),
                ),
                spacing="2",
            ),
        ),
        custom_attrs={"data-testid": "bookable-row"},
    )


def bookables_page() -> rx.Component:
    state = ProviderBookablesState
    return guarded(state, rx.vstack(
        staff_header(N_("My bookables"), PROVIDER_TABS, paths.PROVIDER,
                     rx.link(rx.button(rx.icon("plus", size=16), T("New bookable"), size="3"),
                             href=paths.PROVIDER_BOOKABLE, custom_attrs={"data-testid": "new-bookable"})),
        ok_callout(state.message),
        error_callout(state.error),
        rx.checkbox(T("Show inactive ones too"), checked=state.show_inactive, on_change=state.toggle_inactive),
        scroll_table(
            rx.table.header(rx.table.row(
                th(N_("Name")), th(N_("Kind")), rx.cond(state.is_admin_view, th(N_("Provider"))), th(N_("Duration")),
                th(N_("Capacity")), th(N_("Price")), th(N_("Status")), th(N_("Actions")),
            )),
            rx.table.body(
                rx.foreach(state.items, _bookable_row),
                rx.cond(state.items.length() == 0, empty_row(8, N_("Nothing here yet. Create your first bookable."))),
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
    state = BookableEditorState
    grid = dict(columns=rx.breakpoints(initial="1", sm="2", md="3"), spacing="3", width="100%")
    return rx.card(
        rx.form(
            rx.vstack(
                rx.heading(T("Details"), size="5", as_="h2"),
                ok_callout(state.saved),
                error_callout(state.form_error),
                rx.grid(
                    rx.vstack(
                        rx.el.label(T("Kind"), html_for="field-kind", class_name="field-label"),
                        rx.el.select(
                            rx.el.option(T("Service"), value="service"), rx.el.option(T("Room"), value="room"),
                            rx.el.option(T("Event"), value="event"),
                            id="field-kind", name="kind", value=state.kind, on_change=state.set_kind,
                            disabled=~state.is_new, class_name="native-select",
                        ),
                        rx.cond(state.is_new, rx.text(T("The kind can't be changed later."), size="1",
                                                  color_scheme="gray")),
                        _field_error(state, "kind"),
                        spacing="1", width="100%",
                    ),
                    _input(state, N_("Name"), "name", required=True, max_length=200),
                    _input(state, N_("Location"), "location", max_length=200),
                    **grid,
                ),
                rx.vstack(
                    rx.el.label(T("Description"), html_for="field-description", class_name="field-label"),
                    rx.text_area(id="field-description", name="description", default_value=state.form["description"],
                                 rows="3", width="100%", max_length=5000),
                    _field_error(state, "description"),
                    spacing="1", width="100%",
                ),
                rx.grid(
                    _input(state, N_("Duration (minutes)"), "duration_minutes", type="number", min=1,
                           input_mode="numeric"),
                    _input(state, N_("Capacity"),
                           "capacity", type="number", min=1, hint=N_("How many can book the same time.")),
                    _input(state, N_("Price"), "price", input_mode="decimal", hint=N_("Per person for events.")),
                    _input(state, N_("Currency"), "currency", max_length=3, hint=N_("ISO code, e.g. EUR or USD.")),
                    rx.vstack(
                        rx.el.label(T("Time zone"), html_for="field-timezone", class_name="field-label"),
                        rx.el.select(rx.foreach(state.timezones, lambda tz: rx.el.option(tz, value=tz)),
                                     id="field-timezone", name="timezone", default_value=state.form["timezone"],
                                     class_name="native-select"),
                        _field_error(state, "timezone"),
                        spacing="1", width="100%",
                    ),
                    _input(state, N_("Buffer between bookings (minutes)"), "buffer_minutes", type="number", min=0),
                    **grid,
                ),
                rx.heading(T("Booking policy"), size="4", as_="h3"),
                rx.grid(
                    _input(state, N_("Minimum notice (minutes)"), "min_notice_minutes", type="number", min=0),
                    _input(state, N_("Book at most (days ahead)"), "max_advance_days", type="number", min=1),
                    _input(state, N_("Cancellation cut-off (hours before)"), "cancel_cutoff_hours", type="number",
                           min=0),
                    _input(state, N_("Refund on cancellation (%)"), "refund_percent", type="number", min=0, max=100),
                    _input(state, N_("Hours a request waits for approval"), "approval_expiry_hours", type="number",
                           min=1, hint=N_("Empty: the default.")),
                    *editor_inputs(state, _input),  # deposits and fees (issue 26)
                    **grid,
                ),
                rx.el.label(  # approval (issue 24)
                    rx.el.input(type="checkbox", name="requires_approval",
                                default_checked=state.form["requires_approval"] == "1",
                                custom_attrs={"data-testid": "requires-approval"}),
                    rx.text(T("Bookings need my approval (they hold their places until I answer; payment follows "
                              "the approval)"), as_="span", size="2"),
                    style={"display": "flex", "gap": "0.5rem", "alignItems": "center"},
                ),
                rx.heading(T("Reminders"), size="4", as_="h3"),
                rx.vstack(
                    rx.el.label(T("Hours before the start"), html_for="field-reminder_hours", class_name="field-label"),
                    rx.input(id="field-reminder_hours", name="reminder_hours", default_value=state.form["reminder_hours"],
                             size="3", width="100%", max_length=200, auto_complete="off",
                             aria_describedby="hint-reminder_hours",
                             aria_invalid=rx.cond(state.errors.contains("reminder_hours"), "true", "false")),
                    rx.text(state.reminder_hint, id="hint-reminder_hours", size="1", color_scheme="gray"),
                    _field_error(state, "reminder_hours"),
                    spacing="1", width="100%", max_width="32em", align="stretch",
                ),
                rx.flex(
                    rx.button(rx.cond(state.is_new, T("Create"), T("Save changes")), type="submit", size="3",
                              loading=state.saving, disabled=state.saving, custom_attrs={"data-testid": "save-bookable"}),
                    rx.link(T("Back to my bookables"), href=paths.PROVIDER, size="2"),
                    spacing="4", align="center", wrap="wrap",
                ),
                spacing="3", width="100%", align="stretch",
            ),
            on_submit=state.save, reset_on_submit=False, key=state.form_key.to_string(),
            # data-form-key: which load the fields were filled by ("0": the page's state not loaded yet)
            custom_attrs={"data-testid": "bookable-form", "novalidate": "true",
                          "data-form-key": state.form_key.to_string()},
        ),
        width="100%",
    )


def _range_row(day, rng, index) -> rx.Component:
    state = BookableEditorState
    return rx.hstack(
        rx.input(type="time", value=rng.start, size="2", width="7.5rem",
                 on_change=lambda v: state.set_range(day.weekday, index, "start", v),
                 aria_label=T("Opens at"), custom_attrs={"data-testid": "range-start"}),
        rx.text("–"),
        rx.input(type="time", value=rng.end, size="2", width="7.5rem",
                 on_change=lambda v: state.set_range(day.weekday, index, "end", v),
                 aria_label=T("Closes at"), custom_attrs={"data-testid": "range-end"}),
        rx.icon_button(rx.icon("x", size=14), size="1", variant="ghost", color_scheme="gray",
                       on_click=state.remove_range(day.weekday, index), aria_label=T("Remove these hours"),
                       type="button"),
        spacing="2", align="center",
    )


def _day_row(day) -> rx.Component:
    state = BookableEditorState
    return rx.flex(
        rx.text(day.label, weight="medium", min_width="7rem", padding_top="0.35rem"),
        rx.vstack(
            rx.cond(day.ranges.length() == 0, rx.text(T("Closed"), color_scheme="gray", size="2",
                                                       padding_top="0.35rem")),
            rx.foreach(day.ranges, lambda rng, i: _range_row(day, rng, i)),
            rx.hstack(
                rx.button(rx.icon("plus", size=14), T("Add hours"), size="1", variant="ghost", type="button",
                          on_click=state.add_range(day.weekday), custom_attrs={"data-testid": "add-range"}),
                rx.cond((day.weekday == 0) & (day.ranges.length() > 0),
                        rx.button(T("Copy to Monday–Friday"), size="1", variant="ghost", type="button",
                                  on_click=state.copy_to_weekdays(0), custom_attrs={"data-testid": "copy-weekdays"})),
                spacing="2", wrap="wrap",
            ),
            spacing="1",
        ),
        direction=rx.breakpoints(initial="column", sm="row"), spacing="2", width="100%",
        padding_y="0.5rem", border_bottom=f"1px solid {rx.color('gray', 4)}",
        custom_attrs={"data-testid": "day-row"},
    )


def _exception_row(exc, index) -> rx.Component:
    state = BookableEditorState
    return rx.flex(
        rx.input(type="date", value=exc.date, size="2", width="10rem",
                 on_change=lambda v: state.set_exception(index, "date", v), aria_label=T("Date")),
        rx.el.select(
            rx.el.option(T("Closed all day"), value="closed"), rx.el.option(T("Special hours"), value="open"),
            value=rx.cond(exc.closed, "closed", "open"), on_change=lambda v: state.set_exception(index, "closed", v),
            class_name="lang-select", aria_label=T("Closed or special hours"),
        ),
        rx.cond(~exc.closed, rx.hstack(
            rx.input(type="time", value=exc.start, size="2", width="7.5rem",
                     on_change=lambda v: state.set_exception(index, "start", v), aria_label=T("Opens at")),
            rx.text("–"),
            rx.input(type="time", value=exc.end, size="2", width="7.5rem",
                     on_change=lambda v: state.set_exception(index, "end", v), aria_label=T("Closes at")),
            spacing="2", align="center",
        )),
        rx.icon_button(rx.icon("trash_2", size=14), size="1", variant="ghost", color_scheme="red", type="button",
                       on_click=state.remove_exception(index), aria_label=T("Remove this date")),
        spacing="2", align="center", wrap="wrap", width="100%", custom_attrs={"data-testid": "exception-row"},
    )


def _hours_card() -> rx.Component:
    state = BookableEditorState
    return rx.card(
        rx.vstack(
            rx.heading(T("Opening hours"), size="5", as_="h2"),
            rx.cond(state.is_event,
                    rx.text(T("Events are booked by their sessions; weekly hours don't apply to them, but closed "
                              "days do."), size="2", color_scheme="gray"),
                    rx.text(T("Customers can book inside these hours (in the bookable's time zone)."), size="2",
                            color_scheme="gray")),
            rx.cond(~state.is_event, rx.box(rx.foreach(state.days, _day_row), width="100%")),
            rx.heading(T("Closed days and special hours"), size="4", as_="h3", margin_top="0.5rem"),
            rx.cond(state.exceptions.length() == 0, rx.text(T("None."), size="2", color_scheme="gray")),
            rx.foreach(state.exceptions, _exception_row),
            rx.button(rx.icon("calendar_plus", size=14), T("Add a date"), size="2", variant="soft", type="button",
                      on_click=state.add_exception, custom_attrs={"data-testid": "add-exception"}),
            error_callout(state.hours_error),
            ok_callout(state.hours_saved),
            rx.cond(
                state.outside.length() > 0,
                rx.callout(
                    rx.vstack(
                        rx.text(T("These bookings are now outside the opening hours. They are kept: contact the "
                                  "customers or cancel them."), weight="medium"),
                        rx.foreach(state.outside, lambda o: rx.text(o["reference"], " · ", o["when"], " · ",
                                                                 o["status"], size="2")),
                        spacing="1",
                    ),
                    icon="triangle_alert", color_scheme="amber", width="100%",
                    custom_attrs={"data-testid": "outside-warning"},
                ),
            ),
            rx.button(T("Save opening hours"), size="3", on_click=state.save_hours, loading=state.hours_saving,
                      disabled=state.hours_saving, custom_attrs={"data-testid": "save-hours"}),
            spacing="3", width="100%", align="start",
        ),
        width="100%",
    )


def _new_hours_card() -> rx.Component:
    """A new room or service's weekly hours (Monday–Friday 9–17 to start), saved with it."""
    state = BookableEditorState
    return rx.card(
        rx.vstack(
            rx.heading(T("Opening hours"), size="5", as_="h2"),
            rx.text(T("Customers can book inside these hours (in the bookable's time zone)."), size="2",
                    color_scheme="gray"),
            rx.text(T("They are saved when you create the bookable; closed days can be added afterwards."),
                    size="2", color_scheme="gray"),
            rx.box(rx.foreach(state.days, _day_row), width="100%"),
            spacing="3", width="100%", align="start",
        ),
        width="100%", custom_attrs={"data-testid": "new-hours"},
    )


def _sessions_card() -> rx.Component:
    state = BookableEditorState
    return rx.card(
        rx.vstack(
            rx.heading(T("Sessions"), size="5", as_="h2"),
            rx.cond(state.sessions.length() == 0, rx.text(T("No upcoming sessions."), size="2", color_scheme="gray")),
            rx.foreach(state.sessions, lambda x: rx.hstack(rx.icon("calendar", size=14), rx.text(x["when"], size="2"),
                                                       rx.badge(x["capacity"], variant="soft"), spacing="2",
                                                       align="center", custom_attrs={"data-testid": "session"})),
            rx.flex(
                rx.input(type="date", value=state.session_date, on_change=state.set_session_date, size="2", width="10rem",
                         aria_label=T("Date")),
                rx.input(type="time", value=state.session_time, on_change=state.set_session_time, size="2", width="7.5rem",
                         aria_label=T("Start time")),
                rx.input(type="number", value=state.session_capacity, on_change=state.set_session_capacity, size="2",
                         width="6rem", min=1, aria_label=T("Seats")),
                rx.button(rx.icon("plus", size=14), T("Add session"), size="2", on_click=state.add_session,
                          loading=state.session_saving, disabled=state.session_saving,
                          custom_attrs={"data-testid": "add-session"}),
                spacing="2", wrap="wrap", align="center",
            ),
            error_callout(state.session_error),
            spacing="3", width="100%",
        ),
        width="100%",
    )


def bookable_page() -> rx.Component:
    state = BookableEditorState
    return guarded(state, rx.cond(
        state.not_found != "",
        rx.vstack(rx.callout(state.not_found, icon="circle_alert", color_scheme="red", width="100%", role="alert",
                             custom_attrs={"data-testid": "not-found"}),
                  rx.link(T("Back to my bookables"), href=paths.PROVIDER), spacing="3", width="100%"),
        rx.vstack(
            rx.cond(AppState.role == "admin", section_tabs(ADMIN_TABS, paths.PROVIDER),
                    section_tabs(PROVIDER_TABS, paths.PROVIDER)),
            rx.flex(
                rx.heading(state.title, size="7", as_="h1", dir="auto", custom_attrs={"data-testid": "editor-title"}),
                rx.cond(~state.is_new & ~state.is_active, rx.badge(T("Inactive"), color_scheme="gray")),
                spacing="3", align="center", wrap="wrap",
            ),
            _details_form(),
            rx.cond(~state.is_new, questions_editor()),  # issue 24: booking questions
            reauth_dialog(),
            rx.cond(~state.is_new, rx.cond(state.is_event, rx.vstack(_sessions_card(), _hours_card(), spacing="4",
                                                             width="100%"), _hours_card()),
                    rx.cond(~state.is_event, _new_hours_card())),
            spacing="4", width="100%",
        ),
    ))


def register(add) -> None:
    add(bookables_page, paths.PROVIDER, N_("My bookables"), ProviderBookablesState.load)
    add(bookable_page, paths.PROVIDER_BOOKABLE, N_("Bookable"), BookableEditorState.load)
