"""The embeddable booking widget's pages (issue 25, point 3; docs/embed.md): a provider's
bookables, pick a time, review & book (as a guest here; signing in opens the site in a new
tab), the booking. Shown without the site's header in a frame of another website (only the
provider's allowed websites: api/security.py); the frame follows its height (embed_frame)."""
from __future__ import annotations

from typing import Callable

import reflex as rx

from booking_app.i18n import N_
from booking_app.ui import layout, paths
from booking_app.ui.components import T, error_callout
from booking_app.ui.components.live_slots import live_slot_notes
from booking_app.ui.embed_frame import embed_frame
from booking_app.ui.pages.customer import (
    date_input,
    day_chip,
    fact,
    guest_fields,
    quantity_select,
    reference_and_status,
    slot_button,
)
from booking_app.ui.state.base import AppState
from booking_app.ui.state.embed import EmbedBookableState, EmbedBookState, EmbedConfirmationState, EmbedState

def _framed(content_fn: Callable[[], rx.Component]) -> Callable[[], rx.Component]:
    def _page() -> rx.Component:
        return layout.embed_shell(content_fn(), embed_frame(), style=EmbedState.accent_style)

    _page.__name__ = f"embed_{content_fn.__name__}"
    return _page


def _page(not_found: rx.Var, loaded: rx.Var, content: rx.Component) -> rx.Component:
    """A widget page: `content` once `loaded`, the not-found message, or a spinner meanwhile."""
    return rx.cond(
        not_found != "",
        rx.callout(not_found, icon="circle_alert", color_scheme="red", width="100%", role="alert",
                   custom_attrs={"data-testid": "not-found"}),
        rx.cond(loaded, content, rx.center(rx.spinner(size="3"), padding="2rem", width="100%")),
    )


# ---- a provider's bookables ----------------------------------------------------------------

def _item(item: dict) -> rx.Component:
    return rx.card(
        rx.flex(
            rx.vstack(
                rx.text(item["name"], weight="bold", size="4", dir="auto"),
                rx.text(item["kind"], " · ", item["duration"], " · ", item["price"], size="2", color_scheme="gray"),
                spacing="1", align="start",
            ),
            rx.spacer(),
            rx.button(rx.link(T("Pick a time"), href=item["href"], underline="none"), as_child=True, size="2"),
            align="center", spacing="3", wrap="wrap", width="100%",
        ),
        width="100%", custom_attrs={"data-testid": "embed-item"},
    )


def start() -> rx.Component:
    return _page(EmbedState.not_found, EmbedState.items.length() > 0,
                 rx.vstack(rx.heading(T("Book"), size="6", as_="h1"), rx.foreach(EmbedState.items, _item),
                           spacing="3", width="100%"))


# ---- pick a time -------------------------------------------------------------------------

def _picker() -> rx.Component:
    state = EmbedBookableState
    return rx.vstack(
        rx.heading(T("Pick a time"), size="4", as_="h2"),
        rx.text(state.tz_note, size="2", color_scheme="gray"),
        rx.box(rx.hstack(rx.foreach(state.days, lambda d: day_chip(state, d, colored=False)), spacing="2",
                         padding_bottom="0.25rem"),
               overflow_x="auto", width="100%", custom_attrs={"data-testid": "day-strip"}),
        date_input(state),
        rx.text(state.day_title, weight="bold", size="3"),
        rx.cond(state.day_slots.length() > 0,
                rx.box(rx.foreach(state.day_slots, lambda s: slot_button(state, s)), class_name="slot-grid",
                       width="100%"),
                rx.callout(T("No free times on this day. Pick another day."), icon="calendar_x", color_scheme="gray",
                           width="100%", custom_attrs={"data-testid": "no-slots"})),
        live_slot_notes(state),  # live slots: what changed, for screen readers (ui/components/live_slots.py)
        rx.cond(
            state.selected != "",
            rx.vstack(
                rx.cond(state.is_event, quantity_select(state)),
                rx.text(state.selected_label, weight="medium", custom_attrs={"data-testid": "selected-slot"}),
                rx.button(T("Continue"), on_click=state.continue_booking, size="3", width="100%",
                          loading=state.busy, disabled=state.busy, custom_attrs={"data-testid": "continue"}),
                spacing="3", width="100%",
            ),
        ),
        error_callout(state.error),
        spacing="3", width="100%",
    )


def service() -> rx.Component:
    info = EmbedBookableState.info
    return _page(
        EmbedBookableState.not_found, EmbedBookableState.svc.length() > 0,
        rx.vstack(
            rx.cond(EmbedState.all_href != "",
                    rx.link(rx.hstack(rx.icon("arrow_left", size=16, class_name="flip-rtl"), T("All services"),
                                      spacing="1", align="center"), href=EmbedState.all_href, size="2")),
            rx.heading(info["name"], size="6", as_="h1", dir="auto", custom_attrs={"data-testid": "bookable-name"}),
            rx.hstack(fact("clock", info["duration"]), fact("banknote", info["price"]),
                      rx.cond(info["location"] != "", fact("map_pin", info["location"])),
                      spacing="4", wrap="wrap"),
            rx.divider(),
            _picker(),
            spacing="3", width="100%", align="start",
        ),
    )


# ---- review & book -----------------------------------------------------------------------

