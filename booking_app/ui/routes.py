"""Route constants and the one place where pages are registered.

Every page is wrapped in the app shell (`layout.page`) and loads `AppState.init_page`
first (who is signed in, which language); add a page with one `_add(...)` line.
"""
from __future__ import annotations

import reflex as rx

from booking_app.i18n import N_, translate

HOME = "/"
SEARCH = "/search"
BOOKABLE = "/service"          # ?id=<bookable id>
BOOK = "/book"                 # ?id=<bookable id>&start=<ISO start>
CONFIRMATION = "/booking"      # ?id=<booking id>
CONFIRM_EMAIL = "/booking/confirm"   # ?token=… (a guest's emailed link, services/bookings.py: confirm_url)
MANAGE_LINK = "/booking/new-link"    # a guest asks for a new manage link
MY_BOOKINGS = "/my-bookings"
ACCOUNT = "/account"
SIGN_IN = "/sign-in"
SIGN_UP = "/sign-up"
# provider and admin pages (issue 8)
PROVIDER = "/provider"
PROVIDER_BOOKABLE = "/provider/bookable"  # ?id=<bookable id>; without: a new one
PROVIDER_BOOKINGS = "/provider/bookings"
ADMIN_DASHBOARD = "/admin/dashboard"
ADMIN_REPORTS = "/admin/reports"
ADMIN_USERS = "/admin/users"
ADMIN_OUTBOX = "/admin/outbox"
ADMIN_AUDIT = "/admin/audit"
FORGOT_PASSWORD = "/forgot-password"
RESET_PASSWORD = "/reset-password"  # ?token=… (the emailed link, services/auth.py)


#: route → its page title: msgids, most specific first; the brand follows. The static
#: title (English) is what the page is served with; once loaded, and at every language
#: switch, the page sets document.title in its language (AppState.init_page).
PAGE_TITLES: dict[str, tuple[str, ...]] = {}
BRAND = "Booking"


def page_title(path: str, locale: str) -> str:
    """The title of the page at `path` in `locale` (the brand alone for an unknown page)."""
    parts = PAGE_TITLES.get(path.rstrip("/") or "/", ())
    return " · ".join([translate(part, locale) for part in parts] + [BRAND])


def register_pages(app: rx.App) -> None:
    from booking_app.ui import layout
    from booking_app.ui.pages import auth, home, search
    from booking_app.ui.state.search import SearchState
    from booking_app.ui.state.base import AppState

    def _add(content, route: str, title: "str | tuple[str, ...]", on_load=None) -> None:
        """`title`: the page's msgid(s), most specific first (without the brand)."""
        events = [AppState.init_page] + (on_load if isinstance(on_load, list) else [on_load] if on_load else [])
        PAGE_TITLES[route] = (title,) if isinstance(title, str) else tuple(title)
        app.add_page(layout.page(content), route=route, title=page_title(route, "en"), on_load=events)

    _add(home.content, HOME, ())
    _add(auth.sign_in, SIGN_IN, N_("Sign in"))
    _add(auth.sign_up, SIGN_UP, N_("Sign up"))
    _add(auth.forgot_password, FORGOT_PASSWORD, N_("Forgot password"))
    _add(auth.reset_password, RESET_PASSWORD, N_("Reset password"))
    _add(search.content, SEARCH, N_("Find & book"), SearchState.load)

    # customer pages (issue 7)
    from booking_app.ui.pages import customer

    customer.register(_add)

    from booking_app.ui.pages import account
    from booking_app.ui.state.account import AccountState

    _add(account.content, ACCOUNT, N_("My account"), AccountState.load)

    # provider and admin pages (issue 8)
    from booking_app.ui.pages import admin as admin_pages
    from booking_app.ui.pages import provider as provider_pages

    provider_pages.register(_add)
    admin_pages.register(_add)

    from booking_app.ui.pages import admin_audit

    admin_audit.register(_add)
