"""Admin pages: users, notification outbox, reports and the live dashboard."""
from __future__ import annotations

import reflex as rx

from booking_app.i18n import N_
from booking_app.ui import paths
from booking_app.ui.components import T, error_callout, ok_callout
from booking_app.ui.components.live_charts import chart_table, live_chart, window_switch
from booking_app.ui.components.security import reauth_dialog
from booking_app.ui.components.staff import (
    ADMIN_TABS,
    date_range_fields,
    empty_row,
    guarded,
    scroll_table,
    staff_header,
    status_options,
    td,
    th,
)
from booking_app.ui.state.admin import OUTBOX_LABELS, ROLE_LABELS, AdminUsersState, OutboxState
from booking_app.ui.state.admin_reports import DashboardState, ReportsState


# ---- users -----------------------------------------------------------------------------------

def _user_row(u: dict) -> rx.Component:
    state = AdminUsersState
    return rx.table.row(
        td(N_("Name"), rx.text(u["full_name"], weight="medium"), rx.text(u["username"], size="1",
                                                                        color_scheme="gray")),
        td(N_("Email"), rx.text(u["email"], word_break="break-all")),
        td(N_("Role"), rx.badge(u["role_label"], color_scheme=u["role_color"], custom_attrs={"data-testid": "role"})),
        td(N_("Status"), rx.cond(u["active"] != "", rx.badge(T("Active"), color_scheme="grass"),
                                 rx.badge(T("Deactivated"), color_scheme="gray"))),
        td(N_("Joined"), u["created"], white_space="nowrap"),
        td(N_("Actions"), rx.button(T("Details"), size="1", variant="soft", on_click=state.open_user(u["id"]),
                                    custom_attrs={"data-testid": "open-user"})),
        custom_attrs={"data-testid": "user-row", "data-username": u["username"]},
    )


