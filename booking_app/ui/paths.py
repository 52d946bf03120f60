"""The pages' paths and titles: constants that states, pages and the layout link to.

The bottom layer of ui/ (it imports no page or state), so a state can redirect to any page
without importing the pages; ui/routes.py registers the pages under these paths.
"""
from __future__ import annotations

from booking_app.i18n import translate

HOME = "/"
SEARCH = "/search"
BOOKABLE = "/service"          # ?id=<bookable id>
BOOK = "/book"                 # ?id=<bookable id>&start=<ISO start>
CONFIRMATION = "/booking"      # ?id=<booking id>
CONFIRM_EMAIL = "/booking/confirm"   # ?token=… (a guest's emailed link, services/guest_bookings.py: confirm_url)
MANAGE_LINK = "/booking/new-link"    # a guest asks for a new manage link
MY_BOOKINGS = "/my-bookings"
ACCOUNT = "/account"
SIGN_IN = "/sign-in"
SIGN_UP = "/sign-up"
SIGN_IN_CODE = "/sign-in/code"    # the second sign-in step (two-factor code), after the password
MFA_SETUP = "/account/two-factor"  # two-factor enrolment (also where REQUIRE_2FA_FOR sends new sign-ins)
# provider and admin pages (issue 8)
PROVIDER = "/provider"
PROVIDER_BOOKABLE = "/provider/bookable"  # ?id=<bookable id>; without: a new one
PROVIDER_BOOKINGS = "/provider/bookings"
PROVIDER_APPROVALS = "/provider/approvals"  # requests waiting for the provider's approval (issue 24)
APPROVAL_LINK = "/provider/approval"        # ?token=… (the provider's emailed link, services/approval_links.py)
# waitlist (issue 24): a customer's entries and offers (?entry=<id>&token=… from the offer email;
# ?service=<bookable id>[&start=<ISO>]: join), a provider's queues
WAITLIST = "/waitlist"
PROVIDER_WAITLISTS = "/provider/waitlists"
ADMIN_DASHBOARD = "/admin/dashboard"
ADMIN_REPORTS = "/admin/reports"
ADMIN_USERS = "/admin/users"
ADMIN_OUTBOX = "/admin/outbox"
ADMIN_AUDIT = "/admin/audit"
STAFF_WEBHOOKS = "/provider/webhooks"  # a provider's webhook endpoints (an admin: everyone's)
ADMIN_WEBHOOKS = "/admin/webhooks"     # the same page under the admin section
PROVIDER_CALENDARS = "/provider/calendars"  # outside calendars whose busy times block slots
STAFF_DISCOUNT_CODES = "/provider/discount-codes"  # discount codes (issue 26): a provider's, an admin's all
# the embeddable booking widget (issue 25; services/embed.py: EMBED_PREFIX, docs/embed.md)
EMBED = "/embed"                  # ?id=<bookable id> | ?provider=<provider id> [&accent=#rrggbb&lang=…]
EMBED_SERVICE = "/embed/service"  # ?id=<bookable id> (+ the widget's options): pick a time
EMBED_BOOK = "/embed/book"        # ?id=<bookable id>&start=<ISO start>&qty=… (+ the widget's options)
EMBED_BOOKING = "/embed/booking"  # ?id=<booking id>&token=…&service=<bookable id> (+ the options)
PROVIDER_EMBED = "/provider/embed"  # the snippet and the allow-list
FORGOT_PASSWORD = "/forgot-password"
RESET_PASSWORD = "/reset-password"  # ?token=… (the emailed link, services/auth.py)


#: route → its page title: msgids, most specific first; the brand follows. The static
#: title (English) is what the page is served with; once loaded, and at every language
#: switch, the page sets document.title in its language (AppState.init_page). Filled by
#: ui/routes.py as it registers each page.
PAGE_TITLES: dict[str, tuple[str, ...]] = {}
BRAND = "Booking"


def page_title(path: str, locale: str) -> str:
    """The title of the page at `path` in `locale` (the brand alone for an unknown page)."""
    parts = PAGE_TITLES.get(path.rstrip("/") or "/", ())
    return " · ".join([translate(part, locale) for part in parts] + [BRAND])
