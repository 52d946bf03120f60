"""Two-factor sign-in in the browser, at phone and desktop sizes: enrol from the account page
(codes computed from the secret the page shows) → sign out → sign in with a code → sign out →
sign in with a recovery code → turn it off; a wrong code is told next to the field. And an
admin whose sign-in is no longer recent confirms it is them before turning off a user's
two-factor sign-in (the action then runs by itself)."""
from __future__ import annotations

import datetime as dt
import os
import pathlib
import time

import pyotp
import pytest
from playwright.sync_api import Page, expect

from booking_app.i18n import translate
from tests.browser.helpers import (AXE_JS, assert_no_horizontal_scroll, axe_violations, goto, open_menu_if_phone,
                                   settle, sign_in, sign_up, unique_user)
from tests.browser.helpers import live_db  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser

#: set to a folder to keep screenshots of each step
SCREENSHOTS = os.environ.get("MFA_SCREENSHOTS")


class Codes:
    """Codes of one secret, each for a later time step than the one before (a code works once)."""

    def __init__(self, secret: str) -> None:
        self.totp = pyotp.TOTP(secret)
        self.last = -10**9

    def next(self) -> str:
        while True:
            now = int(time.time()) // 30
            step = max(self.last + 1, now - 1)
            if step <= now + 1:
                self.last = step
                return self.totp.at(step * 30)
            time.sleep(1)


def shot(page: Page, size: str, name: str) -> None:
    """A screenshot (MFA_SCREENSHOTS) and the WCAG A/AA rules of axe-core on the page as it is."""
    settle(page)
    if AXE_JS.exists():
        violations = axe_violations(page)
        assert violations == {}, f"{name}: {violations}"
    if SCREENSHOTS:
        pathlib.Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(pathlib.Path(SCREENSHOTS) / f"mfa-{size}-{name}.png"), full_page=True)


def sign_out(page: Page) -> None:
    if page.get_by_test_id("menu-button").is_visible():
        open_menu_if_phone(page)
        page.locator("#phone-menu").get_by_role("button", name="Sign out").click()
    else:
        page.get_by_test_id("sign-out").click()
    page.wait_for_function("!document.cookie.includes('booking_session')")
    page.wait_for_timeout(500)


def password_step(page: Page, user: dict[str, str]) -> None:
    goto(page, "/sign-in")
    page.fill("#field-identifier", user["username"])
    page.fill("#field-password", user["password"])
    page.get_by_test_id("sign-in-submit").click()
    page.wait_for_url(lambda url: "/sign-in/code" in url, timeout=20_000)
    page.wait_for_selector("#field-code")


