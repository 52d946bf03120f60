"""The two-factor enrolment page: password, then the QR code (drawn on the server) with the
secret as text, then a first code, then the ten recovery codes, shown once."""
from __future__ import annotations

import reflex as rx

from booking_app.i18n import N_
from booking_app.ui.components import T, error_callout, field
from booking_app.ui.components.security import code_field
from booking_app.ui.state.account import MfaSetupState


def _password_step() -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.text(T("Confirm your password to start."), size="2"),
            field(N_("Current password"), name="password", type="password", autocomplete="current-password",
                  input_id="field-mfa-password"),
            rx.cond(MfaSetupState.field_errors.contains("password"),
                    rx.text(MfaSetupState.field_errors["password"], size="2", color_scheme="red", role="alert",
                            custom_attrs={"data-testid": "password-error"})),
            rx.button(T("Continue"), type="submit", size="3", loading=MfaSetupState.busy,
                      disabled=MfaSetupState.busy, custom_attrs={"data-testid": "mfa-start"}),
            spacing="3", width="100%", align="stretch",
        ),
        on_submit=MfaSetupState.start, reset_on_submit=True, width="100%",
    )


def _scan_step() -> rx.Component:
    return rx.vstack(
        rx.text(T("1. Scan this QR code with an authenticator app (for example on your phone)."), size="2"),
        rx.box(rx.html(MfaSetupState.qr_svg), class_name="mfa-qr", role="img",
               aria_label=T("QR code of your two-factor secret"), width="220px", max_width="100%",
               custom_attrs={"data-testid": "mfa-qr"}),
        rx.text(T("Can't scan it? Type this key into the app instead:"), size="2"),
        rx.code(MfaSetupState.secret, size="3", custom_attrs={"data-testid": "mfa-secret"},
                style={"word_break": "break-all", "user_select": "all"}),
        rx.form(
            rx.vstack(
                code_field(N_("2. Enter the 6-digit code the app shows"), name="code",
                           error=MfaSetupState.field_errors.get("code", ""), input_id="field-mfa-code"),
                rx.button(T("Turn on two-factor sign-in"), type="submit", size="3", loading=MfaSetupState.busy,
                          disabled=MfaSetupState.busy, custom_attrs={"data-testid": "mfa-confirm"}),
                spacing="3", width="100%", align="stretch",
            ),
            on_submit=MfaSetupState.confirm, reset_on_submit=True, width="100%",
        ),
        spacing="3", width="100%", align="start",
    )


def _codes_step() -> rx.Component:
    return rx.vstack(
        rx.callout(T("Two-factor sign-in is on."), icon="circle_check", color_scheme="grass", width="100%",
                   role="status"),
        rx.text(T("Save these recovery codes somewhere safe. Each works once, instead of a code from the app, "
                  "if you lose your phone. They are shown only now."), size="2"),
        rx.el.ul(
            rx.foreach(MfaSetupState.recovery_codes,
                       lambda c: rx.el.li(rx.code(c, size="3"), custom_attrs={"data-testid": "recovery-code"})),
            class_name="recovery-codes",
            style={"display": "grid", "grid_template_columns": "repeat(auto-fill, minmax(10rem, 1fr))",
                   "gap": "0.5rem", "list_style": "none", "padding": "0", "margin": "0", "width": "100%"},
        ),
        rx.button(T("I have saved them"), size="3", on_click=MfaSetupState.finish,
                  custom_attrs={"data-testid": "mfa-done"}),
        spacing="3", width="100%", align="start",
    )


def content() -> rx.Component:
    return rx.center(
        rx.card(
            rx.vstack(
                rx.heading(T("Set up two-factor sign-in"), size="6", as_="h1"),
                rx.cond(MfaSetupState.required,
                        rx.callout(T("Your account must use two-factor sign-in. Set it up to continue."),
                                   icon="info", width="100%")),
                error_callout(MfaSetupState.setup_error),
                rx.match(
                    MfaSetupState.step,
                    ("password", _password_step()),
                    ("scan", _scan_step()),
                    ("codes", _codes_step()),
                    rx.spinner(),
                ),
                spacing="4", width="100%",
            ),
            width="100%", max_width="520px", size="3",
        ),
        width="100%",
    )
