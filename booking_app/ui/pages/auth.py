"""Sign-in (password, then a two-factor code when it is on) and sign-up pages."""
from __future__ import annotations

import reflex as rx

from booking_app.i18n import N_
from booking_app.ui import paths
from booking_app.ui.components import T, error_callout, field
from booking_app.ui.components.security import code_field
from booking_app.ui.state.auth import AuthFormState, PasswordResetState


def _panel(*children) -> rx.Component:
    return rx.center(
        rx.card(rx.vstack(*children, spacing="4", width="100%"), width="100%", max_width="420px", size="3"),
        width="100%", on_mount=AuthFormState.reset_form,
    )


def sign_in() -> rx.Component:
    return _panel(
        rx.heading(T("Sign in"), size="6", as_="h1"),
        error_callout(AuthFormState.error),
        rx.form(
            rx.vstack(
                field(N_("Username or email"), name="identifier", autocomplete="username"),
                field(N_("Password"), name="password", type="password", autocomplete="current-password"),
                rx.button(T("Sign in"), type="submit", size="3", width="100%", loading=AuthFormState.busy,
                          disabled=AuthFormState.busy, custom_attrs={"data-testid": "sign-in-submit"}),
                spacing="3", width="100%",
            ),
            on_submit=AuthFormState.sign_in, reset_on_submit=False, width="100%",
        ),
        rx.text(T("New here?"), " ",
                rx.link(T("Create an account"), href=paths.SIGN_UP + AuthFormState.next_query), size="2"),
        rx.link(T("Forgot your password?"), href=paths.FORGOT_PASSWORD, size="2"),
    )


def sign_in_code() -> rx.Component:
    """The second sign-in step: a code from the authenticator app, or a recovery code."""
    return rx.center(
        rx.card(
            rx.vstack(
                rx.heading(T("Enter your code"), size="6", as_="h1"),
                rx.text(T("Open your authenticator app and enter the 6-digit code for this site."), size="2",
                        color_scheme="gray"),
                error_callout(AuthFormState.error),
                rx.form(
                    rx.vstack(
                        code_field(N_("Code"), name="code", error=AuthFormState.code_error, auto_focus=True,
                                   hint=T("Lost your phone? Enter one of your recovery codes instead.")),
                        rx.button(T("Sign in"), type="submit", size="3", width="100%", loading=AuthFormState.busy,
                                  disabled=AuthFormState.busy, custom_attrs={"data-testid": "code-submit"}),
                        spacing="3", width="100%",
                    ),
                    on_submit=AuthFormState.sign_in_with_code, reset_on_submit=True, width="100%",
                ),
                rx.link(T("Back to sign in"), href=paths.SIGN_IN, size="2"),
                spacing="4", width="100%",
            ),
            width="100%", max_width="420px", size="3",
        ),
        width="100%", on_mount=AuthFormState.open_code_step,
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
        rx.form(
            rx.vstack(
                _checked(N_("Full name"), "full_name", autocomplete="name", required=False),
                _checked(N_("Username"), "username", autocomplete="username"),
                _checked(N_("Email"), "email", type="email", autocomplete="email"),
                _checked(N_("Password"), "password", type="password", autocomplete="new-password",
                         hint=T("At least 8 characters.")),
                rx.button(T("Sign up"), type="submit", size="3", width="100%", loading=AuthFormState.busy,
                          disabled=AuthFormState.busy, custom_attrs={"data-testid": "sign-up-submit"}),
                spacing="3", width="100%",
            ),
            on_submit=AuthFormState.sign_up, reset_on_submit=False, width="100%",
        ),
        rx.text(T("Already have an account?"), " ",
                rx.link(T("Sign in"), href=paths.SIGN_IN + AuthFormState.next_query), size="2"),
    )


def _ok(message: rx.Var) -> rx.Component:
    return rx.cond(message != "", rx.callout(message, icon="circle_check", color_scheme="grass", width="100%",
                                             role="status", custom_attrs={"data-testid": "form-ok"}))


def forgot_password() -> rx.Component:
    return rx.center(
        rx.card(
            rx.vstack(
                rx.heading(T("Reset your password"), size="6", as_="h1"),
                rx.text(T("Enter your email address and we send you a link to choose a new password."), size="2",
                        color_scheme="gray"),
                error_callout(PasswordResetState.error),
                _ok(PasswordResetState.done),
                rx.form(
                    rx.vstack(
                        field(N_("Email"), name="email", type="email", autocomplete="email"),
                        rx.button(T("Send the link"), type="submit", size="3", width="100%",
                                  loading=PasswordResetState.busy, disabled=PasswordResetState.busy,
                                  custom_attrs={"data-testid": "forgot-submit"}),
                        spacing="3", width="100%",
                    ),
                    on_submit=PasswordResetState.request_link, reset_on_submit=False, width="100%",
                ),
                rx.link(T("Back to sign in"), href=paths.SIGN_IN, size="2"),
                spacing="4", width="100%",
            ),
            width="100%", max_width="420px", size="3",
        ),
        width="100%", on_mount=PasswordResetState.reset_form,
    )


def reset_password() -> rx.Component:
    return rx.center(
        rx.card(
            rx.vstack(
                rx.heading(T("Choose a new password"), size="6", as_="h1"),
                error_callout(PasswordResetState.error),
                _ok(PasswordResetState.done),
                rx.cond(
                    PasswordResetState.done == "",
                    rx.form(
                        rx.vstack(
                            field(N_("New password"), name="new_password", type="password",
                                  autocomplete="new-password", hint=T("At least 8 characters.")),
                            field(N_("New password again"), name="new_password_again", type="password",
                                  autocomplete="new-password"),
                            rx.button(T("Save the new password"), type="submit", size="3", width="100%",
                                      loading=PasswordResetState.busy, disabled=PasswordResetState.busy,
                                      custom_attrs={"data-testid": "reset-submit"}),
                            spacing="3", width="100%",
                        ),
                        on_submit=PasswordResetState.set_new_password, reset_on_submit=False, width="100%",
                    ),
                ),
                rx.link(T("Sign in"), href=paths.SIGN_IN, size="2"),
                spacing="4", width="100%",
            ),
            width="100%", max_width="420px", size="3",
        ),
        width="100%", on_mount=PasswordResetState.reset_form,
    )