def _user_detail() -> rx.Component:
    state = AdminUsersState
    u = state.user
    return rx.card(
        rx.vstack(
            rx.flex(
                rx.heading(rx.cond(u["full_name"] != "", u["full_name"], u["username"]), size="5", as_="h2",
                           dir="auto"),
                rx.badge(u["role_label"], color_scheme=u["role_color"], custom_attrs={"data-testid": "detail-role"}),
                rx.cond(u["active"] != "", rx.badge(T("Active"), color_scheme="grass"),
                        rx.badge(T("Deactivated"), color_scheme="gray", custom_attrs={"data-testid": "inactive"})),
                rx.spacer(),
                rx.icon_button(rx.icon("x", size=16), variant="ghost", on_click=state.close_user, aria_label=T("Close")),
                spacing="2", align="center", wrap="wrap", width="100%",
            ),
            rx.text(u["username"], " · ", u["email"], " · ", u["timezone"], size="2", color_scheme="gray"),
            ok_callout(state.detail_message),
            error_callout(state.detail_error),
            rx.flex(
                rx.el.label(T("Role"), html_for="role-choice", class_name="field-label"),
                rx.el.select(*[rx.el.option(T(label), value=key) for key, label in ROLE_LABELS.items()],
                             id="role-choice", value=state.role_choice, on_change=state.set_role_choice,
                             class_name="lang-select", custom_attrs={"data-testid": "role-choice"}),
                rx.button(T("Change role"), size="2", on_click=state.save_role, loading=state.detail_busy,
                          disabled=state.detail_busy | (state.role_choice == u["role"]),
                          custom_attrs={"data-testid": "save-role"}),
                rx.cond(
                    u["active"] != "",
                    rx.button(T("Deactivate"), size="2", variant="soft", color_scheme="red", on_click=state.deactivate_user,
                              loading=state.detail_busy, disabled=state.detail_busy,
                              custom_attrs={"data-testid": "deactivate-user"}),
                    rx.button(T("Reactivate"), size="2", variant="soft", on_click=state.reactivate_user,
                              loading=state.detail_busy, disabled=state.detail_busy,
                              custom_attrs={"data-testid": "reactivate-user"}),
                ),
                rx.cond(u["mfa"] != "",
                        rx.button(T("Turn off two-factor sign-in"), size="2", variant="soft", color_scheme="orange",
                                  on_click=state.reset_two_factor, loading=state.detail_busy, disabled=state.detail_busy,
                                  custom_attrs={"data-testid": "reset-2fa"})),
                spacing="3", align="center", wrap="wrap",
            ),
            rx.heading(T("Bookings"), size="4", as_="h3"),
            scroll_table(
                rx.table.header(rx.table.row(th(N_("When")), th(N_("Bookable")), th(N_("Customer")),
                                             th(N_("Reference")), th(N_("Status")), th(N_("Price")))),
                rx.table.body(
                    rx.foreach(state.user_bookings, lambda b: rx.table.row(
                        td(N_("When"), b["when"], white_space="nowrap"), td(N_("Bookable"), b["service"]),
                        td(N_("Customer"), rx.text(b["customer"]), rx.text(b["contact"], size="1",
                                                                          color_scheme="gray")),
                        td(N_("Reference"), b["reference"]),
                        td(N_("Status"), rx.badge(b["status_label"], color_scheme=b["status_color"])),
                        td(N_("Price"), rx.text(b["price"], white_space="nowrap"),
                           rx.text(b["payment_label"], size="1", color_scheme="gray")),
                    )),
                    rx.cond(state.user_bookings.length() == 0, empty_row(6, N_("No bookings."))),
                ),
                testid="user-bookings", label=N_("Bookings"), stack=True,
            ),
            rx.heading(T("Audit trail"), size="4", as_="h3"),
            scroll_table(
                rx.table.header(rx.table.row(th(N_("When")), th(N_("Action")), th(N_("Object")), th(N_("By")),
                                             th(N_("Details")))),
                rx.table.body(
                    rx.foreach(state.audit, lambda e: rx.table.row(
                        td(N_("When"), e["at"], white_space="nowrap"),
                        td(N_("Action"), rx.code(e["action"])), td(N_("Object"), e["entity"], white_space="nowrap"),
                        td(N_("By"), e["by"]),
                        td(N_("Details"), rx.text(e["data"], size="1", class_name="clamp-2", max_width="24rem",
                                                  word_break="break-all")),
                        custom_attrs={"data-testid": "audit-row"},
                    )),
                    rx.cond(state.audit.length() == 0, empty_row(5, N_("Nothing recorded."))),
                ),
                testid="user-audit", label=N_("Audit trail"), stack=True,
            ),
            spacing="3", width="100%",
        ),
        width="100%", id="user-detail", custom_attrs={"data-testid": "user-detail"},
    )


def users_page() -> rx.Component:
    state = AdminUsersState
    return guarded(state, rx.vstack(
        staff_header(N_("Users"), ADMIN_TABS, paths.ADMIN_USERS),
        reauth_dialog(),
        rx.form(
            rx.flex(
                rx.input(name="q", placeholder=T("Name, username or email"), default_value=state.q, size="3",
                         type="search", flex="1 1 14rem", aria_label=T("Search"),
                         custom_attrs={"data-testid": "user-search"}),
                rx.el.select(*status_options(N_("All roles"), ROLE_LABELS), name="role", default_value=state.role_filter,
                             class_name="lang-select", aria_label=T("Role")),
                rx.button(rx.icon("search", size=16), T("Search"), type="submit", size="3",
                          custom_attrs={"data-testid": "user-search-submit"}),
                spacing="3", align="center", wrap="wrap", width="100%",
            ),
            on_submit=state.search, reset_on_submit=False, width="100%",
        ),
        error_callout(state.error),
        rx.cond(state.user.length() > 0, _user_detail()),
        error_callout(rx.cond(state.user.length() > 0, "", state.detail_error)),
        rx.text(T("Users found:"), " ", state.total, size="2", color_scheme="gray"),
        scroll_table(
            rx.table.header(rx.table.row(th(N_("Name")), th(N_("Email")), th(N_("Role")), th(N_("Status")),
                                         th(N_("Joined")), th(N_("Actions")))),
            rx.table.body(
                rx.foreach(state.users, _user_row),
                rx.cond(state.users.length() == 0, empty_row(6, N_("No users match."))),
            ),
            testid="users", label=N_("Users"), stack=True,
        ),
        spacing="4", width="100%",
    ))


