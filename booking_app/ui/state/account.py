"""Account page: profile, language, timezone, notifications, password, two-factor sign-in,
signed-in devices (sessions), export, delete; and the two-factor enrolment page.

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
from booking_app.services import accounts, auth, mfa, sessions
from booking_app.services.actors import Actor
from booking_app.services.errors import ServiceError, Unauthorized
from booking_app.ui import paths
from booking_app.ui.state import fmt
from booking_app.ui.state.auth import AuthFormState, enrolment_pending
from booking_app.ui.state.base import AppState

COMMON_TIMEZONES = sorted(zoneinfo.available_timezones() - {"localtime", "Factory"})
#: the query of the account page loaded after a password change (it shows the message)
PASSWORD_CHANGED = "password=changed"
PASSWORD_CHANGED_TEXT = N_("Your password is changed. Other sessions were signed out.")
MFA_OFF_TEXT = N_("Two-factor sign-in is off.")
OTHERS_SIGNED_OUT = N_("Your other sessions are signed out.")
SESSION_SIGNED_OUT = N_("That session is signed out.")
UNKNOWN_DEVICE = N_("Unknown device")


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
    # two-factor sign-in and sessions
    mfa_enabled: bool = False
    recovery_left: int = 0
    mfa_message: str = ""
    mfa_error: str = ""
    mfa_field_errors: dict[str, str] = {}
    sessions: list[dict[str, str]] = []
    sessions_message: str = ""
    sessions_error: str = ""

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
            if enrolment_pending(self._session_token()):  # REQUIRE_2FA_FOR: nothing before enrolling
                return rx.redirect(paths.MFA_SETUP)
            return rx.redirect(f"{paths.SIGN_IN}?{urlencode({'next': paths.ACCOUNT})}")
        user = self._ask(accounts.get_profile, actor=actor)
        if user is None:
            return
        self.full_name = user.full_name or ""
        self.email = user.email
        self.phone = user.phone or ""
        self.user_locale = user.locale
        self.user_timezone = user.timezone
        self.notify_email = bool(user.notify_email)
        self.notify_sms = bool(user.notify_sms)
        self.mfa_message = self.mfa_error = self.sessions_message = self.sessions_error = ""
        self.mfa_field_errors = {}
        self._load_security(actor)

    def _load_security(self, actor: Actor) -> None:
        status = mfa.status(actor=actor)
        self.mfa_enabled = bool(status["enabled"])
        self.recovery_left = int(status["recovery_codes_left"])
        tz = self._view_tz()
        self.sessions = [
            {"id": str(x.id), "device": x.device or translate(UNKNOWN_DEVICE, self.locale), "ip": x.ip or "",
             "seen": fmt.datetime_(x.last_seen_at or x.created_at, tz, self.locale),
             "current": "1" if x.current else ""}
            for x in sessions.list_sessions(actor=actor)
        ]

    @rx.event
    async def disable_mfa(self, form: dict):
        if self.busy:
            return
        self.busy = True
        self.mfa_message = self.mfa_error = ""
        self.mfa_field_errors = {}
        yield
        actor = self._actor()
        try:
            await asyncio.to_thread(mfa.disable, actor=actor, password=str(form.get("password", "")) or None,
                                    code=str(form.get("code", "")))
        except ServiceError as exc:
            message = self._error_text(exc)
            if exc.field in ("password", "code"):
                self.mfa_field_errors = {exc.field: message}
            else:
                self.mfa_error = message
            self.busy = False
            return
        self.mfa_message = translate(MFA_OFF_TEXT, self.locale)
        self._load_security(actor)
        self.busy = False

    @rx.event
    def sign_out_session(self, session_id: str):
        self.sessions_message = self.sessions_error = ""
        actor = self._actor()
        try:
            sessions.revoke_session(actor=actor, session_id=int(session_id))
            self.sessions_message = translate(SESSION_SIGNED_OUT, self.locale)
            self._load_security(actor)
        except (ServiceError, ValueError) as exc:
            self.sessions_error = self._error_text(exc) if isinstance(exc, ServiceError) else ""

    @rx.event
    def sign_out_others(self):
        self.sessions_message = self.sessions_error = ""
        actor = self._actor()
        try:
            sessions.revoke_others(actor=actor)
        except ServiceError as exc:
            self.sessions_error = self._error_text(exc)
            return
        self.sessions_message = translate(OTHERS_SIGNED_OUT, self.locale)
        self._load_security(actor)

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
        after = f"{paths.ACCOUNT}?{PASSWORD_CHANGED}"
        try:
            result = await asyncio.to_thread(auth.login, identifier=user.username, password=new, ip=self._client_ip(),
                                             user_agent=str(self.router.headers.user_agent or ""))
            await self._hand_off(result, after, AccountState.hand_off_done)
        except auth.MfaRequired as exc:  # two-factor sign-in on: the code step, then back here
            sign_in = await self.get_state(AuthFormState)
            sign_in._challenge = exc.challenge
            self.busy = False
            yield rx.redirect(f"{paths.SIGN_IN_CODE}?{urlencode({'next': after})}")
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
        self._end_session(f"{paths.SIGN_IN}?{urlencode({'next': paths.ACCOUNT})}")

    @rx.event
    def export_data(self):
        data = self._ask(accounts.export_user_data, actor=self._actor())
        if data is None:
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
        self._end_session(paths.HOME)


class MfaSetupState(AppState):
    """The two-factor enrolment page: password → QR code and secret → first code → the ten
    recovery codes, shown once. Also reached with an enrolment-only session (REQUIRE_2FA_FOR):
    then no password is asked (it was just proven) and nothing else works until it is done."""

    step: str = ""  # "password" | "scan" | "codes"
    secret: str = ""
    qr_svg: str = ""
    recovery_codes: list[str] = []
    required: bool = False
    setup_error: str = ""
    field_errors: dict[str, str] = {}
    busy: bool = False

    def _enrolling_actor(self) -> tuple[Actor, bool]:
        """The actor of this browser's session, enrolment-only sessions included (and whether
        it is one); a guest when signed out."""
        token = self._session_token()
        if not token:
            return Actor.guest(locale=self.locale), False
        try:
            who = auth.authenticate(token, allow_enrolment=True)
        except Unauthorized:
            return Actor.guest(locale=self.locale), False
        return who.actor, who.enrolment_only

    def _next(self) -> str:
        nxt = self.router.url.query_parameters.get("next", "")
        return nxt if nxt.startswith("/") and not nxt.startswith("//") else paths.ACCOUNT

    @rx.event
    def load(self):
        self.step = self.secret = self.qr_svg = self.setup_error = ""
        self.recovery_codes = []
        self.field_errors = {}
        self.busy = False
        actor, enrolling = self._enrolling_actor()
        if actor.is_guest:
            return rx.redirect(f"{paths.SIGN_IN}?{urlencode({'next': paths.MFA_SETUP})}")
        self.required = enrolling
        if mfa.status(actor=actor)["enabled"]:
            return rx.redirect(paths.ACCOUNT)
        if enrolling:
            self._begin(actor, None, enrolling)
        else:
            self.step = "password"

    def _show_error(self, exc: ServiceError, field: str) -> None:
        """The service's error next to the step's one input (`field`) when it is about it, else above."""
        message = self._error_text(exc)
        if exc.field == field:
            self.field_errors = {field: message}
        else:
            self.setup_error = message

    def _step_starts(self) -> bool:
        """Mark a step running with its errors cleared; False while another one runs."""
        if self.busy:
            return False
        self.busy = True
        self.setup_error = ""
        self.field_errors = {}
        return True

    def _begin(self, actor: Actor, password: str | None, enrolling: bool) -> None:
        try:
            enrolment = mfa.begin_enrolment(actor=actor, password=password, enrolment_token=enrolling)
        except ServiceError as exc:
            self._show_error(exc, "password")
            return
        self.secret = " ".join(enrolment.secret[i:i + 4] for i in range(0, len(enrolment.secret), 4))
        self.qr_svg = enrolment.qr_svg
        self.step = "scan"

    @rx.event
    async def start(self, form: dict):
        if not self._step_starts():
            return
        yield
        actor, enrolling = self._enrolling_actor()
        if actor.is_guest:
            self.busy = False
            yield rx.redirect(paths.SIGN_IN)
            return
        await asyncio.to_thread(self._begin, actor, str(form.get("password", "")) or None, enrolling)
        self.busy = False

    @rx.event
    async def confirm(self, form: dict):
        if not self._step_starts():
            return
        yield
        actor, _enrolling = self._enrolling_actor()
        try:
            codes = await asyncio.to_thread(mfa.confirm_enrolment, actor=actor, code=str(form.get("code", "")),
                                            token_hash=actor.token_hash)
        except ServiceError as exc:
            self._show_error(exc, "code")
            self.busy = False
            return
        self.recovery_codes = codes
        self.secret = self.qr_svg = ""
        self.step = "codes"
        self.busy = False

    @rx.event
    def finish(self):
        self.recovery_codes = []
        return rx.redirect(self._next())
