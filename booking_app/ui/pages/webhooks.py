"""Staff webhooks page (/provider/webhooks, and /admin/webhooks for admins): add an endpoint
(its signing secret shown once), the endpoints as stacked cards with their actions, and
the chosen endpoint's recent deliveries with "redeliver". Cards, not tables: every field
stays visible at 390 px."""
from __future__ import annotations

import reflex as rx

from booking_app.i18n import N_
from booking_app.ui import paths
from booking_app.ui.components import T, error_callout
from booking_app.ui.components.staff import (
    PROVIDER_TABS,
    active_toggle,
    card_item,
    card_list,
    check_label,
    choice_group,
    done_callout,
    fact,
    form_card,
    guarded,
    staff_header,
)
from booking_app.ui.state.webhooks import WebhooksState


def _secret_callout() -> rx.Component:
    state = WebhooksState
    return rx.cond(
        state.new_secret != "",
        rx.callout.root(
            rx.vstack(
                rx.text(state.secret_endpoint, size="2", weight="bold", word_break="break-all"),
                rx.code(state.new_secret, size="3", word_break="break-all", custom_attrs={"data-testid": "webhook-secret"}),
                rx.text(T("Copy this secret now: it will not be shown again."), size="2"),
                rx.button(T("Done"), size="2", variant="soft", on_click=state.dismiss_secret,
                          custom_attrs={"data-testid": "webhook-secret-done"}),
                spacing="2", width="100%",
            ),
            color_scheme="green", width="100%", role="status",
        ),
    )


def _event_box(name: rx.Var) -> rx.Component:
    return check_label(
        rx.el.input(type="checkbox", name="event-" + name, custom_attrs={"data-testid": "webhook-event-" + name}),
        rx.code(name, size="2"),
    )


def _create_form() -> rx.Component:
    state = WebhooksState
    return form_card(
        rx.heading(T("Add an endpoint"), size="4", as_="h2"),
        rx.vstack(
            rx.el.label(T("Endpoint URL"), html_for="webhook-url", class_name="field-label"),
            rx.input(id="webhook-url", name="url", type="url", required=True, size="3", width="100%",
                     placeholder="https://example.com/hooks/booking",
                     custom_attrs={"data-testid": "webhook-url",
                                   "aria-invalid": rx.cond(state.url_error != "", "true", "false")}),
            rx.cond(state.url_error != "", rx.text(state.url_error, color_scheme="red", size="2", role="alert",
                                               custom_attrs={"data-testid": "webhook-url-error"})),
            spacing="1", width="100%",
        ),
        choice_group(
            N_("Events"),
            rx.flex(rx.foreach(state.event_names, _event_box), wrap="wrap", width="100%"),
            rx.cond(state.events_error != "", rx.text(state.events_error, color_scheme="red", size="2", role="alert",
                                                  custom_attrs={"data-testid": "webhook-events-error"})),
        ),
        rx.button(rx.icon("plus", size=16), T("Add endpoint"), type="submit", size="3",
                  custom_attrs={"data-testid": "webhook-add"}),
        on_submit=state.create, form_key=state.form_key,
    )


def _endpoint_card(e: dict) -> rx.Component:
    state = WebhooksState
    busy = state.busy_id.to_string() == e["id"]
    return card_item(
        rx.flex(
            rx.code(e["url"], word_break="break-all", custom_attrs={"data-testid": "endpoint-url"}),
            rx.spacer(),
            rx.badge(e["status"], color_scheme=rx.cond(e["active"] == "1", "green", "gray"),
                     custom_attrs={"data-testid": "endpoint-status"}),
            wrap="wrap", spacing="2", width="100%", align="center",
        ),
        fact(N_("Events"), e["events"], "endpoint-events"),
        fact(N_("Scope"), e["scope"], "endpoint-scope"),
        rx.cond(e["rotating"] != "", rx.text(e["rotating"], size="2", color_scheme="amber")),
        rx.flex(
            rx.button(T("Deliveries"), size="2", variant="soft", on_click=state.show_deliveries(e["id"]),
                      custom_attrs={"data-testid": "endpoint-deliveries"}),
            rx.button(T("Rotate secret"), size="2", variant="soft", on_click=state.rotate(e["id"]),
                      custom_attrs={"data-testid": "endpoint-rotate"}),
            active_toggle(e["active"] == "1", busy, lambda on: state.set_active(e["id"], on), "endpoint-"),
            rx.button(T("Remove"), size="2", variant="soft", color_scheme="red", loading=busy,
                      on_click=state.remove(e["id"]), custom_attrs={"data-testid": "endpoint-remove"}),
            spacing="2", wrap="wrap", width="100%",
        ),
        testid="webhook-endpoint",
    )


