"""Widgets of two-factor sign-in and re-authentication: a code input with its error under it,
and the "confirm it is you" dialog (ui/state/reauth.py)."""
from __future__ import annotations

import reflex as rx

from booking_app.i18n import N_
from booking_app.ui.components import T
from booking_app.ui.state.reauth import ReauthState


def code_field(label_msgid: str, *, name: str, error: rx.Var, hint: rx.Var | str | None = None,
               input_id: str | None = None, autocomplete: str = "one-time-code",
               secret: bool = False, auto_focus: bool = False) -> rx.Component:
    """A labelled code (or password) input whose error sits right under it (aria-invalid,
    aria-describedby)."""
    input_id = input_id or f"field-{name}"
    return rx.vstack(
        rx.el.label(T(label_msgid), html_for=input_id, class_name="field-label"),
        rx.input(id=input_id, name=name, required=True, size="3", width="100%", auto_complete=autocomplete,
                 type="password" if secret else "text", spell_check=False, max_length=1024 if secret else 64,
                 auto_focus=auto_focus,
                 custom_attrs={"aria-invalid": rx.cond(error != "", "true", "false"),
                               "aria-describedby": f"{input_id}-help"}),
        rx.cond(error != "",
                rx.text(error, id=f"{input_id}-help", size="2", color_scheme="red", role="alert",
                        custom_attrs={"data-testid": f"{name}-error"}),
                rx.text(hint if hint is not None else "", id=f"{input_id}-help", size="1", color_scheme="gray")),
        spacing="1", width="100%", align="stretch",
    )


def reauth_dialog() -> rx.Component:
    """Put once on a page whose actions may need re-authentication. (A dialog, not an alert
    dialog: it opens with the focus in its field, and Escape cancels.) It has no trigger (a
    service's answer opens it): the browser bridge gives focus back to the element focused
    before it opened (ui/browser_bridge.jsx)."""
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(T("Confirm it is you")),
            rx.dialog.description(
                T("Please confirm it is you: enter your password or a code from your authenticator app.")),
            rx.form(
                rx.vstack(
                    code_field(N_("Password or code"), name="proof", error=ReauthState.reauth_error,
                               input_id="field-reauth-proof", autocomplete="current-password", secret=True,
                               auto_focus=True),
                    rx.flex(
                        rx.dialog.close(rx.button(T("Cancel"), variant="soft", color_scheme="gray",
                                                  type="button")),
                        rx.button(T("Confirm"), type="submit", loading=ReauthState.reauth_busy,
                                  disabled=ReauthState.reauth_busy, custom_attrs={"data-testid": "reauth-confirm"}),
                        spacing="3", justify="end", wrap="wrap", width="100%",
                    ),
                    spacing="3", width="100%", margin_top="1rem",
                ),
                on_submit=ReauthState.confirm_reauth, reset_on_submit=True,
            ),
            max_width="440px",
        ),
        open=ReauthState.reauth_open,
        on_open_change=ReauthState.set_reauth_open,
    )
