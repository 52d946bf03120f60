"""Recurring series widgets (issue 24, point 3): "Repeat this booking" in the review form
(rule, preview of the dates) and the series card of a booking's page (its dates; cancel this
one and the following, or all). State: ui/state/series.py."""
from __future__ import annotations

import reflex as rx

from booking_app.ui.components import T
from booking_app.ui.state.booking import BookState
from booking_app.ui.state.series import SeriesFormState, SeriesManageState


def _select(label: str, input_id: str, name: str, value: rx.Var, options: list[tuple[str, str]]) -> rx.Component:
    return rx.vstack(
        rx.el.label(T(label), html_for=input_id, class_name="field-label"),
        rx.el.select(*[rx.el.option(T(text), value=v) for v, text in options], id=input_id, value=value,
                     on_change=lambda v: SeriesFormState.set_rule(name, v), class_name="native-select",
                     custom_attrs={"data-testid": input_id}),
        spacing="1", width="100%", align="stretch",
    )


def _number(label: str, input_id: str, name: str, value: rx.Var) -> rx.Component:
    return rx.vstack(
        rx.el.label(T(label), html_for=input_id, class_name="field-label"),
        rx.input(id=input_id, value=value, input_mode="numeric", max_length=3, size="3", width="100%",
                 on_change=lambda v: SeriesFormState.set_rule(name, v), custom_attrs={"data-testid": input_id}),
        spacing="1", width="100%", align="stretch",
    )


def _occurrence(o: dict) -> rx.Component:
    return rx.hstack(
        rx.text(o["when"], size="2"),
        rx.badge(o["status"], color_scheme=rx.cond(o["free"] != "", "grass", "red"), size="1"),
        justify="between", width="100%",
        custom_attrs={"data-testid": "series-occurrence", "data-free": o["free"]},
    )


def series_form() -> rx.Component:
    """Inside the review form, before "Confirm booking": on, the form books the series."""
    state = SeriesFormState
    return rx.vstack(
        rx.el.label(
            rx.checkbox(checked=state.enabled, on_change=state.set_enabled, size="3",
                        custom_attrs={"data-testid": "series-toggle", "aria-labelledby": "series-toggle-label"}),
            rx.text(T("Repeat this booking"), as_="span", size="3", id="series-toggle-label"),
            style={"display": "flex", "gap": "0.5em", "align_items": "center", "min_height": "2.75em"},
        ),
        rx.cond(state.enabled, rx.vstack(
            rx.grid(
                _select("Repeat", "series-frequency", "frequency", state.frequency,
                        [("daily", "Every day"), ("weekly", "Every week"), ("monthly", "Every month")]),
                _number("Every how many (days, weeks or months)", "series-interval", "interval", state.interval),
                _number("Number of dates", "series-count", "count", state.count),
                rx.cond(state.frequency == "monthly",
                        _select("On", "series-by", "by", state.by,
                                [("date", "The same date"), ("weekday", "The same weekday (e.g. the 2nd Tuesday)")])),
                columns=rx.breakpoints(initial="1", sm="2"), spacing="3", width="100%",
            ),
            _select("If a date is taken", "series-mode", "mode", state.mode,
                    [("all_or_nothing", "Book all the dates or none"), ("skip_taken", "Book only the free dates")]),
            rx.button(T("Preview the dates"), type="button", variant="soft", size="3",
                      on_click=state.preview(BookState.svc["id"], BookState.start, BookState.quantity),
                      loading=state.preview_busy, custom_attrs={"data-testid": "series-preview"}),
            rx.cond(state.occurrences.length() > 0,
                    rx.vstack(rx.foreach(state.occurrences, _occurrence), spacing="1", width="100%",
                              custom_attrs={"data-testid": "series-occurrences"}, role="list")),
            rx.cond(state.error != "",
                    rx.callout(state.error, icon="triangle_alert", color_scheme="red", role="alert", width="100%",
                               custom_attrs={"data-testid": "series-error"})),
            spacing="3", width="100%",
        )),
        spacing="2", width="100%", custom_attrs={"data-testid": "series-form"}, on_mount=state.reset_form,
    )


def _row(r: dict) -> rx.Component:
    return rx.hstack(
        rx.cond(r["current"] != "", rx.text(r["when"], size="2", weight="bold"),
                rx.link(r["when"], href=r["href"], size="2")),
        rx.badge(r["status"], color_scheme=r["color"], size="1"),
        justify="between", width="100%", custom_attrs={"data-testid": "series-row"},
    )


def series_card() -> rx.Component:
    """On a booking's page: its series' dates and the series' cancel actions (nothing when
    the booking is not part of a series)."""
    state = SeriesManageState
    return rx.box(
        rx.cond(state.series_id > 0, rx.vstack(
            rx.divider(),
            rx.text(T("Part of a series"), weight="bold", size="3"),
            rx.vstack(rx.foreach(state.rows, _row), spacing="1", width="100%"),
            rx.flex(
                rx.button(T("Cancel this and the following"), variant="soft", color_scheme="red", size="2",
                          on_click=state.ask("following"), custom_attrs={"data-testid": "series-cancel-following"}),
                rx.button(T("Cancel the whole series"), variant="soft", color_scheme="red", size="2",
                          on_click=state.ask("all"), custom_attrs={"data-testid": "series-cancel-all"}),
                spacing="2", wrap="wrap",
            ),
            rx.cond(state.confirming != "", rx.vstack(
                rx.text(T("Cancel these bookings? Each one is refunded by the cancellation policy."), size="2",
                        role="status"),
                rx.flex(
                    rx.button(T("Yes, cancel"), color_scheme="red", on_click=state.cancel, loading=state.busy,
                              disabled=state.busy, custom_attrs={"data-testid": "series-confirm-cancel"}),
                    rx.button(T("Keep them"), variant="soft", color_scheme="gray", on_click=state.keep),
                    spacing="2", wrap="wrap",
                ),
                spacing="2", width="100%",
            )),
            rx.cond(state.error != "",
                    rx.callout(state.error, icon="triangle_alert", color_scheme="red", role="alert", width="100%",
                               custom_attrs={"data-testid": "series-error"})),
            spacing="2", width="100%", align="start", custom_attrs={"data-testid": "series-card"},
        )),
        width="100%",  # (loaded with the page: ui/pages/customer.py)
    )