def _delivery_card(d: dict) -> rx.Component:
    state = WebhooksState
    color = rx.match(d["status"], ("delivered", "green"), ("failed", "red"), "amber")
    return card_item(
        rx.flex(
            rx.code(d["event"], custom_attrs={"data-testid": "delivery-event"}),
            rx.badge(d["status_label"], color_scheme=color, custom_attrs={"data-testid": "delivery-status"}),
            rx.spacer(),
            rx.text(d["at"], size="2", color_scheme="gray", custom_attrs={"data-testid": "delivery-at"}),
            wrap="wrap", spacing="2", width="100%", align="center",
        ),
        rx.flex(
            fact(N_("Response"), d["code"], "delivery-code"),
            fact(N_("Attempts"), d["attempts"], "delivery-attempts"),
            spacing="4", wrap="wrap",
        ),
        rx.cond(d["error"] != "", rx.text(d["error"], size="1", color_scheme="red", word_break="break-all",
                                          custom_attrs={"data-testid": "delivery-error"})),
        rx.button(rx.icon("rotate_cw", size=14), T("Redeliver"), size="2", variant="soft",
                  on_click=state.redeliver(d["id"]), custom_attrs={"data-testid": "delivery-redeliver"}),
        testid="webhook-delivery",
    )


def _deliveries() -> rx.Component:
    state = WebhooksState
    return rx.cond(
        state.selected_id != 0,
        rx.vstack(
            rx.flex(
                rx.heading(T("Deliveries"), size="5", as_="h2"),
                rx.spacer(),
                rx.button(rx.icon("refresh_cw", size=14), T("Refresh"), size="2", variant="soft",
                          on_click=state.refresh_deliveries, custom_attrs={"data-testid": "deliveries-refresh"}),
                align="center", wrap="wrap", width="100%", spacing="2",
            ),
            rx.code(state.selected_url, word_break="break-all"),
            card_list(state.deliveries, _delivery_card, empty_msgid=N_("No deliveries yet."),
                      empty_testid="deliveries-empty", testid="webhook-deliveries"),
            spacing="3", width="100%", custom_attrs={"data-testid": "deliveries-section"},
        ),
    )


def webhooks_page(current: str = paths.STAFF_WEBHOOKS) -> rx.Component:
    """The endpoints page; `current`: the route it is served under (its tab is marked)."""
    state = WebhooksState
    return guarded(state, rx.vstack(
        staff_header(N_("Webhooks"), PROVIDER_TABS, current),
        rx.text(T("When a booking or payment changes, we send a signed POST request to your endpoints."),
                size="2", color_scheme="gray"),
        _secret_callout(),
        error_callout(state.error),
        done_callout(state.message, "webhook-message"),
        _create_form(),
        card_list(state.endpoints, _endpoint_card, empty_msgid=N_("No webhook endpoints yet."),
                  empty_testid="endpoints-empty", testid="webhook-endpoints"),
        _deliveries(),
        spacing="4", width="100%",
    ))


def admin_webhooks_page() -> rx.Component:
    """The same page under the admin section (its tab in ADMIN_TABS)."""
    return webhooks_page(paths.ADMIN_WEBHOOKS)


def register(add) -> None:
    add(webhooks_page, paths.STAFF_WEBHOOKS, N_("Webhooks"), WebhooksState.load)
    add(admin_webhooks_page, paths.ADMIN_WEBHOOKS, (N_("Webhooks"), N_("Admin")), WebhooksState.load)