def test_enrol_sign_in_with_code_and_recovery_code_then_disable(page, size):
    user = unique_user()
    sign_up(page, user)
    goto(page, "/account")
    expect(page.get_by_test_id("mfa-off")).to_be_visible()
    shot(page, size, "1-account-off")
    page.get_by_test_id("mfa-setup").click()
    page.wait_for_url(lambda url: "/account/two-factor" in url)
    page.wait_for_selector("#field-mfa-password")
    expect(page.get_by_role("heading", level=1)).to_have_text("Set up two-factor sign-in")
    page.fill("#field-mfa-password", user["password"])
    page.get_by_test_id("mfa-start").click()
    secret_text = page.get_by_test_id("mfa-secret")
    expect(secret_text).to_be_visible()
    expect(page.get_by_test_id("mfa-qr").locator("svg")).to_be_visible()
    codes = Codes(secret_text.inner_text().replace(" ", ""))
    assert_no_horizontal_scroll(page)
    shot(page, size, "2-scan")

    # a wrong code: the message sits under the field
    page.fill("#field-mfa-code", "000000")
    page.get_by_test_id("mfa-confirm").click()
    expect(page.get_by_test_id("code-error")).to_have_text(translate("That code is not correct. Please try again.", "en"))
    expect(page.locator("#field-mfa-code")).to_have_attribute("aria-invalid", "true")
    page.fill("#field-mfa-code", codes.next())
    page.get_by_test_id("mfa-confirm").click()
    expect(page.get_by_test_id("recovery-code")).to_have_count(10)
    recovery = [c.strip() for c in page.get_by_test_id("recovery-code").all_inner_texts()]
    assert_no_horizontal_scroll(page)
    shot(page, size, "3-recovery-codes")
    page.get_by_test_id("mfa-done").click()
    page.wait_for_url(lambda url: url.rstrip("/").endswith("/account"))
    expect(page.get_by_test_id("mfa-on")).to_be_visible()
    expect(page.get_by_test_id("session")).to_have_count(1)
    shot(page, size, "4-account-on")

    # sign in again: password, then a code
    sign_out(page)
    password_step(page, user)
    assert_no_horizontal_scroll(page)
    shot(page, size, "5-code-step")
    page.fill("#field-code", "123456")
    page.get_by_test_id("code-submit").click()
    expect(page.get_by_test_id("code-error")).to_be_visible()
    page.fill("#field-code", codes.next())
    page.get_by_test_id("code-submit").click()
    page.wait_for_url(lambda url: "/sign-in" not in url, timeout=20_000)
    goto(page, "/account")
    expect(page.get_by_test_id("mfa-on")).to_be_visible()

    # …and with a recovery code instead
    sign_out(page)
    password_step(page, user)
    page.fill("#field-code", recovery[0])
    page.get_by_test_id("code-submit").click()
    page.wait_for_url(lambda url: "/sign-in" not in url, timeout=20_000)
    goto(page, "/account")
    expect(page.get_by_test_id("mfa-on")).to_be_visible()

    # a new password signs every session out, this one too: it comes back through the code step
    # (with the second recovery code: the step's window has three TOTP steps, all used by now, and
    # a fourth would mean waiting up to 30 s for the clock)
    new_password = user["password"] + "-new"
    form = page.locator("form").filter(has=page.locator("#field-new_password"))
    form.locator("input[name=current_password]").fill(user["password"])
    form.locator("input[name=new_password]").fill(new_password)
    form.locator("input[name=new_password_again]").fill(new_password)
    form.get_by_role("button").click()
    page.wait_for_url(lambda url: "/sign-in/code" in url, timeout=20_000)
    page.wait_for_selector("#field-code")
    page.fill("#field-code", recovery[1])
    page.get_by_test_id("code-submit").click()
    page.wait_for_url(lambda url: "/account" in url and "/sign-in" not in url, timeout=20_000)
    expect(page.get_by_test_id("form-ok").filter(has_text="Your password is changed.")).to_be_visible()
    user["password"] = new_password

    # turn it off: password and a code
    page.fill("#field-mfa-off-password", user["password"])
    page.fill("#field-mfa-off-code", codes.next())
    page.get_by_test_id("mfa-disable").click()
    expect(page.get_by_test_id("mfa-off")).to_be_visible()
    expect(page.get_by_test_id("form-ok").filter(has_text="Two-factor sign-in is off.")).to_be_visible()
    sign_out(page)
    goto(page, "/sign-in")
    page.fill("#field-identifier", user["username"])
    page.fill("#field-password", user["password"])
    page.get_by_test_id("sign-in-submit").click()
    page.wait_for_url(lambda url: "/sign-in" not in url, timeout=20_000)
    assert page.console_errors == []


def two_factor_on(user_id: int) -> bool:
    from booking_app import db
    from booking_app.services import mfa

    with db.read_session() as s:
        return mfa.enabled(s, user_id)


@pytest.mark.parametrize("size", ["desktop", "phone"], indirect=True)
def test_admin_confirms_it_is_them_then_resets_a_users_two_factor(page, size, live_db):  # noqa: F811
    from sqlalchemy import update
    from sqlmodel import select

    from booking_app import db
    from booking_app.models import AuthToken, User, utcnow
    from booking_app.services import accounts, mfa
    from booking_app.services.actors import Actor

    person = unique_user()
    user = accounts.create_user(username=person["username"], email=person["email"], password=person["password"])
    actor = Actor(id=user.id, role="customer")
    secret = mfa.begin_enrolment(actor=actor, password=person["password"]).secret
    mfa.confirm_enrolment(actor=actor, code=Codes(secret).next())
    assert two_factor_on(user.id)

    sign_in(page, "admin", "demo-admin-pass")
    with db.unit_of_work() as s:  # the admin signed in 10 minutes ago: no longer recent
        admin_id = s.exec(select(User.id).where(User.username == "admin")).one()
        s.exec(update(AuthToken).where(AuthToken.user_id == admin_id)
               .values(created_at=utcnow() - dt.timedelta(minutes=10), reauth_at=None))
    goto(page, f"/admin/users?id={user.id}")
    page.get_by_test_id("reset-2fa").click()
    proof = page.locator("#field-reauth-proof")
    expect(proof).to_be_visible()
    expect(proof).to_be_focused()
    shot(page, size, "6-reauth-dialog")
    proof.fill("not the password")
    page.get_by_test_id("reauth-confirm").click()
    expect(page.get_by_test_id("proof-error")).to_have_text(translate("Your current password is not correct.", "en"))
    assert_no_horizontal_scroll(page)
    page.locator("#field-reauth-proof").fill("demo-admin-pass")
    page.get_by_test_id("reauth-confirm").click()
    expect(page.locator("#field-reauth-proof")).to_have_count(0)
    expect(page.get_by_test_id("form-ok").filter(has_text="Two-factor sign-in is off for this user")).to_be_visible()
    expect(page.get_by_test_id("reset-2fa")).to_have_count(0)
    assert not two_factor_on(user.id)
    assert page.console_errors == []