def _guest_fields() -> rx.Component:
    return rx.cond(
        AppState.signed_in,
        rx.text(T("Booking as"), " ", rx.text.strong(AppState.display_name), size="2"),
        rx.vstack(
            rx.text(T("Have an account?"), " ",
                    rx.link(T("Sign in or sign up in a new tab"), href=EmbedBookState.site_review_url,
                            is_external=True, custom_attrs={"data-testid": "sign-in-new-tab"}), size="2"),
            *guest_fields(),
            spacing="3", width="100%",
        ),
    )


def _form() -> rx.Component:
    state = EmbedBookState
    return rx.vstack(
        _guest_fields(),
        rx.cond(state.methods.length() > 0, rx.vstack(
            rx.text(T("Payment"), class_name="field-label"),
            rx.radio_group.root(rx.foreach(state.method_options,
                                           lambda m: rx.radio_group.item(m["label"], value=m["value"])),
                                value=state.method, on_change=state.set_method, name="method", direction="column",
                                size="3"),
            spacing="2", width="100%")),
        rx.vstack(
            rx.el.label(T("Notes for the provider (optional)"), html_for="notes", class_name="field-label"),
            rx.text_area(id="notes", name="notes", max_length=500, width="100%", rows="2"),
            spacing="1", width="100%",
        ),
        error_callout(state.error),
        rx.cond(state.alternatives.length() > 0, rx.box(rx.foreach(state.alternative_slots, lambda a: rx.button(
            a["label"], type="button", variant="outline", on_click=state.choose_alternative(a["start"]),
            height="auto", padding_y="0.4rem", white_space="normal", custom_attrs={"data-testid": "alternative"})),
            class_name="slot-grid wide", width="100%")),
        rx.button(T("Confirm booking"), type="submit", size="3", width="100%", loading=state.busy,
                  disabled=state.busy, custom_attrs={"data-testid": "confirm"}),
        spacing="4", width="100%",
    )


def review() -> rx.Component:
    state = EmbedBookState
    info = state.info
    return _page(
        state.not_found, state.svc.length() > 0,
        rx.cond(
            state.email_sent != "",
            rx.callout(state.email_sent, icon="mail", color_scheme="grass", width="100%", role="status",
                       custom_attrs={"data-testid": "email-sent"}),
            rx.form(
                rx.vstack(
                    rx.heading(T("Review and confirm"), size="6", as_="h1"),
                    rx.text(info["name"], weight="bold", size="4", custom_attrs={"data-testid": "review-name"}),
                    fact("calendar", state.when),
                    fact("banknote", state.total),
                    rx.text(info["policy"], size="2", color_scheme="gray"),
                    rx.divider(),
                    rx.cond(state.unavailable != "",
                            rx.callout(state.unavailable, icon="clock", color_scheme="amber", width="100%",
                                       role="status", custom_attrs={"data-testid": "slot-unavailable"}),
                            _form()),
                    rx.link(T("Change the time"), href=state.widget_back_url, size="2"),
                    spacing="3", width="100%",
                ),
                on_submit=state.confirm, reset_on_submit=False, width="100%",
            ),
        ),
    )


# ---- the booking -------------------------------------------------------------------------

def booking() -> rx.Component:
    state = EmbedConfirmationState
    card = state.card
    return _page(
        state.not_found, state.booking.length() > 0,
        rx.vstack(
            rx.hstack(rx.cond(card["status"] == "cancelled",  # static icons (no lucide index)
                              rx.icon("circle_x", size=28, color=rx.color("grass", 9)),
                              rx.icon("circle_check", size=28, color=rx.color("grass", 9))),
                      rx.heading(card["title"], size="6", as_="h1",
                                 custom_attrs={"data-testid": "confirmation-title"}),
                      spacing="3", align="center"),
            *reference_and_status(card),
            rx.text(card["service"], weight="bold", size="4"),
            fact("calendar", card["when"]),
            fact("banknote", card["price"]),
            rx.cond(state.pay_options.length() > 0, rx.vstack(
                rx.text(T("Complete the payment"), weight="medium"),
                rx.flex(rx.foreach(state.pay_options, lambda m: rx.button(
                    m["label"], on_click=state.pay(m["value"]), size="3", loading=state.cancel_busy,
                    disabled=state.cancel_busy, custom_attrs={"data-testid": "pay"})), spacing="2", wrap="wrap"),
                rx.button(T("Refresh"), on_click=state.refresh, variant="soft", size="2",
                          custom_attrs={"data-testid": "refresh"}),
                spacing="2", width="100%")),
            error_callout(state.cancel_error),
            rx.link(T("Open my booking in a new tab"), href=state.site_booking_url, size="2",
                    is_external=True, custom_attrs={"data-testid": "open-booking"}),
            spacing="3", width="100%", align="start",
        ),
    )


def register(add) -> None:
    """`add(content, route, title msgid, on_load events)`: ui/routes.py adds them without the site's shell."""
    add(_framed(start), paths.EMBED, N_("Book"), [EmbedState.load, EmbedState.load_start])
    add(_framed(service), paths.EMBED_SERVICE, N_("Book"),
        [EmbedState.load, EmbedBookableState.load, EmbedBookableState.check_scope])
    add(_framed(review), paths.EMBED_BOOK, N_("Review"), [EmbedState.load, EmbedBookState.load])
    add(_framed(booking), paths.EMBED_BOOKING, N_("Your booking"), [EmbedState.load, EmbedConfirmationState.load])