# ---- outbox ----------------------------------------------------------------------------------

def _outbox_row(n: dict) -> rx.Component:
    state = OutboxState
    return rx.table.row(
        rx.table.cell(n["id"]),
        rx.table.cell(n["created"], white_space="nowrap"),
        rx.table.cell(rx.badge(n["channel"], variant="outline")),
        rx.table.cell(rx.text(n["to"], max_width="14rem", class_name="clamp-2", word_break="break-all")),
        rx.table.cell(rx.text(n["template"], title=n["template_key"])),
        rx.table.cell(rx.badge(n["status_label"], color_scheme=n["status_color"],
                               custom_attrs={"data-testid": "status"})),
        rx.table.cell(n["attempts"]),
        rx.table.cell(rx.text(n["error"], size="1", color_scheme="red", max_width="18rem", class_name="clamp-2",
                              title=n["error"])),
        rx.table.cell(rx.cond(n["can_retry"] != "",
                              rx.button(T("Retry"), size="1", variant="soft", on_click=state.retry(n["id"]),
                                        loading=state.busy_id.to_string() == n["id"], disabled=state.busy_id > 0,
                                        custom_attrs={"data-testid": "retry"}))),
        custom_attrs={"data-testid": "outbox-row"},
    )


def outbox_page() -> rx.Component:
    state = OutboxState
    return guarded(state, rx.vstack(
        staff_header(N_("Outbox"), ADMIN_TABS, paths.ADMIN_OUTBOX,
                     rx.button(rx.icon("refresh_cw", size=16), T("Refresh"), variant="soft", on_click=state.refresh)),
        rx.form(
            rx.flex(
                rx.el.select(*status_options(N_("All statuses"), OUTBOX_LABELS), name="status",
                             default_value=state.status, class_name="lang-select", aria_label=T("Status"),
                             custom_attrs={"data-testid": "outbox-status"}),
                rx.input(name="q", placeholder=T("Recipient"), default_value=state.q, size="2", type="search",
                         flex="1 1 12rem", aria_label=T("Recipient")),
                rx.button(T("Show"), type="submit", size="2"),
                spacing="3", align="center", wrap="wrap", width="100%",
            ),
            on_submit=state.filter, reset_on_submit=False, width="100%",
        ),
        ok_callout(state.message),
        error_callout(state.error),
        rx.text(T("Messages found:"), " ", state.total, size="2", color_scheme="gray"),
        rx.text(T("Webhook events are not listed here: their deliveries are on the webhooks page."), " ",
                rx.link(T("Webhooks"), href=paths.ADMIN_WEBHOOKS, custom_attrs={"data-testid": "outbox-webhooks-link"}),
                size="2", color_scheme="gray"),
        scroll_table(
            rx.table.header(rx.table.row(th(N_("#")), th(N_("Created")), th(N_("Channel")), th(N_("To")),
                                         th(N_("Template")), th(N_("Status")), th(N_("Attempts")),
                                         th(N_("Last error")), th(N_("Actions")))),
            rx.table.body(
                rx.foreach(state.rows, _outbox_row),
                rx.cond(state.rows.length() == 0, empty_row(9, N_("No messages."))),
            ),
            testid="outbox", label=N_("Outbox"),
        ),
        spacing="4", width="100%",
    ))


# ---- reports ---------------------------------------------------------------------------------

