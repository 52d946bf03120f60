"""The root UI state: language, text direction and who is signed in.

- The language is the visitor's explicit choice (a cookie), else the signed-in user's
  setting, else the browser's Accept-Language, else DEFAULT_LOCALE.
- All UI text is translated here, on the backend: `messages` is the current catalog
  (msgid → text) and `booking_app.ui.components.T("Sign in")` reads it.
- The session token lives in an HttpOnly cookie that page scripts cannot read, set and
  cleared by HTTP responses (services/browser_sessions.py, api/browser_session.py). The
  server reads it from the Cookie header of the page's websocket handshake on every event
  and checks it against the token store each time: it is never a state var, so it never
  reaches the browser's state, and a token revoked elsewhere (sign-out, password change)
  signs this page out at its next event. Signing in and out ends with a full page load, so
  that the next websocket carries the new cookie (also after a worker restart: the socket
  reconnects with the cookie). Nothing else secret reaches the browser: no password
  hashes, only display data.
- Substates call `self._actor()` to get the services' `Actor` for the signed-in user (or
  a guest) and never touch the database themselves.
"""
from __future__ import annotations

import asyncio
import json

import reflex as rx

from booking_app.config import SUPPORTED_LOCALES, get_settings
from booking_app.i18n import (
    LANGUAGE_NAMES,
    messages_for,
    negotiate_locale,
    normalize_locale,
    text_direction,
)
from booking_app.services import accounts, auth, browser_sessions, clientip
from booking_app.services.actors import Actor
from booking_app.services.errors import ServiceError, Unauthorized

LOCALE_COOKIE = "booking_locale"
#: where the page trades a sign-in code for the session cookie, and ends it (api/browser_session.py)
BROWSER_SESSION_URL = "/api/browser-session"

# msgids registered by T() calls while the pages are built (in addition to messages.pot)
UI_MSGIDS: set[str] = set()


