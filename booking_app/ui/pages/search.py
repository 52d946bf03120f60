"""Search results: filters (text, kind, location, date) and result cards."""
from __future__ import annotations

import reflex as rx

from booking_app.ui import previews
from booking_app.ui.components import T, error_callout
from booking_app.ui.state.search import SearchState

KIND_ICONS = {"room": "door_open", "service": "scissors", "event": "ticket"}
#: placeholders while the results load: one row on a wide screen, and their usual height
PLACEHOLDER_CARDS = 3
CARD_HEIGHT = "11.5rem"  # (a card with a two-line description: 186 px)


def _labelled(msgid: str, control: rx.Component, html_for: str) -> rx.Component:
    return rx.vstack(rx.el.label(T(msgid), html_for=html_for, class_name="field-label"), control,
                     spacing="1", width="100%")


def _filters() -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.flex(
                rx.box(
                    rx.el.label(T("Search"), html_for="f-q", class_name="sr-only"),
                    rx.input(rx.input.slot(rx.icon("search", size=18)), id="f-q", name="q",
                             default_value=SearchState.q, type="search", size="3", width="100%",
                             placeholder=T("Search rooms, services, events…"),
                             custom_attrs={"data-testid": "filter-q"}),
                    flex="1", min_width="0",
                ),
                rx.button(T("Search"), type="submit", size="3", custom_attrs={"data-testid": "filter-submit"}),
                spacing="2", width="100%",
            ),
            rx.el.details(
                rx.el.summary(T("Filters"), class_name="filters-summary"),
                rx.grid(
                    _labelled("Kind", rx.el.select(
                        rx.el.option(T("All kinds"), value=""),
                        rx.el.option(T("Rooms"), value="room"),
                        rx.el.option(T("Services"), value="service"),
                        rx.el.option(T("Events"), value="event"),
                        id="f-kind", name="kind", default_value=SearchState.kind,
                        class_name="native-select", custom_attrs={"data-testid": "filter-kind"},
                    ), "f-kind"),
                    _labelled("Location", rx.input(id="f-location", name="location",
                                                   default_value=SearchState.location, size="3", width="100%"),
                              "f-location"),
                    _labelled("Date", rx.input(id="f-date", name="date", type="date",
                                               default_value=SearchState.date, size="3", width="100%",
                                               custom_attrs={"data-testid": "filter-date"}), "f-date"),
                    columns=rx.breakpoints(initial="1", sm="3"), spacing="3", width="100%", padding_top="0.5rem",
                ),
                open=SearchState.filters_open,
                width="100%",
                custom_attrs={"data-testid": "filters"},
            ),
            spacing="2", width="100%",
        ),
        on_submit=SearchState.apply_filters, reset_on_submit=False, width="100%", role="search",
        key=SearchState.router.url,
    )


def result_card(item: dict) -> rx.Component:
    return rx.link(
        rx.card(
            rx.vstack(
                rx.hstack(
                    rx.badge(item["kind"], variant="soft", size="2"),
                    rx.spacer(),
                    rx.text(item["price"], weight="bold", size="4", custom_attrs={"data-testid": "card-price"}),
                    width="100%", align="center",
                ),
                rx.heading(item["name"], size="4", as_="h2", dir="auto"),
                rx.text(item["description"], size="2", color_scheme="gray", class_name="clamp-2", dir="auto"),
                rx.hstack(
                    rx.hstack(rx.icon("clock", size=14), rx.text(item["duration"], size="2"), spacing="1", align="center"),
                    rx.cond(item["location"] != "",
                            rx.hstack(rx.icon("map_pin", size=14), rx.text(item["location"], size="2"),
                                      spacing="1", align="center")),
                    spacing="4", wrap="wrap",
                ),
                rx.cond(item["next_free"] != "",
                        rx.text(item["next_free"], size="2", color=rx.color("grass", 11), weight="medium")),
                spacing="2", width="100%", align="start",
            ),
            width="100%", height="100%", class_name="hover-card",
        ),
        href=item["href"], underline="none", color="inherit", width="100%",
        custom_attrs={"data-testid": "result-card"},
    )


def content() -> rx.Component:
    return rx.vstack(
        rx.heading(T("Find & book"), size="7", as_="h1"),
        _filters(),
        error_callout(SearchState.error),
        # the summary line and the results area keep their space while the results load (no
        # layout shift when they arrive: placeholder cards until `loaded`)
        rx.text(SearchState.summary, size="2", color_scheme="gray", min_height="1.25rem",
                custom_attrs={"data-testid": "result-summary"}),
        rx.cond(
            SearchState.loaded & (SearchState.total == 0) & (SearchState.error == ""),
            rx.callout(T("Nothing matches your search. Try other words, another date or fewer filters."),
                       icon="search_x", color_scheme="gray", width="100%",
                       custom_attrs={"data-testid": "no-results"}),
        ),
        rx.cond(
            SearchState.loaded,
            _results_grid(rx.foreach(SearchState.cards, result_card)),
            rx.box(
                # a full page load: the server puts the first result cards here (ui/previews.py)
                # and the placeholders stay hidden
                previews.slot("search"),
                _results_grid(*[_placeholder_card() for _ in range(PLACEHOLDER_CARDS)], aria_busy="true",
                              custom_attrs={"data-testid": "results-loading"}),
                width="100%",
            ),
        ),
        spacing="4", width="100%",
    )


def _results_grid(*children, **props) -> rx.Component:
    return rx.grid(*children, columns=rx.breakpoints(initial="1", sm="2", md="3"), spacing="4", width="100%",
                   **props)


def _placeholder_card() -> rx.Component:
    """A grey box of a result card's usual height, shown while the results load."""
    return rx.box(height=CARD_HEIGHT, width="100%", border_radius="var(--radius-4)",
                  background_color=rx.color("gray", 3), aria_hidden="true")