def stat(msgid: str, value: rx.Var, testid: str, detail: rx.Var | None = None,
         color: str | None = None) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.text(T(msgid), size="2", color_scheme="gray"),
            rx.text(value, size="6", weight="bold", color_scheme=color, custom_attrs={"data-testid": testid}),
            *([rx.text(detail, size="1", color_scheme="gray")] if detail is not None else []),
            spacing="1",
        ),
        width="100%",
    )


def _chart(msgid: str, fig, testid: str) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading(T(msgid), size="4", as_="h2"),
            rx.box(rx.plotly(data=fig, use_resize_handler=True, width="100%", height="300px",
                             config={"displayModeBar": False, "responsive": True}),
                   width="100%", min_height="300px"),
            spacing="2", width="100%",
        ),
        width="100%", custom_attrs={"data-testid": testid},
    )


#: each report table's name (its focusable scrolling region's label)
REPORT_TABLE_LABELS = {"report-services": N_("Bookings per service"), "report-revenue": N_("Revenue"),
                       "report-methods": N_("Revenue per payment method"), "report-top": N_("Top customers"),
                       "report-utilization": N_("Utilization"),
                       "report-rates": N_("Cancellation and no-show rates"),
                       "report-discounts": N_("Discount codes"), "report-discount-codes": N_("Uses per code")}


def _simple_table(testid: str, headers: list[str], rows, keys: list[str], empty_msgid: str) -> rx.Component:
    label = REPORT_TABLE_LABELS.get(testid, N_("Reports"))
    return scroll_table(
        rx.table.header(rx.table.row(*[th(h) for h in headers])),
        rx.table.body(
            rx.foreach(rows, lambda r: rx.table.row(*[td(h, r[k]) for h, k in zip(headers, keys)],
                                                    custom_attrs={"data-testid": "report-row"})),
            rx.cond(rows.length() == 0, empty_row(len(headers), empty_msgid)),
        ),
        testid=testid, label=label, stack=True,
    )


