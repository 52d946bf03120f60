"""The pieces the provider and admin pages share: section tabs, the staff page header,
scrolling tables, callouts, the access-denied message and status filter options."""
from __future__ import annotations

import reflex as rx

from booking_app.i18n import N_
from booking_app.ui import paths
from booking_app.ui.components import T
from booking_app.ui.state.base import AppState

PROVIDER_TABS = [(N_("My bookables"), paths.PROVIDER), (N_("Bookings"), paths.PROVIDER_BOOKINGS),
                 (N_("Approvals"), paths.PROVIDER_APPROVALS), (N_("Waitlists"), paths.PROVIDER_WAITLISTS),
                 (N_("Outside calendars"), paths.PROVIDER_CALENDARS), (N_("Webhooks"), paths.STAFF_WEBHOOKS),
                 (N_("Discount codes"), paths.STAFF_DISCOUNT_CODES),
                 (N_("Booking widget"), paths.PROVIDER_EMBED)]
ADMIN_TABS = [(N_("Dashboard"), paths.ADMIN_DASHBOARD), (N_("Reports"), paths.ADMIN_REPORTS),
              (N_("Approvals"), paths.PROVIDER_APPROVALS),  # (every provider's requests: approval, issue 24)
              (N_("Users"), paths.ADMIN_USERS), (N_("Outbox"), paths.ADMIN_OUTBOX),
              (N_("Audit trail"), paths.ADMIN_AUDIT), (N_("Webhooks"), paths.ADMIN_WEBHOOKS),
              (N_("Discount codes"), paths.STAFF_DISCOUNT_CODES),
              (N_("Catalog"), paths.PROVIDER)]


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


def scroll_table(*children, testid: str = "table", label: str = N_("Table"), stack: bool = False,
                 **props) -> rx.Component:
    """A table that scrolls inside its own box on narrow screens: a focusable region named
    by `label` (a msgid), so keyboard users can scroll it too. `stack`: on a phone each row
    is a card and each cell shows its column's name (cells made with `td`; the CSS is the
    "stacked tables" block of assets/styles.css), so no column is off-screen."""
    return rx.box(
        rx.table.root(*children, variant="surface", size="2", width="100%", **props),
        overflow_x="auto", width="100%", max_width="100%", role="region", aria_label=T(label),
        class_name="stack-table" if stack else None,
        custom_attrs={"data-testid": testid, "tabindex": "0"},
    )


def th(msgid: str, **props) -> rx.Component:
    return rx.table.column_header_cell(T(msgid), white_space="nowrap", **props)


def td(msgid: str, *children, **props) -> rx.Component:
    """A cell of a `stack` table: `msgid` is its column's name, shown above it on a phone."""
    custom = {"data-label": T(msgid), **props.pop("custom_attrs", {})}
    return rx.table.cell(*children, custom_attrs=custom, **props)


def date_range_fields(state, id_prefix: str, testid_prefix: str) -> tuple[rx.Component, rx.Component]:
    """The From and To inputs of a filter form, bound to the state's `date_from` / `date_to`
    and their setters; ids `<id_prefix>-from`/`-to`, test ids `<testid_prefix>-from`/`-to`."""
    def one(msgid: str, end: str, value: rx.Var, on_change) -> rx.Component:
        input_id = f"{id_prefix}-{end}"
        return rx.vstack(rx.el.label(T(msgid), html_for=input_id, class_name="field-label"),
                         rx.input(id=input_id, name=f"date_{end}", type="date", value=value, size="3",
                                  on_change=on_change, custom_attrs={"data-testid": f"{testid_prefix}-{end}"}),
                         spacing="1")
    return (one(N_("From"), "from", state.date_from, state.set_date_from),
            one(N_("To"), "to", state.date_to, state.set_date_to))


def denied(message: rx.Var) -> rx.Component:
    return rx.callout(message, icon="lock", color_scheme="amber", width="100%", role="alert",
                      custom_attrs={"data-testid": "denied"})


