"""The one place where pages are registered (their paths and titles: ui/paths.py).

Every page is wrapped in the app shell (`layout.page`) and loads `AppState.init_page`
first (who is signed in, which language); add a page with one `_add(...)` line, or a
`register(add)` in its page module. Nothing in ui/ imports this module but the app.
"""
from __future__ import annotations

import reflex as rx

from booking_app.i18n import N_, translate
from booking_app.ui import layout, paths
from booking_app.ui.pages import (
    account,
    admin,
    admin_audit,
    auth,
    calendar_subscriptions,
    customer,
    discount_codes,
    embed,
    embed_settings,
    home,
    mfa,
    provider,
    provider_approvals,
    provider_bookings,
    search,
    waitlist,
    webhooks,
)
from booking_app.ui.state.account import AccountState, MfaSetupState
from booking_app.ui.state.base import AppState
from booking_app.ui.state.search import SearchState


#: route → its meta description (msgid; the served HTML carries the English text); other
#: pages get DEFAULT_DESCRIPTION, the footer's line
PAGE_DESCRIPTIONS: dict[str, str] = {
    paths.HOME: N_("Book rooms, services and events online: see the free times and confirm in a few taps."),
    paths.SEARCH: N_("Search rooms, services and events by name, kind and place, and book a free time."),
    paths.BOOKABLE: N_("See the free times of this room, service or event and book one online."),
}
DEFAULT_DESCRIPTION = N_("Open-source booking for rooms, services and events.")


def register_pages(app: rx.App) -> None:
    def _add(content, route: str, title: "str | tuple[str, ...]", on_load=None) -> None:
        """`title`: the page's msgid(s), most specific first (without the brand)."""
        events = [AppState.init_page] + (on_load if isinstance(on_load, list) else [on_load] if on_load else [])
        paths.PAGE_TITLES[route] = (title,) if isinstance(title, str) else tuple(title)
        app.add_page(layout.page(content), route=route, title=paths.page_title(route, "en"), on_load=events,
                     description=translate(PAGE_DESCRIPTIONS.get(route, DEFAULT_DESCRIPTION), "en"))

    _add(home.content, paths.HOME, ())
    _add(auth.sign_in, paths.SIGN_IN, N_("Sign in"))
    _add(auth.sign_in_code, paths.SIGN_IN_CODE, N_("Enter your code"))
    _add(auth.sign_up, paths.SIGN_UP, N_("Sign up"))
    _add(auth.forgot_password, paths.FORGOT_PASSWORD, N_("Forgot password"))
    _add(auth.reset_password, paths.RESET_PASSWORD, N_("Reset password"))
    _add(search.content, paths.SEARCH, N_("Find & book"), SearchState.load)
    customer.register(_add)  # issue 7
    _add(account.content, paths.ACCOUNT, N_("My account"), AccountState.load)
    _add(mfa.content, paths.MFA_SETUP, (N_("Set up two-factor sign-in"), N_("My account")), MfaSetupState.load)
    # provider and admin pages (issue 8)
    provider.register(_add)
    provider_bookings.register(_add)
    provider_approvals.register(_add)  # issue 24: bookings awaiting approval
    admin.register(_add)
    admin_audit.register(_add)
    calendar_subscriptions.register(_add)  # issue 25: outside calendars
    webhooks.register(_add)  # issue 25
    discount_codes.register(_add)  # issue 26: discount codes
    embed_settings.register(_add)  # issue 25: the booking widget's snippet and allow-list
    waitlist.register(_add)  # issue 24: the waitlist (customer) and the waitlists (provider)

    def _add_framed(content, route: str, title: str, on_load: list) -> None:
        """The booking widget's pages (issue 25): their own shell, without the site's header."""
        paths.PAGE_TITLES[route] = (title,)
        app.add_page(content, route=route, title=paths.page_title(route, "en"),
                     on_load=[AppState.init_page, *on_load], description=translate(DEFAULT_DESCRIPTION, "en"))

    embed.register(_add_framed)