def reports_page() -> rx.Component:
    state = ReportsState
    grid = dict(columns=rx.breakpoints(initial="2", md="4"), spacing="3", width="100%")
    return guarded(state, rx.vstack(
        staff_header(N_("Reports"), ADMIN_TABS, paths.ADMIN_REPORTS),
        rx.form(
            rx.flex(
                *date_range_fields(state, "r", "report"),
                rx.button(T("Show"), type="submit", size="3", loading=state.loading, disabled=state.loading,
                          custom_attrs={"data-testid": "report-apply"}),
                spacing="3", align="end", wrap="wrap",
            ),
            on_submit=state.apply, reset_on_submit=False, width="100%",
        ),
        error_callout(state.error),
        rx.cond(state.loaded, rx.vstack(
            rx.grid(
                stat(N_("Bookings"), state.summary["bookings"], "sum-bookings"),
                stat(N_("Seats"), state.summary["seats"], "sum-seats"),
                stat(N_("Net revenue"), state.summary["net"], "sum-net"),
                stat(N_("Active users"), state.summary["active_users"], "sum-active"),
                stat(N_("New users"), state.summary["registrations"], "sum-registrations"),
                stat(N_("Utilization"), state.summary["utilization"], "sum-utilization"),
                stat(N_("Cancellation rate"), state.summary["cancellation_rate"], "sum-cancellation"),
                stat(N_("No-show rate"), state.summary["no_show_rate"], "sum-no-show"),
                # waitlist (issue 24): entries that joined in the period and what became of them
                stat(N_("Waitlist: joined"), state.summary["waitlist_joined"], "sum-waitlist-joined"),
                stat(N_("Waitlist: offered"), state.summary["waitlist_offered"], "sum-waitlist-offered"),
                stat(N_("Waitlist: accepted"), state.summary["waitlist_accepted"], "sum-waitlist-accepted"),
                stat(N_("Waitlist: lapsed"), state.summary["waitlist_lapsed"], "sum-waitlist-lapsed"),
                stat(N_("Waitlist: conversion"), state.summary["waitlist_conversion"], "sum-waitlist-conversion"),
                **grid,
            ),
            rx.card(rx.flex(
                rx.text(T("Download as CSV"), weight="medium"),
                rx.el.select(rx.foreach(state.report_options, lambda o: rx.el.option(o[1], value=o[0])),
                             value=state.csv_report, on_change=state.set_csv_report, class_name="lang-select",
                             max_width="16rem", aria_label=T("Report"), custom_attrs={"data-testid": "csv-report"}),
                rx.button(rx.icon("download", size=16), T("Download CSV"), variant="soft", on_click=state.download_csv,
                          custom_attrs={"data-testid": "csv-download"}),
                spacing="3", align="center", wrap="wrap",
            ), width="100%"),
            rx.grid(
                _chart(N_("Bookings per day"), state.bookings_fig, "chart-bookings"),
                _chart(N_("Net revenue per day"), state.revenue_fig, "chart-revenue"),
                columns=rx.breakpoints(initial="1", md="2"), spacing="3", width="100%",
            ),
            rx.heading(T("Bookings per service"), size="4", as_="h2"),
            _simple_table("report-services", [N_("Bookable"), N_("Kind"), N_("Bookings"), N_("Seats"),
                                              N_("Cancelled"), N_("Completed")], state.by_service,
                          ["name", "kind", "bookings", "seats", "cancelled", "completed"], N_("No bookings.")),
            rx.grid(
                rx.vstack(
                    rx.heading(T("Revenue"), size="4", as_="h2"),
                    _simple_table("report-revenue", [N_("Currency"), N_("Payments"), N_("Gross"), N_("Refunds"),
                                                     N_("Net")], state.revenue_totals,
                                  ["currency", "payments", "gross", "refunds", "net"], N_("No payments.")),
                    _simple_table("report-methods", [N_("Method"), N_("Currency"), N_("Payments"), N_("Net")],
                                  state.revenue_by_method, ["method", "currency", "payments", "net"], N_("No payments.")),
                    spacing="2", width="100%", min_width="0",
                ),
                rx.vstack(
                    rx.heading(T("Top customers"), size="4", as_="h2"),
                    _simple_table("report-top", [N_("Customer"), N_("Email"), N_("Bookings")], state.top_customers,
                                  ["name", "email", "bookings"], N_("No bookings.")),
                    spacing="2", width="100%", min_width="0",
                ),
                columns=rx.breakpoints(initial="1", md="2"), spacing="4", width="100%",
            ),
            rx.heading(T("Discount codes"), size="4", as_="h2"),  # issue 26
            _simple_table("report-discounts", [N_("Currency"), N_("Bookings"), N_("Gross"), N_("Discounts"), N_("Net")],
                          state.discount_totals, ["currency", "bookings", "gross", "discounts", "net"], N_("No bookings.")),
            _simple_table("report-discount-codes", [N_("Code"), N_("Uses"), N_("Discounts"), N_("Net")],
                          state.discount_codes, ["code", "uses", "discounts", "net"], N_("No discount codes used.")),
            _chart(N_("Registrations and active users"), state.users_fig, "chart-users"),
            rx.heading(T("Utilization"), size="4", as_="h2"),
            _simple_table("report-utilization", [N_("Bookable"), N_("Kind"), N_("Available hours"),
                                                 N_("Booked hours"), N_("Utilization")], state.utilization_rows,
                          ["name", "kind", "available", "booked", "rate"], N_("No bookables.")),
            rx.heading(T("Cancellation and no-show rates"), size="4", as_="h2"),
            _simple_table("report-rates", [N_("Bookable"), N_("Bookings"), N_("Cancelled"), N_("No-shows"),
                                           N_("Cancellation rate"), N_("No-show rate")], state.rates_rows,
                          ["name", "bookings", "cancelled", "no_show", "cancellation_rate", "no_show_rate"],
                          N_("No bookings.")),
            spacing="4", width="100%",
        )),
        spacing="4", width="100%",
    ))


