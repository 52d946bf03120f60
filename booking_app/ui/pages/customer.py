"""Customer pages: bookable (pick a day and a time), review & confirm, confirmation,
My bookings."""
from __future__ import annotations

import reflex as rx

from booking_app.i18n import N_
from booking_app.ui import paths, previews
from booking_app.ui.components import T, error_callout, field
from booking_app.ui.components.live_slots import live_slot_notes
from booking_app.ui.components.waitlist import full_slots  # issue 24: full times join their waitlist
from booking_app.ui.components.discount_entry import discount_entry
from booking_app.ui.components.payment_summary import consent_block, summary_block  # deposits and fees (issue 26)
from booking_app.ui.components.questions import questions_form
from booking_app.ui.components.series import series_card, series_form  # issue 24: recurring series
from booking_app.ui.state.base import AppState
from booking_app.ui.state.booking import BookableState, BookState
from booking_app.ui.state.series import SeriesManageState  # issue 24: recurring series
from booking_app.ui.state.manage_booking import (
    ConfirmationState,
    ConfirmEmailState,
    ManageLinkState,
    ManageState,
    MyBookingsState,
)


def _not_found(message: rx.Var) -> rx.Component:
    return rx.vstack(
        rx.callout(message, icon="circle_alert", color_scheme="red", width="100%", role="alert",
                   custom_attrs={"data-testid": "not-found"}),
        rx.link(T("Back to search"), href=paths.SEARCH),
        spacing="3", width="100%",
    )


def fact(icon: str, text: rx.Var) -> rx.Component:
    """An icon and a short text: one fact of a bookable or a booking (the embed widget's too)."""
    return rx.hstack(rx.icon(icon, size=16, color=rx.color("gray", 10)), rx.text(text, size="2"),
                     spacing="2", align="center")


# ---- bookable page -----------------------------------------------------------------------

def day_chip(state: type[BookableState], day: dict, *, colored: bool = True) -> rx.Component:
    """A day of `state`'s picker strip (the embed widget's too: colored=False keeps its accent colour)."""
    selected = state.day == day["key"]
    colors = {"color_scheme": rx.cond(day["free"] != "", "indigo", "gray")} if colored else {}
    return rx.button(
        rx.vstack(rx.text(day["weekday"], size="1"), rx.text(day["label"], size="2", weight="bold"),
                  spacing="0", align="center"),
        on_click=state.pick_day(day["key"]),
        variant=rx.cond(selected, "solid", rx.cond(day["free"] != "", "surface", "soft")),
        **colors,
        disabled=day["free"] == "",
        height="auto", padding_y="0.4rem", min_width="4.2rem",
        aria_pressed=rx.cond(selected, "true", "false"),
        custom_attrs={"data-testid": "day-chip", "data-day": day["key"]},
    )


def slot_button(state: type[BookableState], slot: dict) -> rx.Component:
    """A free time of `state`'s picked day (the embed widget's too)."""
    selected = state.selected == slot["start"]
    return rx.button(
        rx.vstack(rx.text(slot["time"], weight="medium"),
                  rx.cond(slot["seats"] != "", rx.text(slot["seats"], size="1")),
                  spacing="0", align="center"),
        on_click=state.pick_slot(slot["start"]),
        variant=rx.cond(selected, "solid", "outline"),
        size="3", height="auto", padding_y="0.5rem", width="100%",
        aria_pressed=rx.cond(selected, "true", "false"),
        custom_attrs={"data-testid": "slot", "data-start": slot["start"]},
    )


#: the slot area's reserved height (about three rows of times): the page does not jump when
#: the times arrive, or when another day has fewer of them
SLOT_AREA_MIN_HEIGHT = "10.5rem"


def date_input(state: type[BookableState]) -> rx.Component:
    """'Another date': any day for `state`'s picker (the embed widget's too)."""
    return rx.hstack(
        rx.el.label(T("Another date"), html_for="pick-date", class_name="field-label"),
        rx.input(id="pick-date", type="date", value=state.day, on_change=state.pick_date, size="2", width="11rem"),
        spacing="2", align="center", wrap="wrap",
    )


