"""Home: what this is, and a search box that leads straight to the results."""
from __future__ import annotations

import reflex as rx

from booking_app.i18n import N_
from booking_app.ui import paths
from booking_app.ui.components import T
from booking_app.ui.state.search import SearchState

def search_box() -> rx.Component:
    return rx.form(
        rx.flex(
            rx.el.label(T("What would you like to book?"), html_for="home-q", class_name="sr-only"),
            rx.input(
                rx.input.slot(rx.icon("search", size=18)),
                id="home-q", name="q", placeholder=T("Search rooms, services, events…"),
                size="3", width="100%", type="search", auto_complete="off",
                custom_attrs={"data-testid": "search-input"},
            ),
            rx.button(T("Search"), type="submit", size="3", custom_attrs={"data-testid": "search-submit"}),
            spacing="2", width="100%", direction=rx.breakpoints(initial="column", xs="row"),
        ),
        on_submit=SearchState.submit_home,
        reset_on_submit=False,
        width="100%",
        role="search",
    )


def kind_tile(kind: str, msgid: str, icon: str, text_msgid: str) -> rx.Component:
    return rx.link(
        rx.card(
            rx.hstack(
                rx.icon(icon, size=28, color=rx.color("accent", 9)),
                rx.vstack(rx.text(T(msgid), weight="bold", size="4"),
                          rx.text(T(text_msgid), size="2", color_scheme="gray"), spacing="1"),
                spacing="3", align="center",
            ),
            width="100%", class_name="hover-card",
        ),
        href=f"{paths.SEARCH}?kind={kind}", underline="none", color="inherit", width="100%",
    )


def content() -> rx.Component:
    return rx.vstack(
        rx.box(
            rx.heading(T("Book rooms, services and events in a minute"), size=rx.breakpoints(initial="7", sm="8"),
                       as_="h1", custom_attrs={"data-testid": "home-title"}),
            rx.text(T("See real-time availability, pick a time, and get a confirmation right away."),
                    size="4", color_scheme="gray", margin_top="0.5rem"),
            rx.box(search_box(), margin_top="1.5rem", width="100%", max_width="640px"),
            class_name="hero", width="100%",
        ),
        rx.grid(
            kind_tile("room", N_("Rooms"), "door_open", N_("Meeting rooms and studios by the hour.")),
            kind_tile("service", N_("Services"), "scissors", N_("Appointments with a professional.")),
            kind_tile("event", N_("Events"), "ticket", N_("Workshops and tours with limited seats.")),
            columns=rx.breakpoints(initial="1", sm="3"), spacing="4", width="100%",
        ),
        spacing="6", width="100%",
    )
