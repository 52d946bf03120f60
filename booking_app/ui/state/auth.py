"""Sign-in and sign-up forms: they call the accounts/auth services, never the database.

A successful sign-in hands the new session to the browser as an HttpOnly cookie
(AppState._hand_off): the page trades a single-use code for it, then loads the next page.
With two-factor sign-in on, the password leads to the code step (/sign-in/code): the
challenge stays on the server (a backend var), the code trades it for the session. A user
who must enrol (REQUIRE_2FA_FOR) is signed in with an enrolment-only session and sent to the
enrolment page.
"""
from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import reflex as rx

from booking_app.i18n import N_, translate
from booking_app.services import accounts, auth, browser_sessions
from booking_app.services.errors import ServiceError
from booking_app.ui import paths
from booking_app.ui.state.base import AppState


#: the sign-up form's fields: a problem with one of them is shown next to it
SIGN_UP_FIELDS = ("full_name", "username", "email", "password")
FIX_FIELDS = N_("Please correct the fields marked below.")
#: where staff start when no page was asked for
HOME_BY_ROLE = {"provider": paths.PROVIDER, "admin": paths.ADMIN_DASHBOARD}


def _safe_next(value: str | None) -> str:
    """Only same-site paths as a redirect target (no open redirect)."""
    if not value:
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith("//"):
        return "/"
    return value


def enrolment_pending(token: str) -> bool:
    """Whether `token` is an enrolment-only session (REQUIRE_2FA_FOR): it may only enrol."""
    if not token:
        return False
    try:
        return auth.authenticate(token, allow_enrolment=True).enrolment_only
    except ServiceError:
        return False


