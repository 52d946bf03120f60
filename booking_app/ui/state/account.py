"""Account page: profile, language, timezone, notifications, password, export, delete.

A password change ends every session of the user, this browser's too, and then signs this
browser in again with a fresh token (a new HttpOnly cookie, AppState._hand_off): a token
that may have leaked before the change is worthless after it.
"""
from __future__ import annotations

import asyncio
import json
import zoneinfo
from urllib.parse import urlencode

import reflex as rx

from booking_app.i18n import N_, normalize_locale, translate
from booking_app.services import accounts, auth
from booking_app.services.errors import ServiceError
from booking_app.ui import paths as routes
from booking_app.ui.state.base import AppState

COMMON_TIMEZONES = sorted(zoneinfo.available_timezones() - {"localtime", "Factory"})
#: the query of the account page loaded after a password change (it shows the message)
PASSWORD_CHANGED = "password=changed"
PASSWORD_CHANGED_TEXT = N_("Your password is changed. Other sessions were signed out.")


class AccountState(AppState):
    email: str = ""
    phone: str = ""
    user_locale: str = ""
    user_timezone: str = ""
    notify_email: bool = True
    notify_sms: bool = False
    message: str = ""
    error: str = ""
    password_message: str = ""
    password_error: str = ""
    delete_error: str = ""
    busy: bool = False
    delete_open: bool = False

    @rx.var(cache=True)
    def timezones(self) -> list[str]:
        return COMMON_TIMEZONES

    @rx.event
    def load(self):
        self.message = self.error = self.password_message = self.password_error = self.delete_error = ""
        self.delete_open = False
        if self.router.url.query_parameters.get("password") == "changed":
            self.password_message = translate(PASSWORD_CHANGED_TEXT, self.locale)
        actor = self._actor()
        if actor.is_guest:
            return rx.redirect(f"{routes.SIGN_IN}?{urlencode({'next': routes.ACCOUNT})}")
        try:
            user = accounts.get_profile(actor=actor)
        except ServiceError as exc:
            self.error = self._error_text(exc)
            return
        self.full_name = user.full_name or ""
        self.email = user.email
        self.phone = user.phone or ""
        self.user_locale = user.locale
        self.user_timezone = user.timezone
        self.notify_email = bool(user.notify_email)
        self.notify_sms = bool(user.notify_sms)

    @rx.event
    def set_notify_email(self, value: bool):
        self.notify_email = bool(value)

    @rx.event
    def set_notify_sms(self, value: bool):
        self.notify_sms = bool(value)

    @rx.event
    async def save_profile(self, form: dict):
        if self.busy:
            return
        self.busy = True
        self.message = self.error = ""
        yield
        lang = normalize_locale(str(form.get("locale", ""))) or self.locale
        email = str(form.get("email", "")).strip()
        changes = dict(
            full_name=str(form.get("full_name", "")).strip(),
            phone=str(form.get("phone", "")).strip() or None,
            locale=lang,
            timezone=str(form.get("timezone", "")).strip(),
            notify_email=self.notify_email,
            notify_sms=self.notify_sms,
        )
        if email.lower() != self.email.lower():
            changes.update(email=email, current_password=str(form.get("current_password", "")) or None)
        try:
            user = await asyncio.to_thread(accounts.update_profile, actor=self._actor(), **changes)
        except ServiceError as exc:
            self.error = self._error_text(exc)
            self.busy = False
            return
        self.email = user.email
        self.user_locale = user.locale
        self.user_timezone = user.timezone
        self.timezone = user.timezone
        self.full_name = user.full_name or ""
        self.locale = user.locale
        self.locale_choice = user.locale
        self.message = translate("Your changes are saved.", self.locale)
        self.busy = False
        self._refresh_page_title()

    @rx.event
    async def change_password(self, form: dict):
        if self.busy:
            return
        self.busy = True
        self.password_message = self.password_error = ""
        yield
        new = str(form.get("new_password", ""))
        if new != str(form.get("new_password_again", "")):
            self.password_error = translate("The two new passwords are not the same.", self.locale)
            self.busy = False
            return
        actor = self._actor()
        try:
            user = await asyncio.to_thread(
                accounts.update_profile, actor=actor, password=new,
                current_password=str(form.get("current_password", "")) or None)
        except ServiceError as exc:
            self.password_error = self._error_text(exc)
            self.busy = False
            return
        # every token of the user is revoked now, this browser's too: sign it in afresh
        try:
            result = await asyncio.to_thread(auth.login, identifier=user.username, password=new, ip=self._client_ip())
            await self._hand_off(result, f"{routes.ACCOUNT}?{PASSWORD_CHANGED}", AccountState.hand_off_done)
        except ServiceError:
            self._signed_out_to_sign_in()

    @rx.event
    def hand_off_done(self, ok: bool):
        """After a password change: on success the page is already reloading with its new
        cookie; otherwise this browser is signed out cleanly (its old token is revoked)."""
        if ok is not True:
            self._signed_out_to_sign_in()

    def _signed_out_to_sign_in(self) -> None:
        self._clear_user()
        self.busy = False
        self._end_session(f"{routes.SIGN_IN}?{urlencode({'next': routes.ACCOUNT})}")

    @rx.event
    def export_data(self):
        try:
            data = accounts.export_user_data(actor=self._actor())
        except ServiceError as exc:
            self.error = self._error_text(exc)
            return
        return rx.download(data=json.dumps(data, indent=2, ensure_ascii=False).encode("utf-8"),
                           filename=f"my-data-{self.username}.json")

    @rx.event
    def set_delete_open(self, value: bool):
        self.delete_open = bool(value)
        self.delete_error = ""

    @rx.event
    async def delete_account(self, form: dict):
        if self.busy:
            return
        self.busy = True
        self.delete_error = ""
        yield
        try:
            await asyncio.to_thread(accounts.delete_account, actor=self._actor(),
                                    current_password=str(form.get("current_password", "")) or None)
        except ServiceError as exc:
            self.delete_error = self._error_text(exc)
            self.busy = False
            return
        self._clear_user()
        self.busy = False
        self.delete_open = False
        self._end_session(routes.HOME)
