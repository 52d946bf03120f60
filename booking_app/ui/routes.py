"""Route constants and the one place where pages are registered.

Every page is wrapped in the app shell (`layout.page`) and loads `AppState.init_page`
first (who is signed in, which language); add a page with one `_add(...)` line.
"""
from __future__ import annotations

import reflex as rx

HOME = "/"
SEARCH = "/search"
BOOKABLE = "/service"          # ?id=<bookable id>
BOOK = "/book"                 # ?id=<bookable id>&start=<ISO start>
CONFIRMATION = "/booking"      # ?id=<booking id>
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
FORGOT_PASSWORD = "/forgot-password"
RESET_PASSWORD = "/reset-password"  # ?token=… (the emailed link, services/auth.py)


def register_pages(app: rx.App) -> None:
    from booking_app.ui import layout
    from booking_app.ui.pages import auth, home, search
    from booking_app.ui.state.search import SearchState
    from booking_app.ui.state.base import AppState

    def _add(content, route: str, title: str, on_load=None) -> None:
        events = [AppState.init_page] + (on_load if isinstance(on_load, list) else [on_load] if on_load else [])
        app.add_page(layout.page(content), route=route, title=title, on_load=events)

    _add(home.content, HOME, "Booking")
    _add(auth.sign_in, SIGN_IN, "Sign in · Booking")
    _add(auth.sign_up, SIGN_UP, "Sign up · Booking")
    _add(auth.forgot_password, FORGOT_PASSWORD, "Forgot password · Booking")
    _add(auth.reset_password, RESET_PASSWORD, "Reset password · Booking")
    _add(search.content, SEARCH, "Find & book · Booking", SearchState.load)

    # customer pages (issue 7)
    from booking_app.ui.pages import customer

    customer.register(_add)

    from booking_app.ui.pages import account
    from booking_app.ui.state.account import AccountState

    _add(account.content, ACCOUNT, "My account · Booking", AccountState.load)

    # provider and admin pages (issue 8)
    from booking_app.ui.pages import admin as admin_pages
    from booking_app.ui.pages import provider as provider_pages

    provider_pages.register(_add)
    admin_pages.register(_add)