def quantity_select(state: type[BookableState]) -> rx.Component:
    """An event's number of places for `state`'s picked time (the embed widget's too)."""
    return rx.hstack(
        rx.el.label(T("Places"), html_for="qty", class_name="field-label"),
        rx.el.select(
            rx.foreach(state.quantity_options, lambda q: rx.el.option(q, value=q)),
            id="qty", value=state.quantity.to_string(), on_change=state.set_quantity, class_name="lang-select",
            custom_attrs={"data-testid": "quantity"},
        ),
        spacing="2", align="center",
    )


def _moving_banner() -> rx.Component:
    """Rescheduling: the booking's current time, and until when it may be changed."""
    return rx.cond(
        BookableState.reschedule_id > 0,
        rx.vstack(
            rx.cond(BookableState.current_time != "",
                    fact("calendar_clock", BookableState.current_time)),
            rx.cond(BookableState.move_note != "",
                    rx.text(BookableState.move_note, size="2", color_scheme="gray",
                            custom_attrs={"data-testid": "move-note"})),
            spacing="1", width="100%", custom_attrs={"data-testid": "current-time"},
        ),
    )


def _picker() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading(rx.cond(BookableState.reschedule_id > 0, T("Pick a new time"), T("Pick a time")),
                       size="5", as_="h2"),
            _moving_banner(),
            rx.text(BookableState.tz_note, size="2", color_scheme="gray", custom_attrs={"data-testid": "tz-note"}),
            rx.box(
                rx.hstack(rx.foreach(BookableState.days, lambda d: day_chip(BookableState, d)), spacing="2",
                          padding_bottom="0.25rem"),
                overflow_x="auto", width="100%", custom_attrs={"data-testid": "day-strip"},
            ),
            date_input(BookableState),
            rx.text(BookableState.day_title, weight="bold", size="3"),
            rx.box(
                rx.cond(
                    BookableState.day_slots.length() > 0,
                    rx.box(rx.foreach(BookableState.day_slots, lambda s: slot_button(BookableState, s)),
                           class_name="slot-grid"),
                    rx.callout(T("No free times on this day. Pick another day."), icon="calendar_x",
                               color_scheme="gray", width="100%", custom_attrs={"data-testid": "no-slots"}),
                ),
                min_height=SLOT_AREA_MIN_HEIGHT, width="100%", custom_attrs={"data-testid": "slot-area"},
            ),
            full_slots(BookableState.day_full_slots),  # issue 24: full times join their waitlist
            live_slot_notes(BookableState),
            rx.cond(
                BookableState.selected != "",
                rx.vstack(
                    rx.divider(),
                    rx.cond(
                        BookableState.is_event & (BookableState.reschedule_id == 0),
                        quantity_select(BookableState),
                    ),
                    rx.text(BookableState.selected_label, weight="medium", custom_attrs={"data-testid": "selected-slot"}),
                    rx.cond(
                        BookableState.may_move,
                        rx.button(
                            rx.cond(BookableState.reschedule_id > 0, T("Move my booking here"), T("Continue")),
                            on_click=BookableState.continue_booking, size="3", width="100%",
                            loading=BookableState.busy, disabled=BookableState.busy,
                            custom_attrs={"data-testid": "continue"},
                        ),
                        rx.vstack(
                            rx.callout(T("This booking can no longer be changed online."), icon="info",
                                       color_scheme="gray", width="100%", custom_attrs={"data-testid": "move-closed"}),
                            rx.link(T("Back to the booking"), href=BookableState.booking_href, size="2"),
                            spacing="2", width="100%",
                        ),
                    ),
                    spacing="3", width="100%",
                ),
            ),
            error_callout(BookableState.error),
            spacing="3", width="100%",
        ),
        width="100%",
    )


