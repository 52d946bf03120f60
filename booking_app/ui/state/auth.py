"""Sign-in and sign-up forms: they call the accounts/auth services, never the database.

A successful sign-in hands the new session to the browser as an HttpOnly cookie
(AppState._hand_off): the page trades a single-use code for it, then loads the next page.
"""
from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import reflex as rx

from booking_app.services import accounts, auth, browser_sessions
from booking_app.i18n import translate
from booking_app.services.errors import ServiceError
from booking_app.ui.state.base import AppState


def _safe_next(value: str | None) -> str:
    """Only same-site paths as a redirect target (no open redirect)."""
    if not value:
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith("//"):
        return "/"
    return value


class AuthFormState(AppState):
    error: str = ""
    field_errors: dict[str, str] = {}
    busy: bool = False

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
            result = await asyncio.to_thread(auth.login, identifier=identifier, password=password, ip=ip)
            await self._hand_off(result, self._next(), AuthFormState.hand_off_done)
        except ServiceError as exc:
            self.error = self._error_text(exc)
            self.busy = False
        # on success the form stays busy until the next page loads

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
        try:
            await asyncio.to_thread(
                accounts.register, username=username, email=email, password=password,
                full_name=full_name or None, locale=self.locale, timezone=timezone, ip=self._client_ip(),
            )
            result = await asyncio.to_thread(auth.login, identifier=username, password=password, ip=self._client_ip())
            await self._hand_off(result, self._next(), AuthFormState.hand_off_done)
        except ServiceError as exc:
            message = self._error_text(exc)
            if exc.field:
                self.field_errors = {exc.field: message}
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
