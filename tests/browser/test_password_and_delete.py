"""Forgot password → the emailed link → a new password; and deleting an account."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from booking_app.i18n import translate
from booking_app.services.auth import LOGIN_FAILED, RESET_INVALID
from tests.browser.helpers import goto, sign_in, sign_up, unique_user
from tests.browser.helpers import live_db  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser


def reset_url_from_outbox(email: str) -> str:
    from sqlmodel import select

    from booking_app import db
    from booking_app.models import Notification

    with db.read_session() as s:
        row = s.exec(select(Notification).where(Notification.to == email, Notification.template == "password_reset")
                     .order_by(Notification.id.desc())).first()  # type: ignore[union-attr]
    assert row is not None, "no reset email in the outbox"
    return "/reset-password?token=" + row.context["token"]


def sign_in_fails(page, identifier: str, password: str) -> None:
    goto(page, "/sign-in")
    page.fill("#field-identifier", identifier)
    page.fill("#field-password", password)
    page.get_by_test_id("sign-in-submit").click()
    expect(page.get_by_test_id("form-error")).to_have_text(translate(LOGIN_FAILED, "en"))


@pytest.mark.parametrize("size", ["phone"], indirect=True)
def test_forgot_and_reset_password(page, size, live_db, open_page):
    user = unique_user()
    sign_up(page, user)

    visitor = open_page()
    goto(visitor, "/forgot-password")
    visitor.fill("#field-email", user["email"])
    visitor.get_by_test_id("forgot-submit").click()
    expect(visitor.get_by_test_id("form-ok")).to_have_text(translate(
        "If an account uses this address, we have sent it a link to choose a new password.", "en"))
    link = reset_url_from_outbox(user["email"])

    goto(visitor, link)
    visitor.fill("#field-new_password", "Brand-new-pass-1")
    visitor.fill("#field-new_password_again", "Brand-new-pass-2")
    visitor.get_by_test_id("reset-submit").click()
    expect(visitor.get_by_test_id("form-error")).to_have_text(
        translate("The two new passwords are not the same.", "en"))
    visitor.fill("#field-new_password_again", "Brand-new-pass-1")
    visitor.get_by_test_id("reset-submit").click()
    expect(visitor.get_by_test_id("form-ok")).to_have_text(
        translate("Your password is changed. You can sign in now.", "en"))
    expect(visitor.get_by_test_id("reset-submit")).to_have_count(0)

    # the link works once
    goto(visitor, link)
    visitor.fill("#field-new_password", "Another-new-pass-1")
    visitor.fill("#field-new_password_again", "Another-new-pass-1")
    visitor.get_by_test_id("reset-submit").click()
    expect(visitor.get_by_test_id("form-error")).to_have_text(translate(RESET_INVALID, "en"))

    sign_in_fails(visitor, user["username"], user["password"])
    sign_in(visitor, user["username"], "Brand-new-pass-1")
    assert page.console_errors == [] and visitor.console_errors == []


@pytest.mark.parametrize("size", ["desktop"], indirect=True)
def test_delete_account(page, size):
    user = unique_user()
    sign_up(page, user)
    goto(page, "/account")
    page.get_by_test_id("delete-account").click()
    dialog = page.get_by_role("alertdialog")
    expect(dialog).to_be_visible()
    page.fill("#field-delete-current_password", "wrong-password")
    dialog.get_by_test_id("confirm-delete").click()
    expect(dialog.get_by_test_id("form-error")).to_have_text(
        translate("Your current password is not correct.", "en"))
    page.fill("#field-delete-current_password", user["password"])
    dialog.get_by_test_id("confirm-delete").click()
    page.wait_for_url(lambda url: "/account" not in url, timeout=20_000)
    expect(page.get_by_test_id("user-menu")).to_have_count(0)
    sign_in_fails(page, user["username"], user["password"])
    assert page.console_errors == []
