"""My account: profile, language, timezone, notifications, password, two-factor sign-in,
signed-in devices, export, delete."""
from __future__ import annotations

import reflex as rx

from booking_app.i18n import N_
from booking_app.ui import paths
from booking_app.ui.components import T, error_callout, field, ok_callout
from booking_app.ui.components.security import code_field
from booking_app.ui.state.account import AccountState
from booking_app.ui.state.base import LANGUAGES


def _form_card(on_submit, *children, reset_on_submit: bool) -> rx.Component:
    """A card that is one form: `children` stacked at full width."""
    return rx.card(
        rx.form(rx.vstack(*children, spacing="3", width="100%", align="stretch"),
                on_submit=on_submit, reset_on_submit=reset_on_submit),
        width="100%",
    )


def _select(label: str, name: str, value: rx.Var, *options) -> rx.Component:
    return rx.vstack(
        rx.el.label(T(label), html_for=f"field-{name}", class_name="field-label"),
        rx.el.select(*options, id=f"field-{name}", name=name, default_value=value, class_name="native-select",
                     key=value),
        spacing="1", width="100%",
    )


def _profile() -> rx.Component:
    return _form_card(
        AccountState.save_profile,
        rx.heading(T("Profile"), size="5", as_="h2"),
        ok_callout(AccountState.message),
        error_callout(AccountState.error),
        field(N_("Full name"), name="full_name", autocomplete="name", required=False,
              default_value=AccountState.full_name, key=AccountState.full_name),
        field(N_("Email"), name="email", type="email", autocomplete="email",
              default_value=AccountState.email, key=AccountState.email),
        field(N_("Current password (only to change the email)"), name="current_password",
              input_id="field-profile-current_password", type="password", autocomplete="current-password", required=False),
        field(N_("Phone (optional)"), name="phone", type="tel", autocomplete="tel", required=False,
              default_value=AccountState.phone, key=AccountState.phone),
        _select(N_("Language"), "locale", AccountState.locale,  # the page's language: follows the header switch
                *[rx.el.option(name, value=code) for code, name in LANGUAGES]),
        _select(N_("Time zone"), "timezone", AccountState.user_timezone,
                rx.foreach(AccountState.timezones, lambda tz: rx.el.option(tz, value=tz))),
        rx.text(T("Notifications"), class_name="field-label"),
        rx.checkbox(T("Email me confirmations and reminders"), checked=AccountState.notify_email,
                    on_change=AccountState.set_notify_email, size="3"),
        rx.checkbox(T("Text me reminders (needs a phone number)"), checked=AccountState.notify_sms,
                    on_change=AccountState.set_notify_sms, size="3"),
        rx.button(T("Save changes"), type="submit", size="3", loading=AccountState.busy,
                  disabled=AccountState.busy, custom_attrs={"data-testid": "save-profile"}),
        reset_on_submit=False,
    )


def _password() -> rx.Component:
    return _form_card(
        AccountState.change_password,
        rx.heading(T("Change password"), size="5", as_="h2"),
        ok_callout(AccountState.password_message),
        error_callout(AccountState.password_error),
        field(N_("Current password"), name="current_password", type="password",
              autocomplete="current-password"),
        field(N_("New password"), name="new_password", type="password", autocomplete="new-password",
              hint=T("At least 8 characters.")),
        field(N_("New password again"), name="new_password_again", type="password",
              autocomplete="new-password"),
        rx.button(T("Change password"), type="submit", size="3", loading=AccountState.busy,
                  disabled=AccountState.busy),
        reset_on_submit=True,
    )


def _two_factor() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading(T("Two-factor sign-in"), size="5", as_="h2"),
            ok_callout(AccountState.mfa_message),
            error_callout(AccountState.mfa_error),
            rx.cond(
                AccountState.mfa_enabled,
                rx.vstack(
                    rx.text(T("On: signing in asks for a code from your authenticator app."), size="2",
                            custom_attrs={"data-testid": "mfa-on"}),
                    rx.text(T("Recovery codes left:"), " ", AccountState.recovery_left, size="2",
                            color_scheme="gray"),
                    rx.form(
                        rx.vstack(
                            rx.text(T("To turn it off, enter your password and a code."), size="2"),
                            field(N_("Current password"), name="password", type="password",
                                  autocomplete="current-password", input_id="field-mfa-off-password"),
                            rx.cond(AccountState.mfa_field_errors.contains("password"),
                                    rx.text(AccountState.mfa_field_errors["password"], size="2", color_scheme="red",
                                            role="alert")),
                            code_field(N_("Code"), name="code", error=AccountState.mfa_field_errors.get("code", ""),
                                       input_id="field-mfa-off-code"),
                            rx.button(T("Turn off two-factor sign-in"), type="submit", variant="soft",
                                      color_scheme="red", loading=AccountState.busy, disabled=AccountState.busy,
                                      custom_attrs={"data-testid": "mfa-disable"}),
                            spacing="3", width="100%", align="stretch",
                        ),
                        on_submit=AccountState.disable_mfa, reset_on_submit=True, width="100%",
                    ),
                    spacing="3", width="100%",
                ),
                rx.vstack(
                    rx.text(T("Off. Protect your account with a code from an authenticator app as well as "
                              "your password."), size="2", custom_attrs={"data-testid": "mfa-off"}),
                    rx.link(rx.button(T("Set up two-factor sign-in"), size="3", variant="soft", tab_index=-1),
                            href=paths.MFA_SETUP, custom_attrs={"data-testid": "mfa-setup"}),
                    spacing="3", width="100%",
                ),
            ),
            spacing="3", width="100%",
        ),
        width="100%",
    )