def bookable() -> rx.Component:
    info = BookableState.info
    return rx.cond(
        BookableState.not_found != "",
        _not_found(BookableState.not_found),
        rx.cond(
            BookableState.svc.length() > 0,
            rx.grid(
                rx.vstack(
                    rx.link(rx.hstack(rx.icon("arrow_left", size=16, class_name="flip-rtl"), T("Back to search"),
                                      spacing="1", align="center"),
                            href=paths.SEARCH, size="2"),
                    rx.badge(info["kind"], variant="soft", size="2"),
                    rx.heading(info["name"], size="7", as_="h1", dir="auto",
                               custom_attrs={"data-testid": "bookable-name"}),
                    rx.text(info["description"], size="3", dir="auto"),
                    rx.hstack(
                        fact("clock", info["duration"]),
                        rx.cond(info["location"] != "", fact("map_pin", info["location"])),
                        rx.cond(info["provider"] != "", fact("user", info["provider"])),
                        spacing="4", wrap="wrap",
                    ),
                    rx.hstack(rx.text(info["price"], size="6", weight="bold", custom_attrs={"data-testid": "price"}),
                              rx.text(info["per_person"], size="2", color_scheme="gray"), align="baseline",
                              spacing="2"),
                    rx.callout(info["policy"], icon="info", color_scheme="blue", variant="surface", width="100%",
                               custom_attrs={"data-testid": "policy"}),
                    rx.link(T("Full? Join the waitlist"), href=f"{paths.WAITLIST}?service={BookableState.svc['id']}",
                            size="2", custom_attrs={"data-testid": "waitlist-link"}),  # (issue 24: the waitlist)
                    spacing="3", width="100%", align="start",
                ),
                _picker(),
                columns=rx.breakpoints(initial="1", md="2"), spacing="6", width="100%", key="bookable",
            ),
            _bookable_skeleton(),
        ),
    )


def _bookable_skeleton() -> rx.Component:
    """The bookable page's shape while its state arrives: the same grid, the picker card with
    its slot area's height reserved, so nothing moves when the times come in (the left column's
    placeholders are as tall as a one-line description)."""
    def bar(width: str, height: str) -> rx.Component:
        return rx.box(width=width, height=height, border_radius="var(--radius-2)", background=rx.color("gray", 3))

    return rx.grid(
        # a full page load: the server puts the bookable's own left column into this slot
        # (ui/previews.py), painted with the HTML, and the bars stay hidden
        rx.box(
            previews.slot("bookable"),
            rx.vstack(bar("6rem", "1.2rem"), bar("4.5rem", "1.5rem"), bar("70%", "2.4rem"), bar("100%", "1.5rem"),
                      bar("60%", "1.2rem"), bar("5rem", "2rem"), bar("100%", "3.2rem"),
                      spacing="3", width="100%", align="start"),
            width="100%",
        ),
        rx.card(
            rx.vstack(bar("40%", "1.6rem"), bar("70%", "1rem"), bar("100%", "3.6rem"), bar("60%", "2rem"),
                      bar("50%", "1.3rem"),
                      rx.box(rx.spinner(size="3"), min_height=SLOT_AREA_MIN_HEIGHT, width="100%",
                             display="flex", align_items="center", justify_content="center"),
                      spacing="3", width="100%"),
            width="100%",
        ),
        columns=rx.breakpoints(initial="1", md="2"), spacing="6", width="100%", aria_busy="true",
        # a phone shows the top of the page only: the footer stays below the fold until the page is there
        min_height=rx.breakpoints(initial="100vh", md="0"),
        # its own key: React replaces the placeholders instead of moving them into the real page
        key="bookable-loading", custom_attrs={"data-testid": "bookable-loading"},
    )


# ---- review & confirm --------------------------------------------------------------------

def guest_fields() -> list[rx.Component]:
    """A guest's name, email and phone (the embed widget's too)."""
    return [
        rx.text(T("Or continue as a guest:"), size="2", color_scheme="gray"),
        field(N_("Your name"), name="guest_name", autocomplete="name"),
        field(N_("Email"), name="guest_email", type="email", autocomplete="email"),
        field(N_("Phone (optional)"), name="guest_phone", type="tel", autocomplete="tel", required=False),
    ]


def _guest_or_account() -> rx.Component:
    return rx.cond(
        AppState.signed_in,
        rx.text(T("Booking as"), " ", rx.text.strong(AppState.display_name), size="2"),
        rx.vstack(
            rx.hstack(
                rx.link(rx.button(T("Sign in"), variant="surface"), href=BookState.sign_in_url),
                rx.link(rx.button(T("Sign up"), variant="surface"), href=BookState.sign_up_url),
                spacing="2", wrap="wrap",
            ),
            *guest_fields(),
            spacing="3", width="100%",
        ),
    )


