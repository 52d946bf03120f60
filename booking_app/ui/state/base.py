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
- Rows a state formats itself (dates, statuses, prices) follow a language switch: the
  state registers with `@relocalized(<page path>)` and builds them again in `_relocalize`
  (StaffState: its `_refresh_rows`), which `set_language` calls for the current page.
"""
from __future__ import annotations

import asyncio
import inspect
import zoneinfo

import reflex as rx

from booking_app.config import SUPPORTED_LOCALES, get_settings
from booking_app.i18n import (
    LANGUAGE_NAMES,
    language_tag,
    messages_for,
    normalize_locale,
    page_locale,
    text_direction,
)
from booking_app.services import accounts, audit, auth, browser_sessions, clientip
from booking_app.services.actors import Actor
from booking_app.services.errors import ServiceError, Unauthorized
from booking_app.ui import paths
from booking_app.ui.browser_bridge import command as bridge_command

LOCALE_COOKIE = "booking_locale"
#: where the page trades a sign-in code for the session cookie, and ends it (api/browser_session.py)
BROWSER_SESSION_URL = "/api/browser-session"

# msgids registered by T() calls while the pages are built (in addition to messages.pot)
UI_MSGIDS: set[str] = set()

#: page states whose rows are formatted in the page's language (dates, statuses, prices):
#: (state class, the page paths it shows); the language switch has the current page's state
#: build its rows again (`_relocalize`), so they follow without a reload
RELOCALIZED: list[tuple[type, tuple[str, ...]]] = []


def relocalized(*page_paths: str):
    """Class decorator: register a page state in RELOCALIZED for `page_paths`."""

    def register(cls):
        RELOCALIZED.append((cls, page_paths))
        return cls

    return register


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
    # the browser's time zone: read by the backend only, so setting it (every first visit)
    # sends the page no update of this state, whose every translated text would re-render
    _browser_tz: str = ""
    ready: bool = False
    # the tab's title in the page's language, and what the browser is asked to do next: both
    # carried out by ui/browser_bridge (no scripts sent to the page: the CSP has no
    # 'unsafe-eval'); `_command_failure`: "<command id> <state>.<handler>" hearing its failure
    page_title: str = ""
    browser_command: dict[str, str] = {}
    _command_failure: str = ""
    _user_locale: str = ""

    # ---- derived -------------------------------------------------------------------------
    @rx.var(cache=True)
    def messages(self) -> dict[str, str]:
        return messages_for(self.locale, tuple(UI_MSGIDS))

    @rx.var(cache=True)
    def dir(self) -> str:
        return text_direction(self.locale)

    @rx.var(cache=True)
    def html_lang(self) -> str:
        """The page's `lang` (<html> and the app root): BCP 47, 'pt-BR' for the locale 'pt_BR'."""
        return language_tag(self.locale)

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

    def _ask(self, call, /, *args, **kwargs):
        """`call(*args, **kwargs)` (a service), or None with its error shown in the substate's
        `error` (for services that never answer None)."""
        try:
            return call(*args, **kwargs)
        except ServiceError as exc:
            self.error = self._error_text(exc)
            return None

    def _session_token(self) -> str:
        """This browser's session token: the HttpOnly cookie sent with this connection's
        websocket handshake ("" when signed out). Read per event, never kept in state."""
        return browser_sessions.token_from_cookie_header(self.router.headers.cookie)

    def _client_ip(self) -> str | None:
        """This browser's address by the API's rule (services/clientip.py): the socket's peer,
        or what a proxy in TRUSTED_PROXIES forwarded in the handshake's headers."""
        return clientip.client_ip(self.router.session.client_ip or None, self.router.headers.raw_headers)

    def _actor(self) -> Actor:
        """The signed-in user's Actor (checked against the token on every call), or a guest.
        The audit rows this event writes carry this browser's IP (services/audit.py)."""
        audit.request_ip.set(self._client_ip())
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
        try:
            zoneinfo.ZoneInfo(self._browser_tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return None
        return self._browser_tz

    def _view_tz(self) -> str:
        """The timezone to show times in: the user's setting, else the browser's."""
        return self.timezone or self._valid_browser_tz() or get_settings().default_timezone

    def _update(self, **values) -> None:
        """Assign the vars whose value changes, and only those. An assignment marks a var
        changed even when the value is the same, and Reflex then recomputes and sends every
        var derived from it: on each page load, `locale` would resend `messages` (the whole UI
        catalog, ~75 KB) and the user's fields the result cards, and the browser would
        re-render all their texts in one long task, for nothing (docs/performance.md)."""
        for name, value in values.items():
            if getattr(self, name) != value:
                setattr(self, name, value)

    def _clear_user(self) -> None:
        self._update(user_id=0, username="", full_name="", role="", timezone="")

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
        self._user_locale = user.locale
        self._update(user_id=int(user.id or 0), username=user.username, full_name=user.full_name or "",
                     role=user.role, timezone=user.timezone)
        return True

    async def _hand_off(self, result: auth.LoginResult, next_path: str, on_failure) -> None:
        """After `auth.login`: has the page trade a single-use code for the HttpOnly cookie
        and then load `next_path` afresh (its websocket carries the cookie). `on_failure`
        (an event handler of this state taking a bool) hears `false` when the trade fails."""
        code = await asyncio.to_thread(browser_sessions.begin, access_token=result.access_token,
                                       user_id=result.user_id, expires_in=result.expires_in)
        self.browser_command = bridge_command("hand_off", url=BROWSER_SESSION_URL, code=code, next=next_path)
        # kept on the AppState instance itself (a substate has backend vars of its own), for
        # this command only
        root = await self.get_state(AppState)
        root._command_failure = f"{self.browser_command['id']} {on_failure.state_full_name}.{on_failure.fn.__name__}"

    def _end_session(self, next_path: str) -> None:
        """Has the page ask the server to clear the session cookie, then load `next_path`."""
        self.browser_command = bridge_command("end_session", url=BROWSER_SESSION_URL, next=next_path)

    def _scroll_to(self, element_id: str) -> None:
        """Has the page scroll the element with this id into view."""
        self.browser_command = bridge_command("scroll_to", target=element_id)

    @rx.event
    async def browser_command_done(self, command_id: str, ok: bool):
        """The bridge's report of a command that failed: the handler named at `_hand_off` hears it."""
        if not isinstance(command_id, str) or command_id != self.browser_command.get("id"):
            return None
        failure_of, _, failure = self._command_failure.partition(" ")
        self._command_failure = ""
        self.browser_command = {}
        if ok is True or failure_of != command_id or not failure:
            return None
        state_name, _, handler_name = failure.rpartition(".")
        state_cls = _state_class(state_name)
        if state_cls is None:
            return None
        state = await self.get_state(state_cls)
        events = getattr(state_cls, handler_name).fn(state, False)
        return await events if inspect.isawaitable(events) else events

    # ---- events --------------------------------------------------------------------------
    @rx.event
    def init_page(self):
        """On every page load: who is signed in, and which language to show."""
        self._update(nav_open=False)
        if self.browser_command.get("kind") in ("hand_off", "end_session"):
            # done by the load that follows it (or abandoned): no sign-in code stays in the
            # page's state, and a late failure report of it finds nothing to act on
            self.browser_command = {}
            self._command_failure = ""
        user_locale = self._user_locale if self._load_user() else None
        self._update(locale=page_locale(self.locale_choice, user_locale, self.router.headers.accept_language),
                     ready=True)
        self._refresh_page_title()

    @rx.event
    def set_browser_tz(self, tz: str):
        if isinstance(tz, str) and len(tz) <= 64:
            self._update(_browser_tz=tz)

    def _relocalize(self) -> None:
        """Build this page's language-dependent rows again (page states override it)."""

    @rx.event
    async def set_language(self, lang: str):
        lang = normalize_locale(lang) or self.locale
        self._update(locale=lang)
        self.locale_choice = lang
        self.nav_open = False
        if self.user_id:
            try:
                accounts.update_profile(actor=self._actor(), locale=lang)
                self._user_locale = lang
            except ServiceError:
                pass  # the page still switches; the stored setting stays as it was
        self._refresh_page_title()
        path = str(self.router.url.path or "/").rstrip("/") or "/"
        for cls, page_paths in RELOCALIZED:
            if path in page_paths:
                state = await self.get_state(cls)
                state._relocalize()

    def _refresh_page_title(self) -> None:
        """The tab's title in the page's language (paths.page_title); <html lang dir> follow
        `locale` and `dir` (ui/browser_bridge)."""
        self._update(page_title=paths.page_title(str(self.router.url.path or "/"), self.locale))

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
        self._end_session("/")


def _state_class(full_name: str) -> type[rx.State] | None:
    """The AppState subclass with this full name (a handler named in `_command_failure`)."""
    try:
        cls = rx.State.get_class_substate(full_name)
    except ValueError:
        return None
    return cls if issubclass(cls, AppState) else None


LANGUAGES: list[tuple[str, str]] = [(code, LANGUAGE_NAMES[code]) for code in SUPPORTED_LOCALES]