# ---- dashboard -------------------------------------------------------------------------------

def dashboard_page() -> rx.Component:
    state = DashboardState
    c = state.cards
    grid = dict(columns=rx.breakpoints(initial="2", md="4"), spacing="3", width="100%")
    return guarded(state, rx.vstack(
        staff_header(
            N_("Dashboard"), ADMIN_TABS, paths.ADMIN_DASHBOARD,
            rx.hstack(
                rx.cond(state.live,
                        rx.badge(rx.icon("radio", size=14), T("Live"), color_scheme="grass",
                                 custom_attrs={"data-testid": "live"}),
                        rx.button(T("Resume live updates"), size="1", variant="soft", on_click=state.resume)),
                rx.text(T("Updated"), " ", state.updated, size="2", color_scheme="gray",
                        custom_attrs={"data-testid": "updated"}),
                spacing="2", align="center",
            ),
        ),
        error_callout(state.error),
        rx.heading(T("Today"), size="4", as_="h2"),
        rx.grid(
            stat(N_("Bookings made today"), c["created"], "dash-created"),
            stat(N_("Bookings taking place today"), c["scheduled"], "dash-scheduled", c["seats"]),
            stat(N_("Net revenue today"), c["revenue"], "dash-revenue"),
            stat(N_("Occupancy"), c["occupancy"], "dash-occupancy", c["occupancy_detail"]),
            stat(N_("Pending payments"), c["pending_payments"], "dash-pending"),
            stat(N_("Bookings on hold"), c["on_hold"], "dash-on-hold"),
            stat(N_("Failed notifications"), c["failed"], "dash-failed", None),
            stat(N_("Cancelled today"), c["cancelled"], "dash-cancelled"),
            **grid,
        ),
        rx.heading(T("System"), size="4", as_="h2"),
        rx.grid(
            stat(N_("Requests per second"), c["rps"], "dash-rps"),
            stat(N_("p95 latency"), c["p95"], "dash-p95"),
            stat(N_("Error rate"), c["error_rate"], "dash-errors"),
            stat(N_("Database pool"), c["pool"], "dash-pool"),
            stat(N_("Job lag"), c["job_lag"], "dash-lag"),
            stat(N_("Messages waiting"), c["queued"], "dash-queued"),
            **grid,
        ),
        rx.flex(
            rx.heading(T("Live charts"), size="4", as_="h2"),
            window_switch(state.series_window, state.set_series_window),
            justify="between", align="center", wrap="wrap", gap="2", width="100%",
        ),
        rx.grid(
            live_chart("bookings", state.bookings_chart, state.chart_summaries["bookings"]),
            live_chart("revenue", state.revenue_chart, state.chart_summaries["revenue"]),
            live_chart("requests", state.requests_chart, state.chart_summaries["requests"]),
            live_chart("backlog", state.backlog_chart, state.chart_summaries["backlog"]),
            columns=rx.breakpoints(initial="1", md="2"), spacing="3", width="100%",
        ),
        chart_table(state.chart_rows),
        rx.text(T("Figures refresh every few seconds while this page is open."), " ", c["scope"],
                size="1", color_scheme="gray", custom_attrs={"data-testid": "dash-scope"}),
        spacing="4", width="100%",
        on_unmount=state.stop,
    ))


def register(add) -> None:
    add(users_page, paths.ADMIN_USERS, (N_("Users"), N_("Admin")), AdminUsersState.load)
    add(outbox_page, paths.ADMIN_OUTBOX, (N_("Outbox"), N_("Admin")), OutboxState.load)
    add(reports_page, paths.ADMIN_REPORTS, (N_("Reports"), N_("Admin")), ReportsState.load)
    add(dashboard_page, paths.ADMIN_DASHBOARD, (N_("Dashboard"), N_("Admin")), DashboardState.load)
