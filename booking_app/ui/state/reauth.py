"""Re-authentication in the UI: a sensitive action (a role change, a deactivation, a price
change, a large refund) whose service answers `ReauthRequired` opens a dialog asking for the
password or a code (ui/components/security.py `reauth_dialog`); once proven, the action runs
again by itself.

A state that performs such an action catches `sessions.ReauthRequired` and calls
`await ask_reauth(self, retry=TheState.the_handler)` (a handler taking no arguments).
"""
from __future__ import annotations

import asyncio

import reflex as rx

from booking_app.services import sessions
from booking_app.services.errors import ServiceError
from booking_app.ui.state.base import AppState


class ReauthState(AppState):
    reauth_open: bool = False
    reauth_error: str = ""
    reauth_busy: bool = False
    #: "<state full name>.<handler>" to run again once proven (never sent to the browser)
    _retry: str = ""

    @rx.event
    def set_reauth_open(self, value: bool):
        self.reauth_open = bool(value)
        self.reauth_error = ""
        if not value:
            self._retry = ""

    @rx.event
    async def confirm_reauth(self, form: dict):
        if self.reauth_busy:
            return
        self.reauth_busy = True
        self.reauth_error = ""
        yield
        try:
            await asyncio.to_thread(sessions.reauthenticate, actor=self._actor(), proof=str(form.get("proof", "")))
        except ServiceError as exc:
            self.reauth_error = self._error_text(exc)
            self.reauth_busy = False
            return
        self.reauth_busy = False
        self.reauth_open = False
        retry, self._retry = self._retry, ""
        state_name, _, handler_name = retry.rpartition(".")
        if state_name:
            try:
                state_cls = rx.State.get_class_substate(state_name)
            except ValueError:
                return
            handler = getattr(state_cls, handler_name, None)
            if handler is not None:
                yield handler


async def ask_reauth(state: rx.State, *, retry=None) -> None:
    """Open the re-authentication dialog from another state's event; `retry` (an event
    handler without arguments) runs again once the user has proven it is them."""
    reauth = await state.get_state(ReauthState)
    reauth.reauth_open = True
    reauth.reauth_error = ""
    reauth._retry = f"{retry.state_full_name}.{retry.fn.__name__}" if retry is not None else ""
