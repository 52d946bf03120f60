"""Small shared UI pieces. `T("Sign in")` is the translated text of a msgid (English
source text), read from the backend-translated catalog in `AppState.messages`; Babel
extracts the `T("...")` calls (`make i18n-update`)."""
from __future__ import annotations

import reflex as rx

from booking_app.ui.state.base import UI_MSGIDS, AppState


def T(msgid: str) -> rx.Var:
    """The current language's text for `msgid` (a literal English string)."""
    UI_MSGIDS.add(msgid)
    return AppState.messages[msgid].to(str)


def field(label_msgid: str, *, name: str, type: str = "text", autocomplete: str | None = None,
          required: bool = True, hint: rx.Var | str | None = None, input_id: str | None = None,
          **props) -> rx.Component:
    """A labelled input (label bound by id, full width, large touch target)."""
    input_id = input_id or f"field-{name}"
    children = [
        rx.el.label(T(label_msgid), html_for=input_id, class_name="field-label"),
        rx.input(id=input_id, name=name, type=type, required=required, size="3", width="100%",
                 auto_complete=autocomplete, **props),
    ]
    if hint is not None:
        children.append(rx.text(hint, size="1", color_scheme="gray"))
    return rx.vstack(*children, spacing="1", width="100%", align="stretch")


def error_callout(message: rx.Var) -> rx.Component:
    return rx.cond(
        message != "",
        rx.callout(message, icon="triangle_alert", color_scheme="red", role="alert", width="100%",
                   custom_attrs={"data-testid": "form-error"}),
    )


def ok_callout(message: rx.Var) -> rx.Component:
    """What a form just did, shown while `message` is set (error_callout's counterpart)."""
    return rx.cond(message != "", rx.callout(message, icon="circle_check", color_scheme="grass", width="100%",
                                             role="status", custom_attrs={"data-testid": "form-ok"}))


def page_heading(msgid: str, **props) -> rx.Component:
    return rx.heading(T(msgid), size="7", as_="h1", **props)


def card(*children, **props) -> rx.Component:
    return rx.card(*children, width="100%", **props)