def _email_sent() -> rx.Component:
    return rx.center(
        rx.card(
            rx.vstack(
                rx.heading(T("Check your email"), size="6", as_="h1"),
                rx.callout(BookState.email_sent, icon="mail", color_scheme="grass", width="100%", role="status",
                           custom_attrs={"data-testid": "email-sent"}),
                rx.link(T("Change the time"), href=BookState.back_url, size="2"),
                spacing="4", width="100%",
            ),
            width="100%", max_width="560px", size="3",
        ),
        width="100%",
    )


def review() -> rx.Component:
    info = BookState.info
    return rx.cond(
        BookState.not_found != "",
        _not_found(BookState.not_found),
        rx.cond(BookState.email_sent != "", _email_sent(), rx.center(
            rx.card(
                rx.form(
                    rx.vstack(
                        rx.heading(T("Review and confirm"), size="6", as_="h1"),
                        rx.vstack(
                            rx.text(info["name"], weight="bold", size="4", custom_attrs={"data-testid": "review-name"}),
                            fact("calendar", BookState.when),
                            rx.cond(info["location"] != "", fact("map_pin", info["location"])),
                            rx.cond(BookState.quantity > 1,
                                    fact("users", BookState.quantity.to_string())),
                            fact("banknote", BookState.total),
                            rx.cond(BookState.unavailable == "", discount_entry()),  # issue 26: discount codes
                            rx.text(info["policy"], size="2", color_scheme="gray"),
                            consent_block(BookState.payment_consent),  # issue 26: deposit, card saved for fees
                            spacing="2", width="100%", custom_attrs={"data-testid": "review-summary"},
                        ),
                        rx.divider(),
                        rx.cond(BookState.unavailable != "", _unavailable(), _booking_form()),
                        rx.link(T("Change the time"), href=BookState.back_url, size="2"),
                        spacing="4", width="100%",
                    ),
                    on_submit=BookState.confirm, reset_on_submit=False, width="100%",
                ),
                width="100%", max_width="560px", size="3",
            ),
            width="100%",
        )),
    )


def _alternatives() -> rx.Component:
    return rx.cond(
        BookState.alternatives.length() > 0,
        rx.vstack(
            rx.text(T("Nearest free times:"), weight="medium", size="2"),
            rx.box(rx.foreach(BookState.alternative_slots, lambda a: rx.button(
                a["label"], type="button", variant="outline", on_click=BookState.choose_alternative(a["start"]),
                custom_attrs={"data-testid": "alternative"}, height="auto", padding_y="0.4rem",
                white_space="normal")), class_name="slot-grid wide"),
            spacing="2", width="100%", custom_attrs={"data-testid": "alternatives"},
        ),
    )


def _unavailable() -> rx.Component:
    """The time from the URL can't be booked: say so and lead back to the free times."""
    return rx.vstack(
        rx.callout(BookState.unavailable, icon="clock", color_scheme="amber", width="100%", role="status",
                   custom_attrs={"data-testid": "slot-unavailable"}),
        _alternatives(),
        rx.button(rx.link(T("See the free times"), href=BookState.slots_url), as_child=True, size="3",
                  width="100%", custom_attrs={"data-testid": "see-slots"}),
        spacing="3", width="100%",
    )


def _booking_form() -> rx.Component:
    return rx.vstack(
        _guest_or_account(),
        rx.cond(
            BookState.methods.length() > 0,
            rx.vstack(
                rx.text(T("Payment"), class_name="field-label"),
                rx.radio_group.root(
                    rx.foreach(BookState.method_options, lambda m: rx.radio_group.item(m["label"], value=m["value"])),
                    value=BookState.method, on_change=BookState.set_method, name="method",
                    direction="column", size="3",
                ),
                spacing="2", width="100%",
            ),
        ),
        questions_form(),  # issue 24: booking questions
        series_form(),  # issue 24: recurring series
        rx.vstack(
            rx.el.label(T("Notes for the provider (optional)"), html_for="notes", class_name="field-label"),
            rx.text_area(id="notes", name="notes", max_length=500, width="100%", rows="2"),
            spacing="1", width="100%",
        ),
        error_callout(BookState.error),
        _alternatives(),
        rx.button(T("Confirm booking"), type="submit", size="3", width="100%",
                  loading=BookState.busy, disabled=BookState.busy,
                  custom_attrs={"data-testid": "confirm"}),
        spacing="4", width="100%",
    )


# ---- confirmation ------------------------------------------------------------------------

