"""Sign-in (password, then a two-factor code when it is on) and sign-up pages."""
from __future__ import annotations

import reflex as rx

from booking_app.i18n import N_
from booking_app.ui import paths
from booking_app.ui.components import T, error_callout, field, ok_callout
from booking_app.ui.components.security import code_field
from booking_app.ui.state.auth import AuthFormState, PasswordResetState


def _panel(*children, on_mount=AuthFormState.reset_form) -> rx.Component:
    """An account page's one card, centred (`on_mount`: the state's fresh start)."""
    return rx.center(
        rx.card(rx.vstack(*children, spacing="4", width="100%"), width="100%", max_width="420px", size="3"),
        width="100%", on_mount=on_mount,
    )


def _form(on_submit, *children, reset_on_submit: bool = False) -> rx.Component:
    return rx.form(rx.vstack(*children, spacing="3", width="100%"), on_submit=on_submit,
                   reset_on_submit=reset_on_submit, width="100%")


def _submit(msgid: str, busy: rx.Var, testid: str) -> rx.Component:
    """The form's full-width submit button, spinning (and not pressable again) while `busy`."""
    return rx.button(T(msgid), type="submit", size="3", width="100%", loading=busy, disabled=busy,
                     custom_attrs={"data-testid": testid})


def sign_in() -> rx.Component:
    return _panel(
        rx.heading(T("Sign in"), size="6", as_="h1"),
        error_callout(AuthFormState.error),
        _form(
            AuthFormState.sign_in,
            field(N_("Username or email"), name="identifier", autocomplete="username"),
            field(N_("Password"), name="password", type="password", autocomplete="current-password"),
            _submit(N_("Sign in"), AuthFormState.busy, "sign-in-submit"),
        ),
        rx.text(T("New here?"), " ",
                rx.link(T("Create an account"), href=paths.SIGN_UP + AuthFormState.next_query), size="2"),
        rx.link(T("Forgot your password?"), href=paths.FORGOT_PASSWORD, size="2"),
    )


def sign_in_code() -> rx.Component:
    """The second sign-in step: a code from the authenticator app, or a recovery code."""
    return _panel(
        rx.heading(T("Enter your code"), size="6", as_="h1"),
        rx.text(T("Open your authenticator app and enter the 6-digit code for this site."), size="2",
                color_scheme="gray"),
        error_callout(AuthFormState.error),
        _form(
            AuthFormState.sign_in_with_code,
            code_field(N_("Code"), name="code", error=AuthFormState.code_error, auto_focus=True,
                       hint=T("Lost your phone? Enter one of your recovery codes instead.")),
            _submit(N_("Sign in"), AuthFormState.busy, "code-submit"),
            reset_on_submit=True,
        ),
        rx.link(T("Back to sign in"), href=paths.SIGN_IN, size="2"),
        on_mount=AuthFormState.open_code_step,
    )


def _checked(label_msgid: str, name: str, **props) -> rx.Component:
    """A sign-up field with its own problem under it: marked aria-invalid and described by the
    message, so every field's error shows (and is read) at once, next to its field."""
    message = AuthFormState.field_errors.get(name, "")
    error_id = f"field-{name}-error"
    return rx.vstack(
        field(label_msgid, name=name, aria_invalid=rx.cond(message != "", "true", "false"),
              custom_attrs={"aria-describedby": rx.cond(message != "", error_id, "")}, **props),
        rx.cond(message != "", rx.text(message, id=error_id, size="2", color_scheme="red", class_name="field-error",
                                       custom_attrs={"data-testid": f"error-{name}"})),
        spacing="1", width="100%", align="stretch",
    )


def sign_up() -> rx.Component:
    return _panel(
        rx.heading(T("Create your account"), size="6", as_="h1"),
        error_callout(AuthFormState.error),
        _form(
            AuthFormState.sign_up,
            _checked(N_("Full name"), "full_name", autocomplete="name", required=False),
            _checked(N_("Username"), "username", autocomplete="username"),
            _checked(N_("Email"), "email", type="email", autocomplete="email"),
            _checked(N_("Password"), "password", type="password", autocomplete="new-password",
                     hint=T("At least 8 characters.")),
            _submit(N_("Sign up"), AuthFormState.busy, "sign-up-submit"),
        ),
        rx.text(T("Already have an account?"), " ",
                rx.link(T("Sign in"), href=paths.SIGN_IN + AuthFormState.next_query), size="2"),
    )


def forgot_password() -> rx.Component:
    return _panel(
        rx.heading(T("Reset your password"), size="6", as_="h1"),
        rx.text(T("Enter your email address and we send you a link to choose a new password."), size="2",
                color_scheme="gray"),
        error_callout(PasswordResetState.error),
        ok_callout(PasswordResetState.done),
        _form(
            PasswordResetState.request_link,
            field(N_("Email"), name="email", type="email", autocomplete="email"),
            _submit(N_("Send the link"), PasswordResetState.busy, "forgot-submit"),
        ),
        rx.link(T("Back to sign in"), href=paths.SIGN_IN, size="2"),
        on_mount=PasswordResetState.reset_form,
    )


def reset_password() -> rx.Component:
    return _panel(
        rx.heading(T("Choose a new password"), size="6", as_="h1"),
        error_callout(PasswordResetState.error),
        ok_callout(PasswordResetState.done),
        rx.cond(
            PasswordResetState.done == "",
            _form(
                PasswordResetState.set_new_password,
                field(N_("New password"), name="new_password", type="password",
                      autocomplete="new-password", hint=T("At least 8 characters.")),
                field(N_("New password again"), name="new_password_again", type="password",
                      autocomplete="new-password"),
                _submit(N_("Save the new password"), PasswordResetState.busy, "reset-submit"),
            ),
        ),
        rx.link(T("Sign in"), href=paths.SIGN_IN, size="2"),
        on_mount=PasswordResetState.reset_form,
    )