class AuthFormState(AppState):
    error: str = ""
    field_errors: dict[str, str] = {}
    busy: bool = False
    code_error: str = ""
    #: the sign-in waiting for its code (never sent to the browser)
    _challenge: str = ""

    def _next(self) -> str:
        return _safe_next(self.router.url.query_parameters.get("next"))

    @rx.var
    def next_query(self) -> str:
        nxt = self.router.url.query_parameters.get("next", "")
        return f"?next={nxt}" if nxt and _safe_next(nxt) == nxt else ""

    @rx.event
    def reset_form(self):
        self.error = ""
        self.field_errors = {}
        self.busy = False
        if self.signed_in:
            return rx.redirect(self._next())

    @rx.event
    async def sign_in(self, form: dict):
        if self.busy:
            return
        self.busy = True
        self.error = ""
        yield
        identifier = str(form.get("identifier", "")).strip()
        password = str(form.get("password", ""))
        ip = self._client_ip()
        try:
            result = await asyncio.to_thread(auth.login, identifier=identifier, password=password, ip=ip,
                                             user_agent=self._user_agent())
            await self._hand_off(result, await self._after_sign_in(result), AuthFormState.hand_off_done)
        except auth.MfaRequired as exc:
            self._challenge = exc.challenge
            self.busy = False
            self.code_error = ""
            yield rx.redirect(paths.SIGN_IN_CODE + self.next_query)
        except ServiceError as exc:
            self.error = self._error_text(exc)
            self.busy = False
        # on success the form stays busy until the next page loads

    def _user_agent(self) -> str:
        return str(self.router.headers.user_agent or "")[:auth.MAX_USER_AGENT]

    async def _after_sign_in(self, result: auth.LoginResult) -> str:
        """Where a new session goes: first the enrolment page if it must enrol, then the page
        asked for (`next`), else the role's start page (providers /provider, admins the
        dashboard, customers home)."""
        if result.mfa_enrolment_required:
            return paths.MFA_SETUP + (f"?next={self._next()}" if self._next() != "/" else "")
        if self.router.url.query_parameters.get("next"):
            return self._next()
        try:
            actor = (await asyncio.to_thread(auth.authenticate, result.access_token)).actor
        except ServiceError:
            return self._next()
        return HOME_BY_ROLE.get(actor.role, self._next())

    @rx.event
    def open_code_step(self):
        """The code page: only with a sign-in waiting for its code, else back to the password."""
        self.code_error = ""
        self.busy = False
        if not self._challenge:
            return rx.redirect(paths.SIGN_IN + self.next_query)

    @rx.event
    async def sign_in_with_code(self, form: dict):
        if self.busy:
            return
        self.busy = True
        self.code_error = self.error = ""
        yield
        try:
            result = await asyncio.to_thread(auth.login_mfa, challenge=self._challenge,
                                             code=str(form.get("code", "")), ip=self._client_ip(),
                                             user_agent=self._user_agent())
            self._challenge = ""
            await self._hand_off(result, await self._after_sign_in(result), AuthFormState.hand_off_done)
        except ServiceError as exc:
            if exc.field == "code":
                self.code_error = self._error_text(exc)
            else:  # the sign-in expired: start again
                self._challenge = ""
                self.error = self._error_text(exc)
                yield rx.redirect(paths.SIGN_IN + self.next_query)
            self.busy = False

    @rx.event
    async def sign_up(self, form: dict):
        if self.busy:
            return
        self.busy = True
        self.error = ""
        self.field_errors = {}
        yield
        username = str(form.get("username", "")).strip()
        email = str(form.get("email", "")).strip()
        password = str(form.get("password", ""))
        full_name = str(form.get("full_name", "")).strip()
        timezone = self._valid_browser_tz()
        problems = accounts.validate_registration(username=username, email=email, password=password,
                                                  full_name=full_name or None)
        if problems:  # every field's problem at once, each next to its field
            self.field_errors = {name: exc.translated(self.locale) for name, exc in problems.items()}
            self.error = translate(FIX_FIELDS, self.locale)
            self.busy = False
            return
        try:
            await asyncio.to_thread(
                accounts.register, username=username, email=email, password=password,
                full_name=full_name or None, locale=self.locale, timezone=timezone, ip=self._client_ip(),
            )
            result = await asyncio.to_thread(auth.login, identifier=username, password=password, ip=self._client_ip(),
                                             user_agent=self._user_agent())
            await self._hand_off(result, await self._after_sign_in(result), AuthFormState.hand_off_done)
        except ServiceError as exc:
            message = self._error_text(exc)
            if exc.field in SIGN_UP_FIELDS:
                self.field_errors = {exc.field: message}
                self.error = translate(FIX_FIELDS, self.locale)
            else:
                self.error = message
            self.busy = False

    @rx.event
    def hand_off_done(self, ok: bool):
        """The page's answer to the hand-off script: on success it is already loading the
        next page; otherwise (expired code, network) the form says so and can be sent again."""
        if ok is not True:
            self.error = translate(browser_sessions.HANDOFF_INVALID, self.locale)
            self.busy = False


class PasswordResetState(AppState):
    """Forgot password (request a link by email) and reset password (the emailed link)."""

    error: str = ""
    done: str = ""
    busy: bool = False

    @rx.event
    def reset_form(self):
        self.error = self.done = ""
        self.busy = False

    @rx.event
    async def request_link(self, form: dict):
        if self.busy:
            return
        self.busy = True
        self.error = self.done = ""
        yield
        try:
            await asyncio.to_thread(auth.request_password_reset, email=str(form.get("email", "")).strip(),
                                    ip=self._client_ip())
        except ServiceError as exc:
            self.error = self._error_text(exc)
            self.busy = False
            return
        self.done = translate("If an account uses this address, we have sent it a link to choose a new password.",
                              self.locale)
        self.busy = False

    @rx.event
    async def set_new_password(self, form: dict):
        if self.busy:
            return
        self.busy = True
        self.error = self.done = ""
        yield
        password = str(form.get("new_password", ""))
        if password != str(form.get("new_password_again", "")):
            self.error = translate("The two new passwords are not the same.", self.locale)
            self.busy = False
            return
        token = str(self.router.url.query_parameters.get("token", ""))
        try:
            await asyncio.to_thread(auth.confirm_password_reset, token=token, new_password=password)
        except ServiceError as exc:
            self.error = self._error_text(exc)
            self.busy = False
            return
        self.done = translate("Your password is changed. You can sign in now.", self.locale)
        self.busy = False