def _cancel_button(card: dict, state: type[ManageState]) -> rx.Component:
    """Cancel, with its own alert dialog: the button is the dialog's trigger, so Radix moves
    focus into the dialog when it opens (to "Keep it", its Cancel), keeps Tab inside, closes
    on Esc and gives focus back to this button. The trigger and Cancel buttons carry no
    on_click of their own (Reflex would wrap them in a div, and Radix would focus that):
    open/close go through on_open_change; it opens once the refund preview is loaded."""
    return rx.alert_dialog.root(
        rx.alert_dialog.trigger(
            rx.button(T("Cancel booking"), variant="soft", color_scheme="red", size="2",
                      custom_attrs={"data-testid": "cancel"}),
        ),
        rx.alert_dialog.content(
            rx.alert_dialog.title(T("Cancel this booking?")),
            rx.alert_dialog.description(state.cancel_text, custom_attrs={"data-testid": "cancel-text"}),
            rx.flex(
                rx.alert_dialog.cancel(rx.button(T("Keep it"), variant="soft", color_scheme="gray",
                                                 custom_attrs={"data-testid": "keep"})),
                rx.cond(state.cancel_allowed,
                        rx.button(T("Yes, cancel"), color_scheme="red", on_click=state.confirm_cancel,
                                  loading=state.cancel_busy, disabled=state.cancel_busy,
                                  custom_attrs={"data-testid": "confirm-cancel"})),
                spacing="3", justify="end", margin_top="1rem", wrap="wrap",
            ),
            max_width="440px", custom_attrs={"data-testid": "cancel-dialog"},
        ),
        open=state.cancel_open & (state.cancel_id.to_string() == card["id"]),
        on_open_change=lambda value: state.cancel_open_change(card["id"], value),
    )


def _actions(card: dict, state: type[ManageState]) -> rx.Component:
    """What may still be done with the booking: add to calendar while it is going to happen,
    change time and cancel while the service's cancellation quote allows it."""
    return rx.flex(
        rx.cond(card["calendar"] != "",
                rx.button(rx.icon("calendar_plus", size=16), T("Add to calendar"), variant="soft", size="2",
                          on_click=state.download_ics(card["id"]), custom_attrs={"data-testid": "ics"})),
        rx.cond(card["active"] != "", rx.button(rx.link(T("Change time"), href=card["reschedule_href"]),
                                                as_child=True, variant="soft", size="2",
                                                custom_attrs={"data-testid": "reschedule"})),
        rx.cond(card["active"] != "", _cancel_button(card, state)),
        spacing="2", wrap="wrap",
    )


def reference_and_status(card: dict) -> list[rx.Component]:
    """A booking card's reference, status and payment badges (the embed widget's too)."""
    return [
        rx.hstack(rx.text(T("Reference"), size="2", color_scheme="gray"),
                  rx.code(card["reference"], size="4", custom_attrs={"data-testid": "reference"}),
                  spacing="2", align="center"),
        rx.hstack(rx.badge(card["status_label"], color_scheme=card["status_color"], size="2",
                           custom_attrs={"data-testid": "status"}),
                  rx.cond(card["payment"] != "", rx.badge(card["payment"], variant="outline", size="2")),
                  spacing="2"),
    ]