def _session_row(item: rx.Var) -> rx.Component:
    return rx.el.li(
        rx.flex(
            rx.vstack(
                rx.text(item["device"], weight="medium", size="2"),
                rx.text(rx.cond(item["ip"] != "", item["ip"] + " · ", ""), T("Last seen"), " ", item["seen"],
                        size="1", color_scheme="gray"),
                spacing="0",
            ),
            rx.cond(
                item["current"] != "",
                rx.badge(T("This device"), color_scheme="grass"),
                rx.button(T("Sign out"), size="1", variant="soft", color_scheme="gray",
                          on_click=AccountState.sign_out_session(item["id"]),
                          custom_attrs={"data-testid": "session-sign-out"}),
            ),
            justify="between", align="center", gap="3", width="100%",
        ),
        style={"padding": "0.5rem 0", "border_bottom": "1px solid var(--gray-a5)"},
        custom_attrs={"data-testid": "session"},
    )


def _sessions() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading(T("Where you are signed in"), size="5", as_="h2"),
            ok_callout(AccountState.sessions_message),
            error_callout(AccountState.sessions_error),
            rx.el.ul(rx.foreach(AccountState.sessions, _session_row),
                     style={"list_style": "none", "padding": "0", "margin": "0", "width": "100%"}),
            rx.cond(AccountState.sessions.length() > 1,
                    rx.button(T("Sign out all other sessions"), variant="soft", color_scheme="red",
                              on_click=AccountState.sign_out_others,
                              custom_attrs={"data-testid": "sign-out-others"})),
            spacing="3", width="100%",
        ),
        width="100%",
    )


def _data() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading(T("Your data"), size="5", as_="h2"),
            rx.text(T("Download everything we store about you, or delete your account."), size="2",
                    color_scheme="gray"),
            rx.flex(
                rx.button(rx.icon("download", size=16), T("Export my data"), variant="soft",
                          on_click=AccountState.export_data, custom_attrs={"data-testid": "export"}),
                rx.button(T("Delete my account"), variant="soft", color_scheme="red",
                          on_click=AccountState.set_delete_open(True), custom_attrs={"data-testid": "delete-account"}),
                spacing="2", wrap="wrap",
            ),
            spacing="3", width="100%",
        ),
        rx.alert_dialog.root(
            rx.alert_dialog.content(
                rx.alert_dialog.title(T("Delete your account?")),
                rx.alert_dialog.description(
                    T("Your personal data is erased and you are signed out. This cannot be undone.")),
                rx.form(
                    rx.vstack(
                        error_callout(AccountState.delete_error),
                        field(N_("Current password"), name="current_password", type="password",
                              autocomplete="current-password", input_id="field-delete-current_password"),
                        rx.flex(
                            rx.alert_dialog.cancel(rx.button(T("Keep my account"), variant="soft", color_scheme="gray",
                                                             type="button")),
                            rx.button(T("Delete my account"), color_scheme="red", type="submit",
                                      loading=AccountState.busy, disabled=AccountState.busy,
                                      custom_attrs={"data-testid": "confirm-delete"}),
                            spacing="3", justify="end", wrap="wrap",
                        ),
                        spacing="3", width="100%", margin_top="1rem",
                    ),
                    on_submit=AccountState.delete_account, reset_on_submit=False,
                ),
                max_width="440px",
            ),
            open=AccountState.delete_open,
            on_open_change=AccountState.set_delete_open,
        ),
        width="100%",
    )


def content() -> rx.Component:
    return rx.vstack(
        rx.heading(T("My account"), size="7", as_="h1"),
        rx.grid(
            _profile(),
            rx.vstack(_password(), _two_factor(), _sessions(), _data(), spacing="4", width="100%"),
            columns=rx.breakpoints(initial="1", md="2"), spacing="4", width="100%",
        ),
        spacing="4", width="100%",
    )