class AppState(rx.State):
    """Language and the signed-in user; every page state derives from this one."""

    locale: str = get_settings().default_locale
    locale_choice: str = rx.Cookie("", name=LOCALE_COOKIE, max_age=365 * 24 * 3600, same_site="lax")
    user_id: int = 0
    username: str = ""
    full_name: str = ""
    role: str = ""
    timezone: str = ""
    nav_open: bool = False
    browser_tz: str = ""
    ready: bool = False
    _user_locale: str = ""

    # ---- derived -------------------------------------------------------------------------
    @rx.var(cache=True)
    def messages(self) -> dict[str, str]:
        return messages_for(self.locale, tuple(UI_MSGIDS))

    @rx.var(cache=True)
    def dir(self) -> str:
        return text_direction(self.locale)

    @rx.var(cache=True)
    def signed_in(self) -> bool:
        return self.user_id > 0

    @rx.var(cache=True)
    def display_name(self) -> str:
        return self.full_name or self.username

    @rx.var(cache=True)
    def is_staff(self) -> bool:
        return self.role in ("admin", "provider")

    # ---- helpers for substates (not event handlers) --------------------------------------
    def _error_text(self, exc: ServiceError) -> str:
        return exc.translated(self.locale)

    def _session_token(self) -> str:
        """This browser's session token: the HttpOnly cookie sent with this connection's
        websocket handshake ("" when signed out). Read per event, never kept in state."""
        return browser_sessions.token_from_cookie_header(self.router.headers.cookie)

    def _client_ip(self) -> str | None:
        """This browser's address by the API's rule (services/clientip.py): the socket's peer,
        or what a proxy in TRUSTED_PROXIES forwarded in the handshake's headers."""
        return clientip.client_ip(self.router.session.client_ip or None, self.router.headers.raw_headers)

    def _actor(self) -> Actor:
        """The signed-in user's Actor (checked against the token on every call), or a guest."""
        tz = self.timezone or get_settings().default_timezone
        token = self._session_token()
        if not token:
            self._clear_user()
            return Actor.guest(locale=self.locale, timezone=tz)
        try:
            return auth.authenticate(token).actor
        except Unauthorized:
            self._clear_user()
            return Actor.guest(locale=self.locale, timezone=tz)

    def _valid_browser_tz(self) -> str | None:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(self.browser_tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return None
        return self.browser_tz

    def _view_tz(self) -> str:
        """The timezone to show times in: the user's setting, else the browser's."""
        return self.timezone or self._valid_browser_tz() or get_settings().default_timezone

    def _clear_user(self) -> None:
        self.user_id = 0
        self.username = ""
        self.full_name = ""
        self.role = ""
        self.timezone = ""

    def _load_user(self) -> bool:
        """Refresh the display data of the signed-in user; False when not (or no longer) signed in."""
        token = self._session_token()
        if not token:
            self._clear_user()
            return False
        try:
            who = auth.authenticate(token)
            user = accounts.get_profile(actor=who.actor)
        except ServiceError:
            self._clear_user()
            return False
        self.user_id = int(user.id or 0)
        self._user_locale = user.locale
        self.username = user.username
        self.full_name = user.full_name or ""
        self.role = user.role
        self.timezone = user.timezone
        return True

    async def _hand_off(self, result: auth.LoginResult, next_path: str, on_failure):
        """After `auth.login`: the script that trades a single-use code for the HttpOnly cookie
        and then loads `next_path` afresh (its websocket carries the cookie). `on_failure`
        (an event handler taking a bool) hears `false` when the trade fails."""
        code = await asyncio.to_thread(browser_sessions.begin, access_token=result.access_token,
                                       user_id=result.user_id, expires_in=result.expires_in)
        return rx.call_script(_hand_off_script(code, next_path), callback=on_failure)

    # ---- events --------------------------------------------------------------------------
    @rx.event
    def init_page(self):
        """On every page load: who is signed in, and which language to show."""
        self.nav_open = False
        user_locale = self._user_locale if self._load_user() else None
        chosen = normalize_locale(self.locale_choice)
        if chosen:
            self.locale = chosen
        else:
            self.locale = negotiate_locale(user_locale, self.router.headers.accept_language)
        self.ready = True
        return [
            rx.call_script(self._page_language_script(self.locale)),
            rx.call_script("Intl.DateTimeFormat().resolvedOptions().timeZone", callback=AppState.set_browser_tz),
        ]

    @rx.event
    def set_browser_tz(self, tz: str):
        if isinstance(tz, str) and len(tz) <= 64:
            self.browser_tz = tz

    @rx.event
    def set_language(self, lang: str):
        lang = normalize_locale(lang) or self.locale
        self.locale = lang
        self.locale_choice = lang
        self.nav_open = False
        if self.user_id:
            try:
                accounts.update_profile(actor=self._actor(), locale=lang)
                self._user_locale = lang
            except ServiceError:
                pass  # the page still switches; the stored setting stays as it was
        return rx.call_script(self._page_language_script(lang))

    def _page_language_script(self, lang: str) -> str:
        """The page in `lang`: <html lang dir> and the tab's title (routes.page_title)."""
        from booking_app.ui import routes

        return _html_attrs_script(lang, routes.page_title(str(self.router.url.path or "/"), lang))

    @rx.event
    def toggle_nav(self):
        self.nav_open = not self.nav_open

    @rx.event
    def set_nav_open(self, value: bool):
        self.nav_open = bool(value)

    @rx.event
    async def sign_out(self):
        """Revoke this browser's token, have the server clear the cookie, load the home page."""
        token = self._session_token()
        actor_id = self.user_id or None
        self._clear_user()
        if token:
            await asyncio.to_thread(browser_sessions.end, token=token, actor_id=actor_id)
        return rx.call_script(end_session_script("/"))


def _hand_off_script(code: str, next_path: str) -> str:
    """POST the code (same origin, so the answer's Set-Cookie is stored), then a full page
    load of `next_path`; evaluates to a promise of whether the trade worked."""
    return (f"fetch({json.dumps(BROWSER_SESSION_URL)},{{method:'POST',credentials:'same-origin',"
            f"headers:{{'Content-Type':'application/json'}},body:JSON.stringify({{code:{json.dumps(code)}}})}})"
            f".then(r=>{{if(r.ok){{window.location.assign({json.dumps(next_path)});}}return r.ok;}})"
            ".catch(()=>false)")


def end_session_script(next_path: str) -> str:
    """Have the server clear the session cookie, then a full page load of `next_path`."""
    return (f"fetch({json.dumps(BROWSER_SESSION_URL)},{{method:'DELETE',credentials:'same-origin'}})"
            f".catch(()=>null).then(()=>window.location.assign({json.dumps(next_path)}))")


def _html_attrs_script(lang: str, title: str) -> str:
    """The page's language and direction on <html>, and `title` in the tab."""
    direction = text_direction(lang)
    return (f"document.documentElement.lang='{lang}';document.documentElement.dir='{direction}';"
            f"document.title={json.dumps(title)};")


LANGUAGES: list[tuple[str, str]] = [(code, LANGUAGE_NAMES[code]) for code in SUPPORTED_LOCALES]