def confirmation() -> rx.Component:
    card = ConfirmationState.card
    return rx.cond(
        ConfirmationState.not_found != "",
        rx.vstack(
            _not_found(ConfirmationState.not_found),
            rx.cond(ConfirmationState.link_refused,
                    rx.link(T("Get a new link by email"), href=paths.MANAGE_LINK,
                            custom_attrs={"data-testid": "new-link"})),
            spacing="3", width="100%",
        ),
        rx.cond(
            ConfirmationState.booking.length() > 0,
            rx.center(
                rx.card(
                    rx.vstack(
                        rx.hstack(
                            rx.cond(card["status"] == "cancelled",  # static icons (no lucide index)
                                    rx.icon("circle_x", size=32, color=rx.color("gray", 9)),
                                    rx.icon("circle_check", size=32, color=rx.color("grass", 9))),
                            rx.heading(card["title"], size="6", as_="h1", custom_attrs={"data-testid": "confirmation-title"}),
                            spacing="3", align="center",
                        ),
                        *reference_and_status(card),
                        rx.cond(card["moved"] != "",
                                rx.callout(card["moved"], icon="circle_check", color_scheme="grass", width="100%",
                                           role="status", custom_attrs={"data-testid": "moved"})),
                        rx.text(card["service"], weight="bold", size="4"),
                        fact("calendar", card["when"]),
                        rx.cond(card["location"] != "",
                                rx.box(fact("map_pin", card["location"]), custom_attrs={"data-testid": "location"})),
                        fact("banknote", card["price"]),
                        rx.cond(card["seats"] != "", fact("users", card["seats"])),
                        rx.cond(card["answers"] != "",  # (issue 24: answers to the booking questions)
                                rx.text(card["answers"], size="2", white_space="pre-line", dir="auto",
                                        custom_attrs={"data-testid": "answers"})),
                        rx.cond(card["policy"] != "",
                                rx.text(card["policy"], size="2", color_scheme="gray",
                                        custom_attrs={"data-testid": "policy"})),
                        rx.cond(card["cutoff_note"] != "",
                                rx.text(card["cutoff_note"], size="2", weight="medium",
                                        custom_attrs={"data-testid": "cutoff-note"})),
                        rx.cond(card["approval_note"] != "",  # (issue 24: a request awaiting approval)
                                rx.callout(card["approval_note"], icon="hourglass", color_scheme="orange", width="100%",
                                           role="status", custom_attrs={"data-testid": "approval-note"})),
                        rx.cond(
                            ConfirmationState.pay_options.length() > 0,
                            rx.vstack(
                                rx.text(T("Complete the payment"), weight="medium"),
                                rx.flex(rx.foreach(ConfirmationState.pay_options, lambda m: rx.button(
                                    m["label"], on_click=ConfirmationState.pay(m["value"]), size="3",
                                    loading=ConfirmationState.cancel_busy, disabled=ConfirmationState.cancel_busy,
                                    custom_attrs={"data-testid": "pay"})), spacing="2", wrap="wrap"),
                                spacing="2", width="100%",
                            ),
                        ),
                        summary_block(ConfirmationState.money, ConfirmationState.pay_balance,
                                      ConfirmationState.cancel_busy),
                        error_callout(ConfirmationState.cancel_error),
                        _actions(card, ConfirmationState),
                        series_card(),  # issue 24: recurring series
                        rx.cond(
                            AppState.is_staff & ConfirmationState.booking["is_guest"].to(bool),
                            rx.vstack(
                                rx.button(rx.icon("mail", size=16), T("Send the guest a new link"), variant="soft",
                                          size="2", on_click=ConfirmationState.reissue_link,
                                          loading=ConfirmationState.cancel_busy,
                                          custom_attrs={"data-testid": "reissue-link"}),
                                rx.cond(ConfirmationState.link_notice != "",
                                        rx.text(ConfirmationState.link_notice, size="2", role="status",
                                                custom_attrs={"data-testid": "link-notice"})),
                                spacing="2",
                            ),
                        ),
                        rx.cond(AppState.signed_in, rx.link(T("All my bookings"), href=paths.MY_BOOKINGS, size="2"),
                                rx.text(T("Keep this page's address: it lets you manage your booking."), size="2",
                                        color_scheme="gray")),
                        spacing="3", width="100%", align="start",
                    ),
                    width="100%", max_width="560px", size="3",
                ),
                width="100%",
            ),
            rx.center(rx.spinner(size="3"), padding="3rem"),
        ),
    )


# ---- my bookings -------------------------------------------------------------------------

def _booking_row(card: dict) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.badge(card["status_label"], color_scheme=card["status_color"], size="2",
                         custom_attrs={"data-testid": "status"}),
                rx.cond(card["payment"] != "", rx.badge(card["payment"], variant="outline", size="2")),
                rx.spacer(),
                rx.code(card["reference"], size="2"),
                width="100%", align="center", wrap="wrap",
            ),
            rx.link(rx.text(card["service"], weight="bold", size="4"), href=card["href"], color="inherit"),
            fact("calendar", card["when"]),
            rx.hstack(fact("banknote", card["price"]), rx.cond(card["seats"] != "", fact("users", card["seats"])),
                      spacing="4"),
            rx.cond(card["cutoff_note"] != "",
                    rx.text(card["cutoff_note"], size="2", color_scheme="gray",
                            custom_attrs={"data-testid": "cutoff-note"})),
            _actions(card, MyBookingsState),
            spacing="2", width="100%", align="start",
        ),
        width="100%", custom_attrs={"data-testid": "booking-row", "data-reference": card["reference"]},
    )


