"""Provider page "Approvals" (/provider/approvals, issue 24): the booking requests waiting
for an answer — approve, or decline with a reason told to the customer; and the page of
the emailed approval link (/provider/approval?token=…). State: ui/state/approvals.py."""
from __future__ import annotations

import reflex as rx

from booking_app.i18n import N_
from booking_app.ui import paths
from booking_app.ui.components import T, error_callout, ok_callout
from booking_app.ui.components.staff import PROVIDER_TABS, guarded, staff_header
from booking_app.ui.state.approvals import ApprovalLinkState, ApprovalsState


def _facts(row) -> rx.Component:
    return rx.vstack(
        rx.hstack(rx.text(row["service"], weight="bold"), rx.code(row["reference"], size="1"), spacing="2",
                  align="center", wrap="wrap"),
        rx.text(row["when"], size="2", custom_attrs={"data-testid": "request-when"}),
        rx.text(row["customer"], " ", row["email"], size="2"),
        rx.hstack(rx.text(row["places"], size="2"), rx.text(row["price"], size="2"), spacing="3"),
        rx.cond(row["notes"] != "", rx.text(row["notes"], size="2", color_scheme="gray", white_space="pre-wrap")),
        rx.cond(row["until"] != "", rx.text(T("Answer by"), ": ", row["until"], size="2", weight="medium",
                                            custom_attrs={"data-testid": "request-until"})),
        spacing="1", width="100%",
    )


def _decline_form(on_submit, row_id, busy, *extra) -> rx.Component:
    """Approve, or decline with an optional reason (one form: the reason goes with the decline)."""
    return rx.form(
        rx.flex(
            rx.el.input(type="hidden", name="id", value=row_id),
            rx.input(name="reason", placeholder=T("Reason for declining (optional)"), max_length=500, size="2",
                     aria_label=T("Reason for declining (optional)"), flex="1", min_width="12rem"),
            *extra,
            rx.button(T("Decline"), type="submit", size="2", variant="soft", color_scheme="red", disabled=busy,
                      custom_attrs={"data-testid": "decline"}),
            spacing="2", wrap="wrap", width="100%", align="center",
        ),
        on_submit=on_submit, reset_on_submit=True, width="100%",
    )


def _row(row) -> rx.Component:
    busy = ApprovalsState.busy_id > 0
    return rx.card(
        rx.vstack(
            _facts(row),
            _decline_form(ApprovalsState.decline, row["id"], busy,
                          rx.button(T("Approve"), type="button", size="2", disabled=busy,
                                    loading=ApprovalsState.busy_id.to_string() == row["id"],
                                    on_click=ApprovalsState.approve(row["id"]),
                                    custom_attrs={"data-testid": "approve"})),
            spacing="3", width="100%",
        ),
        width="100%", custom_attrs={"data-testid": "request-row"},
    )


def content() -> rx.Component:
    return rx.vstack(
        staff_header(N_("Approvals"), PROVIDER_TABS, paths.PROVIDER_APPROVALS),
        guarded(ApprovalsState, rx.vstack(
            rx.text(T("Requests hold their places until you answer or until they lapse."), size="2",
                    color_scheme="gray"),
            ok_callout(ApprovalsState.message),
            error_callout(ApprovalsState.error),
            rx.cond(ApprovalsState.requests.length() > 0, rx.foreach(ApprovalsState.requests, _row),
                    rx.text(T("No requests are waiting for your answer."), color_scheme="gray",
                            custom_attrs={"data-testid": "no-requests"})),
            spacing="3", width="100%",
        )),
        spacing="4", width="100%", max_width="64rem", margin_x="auto",
    )


def link_content() -> rx.Component:
    state = ApprovalLinkState
    return rx.vstack(
        rx.heading(T("Booking request"), size="7", as_="h1"),
        error_callout(state.not_valid),
        error_callout(state.error),
        ok_callout(state.done),
        rx.cond(
            (state.request.length() > 0) & (state.done == ""),
            rx.card(rx.vstack(
                _facts(state.request),
                _decline_form(state.decline, state.request["id"], state.busy,
                              rx.button(T("Approve"), type="button", size="2", disabled=state.busy,
                                        on_click=state.approve, custom_attrs={"data-testid": "approve"})),
                spacing="3", width="100%",
            ), width="100%"),
        ),
        rx.link(T("All requests"), href=paths.PROVIDER_APPROVALS, size="2"),
        spacing="4", width="100%", max_width="40rem", margin_x="auto",
    )


def register(add) -> None:
    add(content, paths.PROVIDER_APPROVALS, N_("Approvals"), ApprovalsState.load)
    add(link_content, paths.APPROVAL_LINK, (N_("Booking request"), N_("Approvals")), ApprovalLinkState.load)