def empty_row(colspan: int, msgid: str) -> rx.Component:
    return rx.table.row(rx.table.cell(rx.text(T(msgid), color_scheme="gray", size="2"), col_span=colspan))


def guarded(state, body: rx.Component) -> rx.Component:
    return rx.cond(state.denied != "", denied(state.denied), body)


def status_options(all_msgid: str, labels: dict[str, str]) -> list[rx.Component]:
    return [rx.el.option(T(all_msgid), value="")] + [rx.el.option(T(label), value=key)
                                                       for key, label in labels.items()]


def done_callout(message: rx.Var, testid: str) -> rx.Component:
    """What the last action did (a staff page of cards), shown while `message` is set."""
    return rx.cond(message != "", rx.callout(message, icon="check", color_scheme="green", role="status",
                                             width="100%", custom_attrs={"data-testid": testid}))


def fact(msgid: str, value: rx.Var, testid: str, *, word_break: str = "break-word") -> rx.Component:
    """One labelled value of a card: the label (a msgid) in grey, the value after it."""
    return rx.hstack(
        rx.text(T(msgid), size="2", color_scheme="gray", white_space="nowrap"),
        rx.text(value, size="2", word_break=word_break, custom_attrs={"data-testid": testid}),
        spacing="2", align="baseline", wrap="wrap",
    )


def card_item(*children, testid: str, spacing: str = "2") -> rx.Component:
    """One card of a `card_list`: `children` stacked, the full width (every field visible at 390 px)."""
    return rx.el.li(
        rx.card(rx.vstack(*children, spacing=spacing, width="100%"), width="100%"),
        list_style="none", width="100%", custom_attrs={"data-testid": testid},
    )


def card_list(items: rx.Var, render, *, empty_msgid: str, empty_testid: str, testid: str) -> rx.Component:
    """The rows of a staff page as stacked cards (`render` makes each a `card_item`), or the
    `empty_msgid` text when there are none."""
    return rx.cond(
        items.length() == 0,
        rx.text(T(empty_msgid), size="2", color_scheme="gray", custom_attrs={"data-testid": empty_testid}),
        rx.el.ul(rx.foreach(items, render), padding="0", margin="0", width="100%",
                 display="flex", flex_direction="column", gap="0.5rem", custom_attrs={"data-testid": testid}),
    )


def active_toggle(active: rx.Var, busy: rx.Var, set_active, testid_prefix: str) -> rx.Component:
    """A card's Deactivate button while it is active, else Activate; `set_active(bool)` is the
    state's event, the buttons' test ids `<prefix>deactivate` / `<prefix>activate`."""
    return rx.cond(active,
                   rx.button(T("Deactivate"), size="2", variant="soft", color_scheme="gray", loading=busy,
                             on_click=set_active(False), custom_attrs={"data-testid": f"{testid_prefix}deactivate"}),
                   rx.button(T("Activate"), size="2", variant="soft", loading=busy,
                             on_click=set_active(True), custom_attrs={"data-testid": f"{testid_prefix}activate"}))


def form_card(*children, on_submit, form_key: rx.Var) -> rx.Component:
    """A staff page's create/edit form in a card: `children` stacked; a new `form_key`
    makes a fresh, empty form (its inputs are uncontrolled)."""
    return rx.card(
        rx.form(rx.vstack(*children, spacing="3", width="100%"),
                on_submit=on_submit, reset_on_submit=False, width="100%", key=form_key.to_string()),
        width="100%",
    )


def choice_group(legend_msgid: str, *children) -> rx.Component:
    """A fieldset of checkboxes (`check_label`s) under a legend (a msgid), without the frame."""
    return rx.el.fieldset(
        rx.el.legend(T(legend_msgid), class_name="field-label"), *children,
        border="none", padding="0", margin="0", min_width="0", width="100%",
    )


def check_label(control: rx.Component, text: rx.Component) -> rx.Component:
    """A checkbox and its text as one label (the whole of it a 36 px high touch target)."""
    return rx.el.label(control, text, display="inline-flex", gap="0.4rem", align_items="center",
                       min_height="2.25rem", padding_right="0.75rem")