def my_bookings() -> rx.Component:
    return rx.vstack(
        rx.heading(T("My bookings"), size="7", as_="h1"),
        rx.link(T("Waitlist"), href=paths.WAITLIST, size="2", custom_attrs={"data-testid": "my-waitlist"}),  # issue 24
        error_callout(MyBookingsState.error),
        error_callout(MyBookingsState.cancel_error),
        rx.heading(T("Upcoming"), size="5", as_="h2"),
        rx.cond(
            MyBookingsState.upcoming_cards.length() > 0,
            rx.vstack(rx.foreach(MyBookingsState.upcoming_cards, _booking_row), spacing="3", width="100%",
                      custom_attrs={"data-testid": "upcoming"}),
            rx.callout.root(
                rx.callout.icon(rx.icon("calendar")),
                rx.callout.text(T("No upcoming bookings."), " ",
                                rx.link(T("Find something to book"), href=paths.SEARCH)),
                color_scheme="gray", width="100%", custom_attrs={"data-testid": "no-upcoming"},
            ),
        ),
        rx.cond(
            MyBookingsState.past_cards.length() > 0,
            rx.vstack(
                rx.heading(T("Past and cancelled"), size="5", as_="h2"),
                rx.vstack(rx.foreach(MyBookingsState.past_cards, _booking_row), spacing="3", width="100%",
                          custom_attrs={"data-testid": "past"}),
                spacing="3", width="100%",
            ),
        ),
        spacing="4", width="100%",
    )


# ---- guests: confirm the email address, ask for a new manage link ------------------------

def confirm_email() -> rx.Component:
    return rx.cond(
        ConfirmEmailState.error != "",
        rx.vstack(
            rx.heading(T("Your booking"), size="6", as_="h1"),
            rx.callout(ConfirmEmailState.error, icon="circle_alert", color_scheme="red", width="100%", role="alert",
                       custom_attrs={"data-testid": "confirm-error"}),
            rx.link(T("Find something to book"), href=paths.SEARCH),
            spacing="3", width="100%",
        ),
        rx.center(rx.spinner(size="3"), padding="3rem"),
    )


def manage_link() -> rx.Component:
    return rx.center(
        rx.card(
            rx.vstack(
                rx.heading(T("Get a new link to your booking"), size="6", as_="h1"),
                rx.text(T("Enter the email address you booked with and the booking reference from your "
                          "confirmation email. We send a new link there; earlier links stop working."),
                        size="2", color_scheme="gray"),
                rx.cond(
                    ManageLinkState.sent != "",
                    rx.callout(ManageLinkState.sent, icon="mail", color_scheme="grass", width="100%", role="status",
                               custom_attrs={"data-testid": "link-sent"}),
                    rx.form(
                        rx.vstack(
                            field(N_("Email"), name="email", type="email", autocomplete="email"),
                            field(N_("Booking reference"), name="reference", autocomplete="off"),
                            error_callout(ManageLinkState.error),
                            rx.button(T("Send me a new link"), type="submit", size="3", width="100%",
                                      loading=ManageLinkState.busy, disabled=ManageLinkState.busy,
                                      custom_attrs={"data-testid": "send-link"}),
                            spacing="3", width="100%",
                        ),
                        on_submit=ManageLinkState.submit, reset_on_submit=False, width="100%",
                    ),
                ),
                spacing="4", width="100%",
            ),
            width="100%", max_width="560px", size="3",
        ),
        width="100%",
    )


def register(add) -> None:
    add(bookable, paths.BOOKABLE, N_("Book"), BookableState.load)
    add(review, paths.BOOK, N_("Review"), BookState.load)
    add(confirmation, paths.CONFIRMATION, N_("Your booking"),
        [ConfirmationState.load, SeriesManageState.load])  # (issue 24: its series card)
    add(confirm_email, paths.CONFIRM_EMAIL, N_("Your booking"), ConfirmEmailState.load)
    add(manage_link, paths.MANAGE_LINK, N_("Get a new link to your booking"), ManageLinkState.load)
    add(my_bookings, paths.MY_BOOKINGS, N_("My bookings"), MyBookingsState.load)
