"""My account: profile changes (language, name), export, wrong current password."""
from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from booking_app.i18n import translate
from tests.browser.helpers import assert_no_horizontal_scroll, goto, sign_up, unique_user

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("size", ["phone"], indirect=True)
def test_account_profile_language_export_and_password(page, size):
    user = unique_user()
    sign_up(page, user)
    goto(page, "/account")
    expect(page.locator("#field-email")).to_have_value(user["email"])
    assert_no_horizontal_scroll(page)

    page.fill("#field-full_name", "Renamed Person")
    page.select_option("#field-locale", "de")
    page.select_option("#field-timezone", "Europe/Berlin")
    page.get_by_test_id("save-profile").click()
    expect(page.get_by_test_id("form-ok").first).to_have_text(translate("Your changes are saved.", "de"))
    expect(page.get_by_role("heading", level=1)).to_have_text(translate("My account", "de"))
    if size == "desktop":
        expect(page.get_by_test_id("user-menu")).to_contain_text("Renamed Person")

    with page.expect_download() as download_info:
        page.get_by_test_id("export").click()
    data = json.loads(download_info.value.path().read_text())
    assert data["user"]["username"] == user["username"]
    assert data["user"]["locale"] == "de" and data["user"]["timezone"] == "Europe/Berlin"
    assert "password_hash" not in data["user"]

    # a wrong current password is refused with a translated message
    form = page.locator("form").filter(has=page.locator("#field-new_password"))
    form.locator("input[name=current_password]").fill("wrong-password")
    form.locator("input[name=new_password]").fill("Another-long-pass-1")
    form.locator("input[name=new_password_again]").fill("Another-long-pass-1")
    form.get_by_role("button").click()
    expect(page.get_by_test_id("form-error")).to_have_text(translate("Your current password is not correct.", "de"))
    assert_no_horizontal_scroll(page)
    assert page.console_errors == []
