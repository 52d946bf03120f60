"""The browser's session lives in an HttpOnly cookie set and cleared by the server: page
scripts never see the token, the session survives a reload and a new tab, sign-out clears
the cookie, and a session ended elsewhere (API logout, password change) is over at the
browser's next page load."""
from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from booking_app.i18n import translate
from tests.browser.helpers import goto, sign_in, sign_up, unique_user

pytestmark = pytest.mark.browser

COOKIE = "booking_session"


def session_cookie(page) -> dict | None:
    """The session cookie as the browser keeps it (the test harness sees HttpOnly cookies;
    page scripts don't)."""
    found = [c for c in page.context.cookies() if c["name"] == COOKIE]
    assert len(found) <= 1, found
    return found[0] if found else None


def wait_for_no_session_cookie(page, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while session_cookie(page) is not None:
        assert time.monotonic() < deadline, "the session cookie was not cleared"
        page.wait_for_timeout(100)


def expect_sent_to_sign_in(page) -> None:
    """Signed out: the account page sends the visitor to sign in."""
    goto(page, "/account")
    page.wait_for_url(lambda url: "/sign-in" in url)


def profile_status(page, token: str) -> int:
    return page.request.get("/api/users/profile", headers={"Authorization": f"Bearer {token}"}).status


def expect_signed_in(page, user) -> None:
    expect(page.get_by_test_id("user-menu")).to_contain_text(user["full_name"])


def expect_signed_out(page) -> None:
    expect(page.get_by_test_id("sign-out")).to_have_count(0)
    expect(page.get_by_test_id("user-menu")).to_have_count(0)


@pytest.mark.parametrize("size", ["desktop"], indirect=True)
def test_the_token_is_out_of_reach_of_page_scripts_and_survives_reload_and_new_tab(page, size):
    frames: list[str] = []  # everything the server sends the page over its websockets

    def watch(ws):
        ws.on("framereceived", lambda payload: frames.append(payload if isinstance(payload, str) else repr(payload)))

    page.on("websocket", watch)
    user = unique_user()
    sign_up(page, user)
    expect_signed_in(page, user)

    cookie = session_cookie(page)
    assert cookie is not None, "no session cookie after signing up"
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Lax" and cookie["path"] == "/"
    assert cookie["secure"] is False  # the test server's PUBLIC_URL is http
    assert cookie["expires"] > 0  # a persistent cookie (its max-age is the token's lifetime)
    token = cookie["value"]
    assert profile_status(page, token) == 200  # it is the session's bearer token

    # nothing a script can read holds it: document.cookie, web storage, the page
    readable = page.evaluate("[document.cookie, JSON.stringify(localStorage), JSON.stringify(sessionStorage),"
                             " document.documentElement.outerHTML]")
    assert COOKIE not in readable[0]
    assert all(token not in text for text in readable)

    before_reload = len(frames)
    page.reload()
    page.wait_for_selector("[data-testid=app-root][data-ready=true]")
    expect_signed_in(page, user)
    assert frames and not any(token in frame for frame in frames)  # nor the page's state
    # the used sign-in code is no longer in the page's state either
    assert any("hand_off" in f for f in frames[:before_reload])
    assert not any("hand_off" in f for f in frames[before_reload:])

    other_tab = page.context.new_page()
    goto(other_tab, "/account")
    expect(other_tab.locator("#field-email")).to_have_value(user["email"])
    expect_signed_in(other_tab, user)
    assert page.console_errors == []


@pytest.mark.parametrize("size", ["desktop"], indirect=True)
def test_sign_out_revokes_the_token_and_clears_the_cookie(page, size):
    user = unique_user()
    sign_up(page, user)
    expect_signed_in(page, user)
    token = session_cookie(page)["value"]
    other_tab = page.context.new_page()
    goto(other_tab, "/")
    expect_signed_in(other_tab, user)

    page.get_by_test_id("sign-out").click()
    wait_for_no_session_cookie(page)
    expect_signed_out(page)
    assert profile_status(page, token) == 401
    expect_sent_to_sign_in(page)
    # the other open tab's next event finds itself signed out as well
    other_tab.get_by_test_id("user-menu").click()
    other_tab.wait_for_url(lambda url: "/sign-in" in url)
    expect_signed_out(other_tab)

    # and signing in again works (a new cookie)
    sign_in(page, user["username"], user["password"])
    expect_signed_in(page, user)
    assert session_cookie(page)["value"] != token
    assert page.console_errors == []


@pytest.mark.parametrize("size", ["desktop"], indirect=True)
@pytest.mark.parametrize("how", ["api-logout", "api-password-change"])
def test_a_session_ended_elsewhere_is_over_at_the_next_event_and_page_load(page, size, how):
    user = unique_user()
    sign_up(page, user)
    expect_signed_in(page, user)
    token = session_cookie(page)["value"]

    if how == "api-logout":
        # the token ends through the REST API (as any client holding it could do)
        resp = page.request.post("/api/users/logout", headers={"Authorization": f"Bearer {token}"})
        assert resp.status == 204
    else:
        login = page.request.post("/api/users/login", data={"username": user["username"], "password": user["password"]})
        api_token = login.json()["access_token"]
        resp = page.request.put("/api/users/profile", headers={"Authorization": f"Bearer {api_token}"},
                                data={"password": "A-new-long-passphrase-7", "current_password": user["password"]})
        assert resp.status == 200, resp.text()

    # the open page's next event (no reload: a click within the app) finds the session over
    page.get_by_test_id("user-menu").click()
    page.wait_for_url(lambda url: "/sign-in" in url)
    expect_signed_out(page)
    # and so does the next page load
    page.reload()
    page.wait_for_selector("[data-testid=app-root][data-ready=true]")
    expect_signed_out(page)
    expect_sent_to_sign_in(page)
    assert page.console_errors == []


@pytest.mark.parametrize("size", ["phone"], indirect=True)
def test_a_password_change_in_the_ui_gives_this_browser_a_fresh_cookie_and_ends_the_others(page, size, open_page):
    user = unique_user()
    sign_up(page, user)
    old_token = session_cookie(page)["value"]
    other = open_page()  # another browser signed in to the same account
    sign_in(other, user["username"], user["password"])

    goto(page, "/account")
    form = page.locator("form").filter(has=page.locator("#field-new_password"))
    form.locator("input[name=current_password]").fill(user["password"])
    form.locator("input[name=new_password]").fill("Another-long-pass-1")
    form.locator("input[name=new_password_again]").fill("Another-long-pass-1")
    form.get_by_role("button").click()
    page.wait_for_url(lambda url: "password=changed" in url)
    expect(page.get_by_test_id("form-ok").filter(
        has_text=translate("Your password is changed. Other sessions were signed out.", "en"))).to_have_count(1)
    expect(page.locator("#field-email")).to_have_value(user["email"])  # still signed in

    new_token = session_cookie(page)["value"]
    assert new_token != old_token and session_cookie(page)["httpOnly"] is True
    assert profile_status(page, old_token) == 401 and profile_status(page, new_token) == 200

    expect_sent_to_sign_in(other)
    assert page.console_errors == [] and other.console_errors == []


@pytest.mark.parametrize("size", ["desktop"], indirect=True)
def test_a_failed_hand_off_leaves_the_form_with_a_message_and_no_session(page, size, open_page):
    """The code can't be traded (here: the answer is replaced by a refusal): the sign-in form
    says so, no cookie is set, and sending the form again works."""
    from booking_app.services.browser_sessions import HANDOFF_INVALID

    user = unique_user()
    signup = open_page()
    sign_up(signup, user)

    page.route("**/api/browser-session", lambda route: route.fulfill(
        status=422, content_type="application/problem+json", body='{"status": 422}'))
    goto(page, "/sign-in")
    page.fill("#field-identifier", user["username"])
    page.fill("#field-password", user["password"])
    page.get_by_test_id("sign-in-submit").click()
    expect(page.get_by_test_id("form-error")).to_have_text(translate(HANDOFF_INVALID, "en"))
    assert session_cookie(page) is None and "/sign-in" in page.url

    page.unroute("**/api/browser-session")
    page.get_by_test_id("sign-in-submit").click()
    page.wait_for_url(lambda url: "/sign-in" not in url)
    expect_signed_in(page, user)
    assert session_cookie(page)["httpOnly"] is True


@pytest.mark.parametrize("size", ["desktop"], indirect=True)
def test_a_link_from_another_site_opens_the_site_signed_in(page, size, live_server):
    """SameSite=Lax: following a link in an email (another site) to the account page finds
    the visitor signed in."""
    user = unique_user()
    sign_up(page, user)
    page.route("http://mail.example.test/**", lambda route: route.fulfill(
        status=200, content_type="text/html",
        body=f'<html><body><a id="go" href="{live_server}/account">Your booking</a></body></html>'))
    page.goto("http://mail.example.test/inbox")
    page.click("#go")
    page.wait_for_url(lambda url: url.startswith(live_server) and "/account" in url)
    page.wait_for_selector("[data-testid=app-root][data-ready=true]")
    expect(page.locator("#field-email")).to_have_value(user["email"])
    expect_signed_in(page, user)
