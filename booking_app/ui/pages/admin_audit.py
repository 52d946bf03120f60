"""The admin's audit trail page: labelled filters, the events as stacked cards (every field
visible at 390 px, nothing hidden in a column), previous/next paging and a CSV download."""
from __future__ import annotations

import reflex as rx

from booking_app.i18n import N_
from booking_app.ui import paths
from booking_app.ui.components import T, error_callout
from booking_app.ui.components.staff import ADMIN_TABS, card_item, card_list, fact, guarded, staff_header
from booking_app.ui.state.audit import AuditState


def _filter(msgid: str, name: str, *, type_: str = "text", placeholder: str = "",
            input_mode: str | None = None) -> rx.Component:
    state = AuditState
    input_id = f"audit-{name}"
    return rx.vstack(
        rx.el.label(T(msgid), html_for=input_id, class_name="field-label"),
        rx.input(id=input_id, name=name, type=type_, default_value=state.filters.get(name, ""), size="2",
                 placeholder=placeholder, width="100%",
                 custom_attrs={"data-testid": f"filter-{name}", **({"inputmode": input_mode} if input_mode else {}),
                               "aria-invalid": rx.cond(state.errors.contains(name), "true", "false")}),
        rx.cond(state.errors.contains(name),
                rx.text(state.errors[name], color_scheme="red", size="2", role="alert",
                        custom_attrs={"data-testid": f"error-{name}"})),
        spacing="1", flex="1 1 10rem", min_width="0",
    )


def _event_card(e: dict) -> rx.Component:
    return card_item(
        rx.flex(
            rx.code(e["action"], custom_attrs={"data-testid": "event-action"}),
            rx.spacer(),
            rx.text(e["at"], size="2", color_scheme="gray", custom_attrs={"data-testid": "event-at"}),
            wrap="wrap", spacing="2", width="100%", align="center",
        ),
        fact(N_("Actor"), e["actor"], "event-actor", word_break="break-all"),
        fact(N_("Target"), e["target"], "event-target", word_break="break-all"),
        fact(N_("IP address"), e["ip"], "event-ip", word_break="break-all"),
        rx.cond(e["data"] != "",
                rx.text(e["data"], size="1", font_family="monospace", word_break="break-all",
                        custom_attrs={"data-testid": "event-data"})),
        testid="audit-event", spacing="1",
    )


def audit_page() -> rx.Component:
    state = AuditState
    return guarded(state, rx.vstack(
        staff_header(N_("Audit trail"), ADMIN_TABS, paths.ADMIN_AUDIT,
                     rx.button(rx.icon("download", size=16), T("Download CSV"), variant="soft",
                               on_click=state.download_csv, custom_attrs={"data-testid": "audit-csv"})),
        rx.form(
            rx.vstack(
                rx.flex(
                    _filter(N_("Actor (user id)"), "actor_id", input_mode="numeric"),
                    _filter(N_("Target user (user id)"), "user_id", input_mode="numeric"),
                    _filter(N_("Action"), "action", placeholder="user.*"),
                    _filter(N_("IP address"), "ip"),
                    _filter(N_("From"), "from", type_="date"),
                    _filter(N_("To"), "to", type_="date"),
                    spacing="3", wrap="wrap", width="100%",
                ),
                rx.hstack(
                    rx.button(T("Show"), type="submit", size="2", custom_attrs={"data-testid": "audit-apply"}),
                    rx.button(T("Clear filters"), type="reset", size="2", variant="soft", color_scheme="gray",
                              on_click=state.clear, custom_attrs={"data-testid": "audit-clear"}),
                    spacing="3",
                ),
                spacing="3", width="100%",
            ),
            on_submit=state.filter, reset_on_submit=False, width="100%",
            custom_attrs={"aria-label": T("Filter the audit trail")},
        ),
        error_callout(state.error),
        rx.text(T("Events found:"), " ", state.total, size="2", color_scheme="gray", role="status",
                custom_attrs={"data-testid": "audit-total"}),
        card_list(state.rows, _event_card, empty_msgid=N_("Nothing recorded."), empty_testid="audit-empty",
                  testid="audit-events"),
        rx.flex(
            rx.button(rx.icon("chevron_left", size=16), T("Previous"), variant="soft", on_click=state.previous_page,
                      disabled=~state.has_previous, custom_attrs={"data-testid": "audit-previous"}),
            rx.text(state.page_start, "–", state.page_end, " / ", state.total, size="2",
                    custom_attrs={"data-testid": "audit-range"}),
            rx.button(T("Next"), rx.icon("chevron_right", size=16), variant="soft", on_click=state.next_page,
                      disabled=~state.has_next, custom_attrs={"data-testid": "audit-next"}),
            spacing="3", align="center", wrap="wrap", justify="center", width="100%",
            custom_attrs={"role": "navigation", "aria-label": T("Pages")},
        ),
        spacing="4", width="100%",
    ))


def register(add) -> None:
    add(audit_page, paths.ADMIN_AUDIT, (N_("Audit trail"), N_("Admin")), AuditState.load)
